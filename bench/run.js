#!/usr/bin/env node
'use strict';
// rnnkit's own benchmark: the standard configurations of SPEC.md through the PUBLIC API
// (`require('..')` = dist/index.js, what a user gets), at 1 and 2 threads, with peak memory.
//
// Every (config, threads) pair runs in a fresh child process of this same script (`--child`):
// peak RSS is a per-process high-water mark, so only a fresh process gives a per-config figure,
// and the thread count is fixed by the environment before the engine's pool starts.

const { spawn, execFileSync } = require('child_process');
const path = require('path');
const C = require('./common');

/** @typedef {import('./common').BenchRecord} BenchRecord */
/** @typedef {typeof C.STEPS.full} Steps */
/** The public API as a user gets it (`require('..')` = dist/index.js). */
/** @typedef {typeof import('..')} Rnnkit */

const HELP = `Usage: npm run bench -- [options]      (or: node bench/run.js [options])

Runs SPEC.md's standard configurations on rnnkit through its public API (dist/index.js;
run \`npm run build\` first). Each config x thread count runs in its own child process.

Options:
  --configs LIST   comma list of ${C.ALL_CONFIGS.join(', ')}
                   or GEN-LSTM (both batch sizes), TRAIN, GEN, all   (default: all)
  --threads LIST   thread counts, set as RNNKIT_THREADS in the
                   child's environment                                (default: 1,2)
  --precision LIST weight precisions of the GEN configs, each loaded by
                   loadLanguageModel(file, { precision }): f32, bf16,
                   int8; measured one after another for each config
                   and thread count (interleaved)                     (default: f32)
  --quick          few steps (CI smoke test; the numbers are not benchmarks)
  --json           one JSON record per line (SPEC.md shape) instead of the table
  --help           this text

Environment:
  PEERS_OUT        when set, records are appended to $PEERS_OUT/results.jsonl

Metrics: TRAIN-* training tokens/s = B*T / time of one model.trainStep (Adam lr 2e-3), median of
${C.STEPS.full.trainSteps} steps after ${C.STEPS.full.trainWarmup} warm-up; GEN-LSTM-b1 µs/token (feed 1 token,
argmax in JS, feed it back; median of ${C.STEPS.full.b1Steps}); GEN-LSTM-b64 tokens/s (64 rows per step,
median of ${C.STEPS.full.b64Steps}); peak_rss_mb = the child's process.resourceUsage().maxRSS.`;

// ------------------------------------------------------------------ child: one measurement

/**
 * xorshift32: a fixed pool of random token ids, the same on every run (SPEC: random ids).
 * @param {number} n
 * @param {number} V
 * @param {number} seed
 */
function randomIds(n, V, seed) {
  let x = seed >>> 0 || 1;
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x % V;
  }
  return out;
}

/**
 * The argmax of each of `rows` rows of `V` logits, written to `into`.
 * @param {Float32Array} logits
 * @param {number} rows
 * @param {number} V
 * @param {Int32Array} into
 */
function argmaxRows(logits, rows, V, into) {
  for (let r = 0, o = 0; r < rows; r++, o += V) {
    let best = 0;
    let bestV = logits[o];
    for (let v = 1; v < V; v++) {
      if (logits[o + v] > bestV) {
        bestV = logits[o + v];
        best = v;
      }
    }
    into[r] = best;
  }
}

/** @type {(t0: bigint) => number} */
const secondsSince = (t0) => Number(process.hrtime.bigint() - t0) / 1e9;

/**
 * @param {Rnnkit} rnnkit
 * @param {string} name
 * @param {Steps} steps
 */
