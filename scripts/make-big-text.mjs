#!/usr/bin/env node
// Writes a large seeded English-like text (ASCII words, punctuation, line breaks) for memory
// benchmarks of streamed corpora: the same seed and size always give the same bytes.
//
//   node scripts/make-big-text.mjs OUT [--bytes N] [--seed S]      (default 1 GiB, seed 1)
//
// The text is generated and written in 4 MiB blocks, so the generator itself needs little memory.
import * as fs from 'node:fs';

const WORDS = (
  'the of and to a in that it is was he for on are as with his they at be this have from or one had by word but not what ' +
  'all were we when your can said there use an each which she do how their if will up other about out many then them these ' +
  'so some her would make like him into time has look two more write go see number no way could people my than first water ' +
  'been call who oil its now find long down day did get come made may part over new sound take only little work know place ' +
  'year live me back give most very after thing our just name good sentence man think say great where help through much ' +
  'before line right too mean old any same tell boy follow came want show also around form three small set put end does'
).split(' ');

function usage(message) {
  if (message) process.stderr.write(`make-big-text: ${message}\n`);
  process.stderr.write('usage: node scripts/make-big-text.mjs OUT [--bytes N] [--seed S]\n');
  process.exit(2);
}

const args = process.argv.slice(2);
let out;
let bytes = 1 << 30;
let seed = 1;
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--bytes') bytes = Number(args[++i]);
  else if (args[i] === '--seed') seed = Number(args[++i]);
  else if (args[i] === '--help') usage();
  else if (out === undefined) out = args[i];
  else usage(`unexpected argument ${JSON.stringify(args[i])}`);
}
if (out === undefined) usage('missing OUT');
if (!Number.isSafeInteger(bytes) || bytes < 1) usage(`--bytes: expected a positive integer, got ${bytes}`);
if (!Number.isInteger(seed) || seed < 0 || seed >= 2 ** 32) usage(`--seed: expected an integer in [0, 2^32), got ${seed}`);

// mulberry32: a small seeded generator, enough for text that is not all one word.
let state = seed >>> 0;
function random() {
  state = (state + 0x6d2b79f5) >>> 0;
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}

function sentence() {
  const n = 4 + Math.floor(random() * 12);
  const words = [];
  for (let i = 0; i < n; i++) words.push(WORDS[Math.floor(random() * WORDS.length)]);
  words[0] = words[0][0].toUpperCase() + words[0].slice(1);
  const end = random() < 0.1 ? '?' : random() < 0.1 ? '!' : '.';
  return words.join(random() < 0.05 ? ', ' : ' ') + end;
}

const fd = fs.openSync(out, 'w');
const BLOCK = 4 << 20;
let written = 0;
try {
  while (written < bytes) {
    let block = '';
    while (block.length < BLOCK) block += sentence() + (random() < 0.15 ? '\n\n' : random() < 0.3 ? '\n' : ' ');
    const buf = Buffer.from(block, 'latin1').subarray(0, Math.min(block.length, bytes - written));
    fs.writeSync(fd, buf);
    written += buf.length;
  }
} finally {
  fs.closeSync(fd);
}
process.stderr.write(`make-big-text: wrote ${written} bytes to ${out} (seed ${seed})\n`);
