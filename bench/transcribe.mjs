// Transcription speed of a speech model in multiples of real time: seconds of audio transcribed
// per second of wall time, everything included (WAV decoding, resampling, log-mel features, the
// bidirectional RNN, greedy decoding), one file per call as a server would see them and all files
// as one batch. Run it on one core with RNNKIT_THREADS=1.
//
//   RNNKIT_THREADS=1 node bench/transcribe.mjs [manifest.jsonl] [--model file] [--repeat 3]
//
// Defaults: the shipped spoken-digit model (data/models/spoken-digits.safetensors) on the three
// reserved-voice utterances of fixtures/audio/spoken. A manifest (`{"audio", "text"}` lines,
// paths relative to it), e.g. an evaluation group of scripts/speech-corpus.mjs, times its files
// and counts the transcripts that are right. Prints one JSON line per mode (the best of --repeat).
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { loadModel, readWavSync, engineInfo } = require('../dist/index.js');
const root = join(dirname(fileURLToPath(import.meta.url)), '..');

const args = process.argv.slice(2);
const take = (name, fallback) => {
  const i = args.indexOf(name);
  if (i < 0) return fallback;
  const [, value] = args.splice(i, 2);
  return value;
};
const modelPath = take('--model', join(root, 'data', 'models', 'spoken-digits.safetensors'));
const repeat = Number(take('--repeat', '3'));
const [manifest] = args;

/** The utterances timed: `{ file, text }`. */
function utterances() {
  if (manifest === undefined) {
    const dir = join(root, 'fixtures', 'audio', 'spoken');
    const { files } = JSON.parse(readFileSync(join(dir, 'transcripts.json'), 'utf8'));
    return files.map((f) => ({ file: join(dir, f.audio), text: f.text }));
  }
  return readFileSync(manifest, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l))
    .map((u) => ({ file: join(dirname(manifest), u.audio), text: u.text }));
}

const items = utterances();
const bytes = items.map((u) => readFileSync(u.file));
const audioSeconds = bytes.reduce((sum, b) => {
  const wav = readWavSync(b);
  return sum + wav.samples.length / wav.sampleRate;
}, 0);
const model = await loadModel(modelPath);
if (model.task !== 'speech') throw new Error(`${modelPath}: not a speech model`);

const modes = {
  'one file a call': async () => {
    const out = [];
    for (const b of bytes) out.push(await model.transcribe(b));
    return out;
  },
  'one batch': () => model.transcribe(bytes),
};
for (const [mode, run] of Object.entries(modes)) {
  let best = Infinity;
  let texts = [];
  // Enough rounds that the audio timed lasts at least 60 s per measurement.
  const rounds = Math.max(1, Math.ceil(60 / audioSeconds));
  for (let i = 0; i < repeat; i++) {
    const t0 = performance.now();
    for (let r = 0; r < rounds; r++) texts = await run();
    best = Math.min(best, (performance.now() - t0) / 1000 / rounds);
  }
  // Whole transcripts right; `rnnkit eval` gives the engine's word and character error rates.
  const correct = texts.filter((t, i) => t === items[i].text).length;
  console.log(
    JSON.stringify({
      mode,
      files: items.length,
      audioSeconds: +audioSeconds.toFixed(1),
      seconds: +best.toFixed(4),
      timesRealTime: +(audioSeconds / best).toFixed(1),
      correctTranscripts: correct,
      threads: engineInfo().threads,
    }),
  );
}
