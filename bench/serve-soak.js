'use strict';
// Soak: `rnnkit serve` in its own process, --streams concurrent streaming completions from this
// load generator for --minutes, a --disconnect fraction of them dropped by the client at a random
// point. Checks that the server keeps its memory (RSS at the end within 10 % of RSS after the
// warm-up), that every stream not dropped completes ([DONE] and all its tokens), and that no error
// other than the disconnects appears (refused requests, error events, server exit).
//
//   npm run build && node bench/serve-soak.js [--minutes 10] [--streams 32] [--tokens 128] [--disconnect 0.2] [--json]

const { spawn } = require('child_process');
const fs = require('fs');
const http = require('http');
const path = require('path');
const readline = require('readline');
const { parseArgs } = require('./common');

const args = parseArgs(process.argv.slice(2), {
  model: { default: path.join(__dirname, '../fixtures/models/pp_lstm.safetensors') },
  minutes: { default: 10 },
  warmupMinutes: { default: 1 },
  streams: { default: 32 },
  tokens: { default: 128 },
  disconnect: { default: 0.2 },
  json: { default: false, flag: true },
});

const PROMPTS = ['It is', 'Mr. Darcy', 'Jane', 'The ', 'Lady Catherine', 'Kitty', 'Netherfield', 'Lizzy'];

/** @returns {Promise<{ url: string, child: import('child_process').ChildProcess }>} */
function startServer() {
  const cli = path.join(__dirname, '../dist/cli/index.js');
  const n = String(args.streams);
  const child = spawn(
    process.execPath,
    [cli, 'serve', args.model, '--port', '0', '--json', '--quiet', '--max-concurrent', n, '--max-queue', n, '--max-tokens', String(args.tokens)],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    readline.createInterface({ input: child.stdout }).once('line', (line) => resolve({ url: JSON.parse(line).url, child }));
  });
}

/**
 * Resident set size of process `pid` in MiB (Linux /proc).
 * @param {number} pid
 */
function rssMb(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

const agent = new http.Agent({ keepAlive: true });
const counts = { completed: 0, disconnected: 0, errors: 0, tokens: 0 };
/** @type {string[]} */
const errors = [];

/**
 * One stream; with probability --disconnect the client destroys it after a random number of reads.
 * @param {string} url
 * @param {number} i
 */
function one(url, i) {
  const drop = Math.random() < args.disconnect ? 1 + Math.floor(Math.random() * 20) : 0;
  const body = JSON.stringify({
    prompt: PROMPTS[i % PROMPTS.length],
    max_tokens: args.tokens,
    temperature: 1,
    seed: i,
    stream: true,
    stream_options: { include_usage: true },
  });
  return new Promise((resolve) => {
    let reads = 0;
    let raw = '';
    let dropped = false;
    const fail = (/** @type {string} */ why) => {
      counts.errors++;
      if (errors.length < 20) errors.push(why);
      resolve(undefined);
    };
    const req = http.request(`${url}/v1/completions`, { method: 'POST', agent, headers: { 'content-type': 'application/json' } }, (res) => {
      res.setEncoding('utf8');
      res.on('data', (part) => {
        raw += part;
        if (drop > 0 && ++reads === drop) {
          dropped = true;
          counts.disconnected++;
          req.destroy();
          resolve(undefined);
        }
      });
      res.on('error', () => {
        if (!dropped) fail(`stream ${i}: response error`);
      });
      res.on('end', () => {
        if (dropped) return;
        const events = raw
          .split('\n\n')
          .filter((e) => e.startsWith('data: {'))
          .map((e) => JSON.parse(e.slice(6)));
        const usage = events.find((e) => e.usage)?.usage;
        if (res.statusCode !== 200 || !raw.includes('data: [DONE]') || usage?.completion_tokens !== args.tokens || events.some((e) => e.error)) {
          fail(`stream ${i}: status ${res.statusCode}: ${raw.slice(-200)}`);
          return;
        }
        counts.completed++;
        counts.tokens += usage.completion_tokens;
        resolve(undefined);
      });
    });
    req.on('error', (e) => {
      if (!dropped) fail(`stream ${i}: ${e.message}`);
    });
    req.end(body);
  });
}

async function main() {
  const { url, child } = await startServer();
  /** @type {number | null} */
  let exited = null;
  child.once('exit', (code) => (exited = code));
  const t0 = performance.now();
  const end = t0 + args.minutes * 60_000;
  const warm = t0 + args.warmupMinutes * 60_000;
  let rssWarm = NaN;
  let rssPeak = 0;
  let next = 0;
  const sampler = setInterval(() => {
    if (exited !== null) return;
    const r = rssMb(/** @type {number} */ (child.pid));
    rssPeak = Math.max(rssPeak, r);
    if (Number.isNaN(rssWarm) && performance.now() >= warm) rssWarm = r;
  }, 1000);
  const worker = async () => {
    while (performance.now() < end && exited === null) await one(url, next++);
  };
  await Promise.all(Array.from({ length: args.streams }, worker));
  clearInterval(sampler);
  // Let the server settle (aborted generations released) before the last reading.
  await new Promise((r) => setTimeout(r, 2000));
  const rssEnd = exited === null ? rssMb(/** @type {number} */ (child.pid)) : NaN;
  child.kill('SIGINT');
  const seconds = (performance.now() - t0) / 1000;
  const result = {
    minutes: args.minutes,
    streams: args.streams,
    requests: next,
    ...counts,
    tokens_per_s: Math.round(counts.tokens / seconds),
    rss_after_warmup_mb: +rssWarm.toFixed(1),
    rss_end_mb: +rssEnd.toFixed(1),
    rss_peak_mb: +rssPeak.toFixed(1),
    rss_change_pct: +((100 * (rssEnd - rssWarm)) / rssWarm).toFixed(1),
    server_exit: exited,
    first_errors: errors,
  };
  const ok = result.errors === 0 && exited === null && Math.abs(result.rss_change_pct) <= 10;
  if (args.json) console.log(JSON.stringify({ ...result, ok }));
  else {
    console.log(
      `${result.requests} requests in ${seconds.toFixed(0)} s at ${args.streams} streams: ${result.completed} completed, ${result.disconnected} disconnected by the client, ${result.errors} errors; ${result.tokens_per_s} tok/s`,
    );
    console.log(
      `server RSS: ${result.rss_after_warmup_mb} MiB after warm-up, ${result.rss_end_mb} MiB at the end (${result.rss_change_pct} %), peak ${result.rss_peak_mb} MiB`,
    );
    for (const e of errors) console.log(`error: ${e}`);
    console.log(ok ? 'ok' : 'FAILED');
  }
  process.exit(ok ? 0 : 1);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
