'use strict';
// Server throughput: `rnnkit serve` in its own process, a load generator here, on loopback.
// For 1, 8, 64 and 256 (--streams) concurrent streams of --tokens tokens each it reports the
// aggregate tokens/s, the p50/p99 gap between reads of one stream, tokens per read (how much
// the server's writes coalesced), the cores the server (with its workers) and this load
// generator kept busy, and from the server's /metrics its event loop's delay (p99 and max over
// the level) and its garbage collection (ms per second); each round then measures the engine's
// own batched generation rate (generateBatch of 64 prompts in this process), and the server's
// rate is reported as a share of it (median over rounds of each round's ratio). The last lines
// are the targets: 64 streams at >= 70 % of the engine, gap p99 <= 50 ms, all 256 streams complete
// (every stream is checked to end with all its tokens).
//
//   npm run build && node bench/serve.js [--model FILE] [--tokens 128] [--streams 1,8,64,256] [--rounds 3] [--json]
//   [--profile DIR]: the server writes a V8 CPU profile (node --cpu-prof) to DIR
//   [--server-threads N]: the server's engine threads (default: serve's, one fewer than the cores)
//   [--baseline CLI]: also serve with another build's dist/cli/index.js, measured in the same rounds
//   [--variants 'ARGS;ARGS']: one more server per variant, started with these extra `serve`
//     arguments, all measured in the same rounds, e.g. --variants '--workers 2 --threads 1;--threads 2'
//   [--long-prompts]: while each level runs (at least until --long-count of them came: 6),
//     requests with a new --long-tokens prompt (2000; never cached) arrive one at a time, each
//     --long-every ms (250) after the previous one's answer: the gap p99 of the running streams is
//     what chunked prefill bounds (compare --variants '--prefill-chunk 0;--prefill-chunk 256')
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
  streams: { default: '1,8,64,256' },
  json: { default: false, flag: true },
  profile: { default: '' },
  rounds: { default: 3 },
  serverThreads: { default: 0 },
  baseline: { default: '' },
  variants: { default: '' },
  longPrompts: { default: false, flag: true },
  longTokens: { default: 2000 },
  longEvery: { default: 250 },
  longCount: { default: 6 },
});

const PROMPTS = ['It is', 'Mr. Darcy', 'Jane', 'The ', 'Lady Catherine', 'Kitty', 'Netherfield', 'Lizzy'];

/**
 * Starts the server process; resolves with its base URL and the child.
 * @param {number} streams
 * @param {string} [cli] the CLI to run (another build of rnnkit, for --baseline)
 * @param {string[]} [extra] more `serve` arguments (--variants)
 * @returns {Promise<{ url: string, child: import('child_process').ChildProcess }>}
 */
function startServer(streams, cli = path.join(__dirname, '../dist/cli/index.js'), extra = []) {
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
      // A long prompt (--long-prompts) generates beside the streams instead of waiting for a slot.
      String(streams + (args.longPrompts ? 1 : 0)),
      '--max-queue',
      String(streams),
      '--max-connections-per-client',
      String(2 * streams),
      '--max-tokens',
      String(args.tokens),
      '--max-prompt-tokens',
      String(Math.max(4096, args.longTokens + 64)),
      ...extra,
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
 * of the machine from the server); returns its tokens, the gaps (ms) between its reads and when
 * each gap ended (performance.now()).
 * @param {string} url
 * @param {number} i
 * @returns {Promise<{ tokens: number, gaps: number[], ends: number[] }>}
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
        /** @type {number[]} */
        const ends = [];
        let last = 0;
        let raw = '';
        res.setEncoding('utf8');
        res.on('data', (part) => {
          const now = performance.now();
          if (last !== 0) {
            gaps.push(now - last);
            ends.push(now);
          }
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
          else resolve({ tokens: usage.completion_tokens, gaps, ends });
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
 * CPU seconds (user + system) a process and, with `children`, its live children (the workers of
 * --workers) have used so far, from /proc (Linux); 0 elsewhere.
 * @param {number} pid
 * @param {boolean} [children]
 */
function cpuSeconds(pid, children = false) {
  /** @param {string} p */
  const stat = (p) => {
    try {
      return fs.readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1].split(' ');
    } catch {
      return null;
    }
  };
  let total = 0;
  for (const p of fs.existsSync('/proc') ? fs.readdirSync('/proc').filter((d) => /^[0-9]+$/.test(d)) : []) {
    const f = stat(p);
    if (f && (Number(p) === pid || (children && Number(f[1]) === pid))) total += (Number(f[11]) + Number(f[12])) / 100;
  }
  return total;
}

/**
 * The server's /metrics as name{labels} → value.
 * @param {string} url
 * @returns {Promise<Map<string, number>>}
 */
function scrape(url) {
  return new Promise((resolve, reject) =>
    http
      .get(`${url}/metrics`, { agent }, (res) => {
        let t = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (t += d));
        res.on('end', () => {
          const m = new Map();
          for (const line of t.split('\n')) {
            if (line === '' || line.startsWith('#')) continue;
            const at = line.lastIndexOf(' ');
            m.set(line.slice(0, at), Number(line.slice(at + 1)));
          }
          resolve(m);
        });
      })
      .on('error', reject),
  );
}

