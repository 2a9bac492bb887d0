'use strict';
// Server throughput: `rnnkit serve` in its own process, a load generator here, on loopback.
// For 1, 8 and 64 (and --streams) concurrent streams of --tokens tokens each it reports the
// aggregate tokens/s, the p50/p99 gap between reads of one stream, tokens per read (how much
// the server's writes coalesced) and the cores each process kept busy; each round then measures
// the engine's own batched generation rate (generateBatch of 64 prompts in this process), and
// the server's rate is reported as a share of it (median over rounds of each round's ratio).
//
//   npm run build && node bench/serve.js [--model FILE] [--tokens 128] [--streams 1,8,64] [--rounds 3] [--json]
//   [--profile DIR]: the server writes a V8 CPU profile (node --cpu-prof) to DIR
//   [--server-threads N]: the server's engine threads (default: serve's, one fewer than the cores)
//   [--baseline CLI]: also serve with another build's dist/cli/index.js, measured in the same rounds
//
// Timings on a shared machine vary: the ratio of one round (server and engine measured back to
// back) is what to compare.

const { spawn } = require('child_process');
const fs = require('fs');
const http = require('http');
const path = require('path');
const readline = require('readline');
const { parseArgs } = require('./common');

const args = parseArgs(process.argv.slice(2), {
  model: { default: path.join(__dirname, '../fixtures/models/pp_lstm.safetensors') },
  tokens: { default: 128 },
  streams: { default: '1,8,64' },
  json: { default: false, flag: true },
  profile: { default: '' },
  rounds: { default: 3 },
  serverThreads: { default: 0 },
  baseline: { default: '' },
});

const PROMPTS = ['It is', 'Mr. Darcy', 'Jane', 'The ', 'Lady Catherine', 'Kitty', 'Netherfield', 'Lizzy'];

/**
 * Starts the server process; resolves with its base URL and the child.
 * @param {number} streams
 * @param {string} [cli] the CLI to run (another build of rnnkit, for --baseline)
 * @returns {Promise<{ url: string, child: import('child_process').ChildProcess }>}
 */
function startServer(streams, cli = path.join(__dirname, '../dist/cli/index.js')) {
  const child = spawn(
    process.execPath,
    [
      ...(args.profile ? ['--cpu-prof', '--cpu-prof-dir', args.profile] : []),
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
      '--max-connections-per-client',
      String(2 * streams),
      '--max-tokens',
      String(args.tokens),
    ],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
      // --server-threads N: the server's engine computes on N threads (RNNKIT_THREADS; 0: serve's
      // default, one fewer than the cores).
      env: args.serverThreads > 0 ? { ...process.env, RNNKIT_THREADS: String(args.serverThreads) } : process.env,
    },
  );
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
    readline.createInterface({ input: child.stdout }).once('line', (line) => resolve({ url: JSON.parse(line).url, child }));
  });
}

const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });

/**
 * One streaming completion over node:http (lighter than fetch, so the load generator takes less
 * of the machine from the server); returns its tokens and the gaps (ms) between its reads.
 * @param {string} url
 * @param {number} i
 * @returns {Promise<{ tokens: number, gaps: number[] }>}
 */