function measureTrain(rnnkit, name, steps) {
  const c = C.TRAIN_CONFIGS[name];
  const model = rnnkit.createLanguageModel({ vocabSize: c.V, embedDim: c.E, hiddenSize: c.H, numLayers: c.L, cell: c.cell, seed: 1 });
  // A pool of 4 batches, [B, T] batch-first as trainStep takes them; targets random too (the
  // speed does not depend on what is learnt, and nothing is learnt from noise anyway).
  const pool = [];
  for (let i = 0; i < 4; i++) pool.push([randomIds(c.B * c.T, c.V, 11 + 2 * i), randomIds(c.B * c.T, c.V, 12 + 2 * i)]);
  const shape = { rows: c.B, steps: c.T };
  /** @type {import('..').TrainStepOptions} */
  const options = { optimizer: { type: 'adam', lr: C.LR } };
  const times = [];
  const losses = [];
  for (let i = 0; i < steps.trainWarmup + steps.trainSteps; i++) {
    const [x, y] = pool[i % pool.length];
    const t0 = process.hrtime.bigint();
    const r = model.trainStep(x, y, shape, options);
    const dt = secondsSince(t0);
    // A speed number from a diverged run would be meaningless: refuse it.
    if (!Number.isFinite(r.loss)) throw new Error(`${name}: loss is ${r.loss} at step ${i}`);
    losses.push(r.loss);
    if (i >= steps.trainWarmup) times.push(dt);
  }
  const tps = times.map((t) => (c.B * c.T) / t);
  const med = C.stats(tps).median;
  return {
    samples: tps,
    record: {
      metric: 'train_tokens_per_s',
      unit: 'tok/s',
      step_ms_median: C.stats(times).median * 1e3,
      achieved_gflops: (med * 3 * C.forwardFlopPerToken(c)) / 1e9,
      loss_first: losses[0],
      loss_last: losses[losses.length - 1],
    },
  };
}

/**
 * A GEN config's model at `precision`: created, and for a reduced precision saved and loaded
 * back with it (the way a user gets one).
 * @param {Rnnkit} rnnkit
 * @param {(typeof C.GEN_CONFIGS)[string]} c
 * @param {string} precision
 */
async function genModel(rnnkit, c, precision) {
  const model = rnnkit.createLanguageModel({ vocabSize: c.V, embedDim: c.E, hiddenSize: c.H, numLayers: c.L, cell: c.cell, seed: 1 });
  if (precision === 'f32') return model;
  const file = path.join(require('os').tmpdir(), `rnnkit-bench-${process.pid}.safetensors`);
  try {
    await model.save(file);
    return await rnnkit.loadLanguageModel(file, { precision: /** @type {import('..').Precision} */ (precision) });
  } finally {
    require('fs').rmSync(file, { force: true });
  }
}

/**
 * @param {Rnnkit} rnnkit
 * @param {string} name
 * @param {Steps} steps
 * @param {string} precision
 */
async function measureGen(rnnkit, name, steps, precision) {
  const c = C.GEN_CONFIGS[name];
  const model = await genModel(rnnkit, c, precision);
  const session = model.session({ rows: c.rows });
  const tokens = randomIds(c.rows, c.V, 7);
  const n = c.rows === 1 ? steps.b1Steps : steps.b64Steps;
  const times = [];
  for (let i = 0; i < steps.genWarmup + n; i++) {
    const t0 = process.hrtime.bigint();
    const logits = session.feed(tokens); // [rows, V]
    argmaxRows(logits, c.rows, c.V, tokens); // the host reads the logits: part of the step
    const dt = secondsSince(t0);
    if (i >= steps.genWarmup) times.push(dt);
  }
  const samples = c.rows === 1 ? times.map((t) => t * 1e6) : times.map((t) => c.rows / t);
  const record = { metric: c.metric, unit: c.unit, step_ms_median: C.stats(times).median * 1e3, precision };
  return { samples, record };
}

/**
 * @param {string} name
 * @param {boolean} quick
 * @param {string} precision
 */
async function child(name, quick, precision) {
  /** @type {Rnnkit} */
  const rnnkit = require('..');
  const steps = quick ? C.STEPS.quick : C.STEPS.full;
  const info = rnnkit.engineInfo();
  const threads = Number(process.env.RNNKIT_THREADS) || info.threads;
  const base = {
    peer: 'rnnkit',
    variant: `rnnkit ${require('../package.json').version}${precision === 'f32' ? '' : ` ${precision}`}`,
    config: name,
    threads,
  };
  const extra = {
    commit: process.env.RNNKIT_BENCH_COMMIT || undefined,
    engine_threads: info.threads,
    simd: info.simd.join(','),
    node: process.version,
    quick: quick || undefined,
  };
  const { samples, record } = name in C.TRAIN_CONFIGS ? measureTrain(rnnkit, name, steps) : await measureGen(rnnkit, name, steps, precision);
  const { metric, unit, ...details } = record;
  /** @type {BenchRecord[]} */
  const out = [{ ...base, metric, unit, ...C.stats(samples), ...details, ...extra }];
  // ru_maxrss of this process: everything above ran in it, nothing else did.
  const rss = process.resourceUsage().maxRSS / 1024;
  out.push({ ...base, metric: 'peak_rss_mb', unit: 'MiB', median: rss, min: rss, max: rss, n: 1, ...extra });
  for (const r of out) process.stdout.write(JSON.stringify(r) + '\n');
}

