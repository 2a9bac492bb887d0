'use strict';
// Server throughput: `rnnkit serve` in its own process, a load generator here, on loopback.
// For 1, 8 and 64 (and --streams) concurrent streams of --tokens tokens each it reports the
// aggregate tokens/s, and the p50/p99 gap between SSE events of one stream; then the engine's
// own batched generation rate (generateBatch of 64 prompts in this process) for comparison.
//
//   npm run build && node bench/serve.js [--model FILE] [--tokens 128] [--streams 1,8,64] [--json]
//
// Timings on a shared machine vary; compare runs made back to back.

const { spawn } = require('child_process');
const path = require('path');
const readline = require('readline');
const { parseArgs } = require('./common');

const args = parseArgs(process.argv.slice(2), {
  model: { default: path.join(__dirname, '../fixtures/models/pp_lstm.safetensors') },
  tokens: { default: 128 },
  streams: { default: '1,8,64' },
  json: { default: false, flag: true },
});

const PROMPTS = ['It is', 'Mr. Darcy', 'Jane', 'The ', 'Lady Catherine', 'Kitty', 'Netherfield', 'Lizzy'];

/**
 * Starts the server process; resolves with its base URL and the child.
 * @param {number} streams
 * @returns {Promise<{ url: string, child: import('child_process').ChildProcess }>}
 */
function startServer(streams) {
  const cli = path.join(__dirname, '../dist/cli/index.js');
  const child = spawn(
    process.execPath,
    [
      cli,
      'serve',
      args.model,
      '--port',
      '0',
      '--json',
      '--quiet',
      '--max-concurrent',
      String(streams),
      '--max-queue',
      String(streams),
      '--max-tokens',
      String(args.tokens),
    ],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
    readline.createInterface({ input: child.stdout }).once('line', (line) => resolve({ url: JSON.parse(line).url, child }));
  });
}

/**
 * One streaming completion; returns its tokens and the gaps (ms) between its events.
 * @param {string} url
 * @param {number} i
 * @returns {Promise<{ tokens: number, gaps: number[] }>}
 */
async function stream(url, i) {
  const res = await fetch(`${url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      prompt: PROMPTS[i % PROMPTS.length],
      max_tokens: args.tokens,
      temperature: 1,
      seed: i,
      stream: true,
      stream_options: { include_usage: true },
    }),
  });
  const gaps = [];
  let last = performance.now();
  let first = null;
  let raw = '';
  const decoder = new TextDecoder();
  if (!res.body) throw new Error(`stream ${i}: no body (status ${res.status})`);
  for await (const part of /** @type {AsyncIterable<Uint8Array>} */ (/** @type {unknown} */ (res.body))) {
    const now = performance.now();
    if (first === null) first = now;
    else gaps.push(now - last);
    last = now;
    raw += decoder.decode(part, { stream: true });
  }
  const usage = raw
    .split('\n\n')
    .filter((e) => e.startsWith('data: {'))
    .map((e) => JSON.parse(e.slice(6)))
    .find((e) => e.usage)?.usage;
  if (!usage || usage.completion_tokens !== args.tokens) throw new Error(`stream ${i}: incomplete answer: ${raw.slice(-200)}`);
  return { tokens: usage.completion_tokens, gaps };
}

/**
 * @param {number[]} sorted
 * @param {number} q
 */
function quantile(sorted, q) {
  return sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

/**
 * @param {string} url
 * @param {number} concurrency
 */
async function load(url, concurrency) {
  const rounds = Math.max(1, Math.ceil(64 / concurrency));
  // Warm-up: one round, not counted.
  await Promise.all(Array.from({ length: concurrency }, (_, i) => stream(url, i)));
  const t0 = performance.now();
  const results = [];
  for (let r = 0; r < rounds; r++) results.push(...(await Promise.all(Array.from({ length: concurrency }, (_, i) => stream(url, r * concurrency + i)))));
  const seconds = (performance.now() - t0) / 1000;
  const tokens = results.reduce((s, r) => s + r.tokens, 0);
  const gaps = results.flatMap((r) => r.gaps).sort((a, b) => a - b);
  return { concurrency, tokens_per_s: Math.round(tokens / seconds), gap_p50_ms: +quantile(gaps, 0.5).toFixed(2), gap_p99_ms: +quantile(gaps, 0.99).toFixed(2) };
}

async function engineRate() {
  const { loadLanguageModel } = require('../dist/index.js');
  const model = await loadLanguageModel(args.model);
  const prompts = Array.from({ length: 64 }, (_, i) => PROMPTS[i % PROMPTS.length]);
  await model.generateBatch(prompts, { maxTokens: 16, seed: 1 });
  const t0 = performance.now();
  await model.generateBatch(prompts, { maxTokens: args.tokens, seed: 1 });
  return Math.round((64 * args.tokens) / ((performance.now() - t0) / 1000));
}

async function main() {
  const levels = String(args.streams).split(',').map(Number);
  const rows = [];
  const { url, child } = await startServer(Math.max(...levels));
  try {
    for (const c of levels) rows.push(await load(url, c));
  } finally {
    child.kill('SIGINT');
  }
  const engine = await engineRate();
  if (args.json) {
    console.log(JSON.stringify({ model: path.basename(args.model), tokens: args.tokens, engine_batch64_tokens_per_s: engine, rows }));
    return;
  }
  for (const r of rows) {
    console.log(
      `${String(r.concurrency).padStart(3)} streams: ${String(r.tokens_per_s).padStart(6)} tok/s  event gap p50 ${r.gap_p50_ms} ms  p99 ${r.gap_p99_ms} ms`,
    );
  }
  console.log(`engine (generateBatch, 64 prompts): ${engine} tok/s`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