function stream(url, i) {
  const body = JSON.stringify({
    prompt: PROMPTS[i % PROMPTS.length],
    max_tokens: args.tokens,
    temperature: 1,
    seed: i,
    stream: true,
    stream_options: { include_usage: true },
  });
  return new Promise((resolve, reject) => {
    const req = http.request(
      `${url}/v1/completions`,
      { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
      (res) => {
        /** @type {number[]} */
        const gaps = [];
        let last = 0;
        let raw = '';
        res.setEncoding('utf8');
        res.on('data', (part) => {
          const now = performance.now();
          if (last !== 0) gaps.push(now - last);
          last = now;
          raw += part;
        });
        res.on('error', reject);
        res.on('end', () => {
          const usage = raw
            .split('\n\n')
            .filter((e) => e.startsWith('data: {'))
            .map((e) => JSON.parse(e.slice(6)))
            .find((e) => e.usage)?.usage;
          if (res.statusCode !== 200 || !usage || usage.completion_tokens !== args.tokens)
            reject(new Error(`stream ${i}: incomplete answer (status ${res.statusCode}): ${raw.slice(-200)}`));
          else resolve({ tokens: usage.completion_tokens, gaps });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * @param {number[]} sorted
 * @param {number} q
 */
function quantile(sorted, q) {
  return sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

/**
 * CPU seconds (user + system) a process has used so far, from /proc (Linux); 0 elsewhere.
 * @param {number} pid
 */
function cpuSeconds(pid) {
  try {
    const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}

/**
 * @param {string} url
 * @param {number} concurrency
 * @param {number} pid the server's
 */
async function load(url, concurrency, pid) {
  const rounds = Math.max(1, Math.ceil(64 / concurrency));
  // Warm-up: one round, not counted.
  await Promise.all(Array.from({ length: concurrency }, (_, i) => stream(url, i)));
  const t0 = performance.now();
  const cpu0 = { server: cpuSeconds(pid), client: cpuSeconds(process.pid) };
  const results = [];
  for (let r = 0; r < rounds; r++) results.push(...(await Promise.all(Array.from({ length: concurrency }, (_, i) => stream(url, r * concurrency + i)))));
  const seconds = (performance.now() - t0) / 1000;
  // Cores each process kept busy: what the server and this load generator cost the machine.
  const serverCores = +((cpuSeconds(pid) - cpu0.server) / seconds).toFixed(2);
  const clientCores = +((cpuSeconds(process.pid) - cpu0.client) / seconds).toFixed(2);
  const tokens = results.reduce((s, r) => s + r.tokens, 0);
  const gaps = results.flatMap((r) => r.gaps).sort((a, b) => a - b);
  // Tokens per read of the client: how much the server's writes coalesced.
  const tokensPerRead = +(tokens / (gaps.length + results.length)).toFixed(2);
  return {
    concurrency,
    tokens_per_s: Math.round(tokens / seconds),
    gap_p50_ms: +quantile(gaps, 0.5).toFixed(2),
    gap_p99_ms: +quantile(gaps, 0.99).toFixed(2),
    server_cores: serverCores,
    client_cores: clientCores,
    tokens_per_read: tokensPerRead,
  };
}

/** The engine alone: a model in this process, warmed up. */
async function engineModel() {
  const { loadLanguageModel } = require('../dist/index.js');
  const model = await loadLanguageModel(args.model);
  await model.generateBatch(
    Array.from({ length: 64 }, (_, i) => PROMPTS[i % PROMPTS.length]),
    { maxTokens: 16, seed: 1 },
  );
  return model;
}

/**
 * The engine's own batched generation rate: generateBatch of 64 prompts of --tokens tokens.
 * @param {import('../dist/index.js').LanguageModel} model
 */
async function engineRate(model) {
  const prompts = Array.from({ length: 64 }, (_, i) => PROMPTS[i % PROMPTS.length]);
  const t0 = performance.now();
  const cpu0 = cpuSeconds(process.pid);
  await model.generateBatch(prompts, { maxTokens: args.tokens, seed: 1 });
  const seconds = (performance.now() - t0) / 1000;
  return { tokens_per_s: Math.round((64 * args.tokens) / seconds), cores: +((cpuSeconds(process.pid) - cpu0) / seconds).toFixed(2) };
}

/** @param {number[]} v */
function median(v) {
  const s = [...v].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

async function main() {
  const levels = String(args.streams).split(',').map(Number);
  const model = await engineModel();
  /** @type {Array<{ name: string, url: string, child: import('child_process').ChildProcess, rows: any[][] }>} */
  const servers = [];
  /** @type {Array<{ tokens_per_s: number, cores: number }>} */
  const engine = [];
  try {
    servers.push({ name: 'server', ...(await startServer(Math.max(...levels))), rows: levels.map(() => []) });
    if (args.baseline) servers.push({ name: 'baseline', ...(await startServer(Math.max(...levels), path.resolve(args.baseline))), rows: levels.map(() => []) });
    // Rounds interleave the servers and the engine, so all see the same machine (shared, busy).
    for (let r = 0; r < args.rounds; r++) {
      for (const s of servers) for (const [i, c] of levels.entries()) s.rows[i].push(await load(s.url, c, /** @type {number} */ (s.child.pid)));
      engine.push(await engineRate(model));
    }
  } finally {
    for (const s of servers) s.child.kill('SIGINT');
  }
  const pick = (/** @type {any[]} */ rs, /** @type {string} */ k) => +median(rs.map((r) => r[k])).toFixed(2);
  const summarize = (/** @type {any[][]} */ rows) =>
    levels.map((c, i) => ({
      concurrency: c,
      tokens_per_s: Math.round(pick(rows[i], 'tokens_per_s')),
      gap_p50_ms: pick(rows[i], 'gap_p50_ms'),
      gap_p99_ms: pick(rows[i], 'gap_p99_ms'),
      tokens_per_read: pick(rows[i], 'tokens_per_read'),
      server_cores: pick(rows[i], 'server_cores'),
      client_cores: pick(rows[i], 'client_cores'),
      // Each round's server rate over the engine rate measured in the same round.
      ratio_to_engine: +median(rows[i].map((row, r) => row.tokens_per_s / engine[r].tokens_per_s)).toFixed(3),
    }));
  const engineMedian = { tokens_per_s: Math.round(pick(engine, 'tokens_per_s')), cores: pick(engine, 'cores') };
  const load1 = Number(fs.readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
  const results = servers.map((s) => ({ name: s.name, rows: summarize(s.rows), runs: s.rows }));
  if (args.json) {
    console.log(
      JSON.stringify({
        model: path.basename(args.model),
        tokens: args.tokens,
        rounds: args.rounds,
        load_average_1m: load1,
        engine: engineMedian,
        engine_runs: engine,
        servers: results,
      }),
    );
    return;
  }
  console.log(`medians of ${args.rounds} rounds (load average ${load1} at the end):`);
  for (const s of results) {
    for (const r of s.rows) {
      console.log(
        `${s.name.padEnd(8)} ${String(r.concurrency).padStart(3)} streams: ${String(r.tokens_per_s).padStart(6)} tok/s (${(100 * r.ratio_to_engine).toFixed(1)} % of the engine)  gap p50 ${r.gap_p50_ms} ms  p99 ${r.gap_p99_ms} ms  tokens/read ${r.tokens_per_read}  cores: server ${r.server_cores}, load generator ${r.client_cores}`,
      );
    }
  }
  console.log(`engine (generateBatch, 64 prompts): ${engineMedian.tokens_per_s} tok/s  cores ${engineMedian.cores}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