/**
 * The machine's own scheduling delay, as a control: an idle Node process that only measures its
 * event loop's delay (perf_hooks.monitorEventLoopDelay, 10 ms resolution, like prom-client's
 * metric in the server). When the server's event-loop delay is no larger than this idle
 * process's, the server's JavaScript was not what made tokens late: the thread waited for a core.
 */
const idle = spawn(
  process.execPath,
  [
    '-e',
    `const h = require('perf_hooks').monitorEventLoopDelay({ resolution: 10 }); h.enable();
     require('readline').createInterface({ input: process.stdin }).on('line', () => {
       process.stdout.write(JSON.stringify({ p99: h.percentile(99) / 1e6, max: h.max / 1e6 }) + '\\n'); h.reset();
     });`,
  ],
  { stdio: ['pipe', 'pipe', 'inherit'] },
);
const idleLines = readline.createInterface({ input: /** @type {import('stream').Readable} */ (idle.stdout) });

/**
 * The idle process's event-loop delay since the previous call (ms).
 * @returns {Promise<{ p99: number, max: number }>}
 */
function idleDelay() {
  return new Promise((resolve) => {
    idleLines.once('line', (line) => resolve(JSON.parse(line)));
    /** @type {import('stream').Writable} */ (idle.stdin).write('\n');
  });
}

/** Words the fixture's character tokenizer reads one token per character. */
const WORDS = 'the of and to her a in was that it he not his you be as had with for she but is my have which all said'.split(' ');
let longSeed = 0;

/**
 * A request with a new --long-tokens prompt (never cached), answered with one token; resolves
 * with its milliseconds.
 * @param {string} url
 */
