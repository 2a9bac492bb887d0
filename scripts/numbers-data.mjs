// The rules of the numbers task (data/numbers-train.jsonl, data/README.md): a number from 0 to
// 999,999,999 in English words (`num2en`: the words are the target; `en2num`: the source, with or
// without "and"), in Chinese numerals (`zh2num`) and in digits. This script checks that the rules
// reproduce every pair of a pair file, and writes held-out pairs for numbers absent from it.
//
//   node scripts/numbers-data.mjs verify [data/numbers-train.jsonl]
//   node scripts/numbers-data.mjs test [--per-task 1000] [--seed 2026] [--exclude data/numbers-train.jsonl] [--out data/numbers-test.jsonl]
//
// `verify` exits 1 naming the first pairs the rules do not reproduce. `test` draws numbers
// log-uniformly (as the training file's were), skips every number the excluded file holds in any
// direction and every number drawn before, and writes `--per-task` pairs per direction, one JSON
// object a line (`source`, `target`, `task`), in a seeded order.
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const ONES = [
  'zero',
  'one',
  'two',
  'three',
  'four',
  'five',
  'six',
  'seven',
  'eight',
  'nine',
  'ten',
  'eleven',
  'twelve',
  'thirteen',
  'fourteen',
  'fifteen',
  'sixteen',
  'seventeen',
  'eighteen',
  'nineteen',
];
const TENS = ['', '', 'twenty', 'thirty', 'forty', 'fifty', 'sixty', 'seventy', 'eighty', 'ninety'];
const SCALES = ['', 'thousand', 'million'];
const ZH_DIGITS = '零一二三四五六七八九';
const ZH_UNITS = ['', '十', '百', '千'];
const MAX = 999_999_999;
export const TASKS = ['en2num', 'zh2num', 'num2en'];

/** 1–99 in words: `forty-two`, hyphenated tens. */
function belowHundred(n) {
  return n < 20 ? ONES[n] : TENS[Math.floor(n / 10)] + (n % 10 ? `-${ONES[n % 10]}` : '');
}

/** 1–999 in words; `and` between the hundreds and the rest of the group (British usage). */
function belowThousand(n, and) {
  const h = Math.floor(n / 100);
  const rest = n % 100;
  if (h === 0) return belowHundred(rest);
  return `${ONES[h]} hundred` + (rest ? `${and ? ' and' : ''} ${belowHundred(rest)}` : '');
}

/** `n` in English words: groups of three digits with `million`/`thousand`, zero groups left out. */
export function english(n, and = false) {
  if (n === 0) return 'zero';
  const words = [];
  for (let scale = 2; scale >= 0; scale--) {
    const group = Math.floor(n / 1000 ** scale) % 1000;
    if (group) words.push(belowThousand(group, and) + (SCALES[scale] ? ` ${SCALES[scale]}` : ''));
  }
  return words.join(' ');
}

/** One group of four digits (1–9999) in Chinese numerals: one 零 for each run of inner zeros. */
function zhGroup(n) {
  let s = '';
  let zero = false;
  for (let p = 3; p >= 0; p--) {
    const d = Math.floor(n / 10 ** p) % 10;
    if (d === 0) {
      zero = s !== '';
      continue;
    }
    if (zero) s += '零';
    zero = false;
    s += ZH_DIGITS[d] + ZH_UNITS[p];
  }
  return s;
}

/**
 * `n` in Chinese numerals: groups of four digits with 亿 and 万; a 零 where a group (or the
 * zeros between two groups) leaves a gap before a non-zero digit; a leading 一十 read as 十 (十五, 十六万).
 */
export function chinese(n) {
  if (n === 0) return '零';
  const groups = [Math.floor(n / 1e8), Math.floor(n / 1e4) % 1e4, n % 1e4];
  const units = ['亿', '万', ''];
  let s = '';
  let gap = false;
  groups.forEach((g, i) => {
    if (g === 0) {
      gap = s !== '';
      return;
    }
    if (s !== '' && (gap || g < 1000)) s += '零';
    gap = false;
    s += zhGroup(g) + units[i];
  });
  return s.startsWith('一十') ? s.slice(1) : s;
}