// ------------------------------------------------------------------ parent

function gitCommit() {
  try {
    const root = path.join(__dirname, '..');
    const sha = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: root, encoding: 'utf8' }).trim();
    return dirty ? `${sha}+dirty` : sha;
  } catch {
    return undefined; // not a git checkout (e.g. an installed package): the field is left out
  }
}

/** @type {string | undefined} */
let commitCache;

/**
 * Measures one config at one thread count in a fresh child process; resolves with its records
 * (the metric and peak_rss_mb). Used by peers.js too, so both run rnnkit the same way.
 * @param {string} config
 * @param {number} threads
 * @param {{ quick?: boolean, precision?: string }} [options]
 * @returns {Promise<BenchRecord[]>}
 */
function measureInChild(config, threads, { quick = false, precision = 'f32' } = {}) {
  if (commitCache === undefined) commitCache = gitCommit() || '';
  const env = { ...process.env, RNNKIT_THREADS: String(threads), RNNKIT_BENCH_COMMIT: commitCache };
  const args = [__filename, '--child', config, '--precision', precision, ...(quick ? ['--quick'] : [])];
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.on('error', reject);
    p.on('close', (code, signal) => {
      if (code !== 0) return reject(new Error(`${config} at ${threads} thread(s): child exited with ${signal || code}`));
      resolve(
        out
          .split('\n')
          .filter((l) => l.startsWith('{'))
          .map((l) => JSON.parse(l)),
      );
    });
  });
}

/** @param {readonly BenchRecord[]} records */
function printTable(records) {
  const key = (/** @type {BenchRecord} */ r) => `${r.config}|${r.threads}|${r.variant}`;
  const rss = new Map(records.filter((r) => r.metric === 'peak_rss_mb').map((r) => [key(r), r.median]));
  const lines = ['| config | threads | metric | median | min – max | n | peak RSS MiB | notes |', '|---|---|---|---|---|---|---|---|'];
  for (const r of records) {
    if (r.metric === 'peak_rss_mb') continue;
    const notes = [];
    if (r.step_ms_median !== undefined) notes.push(`step ${C.fmt(r.step_ms_median)} ms`);
    if (r.achieved_gflops !== undefined) notes.push(`${C.fmt(r.achieved_gflops)} GFLOP/s`);
    if (r.quick) notes.push('quick (not a benchmark)');
    const precision = r.precision && r.precision !== 'f32' ? ` (${r.precision})` : '';
    lines.push(
      `| ${r.config}${precision} | ${r.threads} | ${r.unit} | ${C.fmt(r.median, r.unit)} | ${C.fmt(r.min, r.unit)} – ${C.fmt(r.max, r.unit)} | ${r.n} | ${C.fmt(rss.get(key(r)))} | ${notes.join('; ')} |`,
    );
  }
  console.log(lines.join('\n'));
}

async function main() {
  const argv = process.argv.slice(2);
  if (argv[0] === '--child') return child(argv[1], argv.includes('--quick'), argv[argv.indexOf('--precision') + 1]);
  const args = C.parseArgs(argv, {
    configs: { default: 'all' },
    threads: { default: '1,2' },
    precision: { default: 'f32' },
    quick: { flag: true, default: false },
    json: { flag: true, default: false },
    help: { flag: true, default: false },
  });
  if (args.help) return console.log(HELP);
  const configs = C.parseConfigs(args.configs);
  const threads = C.parseThreads(args.threads);
  const records = [];
  let failed = 0;
  const precisions = String(args.precision)
    .split(',')
    .map((p) => p.trim());
  for (const config of configs) {
    for (const t of threads) {
      for (const precision of config in C.GEN_CONFIGS ? precisions : ['f32']) {
        if (!args.json) process.stderr.write(`rnnkit ${config} threads=${t} precision=${precision} …\n`);
        try {
          const recs = await measureInChild(config, t, { quick: args.quick, precision });
          records.push(...recs);
          if (args.json) for (const r of recs) console.log(JSON.stringify(r));
          C.appendResults(recs, process.env.PEERS_OUT);
        } catch (e) {
          failed++;
          console.error(C.messageOf(e));
        }
      }
    }
  }
  if (!args.json) printTable(records);
  if (failed) process.exitCode = 1;
}

if (require.main === module) {
  main().catch((e) => {
    console.error(e.message || e);
    process.exit(2);
  });
}

module.exports = { measureInChild };