function longPrompt(url) {
  let s = '';
  let x = ++longSeed * 2654435761 + 7;
  while (s.length < args.longTokens) {
    x = (x * 1103515245 + 12345) >>> 0;
    s += WORDS[x % WORDS.length] + ' ';
  }
  const body = JSON.stringify({ prompt: s.slice(0, args.longTokens), max_tokens: 1, temperature: 0 });
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = http.request(
      `${url}/v1/completions`,
      { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
      (res) => {
        res.resume();
        res.on('end', () => (res.statusCode === 200 ? resolve(performance.now() - t0) : reject(new Error(`long prompt: status ${res.statusCode}`))));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * @param {string} url
 * @param {number} concurrency
 * @param {number} pid the server's
 */
async function load(url, concurrency, pid) {
  // At least 256 streams per level (one round of 256, four of 64, …), so that the p99 gap has
  // thousands of samples; with --long-prompts, more rounds until --long-count long prompts came.
  const rounds = Math.max(1, Math.ceil(256 / concurrency));
  // Warm-up: one round, not counted.
  await Promise.all(Array.from({ length: concurrency }, (_, i) => stream(url, i)));
  const before = await scrape(url); // also restarts the event loop delay's window
  await idleDelay();
  const t0 = performance.now();
  const cpu0 = { server: cpuSeconds(pid, true), client: cpuSeconds(process.pid) };
  /** @type {number[]} */
  const longMs = [];
  /** @type {Array<[number, number]>} when each long prompt was sent and answered */
  const windows = [];
  let streaming = true;
  const arrivals = (async () => {
    while (args.longPrompts && streaming) {
      await new Promise((r) => setTimeout(r, longMs.length === 0 ? 20 : args.longEvery));
      if (streaming) {
        const sent = performance.now();
        longMs.push(await longPrompt(url));
        windows.push([sent, performance.now()]);
      }
    }
  })();
  const results = [];
  for (let r = 0; r < rounds || (args.longPrompts && longMs.length < args.longCount); r++) {
    results.push(...(await Promise.all(Array.from({ length: concurrency }, (_, i) => stream(url, r * concurrency + i)))));
  }
  const seconds = (performance.now() - t0) / 1000;
  streaming = false;
  const after = await scrape(url);
  const control = await idleDelay();
  await arrivals;
  const gcSeconds = (/** @type {Map<string, number>} */ m) =>
    [...m].filter(([k]) => k.startsWith('nodejs_gc_duration_seconds_sum')).reduce((s, [, v]) => s + v, 0);
  // Cores each process kept busy: what the server and this load generator cost the machine.
  const serverCores = +((cpuSeconds(pid, true) - cpu0.server) / seconds).toFixed(2);
  const clientCores = +((cpuSeconds(process.pid) - cpu0.client) / seconds).toFixed(2);
  const tokens = results.reduce((s, r) => s + r.tokens, 0);
  const gaps = results.flatMap((r) => r.gaps).sort((a, b) => a - b);
  // The gaps of running streams that overlap a long prompt's reading: what chunked prefill bounds.
  const during = results.flatMap((r) => r.gaps.filter((g, k) => windows.some(([a, b]) => r.ends[k] > a && r.ends[k] - g < b))).sort((a, b) => a - b);
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
    // The server's JavaScript thread over the level (with --workers: the average of the workers' p99, the largest max).
    event_loop_p99_ms: +(1000 * (after.get('nodejs_eventloop_lag_p99_seconds') ?? 0)).toFixed(2),
    event_loop_max_ms: +(1000 * (after.get('nodejs_eventloop_lag_max_seconds') ?? 0)).toFixed(2),
    gc_ms_per_s: +((1000 * (gcSeconds(after) - gcSeconds(before))) / seconds).toFixed(2),
    idle_process_delay_p99_ms: +control.p99.toFixed(2),
    idle_process_delay_max_ms: +control.max.toFixed(2),
    streams_complete: results.length,
    ...(args.longPrompts
      ? {
          long_prompts: longMs.length,
          long_prompt_ms_p50: +quantile(
            [...longMs].sort((a, b) => a - b),
            0.5,
          ).toFixed(1),
          during_long_gap_p99_ms: +quantile(during, 0.99).toFixed(2),
          during_long_gap_max_ms: +(during.at(-1) ?? 0).toFixed(2),
        }
      : {}),
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

/** The 1-minute load average when the run started. */
const loadAtStart = fs.existsSync('/proc/loadavg') ? Number(fs.readFileSync('/proc/loadavg', 'utf8').split(' ')[0]) : 0;

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
    for (const v of String(args.variants)
      .split(';')
      .map((s) => s.trim())
      .filter((s) => s !== '')) {
      servers.push({ name: v, ...(await startServer(Math.max(...levels), undefined, v.split(/\s+/))), rows: levels.map(() => []) });
    }
    // Rounds interleave the servers and the engine, so all see the same machine (shared, busy).
    for (let r = 0; r < args.rounds; r++) {
      for (const s of servers) for (const [i, c] of levels.entries()) s.rows[i].push(await load(s.url, c, /** @type {number} */ (s.child.pid)));
      engine.push(await engineRate(model));
    }
  } finally {
    for (const s of servers) s.child.kill('SIGINT');
    idle.kill();
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
      event_loop_p99_ms: pick(rows[i], 'event_loop_p99_ms'),
      event_loop_max_ms: pick(rows[i], 'event_loop_max_ms'),
      gc_ms_per_s: pick(rows[i], 'gc_ms_per_s'),
      idle_process_delay_p99_ms: pick(rows[i], 'idle_process_delay_p99_ms'),
      idle_process_delay_max_ms: pick(rows[i], 'idle_process_delay_max_ms'),
      // Every stream of every round ended with all its tokens (a stream that did not fails the run).
      streams_complete: Math.min(...rows[i].map((r) => r.streams_complete)),
      ...(args.longPrompts
        ? {
            long_prompts: pick(rows[i], 'long_prompts'),
            long_prompt_ms_p50: pick(rows[i], 'long_prompt_ms_p50'),
            during_long_gap_p99_ms: pick(rows[i], 'during_long_gap_p99_ms'),
            during_long_gap_max_ms: pick(rows[i], 'during_long_gap_max_ms'),
          }
        : {}),
      // Each round's server rate over the engine rate measured in the same round.
      ratio_to_engine: +median(rows[i].map((row, r) => row.tokens_per_s / engine[r].tokens_per_s)).toFixed(3),
    }));
  const engineMedian = { tokens_per_s: Math.round(pick(engine, 'tokens_per_s')), cores: pick(engine, 'cores') };
  const load1 = Number(fs.readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
  const loadStart = loadAtStart;
  const results = servers.map((s) => ({ name: s.name, rows: summarize(s.rows), runs: s.rows }));
  if (args.json) {
    console.log(
      JSON.stringify({
        model: path.basename(args.model),
        tokens: args.tokens,
        rounds: args.rounds,
        load_average_1m: load1,
        load_average_1m_start: loadStart,
        engine: engineMedian,
        engine_runs: engine,
        servers: results,
      }),
    );
    return;
  }
  console.log(`medians of ${args.rounds} rounds (1-minute load average ${loadStart} at the start, ${load1} at the end):`);
  for (const s of results) {
    for (const r of s.rows) {
      console.log(
        `${s.name.padEnd(8)} ${String(r.concurrency).padStart(3)} streams: ${String(r.tokens_per_s).padStart(6)} tok/s (${(100 * r.ratio_to_engine).toFixed(1)} % of the engine)  gap p50 ${r.gap_p50_ms} ms  p99 ${r.gap_p99_ms} ms  tokens/read ${r.tokens_per_read}  cores: server ${r.server_cores}, load generator ${r.client_cores}  event loop p99 ${r.event_loop_p99_ms} ms, max ${r.event_loop_max_ms} ms  GC ${r.gc_ms_per_s} ms/s  idle process's delay p99 ${r.idle_process_delay_p99_ms} ms, max ${r.idle_process_delay_max_ms} ms${'long_prompts' in r ? `  long prompts ${r.long_prompts} (${r.long_prompt_ms_p50} ms each; gaps while one is read: p99 ${r.during_long_gap_p99_ms} ms, max ${r.during_long_gap_max_ms} ms)` : ''}`,
      );
    }
  }
  console.log(`engine (generateBatch, 64 prompts): ${engineMedian.tokens_per_s} tok/s  cores ${engineMedian.cores}`);
  for (const s of results) {
    const at = (/** @type {number} */ c) => s.rows.find((r) => r.concurrency === c);
    const r64 = at(64);
    const r256 = at(256);
    const targets = [
      r64 && `64 streams at ${(100 * r64.ratio_to_engine).toFixed(1)} % of the engine (target >= 70 %: ${r64.ratio_to_engine >= 0.7 ? 'met' : 'not met'})`,
      r64 && `gap p99 at 64 streams ${r64.gap_p99_ms} ms (target <= 50 ms: ${r64.gap_p99_ms <= 50 ? 'met' : 'not met'})`,
      r256 && `256 streams: all ${r256.streams_complete} complete with ${args.tokens} tokens each`,
    ].filter(Boolean);
    if (targets.length > 0) console.log(`targets, ${s.name}: ${targets.join('; ')}`);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
