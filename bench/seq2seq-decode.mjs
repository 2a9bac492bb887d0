// Decoding speed of a sequence-to-sequence model: 1,000 sources of the numbers task (the first
// 1,000 pairs of a pair file, by default data/numbers-test.jsonl: held-out numbers of all three
// directions), translated as one batch, greedy and with beam search.
//
//   node bench/seq2seq-decode.mjs <model.safetensors> [pairs.jsonl] [--beams 4] [--repeat 3]
//
// Train the model first with the command of docs/CLI.md, "Sequence to sequence". Prints one JSON
// line per decoding mode (the best of --repeat runs) and the ratio of beam to greedy time.
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { loadModel, engineInfo } = require('../dist/index.js');

const args = process.argv.slice(2);
const flag = (name, fallback) => {
  const i = args.indexOf(name);
  if (i < 0) return fallback;
  const [, value] = args.splice(i, 2);
  return Number(value);
};
const beams = flag('--beams', 4);
const repeat = flag('--repeat', 3);
const [modelPath, pairsPath = new URL('../data/numbers-test.jsonl', import.meta.url).pathname] = args;
if (!modelPath) {
  console.error('usage: node bench/seq2seq-decode.mjs <model.safetensors> [pairs.jsonl] [--beams 4] [--repeat 3]');
  process.exit(2);
}
const pairs = readFileSync(pairsPath, 'utf8')
  .split('\n')
  .filter((l) => l.trim() !== '')
  .slice(0, 1000)
  .map((l) => JSON.parse(l));
const sources = pairs.map((p) => p.source);
const model = await loadModel(modelPath);
if (model.task !== 'seq2seq') throw new Error(`${modelPath}: not a seq2seq model`);
const info = engineInfo();

const seconds = {};
for (const b of [1, beams]) {
  let best = Infinity;
  let outputs = [];
  for (let i = 0; i < repeat; i++) {
    const t0 = performance.now();
    outputs = await model.translateBatch(sources, { beams: b });
    best = Math.min(best, (performance.now() - t0) / 1000);
  }
  const exact = outputs.filter((o, i) => o === pairs[i].target).length / pairs.length;
  seconds[b] = best;
  console.log(
    JSON.stringify({ decode: b === 1 ? 'greedy' : `beam ${b}`, inputs: sources.length, seconds: +best.toFixed(3), exactMatch: exact, threads: info.threads }),
  );
}
console.log(JSON.stringify({ beamOverGreedy: +(seconds[beams] / seconds[1]).toFixed(2) }));
