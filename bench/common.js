'use strict';
// Shared pieces of the benchmark scripts: the standard configurations of SPEC.md, statistics,
// the JSON record shape, output to $PEERS_OUT/results.jsonl, and a tiny argument parser.
// Plain CommonJS on purpose: the benchmarks run `node bench/…` straight, without a build step.

const fs = require('fs');
const path = require('path');

/** @typedef {'lstm' | 'gru' | 'rnn'} Cell */
/** @typedef {{ cell: Cell, V: number, E: number, H: number, L: number }} Architecture */
/** @typedef {Architecture & { T: number, B: number }} TrainConfig */
/** @typedef {Architecture & { rows: number, metric: string, unit: string }} GenConfig */
/**
 * One measurement in SPEC.md's JSON record shape; implementations add their own fields.
 * @typedef {{
 *   peer: string, variant?: string, config: string, threads: number, metric: string, unit: string,
 *   median: number, min: number, max: number, n: number, run_id?: string, round?: number,
 *   step_ms_median?: number, achieved_gflops?: number, quick?: boolean, precision?: string,
 *   [field: string]: unknown,
 * }} BenchRecord
 */
/** @typedef {{ median: number, min: number, max: number, n: number }} Stats */
/** One option of {@link parseArgs}: its default (whose type is the option's) and whether it is a bare flag. */
/** @typedef {{ default: string | number | boolean, flag?: boolean }} OptionSpec */
/**
 * The parsed options of a spec: each the type of its default.
 * @template {Record<string, OptionSpec>} S
 * @typedef {{ [K in keyof S]: S[K]['default'] extends number ? number : S[K]['default'] extends boolean ? boolean : string }} ParsedArgs
 */
/**
 * A row of {@link pairedRatios}.
 * @typedef {{
 *   config: string, threads: number, metric: string, unit: string, peer: string, variant: string | undefined,
 *   rnnkit: number, value: number, ratio: number, faster: number, lo: number, hi: number, pairs: number,
 * }} RatioRow
 */

// SPEC.md "standard configurations". Keep the ids exactly as SPEC.md spells them: records of
// every implementation are joined on (config, threads, metric).
/** @type {Record<string, TrainConfig>} */
const TRAIN_CONFIGS = {
  'TRAIN-LSTM-S': { cell: 'lstm', V: 96, E: 64, H: 256, L: 1, T: 64, B: 32 },
  'TRAIN-GRU-S': { cell: 'gru', V: 96, E: 64, H: 256, L: 1, T: 64, B: 32 },
  'TRAIN-RNN-S': { cell: 'rnn', V: 96, E: 64, H: 256, L: 1, T: 64, B: 32 },
  'TRAIN-LSTM-M': { cell: 'lstm', V: 96, E: 128, H: 512, L: 2, T: 128, B: 64 },
};
/** @type {Architecture} */
const GEN = { cell: 'lstm', V: 96, E: 64, H: 256, L: 2 };
/** @type {Record<string, GenConfig>} */
const GEN_CONFIGS = {
  'GEN-LSTM-b1': { ...GEN, rows: 1, metric: 'us_per_token', unit: 'us/token' },
  'GEN-LSTM-b64': { ...GEN, rows: 64, metric: 'tokens_per_s', unit: 'tok/s' },
};
const ALL_CONFIGS = [...Object.keys(TRAIN_CONFIGS), ...Object.keys(GEN_CONFIGS)];
const LR = 2e-3;

// Step counts. Full: SPEC.md's minimums. Quick: enough to exercise every code path in CI; its
// numbers are not benchmarks (too few samples, no steady state).
const STEPS = {
  full: { trainWarmup: 3, trainSteps: 20, genWarmup: 50, b1Steps: 2000, b64Steps: 300 },
  quick: { trainWarmup: 1, trainSteps: 3, genWarmup: 5, b1Steps: 50, b64Steps: 10 },
};

/**
 * SPEC.md's FLOP model: forward = Σ_layers 2·G·H·(in+H) + 2·H·V; training = 3 × forward.
 * @param {Architecture} c
 */