/** The number a pair is about (its digit side), or undefined when that side is not a number in range. */
export function pairNumber(pair) {
  const digits = pair.task === 'num2en' ? pair.source : pair.target;
  if (!/^(0|[1-9][0-9]*)$/.test(digits)) return undefined;
  const n = Number(digits);
  return n <= MAX ? n : undefined;
}

/** Whether the rules reproduce `pair`: the words (or numerals) of its number, either `and` form for en2num. */
export function reproduces(pair) {
  const n = pairNumber(pair);
  if (n === undefined) return false;
  switch (pair.task) {
    case 'num2en':
      return pair.target === english(n);
    case 'en2num':
      return pair.source === english(n) || pair.source === english(n, true);
    case 'zh2num':
      return pair.source === chinese(n);
    default:
      return false;
  }
}

/** The pairs of a JSONL file. */
export function readPairs(path) {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line));
}

/** A seeded generator of floats in [0, 1) (mulberry32). */
function random(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * `perTask` pairs per direction for distinct numbers none of which is in `exclude`, drawn
 * log-uniformly over 0–999,999,999; en2num sources use "and" for half the numbers.
 */
export function heldOutPairs({ perTask = 1000, seed = 2026, exclude = new Set() } = {}) {
  const next = random(seed);
  const used = new Set(exclude);
  const pairs = [];
  for (const task of TASKS) {
    for (let k = 0; k < perTask;) {
      const n = Math.min(MAX, Math.floor(Math.exp(next() * Math.log(MAX + 2))) - 1);
      const and = next() < 0.5;
      if (used.has(n)) continue;
      used.add(n);
      k++;
      const digits = String(n);
      if (task === 'num2en') pairs.push({ source: digits, target: english(n), task });
      else pairs.push({ source: task === 'en2num' ? english(n, and) : chinese(n), target: digits, task });
    }
  }
  // One seeded order, so that a file's first lines hold every direction.
  for (let i = pairs.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [pairs[i], pairs[j]] = [pairs[j], pairs[i]];
  }
  return pairs;
}

function main(argv) {
  const [command, ...rest] = argv;
  const flag = (name, fallback) => {
    const i = rest.indexOf(name);
    return i < 0 ? fallback : rest.splice(i, 2)[1];
  };
  const repo = (p) => fileURLToPath(new URL(`../${p}`, import.meta.url));
  if (command === 'verify') {
    const path = rest[0] ?? repo('data/numbers-train.jsonl');
    const pairs = readPairs(path);
    const bad = pairs.map((p, i) => [p, i + 1]).filter(([p]) => !reproduces(p));
    const counts = Object.fromEntries(TASKS.map((t) => [t, pairs.filter((p) => p.task === t).length]));
    console.log(JSON.stringify({ file: path, pairs: pairs.length, ...counts, notReproduced: bad.length }));
    for (const [p, line] of bad.slice(0, 10)) console.error(`line ${line}: ${JSON.stringify(p)}`);
    return bad.length === 0 ? 0 : 1;
  }
  if (command === 'test') {
    const perTask = Number(flag('--per-task', 1000));
    const seed = Number(flag('--seed', 2026));
    const out = flag('--out', repo('data/numbers-test.jsonl'));
    const exclude = new Set(readPairs(flag('--exclude', repo('data/numbers-train.jsonl'))).map(pairNumber));
    const pairs = heldOutPairs({ perTask, seed, exclude });
    // Written atomically: a temporary file renamed over the target.
    writeFileSync(`${out}.tmp`, pairs.map((p) => JSON.stringify(p)).join('\n') + '\n');
    renameSync(`${out}.tmp`, out);
    console.log(JSON.stringify({ file: out, pairs: pairs.length, perTask, seed, excluded: exclude.size }));
    return 0;
  }
  console.error('usage: node scripts/numbers-data.mjs verify [pairs.jsonl] | test [--per-task N] [--seed S] [--exclude pairs.jsonl] [--out file]');
  return 2;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) process.exitCode = main(process.argv.slice(2));
