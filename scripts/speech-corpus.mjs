#!/usr/bin/env node
// The spoken-digit corpus: strings of 3–8 English digits spoken by espeak-ng, processed by sox
// (rate, tempo, peak level) and mixed here with seeded white noise, written as 16 kHz mono 16-bit
// WAV files with one JSONL manifest per split ({"audio": "train/000001.wav", "text": "3 7 1"},
// paths relative to the manifest; `<split>.details.jsonl` beside it has each utterance's voice,
// rate, pitch, tempo, gain and SNR). Needs the Debian packages espeak-ng and sox.
//
//   node scripts/speech-corpus.mjs --out DIR [--train 4000] [--eval 200] [--seed 1] [--jobs 2]
//
// Voices. espeak-ng voices are a language plus a variant (`en-us+m3`). Training uses only
// TRAIN_LANGUAGES × TRAIN_VARIANTS: the numbered variants m1–m5, f1–f3, klatt–klatt3 and the
// named variants whose file name (what follows `+`, as `espeak-ng --voices=variant` lists it)
// begins with A–L. Every other language and variant is reserved for evaluation, which has
// three groups of `--eval` utterances each (every voice in a group is reserved):
//   - eval-language:  a reserved English language (EVAL_LANGUAGES), its default voice;
//   - eval-both:      a reserved English language with a reserved variant;
//   - eval-variant:   a training language with a reserved variant.
// Evaluation speaks at 140–200 words/min with white noise at exactly 20 dB SNR (noise power
// against the whole utterance's mean power); training spans 120–220 words/min, espeak pitch
// 20–80, sox tempo 0.9–1.1, and SNRs of 10–40 dB or no noise (a quarter of the utterances).
// Every utterance's level is normalised to a -3 dBFS peak, then lowered by 0–18 dB.
//
// The draws come from a seeded generator (xorshift128+ seeded by splitmix64 of the seed and
// the utterance's split and index), so a seed gives the same texts, voices and noise on any
// machine with the same espeak-ng and sox. A `voices.json` beside the manifests lists the
// voices of each side and the settings; the run's wall time goes to stderr.
import { spawn, execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const TRAIN_LANGUAGES = ['en-us', 'en-gb', 'en-gb-x-gbclan', 'en-gb-x-gbcwmd'];
const EVAL_LANGUAGES = ['en-029', 'en-gb-scotland', 'en-gb-x-rp', 'en-us-nyc'];
const NUMBERED = /^(m\d+|f\d+|klatt\d*)$/;
const TRAIN_NUMBERED = new Set(['m1', 'm2', 'm3', 'm4', 'm5', 'f1', 'f2', 'f3', 'klatt', 'klatt2', 'klatt3']);
const RATE = 16000;

const { values: args } = parseArgs({
  options: {
    out: { type: 'string' },
    train: { type: 'string', default: '4000' },
    eval: { type: 'string', default: '200' },
    seed: { type: 'string', default: '1' },
    jobs: { type: 'string', default: '2' },
  },
});
if (!args.out) {
  console.error('usage: node scripts/speech-corpus.mjs --out DIR [--train N] [--eval N] [--seed S] [--jobs J]');
  process.exit(2);
}
const counts = { train: Number(args.train), eval: Number(args.eval) };
const seed = BigInt(args.seed);
const jobs = Math.max(1, Number(args.jobs));

/** The variants espeak-ng has (their file names), split into training and reserved. */
function variants() {
  const listing = execFileSync('espeak-ng', ['--voices=variant'], { encoding: 'utf8' });
  const names = listing
    .split('\n')
    .slice(1)
    .map((line) => line.trim().split(/\s+/)[4])
    .filter((file) => file?.startsWith('!v/'))
    .map((file) => file.slice(3))
    .sort((a, b) => a.localeCompare(b, 'en', { sensitivity: 'base' }));
  const isTrain = (v) => (NUMBERED.test(v) ? TRAIN_NUMBERED.has(v) : /^[a-l]/i.test(v));
  return { train: names.filter(isTrain), reserved: names.filter((v) => !isTrain(v)) };
}

/** xorshift128+ seeded by splitmix64: uniform doubles, integers, normals. */
function generator(...keys) {
  let x = seed;
  for (const k of keys) x = (x * 0x9e3779b97f4a7c15n + BigInt(k)) & 0xffffffffffffffffn;
  const splitmix = () => {
    x = (x + 0x9e3779b97f4a7c15n) & 0xffffffffffffffffn;
    let z = x;
    z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & 0xffffffffffffffffn;
    z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & 0xffffffffffffffffn;
    return z ^ (z >> 31n);
  };
  let s0 = splitmix();
  let s1 = splitmix();
  const next = () => {
    let a = s0;
    const b = s1;
    s0 = b;
    a = (a ^ (a << 23n)) & 0xffffffffffffffffn;
    s1 = a ^ b ^ (a >> 17n) ^ (b >> 26n);
    return (s1 + b) & 0xffffffffffffffffn;
  };
  const uniform = () => Number(next() >> 11n) / 2 ** 53;
  return {
    uniform,
    range: (lo, hi) => lo + (hi - lo) * uniform(),
    int: (lo, hi) => lo + Math.floor(uniform() * (hi - lo + 1)),
    pick: (items) => items[Math.floor(uniform() * items.length)],
    normal: () => Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform()),
  };
}