function forwardFlopPerToken(c) {
  const G = { lstm: 4, gru: 3, rnn: 1 }[c.cell];
  let f = 0;
  for (let l = 0; l < c.L; l++) f += 2 * G * c.H * ((l === 0 ? c.E : c.H) + c.H);
  return f + 2 * c.H * c.V;
}

/**
 * @param {ArrayLike<number>} samples
 * @returns {Stats}
 */
function stats(samples) {
  const s = Float64Array.from(samples).sort();
  const n = s.length;
  const median = n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
  return { median, min: s[0], max: s[n - 1], n };
}

/**
 * Expands a `--configs` list: exact ids, `GEN-LSTM` for both batch sizes, `TRAIN` / `GEN` for
 * a family, `all`. Unknown names are an error (a typo must not silently measure nothing).
 * @param {string} list
 * @returns {string[]}
 */
function parseConfigs(list) {
  /** @type {string[]} */
  const out = [];
  for (const name of String(list)
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const upper = name.toUpperCase();
    let matched;
    if (upper === 'ALL') matched = ALL_CONFIGS;
    else if (upper === 'TRAIN') matched = Object.keys(TRAIN_CONFIGS);
    else if (upper === 'GEN' || upper === 'GEN-LSTM') matched = Object.keys(GEN_CONFIGS);
    else matched = ALL_CONFIGS.filter((c) => c.toUpperCase() === upper);
    if (!matched.length) throw new Error(`unknown config "${name}" (known: ${ALL_CONFIGS.join(', ')}, GEN-LSTM, TRAIN, GEN, all)`);
    for (const c of matched) if (!out.includes(c)) out.push(c);
  }
  return out;
}

/**
 * @param {string} list
 * @returns {number[]}
 */
function parseThreads(list) {
  const t = String(list)
    .split(',')
    .map((s) => Number(s.trim()));
  if (!t.length || t.some((n) => !Number.isInteger(n) || n < 1)) throw new Error(`--threads: expected a list of integers >= 1, got "${list}"`);
  return t;
}

/**
 * `--name value`, `--name=value` and bare `--flag` (true). Only the names in `spec` are allowed,
 * so a misspelt option stops the run instead of being ignored.
 * @template {Record<string, OptionSpec>} S
 * @param {string[]} argv
 * @param {S} spec
 * @returns {ParsedArgs<S>}
 */
function parseArgs(argv, spec) {
  /** @type {Record<string, string | number | boolean>} */
  const args = {};
  for (const [k, v] of Object.entries(spec)) args[k] = v.default;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) throw new Error(`unexpected argument "${a}" (see --help)`);
    const eq = a.indexOf('=');
    const key = (eq >= 0 ? a.slice(2, eq) : a.slice(2)).replace(/-([a-z])/g, (_, c) => c.toUpperCase());
    if (!(key in spec)) throw new Error(`unknown option "${a}" (see --help)`);
    if (spec[key].flag) {
      args[key] = eq >= 0 ? a.slice(eq + 1) !== 'false' : true;
    } else {
      const val = eq >= 0 ? a.slice(eq + 1) : argv[++i];
      if (val === undefined) throw new Error(`option "${a}" needs a value`);
      args[key] = typeof spec[key].default === 'number' ? Number(val) : val;
    }
  }
  return /** @type {ParsedArgs<S>} */ (args);
}

/**
 * Appends records to `$PEERS_OUT/results.jsonl` (SPEC.md: the file every peer writes).
 * @param {readonly object[]} records
 * @param {string | undefined} outDir
 */
function appendResults(records, outDir) {
  if (!outDir || !records.length) return;
  fs.mkdirSync(outDir, { recursive: true });
  fs.appendFileSync(path.join(outDir, 'results.jsonl'), records.map((r) => JSON.stringify(r) + '\n').join(''));
}

/**
 * @param {number | undefined | null} v
 * @param {string} [unit]
 */
