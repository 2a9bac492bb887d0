'use strict';
// The prompt state cache, measured through the server: `rnnkit serve` in its own process, this
// load generator in another, on loopback. Each round sends two streaming requests with a
// --prefix-token prefix: a cold one (a prefix never seen, so the whole prompt is read) and then a
// warm one sharing the cold one's prefix but not its question, so the server restores the state
// cached after the prefix. Reports the median time to the first text event of each, the ratio
// of the medians and the median of the rounds' own ratios (with its range: one round's two
// requests see the same machine), and the cache counts from /metrics.
//
//   npm run build && node bench/serve-cache.js [--model FILE] [--prefix-tokens 2000] [--rounds 21] [--json]

const { spawn } = require('child_process');
const http = require('http');
const path = require('path');
const readline = require('readline');
const { parseArgs } = require('./common');

const args = parseArgs(process.argv.slice(2), {
  model: { default: path.join(__dirname, '../fixtures/models/pp_lstm.safetensors') },
  prefixTokens: { default: 2000 },
  rounds: { default: 21 },
  json: { default: false, flag: true },
});

/** Words the fixture's character tokenizer reads one token per character. */
const WORDS = 'the of and to her a in was that it he not his you be as had with for she but is my have which all said'.split(' ');

/**
 * A text of `n` characters (one token each under a character tokenizer) drawn from `seed`.
 * @param {number} n
 * @param {number} seed
 */
function text(n, seed) {
  let s = '';
  let x = seed * 2654435761;
  while (s.length < n) {
    x = (x * 1103515245 + 12345) >>> 0;
    s += WORDS[x % WORDS.length] + ' ';
  }
  return s.slice(0, n);
}

/** @returns {Promise<{ url: string, child: import('child_process').ChildProcess }>} */
function startServer() {
  const cli = path.join(__dirname, '../dist/cli/index.js');
  const child = spawn(process.execPath, [cli, 'serve', args.model, '--port', '0', '--json', '--quiet', '--max-prompt-tokens', '8192'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
    readline.createInterface({ input: child.stdout }).once('line', (line) => resolve({ url: JSON.parse(line).url, child }));
  });
}

/**
 * A streaming completion of `prompt`; resolves with the milliseconds to its first text event and
 * its prompt token count.
 * @param {string} url
 * @param {string} prompt
 * @returns {Promise<{ ttft: number, promptTokens: number }>}
 */
function firstToken(url, prompt) {
  const body = JSON.stringify({ prompt, max_tokens: 4, temperature: 0, stream: true, stream_options: { include_usage: true } });
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    let ttft = 0;
    let raw = '';
    const req = http.request(`${url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
      res.setEncoding('utf8');
      res.on('data', (part) => {
        raw += part;
        if (ttft === 0 && raw.includes('"text":"')) ttft = performance.now() - t0;
      });
      res.on('end', () => {
        const usage = raw
          .split('\n\n')
          .filter((e) => e.startsWith('data: {'))
          .map((e) => JSON.parse(e.slice(6)))
          .find((e) => e.usage)?.usage;
        if (res.statusCode !== 200 || !usage) reject(new Error(`status ${res.statusCode}: ${raw.slice(0, 300)}`));
        else resolve({ ttft, promptTokens: usage.prompt_tokens });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** @param {number[]} v */
function median(v) {
  const s = [...v].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function main() {
  const { url, child } = await startServer();
  /** @type {number[]} */
  const cold = [];
  /** @type {number[]} */
  const warm = [];
  let promptTokens = 0;
  let metrics = '';
  try {
    await firstToken(url, text(args.prefixTokens, 999)); // warm-up, not counted
    for (let r = 0; r < args.rounds; r++) {
      const prefix = text(args.prefixTokens, r + 1);
      const a = await firstToken(url, `${prefix} and then she said`);
      const b = await firstToken(url, `${prefix} but he came in`);
      cold.push(a.ttft);
      warm.push(b.ttft);
      promptTokens = b.promptTokens;
    }
    metrics = await new Promise((resolve, reject) =>
      http
        .get(`${url}/metrics`, (res) => {
          let t = '';
          res.setEncoding('utf8');
          res.on('data', (d) => (t += d));
          res.on('end', () => resolve(t));
        })
        .on('error', reject),
    );
  } finally {
    child.kill('SIGINT');
  }
  const counts = Object.fromEntries(
    metrics
      .split('\n')
      .filter((l) => l.startsWith('rnnkit_state_cache_'))
      .map((l) => l.split(' '))
      .map(([k, v]) => [k, Number(v)]),
  );
  const result = {
    model: path.basename(args.model),
    prefix_tokens: args.prefixTokens,
    prompt_tokens: promptTokens,
    rounds: args.rounds,
    ttft_cold_ms: +median(cold).toFixed(2),
    ttft_warm_ms: +median(warm).toFixed(2),
    ratio: +(median(cold) / median(warm)).toFixed(1),
    ratio_median_of_rounds: +median(cold.map((c, i) => c / warm[i])).toFixed(1),
    ratio_range: [+Math.min(...cold.map((c, i) => c / warm[i])).toFixed(1), +Math.max(...cold.map((c, i) => c / warm[i])).toFixed(1)],
    load_average_1m: Number(require('fs').readFileSync('/proc/loadavg', 'utf8').split(' ')[0]),
    cache: counts,
  };
  if (args.json) {
    console.log(JSON.stringify(result));
    return;
  }
  console.log(`prompt of ${promptTokens} tokens (${args.prefixTokens} shared), ${args.rounds} rounds`);
  console.log(`time to first token: cold ${result.ttft_cold_ms} ms, sharing the prefix ${result.ttft_warm_ms} ms: ${result.ratio}x lower (medians)`);
  console.log(
    `per round: median ${result.ratio_median_of_rounds}x, range ${result.ratio_range[0]}–${result.ratio_range[1]}x (target >= 10x: ${result.ratio_median_of_rounds >= 10 ? 'met' : 'not met'}); load average ${result.load_average_1m}`,
  );
  console.log(`cache: ${JSON.stringify(counts)}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
