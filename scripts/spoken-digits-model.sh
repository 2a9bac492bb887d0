#!/usr/bin/env bash
# Rebuilds the shipped spoken-digit recognizer, data/models/spoken-digits.safetensors, from
# nothing: speaks the seeded corpus with espeak-ng and sox (scripts/speech-corpus.mjs: 4,000
# training utterances in the training voices, three groups of 200 in reserved voices), trains with
# the defaults of `rnnkit train --task speech`, and evaluates on each reserved group. Needs the
# Debian packages espeak-ng and sox, and a built package (npm run build).
#
#   bash scripts/spoken-digits-model.sh [CORPUS_DIR]   (default: a temporary folder)
set -euo pipefail
cd "$(dirname "$0")/.."

corpus=${1:-$(mktemp -d)}
if [ ! -f "$corpus/train.jsonl" ]; then
  node scripts/speech-corpus.mjs --out "$corpus" --train 4000 --eval 200 --seed 1 --jobs 2
fi
node dist/cli/index.js train --task speech "$corpus/train.jsonl" --validation 0.05 --out data/models/spoken-digits.safetensors
for group in eval-language eval-variant eval-both; do
  echo "== $group"
  node dist/cli/index.js eval data/models/spoken-digits.safetensors "$corpus/$group.jsonl"
done