function fmt(v, unit) {
  if (v === undefined || v === null || Number.isNaN(v)) return '–';
  if (/tok\/s/.test(unit || '')) return Math.round(v).toLocaleString('en-US');
  if (Math.abs(v) >= 100) return v.toFixed(0);
  if (Math.abs(v) >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

/**
 * Whether a larger value of this metric is better (throughput) or worse (latency, memory).
 * @param {string} metric
 */
function higherIsBetter(metric) {
  return !/us_per|rss|_ms/.test(metric);
}

/**
 * rnnkit / peer ratios of records from bench/peers.js: for each peer record, rnnkit's record of
 * the same run, round, config, threads and metric (measured seconds before it, under the same
 * machine load); the median of those paired ratios, and their range as the visible noise.
 * `faster` turns the ratio so that > 1 means rnnkit is better, for throughput and latency alike.
 * @param {readonly BenchRecord[]} records
 * @returns {RatioRow[]}
 */
function pairedRatios(records) {
  /** @type {Map<string, BenchRecord[]>} */
  const groups = new Map();
  for (const r of records) {
    if (r.peer === 'rnnkit' || r.median === undefined) continue;
    const k = [r.peer, r.variant, r.config, r.threads, r.metric].join('|');
    const group = groups.get(k) ?? [];
    group.push(r);
    groups.set(k, group);
  }
  /** @type {RatioRow[]} */
  const out = [];
  for (const peerRecs of groups.values()) {
    const p0 = peerRecs[0];
    /** @type {(r: BenchRecord, pr: BenchRecord) => boolean} */
    const same = (r, pr) =>
      r.peer === 'rnnkit' && r.run_id === pr.run_id && r.round === pr.round && r.config === pr.config && r.threads === pr.threads && r.metric === pr.metric;
    const ratios = [];
    const mine = [];
    for (const pr of peerRecs) {
      const m = records.find((r) => same(r, pr));
      if (!m) continue;
      ratios.push(m.median / pr.median);
      mine.push(m.median);
    }
    if (!ratios.length) continue;
    const ratio = stats(ratios).median;
    out.push({
      config: p0.config,
      threads: p0.threads,
      metric: p0.metric,
      unit: p0.unit,
      peer: p0.peer,
      variant: p0.variant,
      rnnkit: stats(mine).median,
      value: stats(peerRecs.map((r) => r.median)).median,
      ratio,
      faster: higherIsBetter(p0.metric) ? ratio : 1 / ratio,
      lo: Math.min(...ratios),
      hi: Math.max(...ratios),
      pairs: ratios.length,
    });
  }
  /** @type {(r: RatioRow) => number} */
  const order = (r) => ALL_CONFIGS.indexOf(r.config) * 100 + (r.metric === 'peak_rss_mb' ? 50 : 0) + r.threads;
  return out.sort((a, b) => order(a) - order(b));
}

/** @param {readonly RatioRow[]} rows */
function ratioTable(rows) {
  const lines = [
    '| config | threads | unit | rnnkit | peer | peer value | rnnkit / peer | rnnkit better (×) | paired ratios min – max (pairs) |',
    '|---|---|---|---|---|---|---|---|---|',
  ];
  for (const r of rows) {
    const unit = r.metric === 'peak_rss_mb' ? 'peak RSS MiB' : r.unit;
    lines.push(
      `| ${r.config} | ${r.threads} | ${unit} | ${fmt(r.rnnkit, r.unit)} | ${r.variant} | ${fmt(r.value, r.unit)} | ${r.ratio.toFixed(3)} | ${r.faster.toFixed(2)} | ${r.lo.toFixed(3)} – ${r.hi.toFixed(3)} (${r.pairs}) |`,
    );
  }
  return lines.join('\n');
}

/**
 * The message of a thrown value (an Error's message, anything else as a string).
 * @param {unknown} e
 */
function messageOf(e) {
  return e instanceof Error && e.message ? e.message : String(e);
}

module.exports = {
  messageOf,
  pairedRatios,
  ratioTable,
  TRAIN_CONFIGS,
  GEN_CONFIGS,
  ALL_CONFIGS,
  LR,
  STEPS,
  forwardFlopPerToken,
  stats,
  parseConfigs,
  parseThreads,
  parseArgs,
  appendResults,
  fmt,
  higherIsBetter,
};