/** The settings of one utterance of `group` (a split name), drawn from its own generator. */
function plan(group, index, voices) {
  const r = generator(['train', 'eval-language', 'eval-both', 'eval-variant'].indexOf(group), index);
  const text = Array.from({ length: r.int(3, 8) }, () => String(r.int(0, 9))).join(' ');
  const isTrain = group === 'train';
  let voice;
  if (isTrain) voice = `${r.pick(TRAIN_LANGUAGES)}+${r.pick(voices.train)}`;
  else if (group === 'eval-language') voice = r.pick(EVAL_LANGUAGES);
  else if (group === 'eval-both') voice = `${r.pick(EVAL_LANGUAGES)}+${r.pick(voices.reserved)}`;
  else voice = `${r.pick(TRAIN_LANGUAGES)}+${r.pick(voices.reserved)}`;
  return {
    text,
    voice,
    wpm: isTrain ? r.int(120, 220) : r.int(140, 200),
    pitch: isTrain ? r.int(20, 80) : 50,
    tempo: isTrain ? r.range(0.9, 1.1) : 1,
    gainDb: -r.range(0, 18),
    snrDb: isTrain ? (r.uniform() < 0.25 ? null : r.range(10, 40)) : 20,
    noiseSeed: r.int(1, 2 ** 31),
  };
}

/** Runs `cmd` with `input` piped in, resolving to its stdout bytes. */
function run(cmd, argv, input) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, argv, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out = [];
    const err = [];
    child.stdout.on('data', (d) => out.push(d));
    child.stderr.on('data', (d) => err.push(d));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve(Buffer.concat(out));
      else reject(new Error(`${cmd} ${argv.join(' ')} exited ${code}: ${Buffer.concat(err).toString()}`));
    });
    child.stdin.end(input ?? null);
  });
}

/** A 16-bit mono WAV file of `samples` (floats in [-1, 1]). */
function wavBytes(samples) {
  const data = Buffer.alloc(samples.length * 2);
  samples.forEach((v, i) => data.writeInt16LE(Math.max(-32768, Math.min(32767, Math.round(v * 32767))), i * 2));
  const h = Buffer.alloc(44);
  h.write('RIFF', 0);
  h.writeUInt32LE(36 + data.length, 4);
  h.write('WAVEfmt ', 8);
  h.writeUInt32LE(16, 16);
  h.writeUInt16LE(1, 20);
  h.writeUInt16LE(1, 22);
  h.writeUInt32LE(RATE, 24);
  h.writeUInt32LE(RATE * 2, 28);
  h.writeUInt16LE(2, 32);
  h.writeUInt16LE(16, 34);
  h.write('data', 36);
  h.writeUInt32LE(data.length, 40);
  return Buffer.concat([h, data]);
}

/** Speaks one planned utterance and returns its WAV bytes. */
async function synthesise(p) {
  const speech = await run('espeak-ng', ['-v', p.voice, '-s', String(p.wpm), '-p', String(p.pitch), '--stdout', p.text]);
  // sox: to 16 kHz mono, tempo change, peak normalised to -3 dBFS; no dither (deterministic).
  const effects = p.tempo === 1 ? [] : ['tempo', '-s', p.tempo.toFixed(4)];
  const raw = await run(
    'sox',
    ['-D', '-t', 'wav', '-', '-t', 'raw', '-e', 'floating-point', '-b', '32', '-r', String(RATE), '-c', '1', '-', ...effects, 'gain', '-n', '-3'],
    speech,
  );
  const samples = new Float32Array(raw.buffer, raw.byteOffset, raw.length / 4).slice();
  const gain = 10 ** (p.gainDb / 20);
  let power = 0;
  for (let i = 0; i < samples.length; i++) {
    samples[i] *= gain;
    power += samples[i] * samples[i];
  }
  power /= Math.max(1, samples.length);
  if (p.snrDb !== null) {
    const sigma = Math.sqrt(power / 10 ** (p.snrDb / 10));
    const noise = generator(0xa0d10, p.noiseSeed);
    for (let i = 0; i < samples.length; i++) samples[i] += sigma * noise.normal();
  }
  return wavBytes(samples);
}

async function main() {
  const started = Date.now();
  const voices = variants();
  mkdirSync(args.out, { recursive: true });
  const groups = [
    ['train', counts.train],
    ['eval-language', counts.eval],
    ['eval-both', counts.eval],
    ['eval-variant', counts.eval],
  ];
  const summary = {
    seed: Number(seed),
    trainLanguages: TRAIN_LANGUAGES,
    evalLanguages: EVAL_LANGUAGES,
    trainVariants: voices.train,
    reservedVariants: voices.reserved,
    groups: {},
  };
  for (const [group, n] of groups) {
    mkdirSync(join(args.out, group), { recursive: true });
    const lines = new Array(n);
    const details = new Array(n);
    const used = new Map();
    let next = 0;
    const worker = async () => {
      while (next < n) {
        const i = next++;
        const p = plan(group, i, voices);
        const file = `${group}/${String(i).padStart(6, '0')}.wav`;
        writeFileSync(join(args.out, file), await synthesise(p));
        lines[i] = JSON.stringify({ audio: file, text: p.text });
        details[i] = JSON.stringify({ audio: file, ...p });
        used.set(p.voice, (used.get(p.voice) ?? 0) + 1);
      }
    };
    await Promise.all(Array.from({ length: jobs }, worker));
    writeFileSync(join(args.out, `${group}.jsonl`), lines.join('\n') + '\n');
    writeFileSync(join(args.out, `${group}.details.jsonl`), details.join('\n') + '\n');
    summary.groups[group] = { utterances: n, voices: Object.fromEntries([...used].sort()) };
    console.error(`${group}: ${n} utterances, ${used.size} voices, ${((Date.now() - started) / 1000).toFixed(1)} s so far`);
  }
  summary.seconds = (Date.now() - started) / 1000;
  writeFileSync(join(args.out, 'voices.json'), JSON.stringify(summary, null, 2) + '\n');
  console.error(`done in ${summary.seconds.toFixed(1)} s`);
}

await main();
