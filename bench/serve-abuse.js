'use strict';
// Abuse resistance of `rnnkit serve` (run in its own process): one client (127.0.0.1) opens
// --idle sockets that never send a byte and --slowloris connections that drip header lines,
// while another client address (127.0.0.2: any 127.x address reaches loopback on Linux) sends
// --requests small completions one after another. Reports how many abusive sockets the server
// refused at once or closed by its deadlines, and the latency of the normal requests.
//
//   npm run build && node bench/serve-abuse.js [--idle 2000] [--slowloris 200] [--requests 200]
//
// The process needs a file-descriptor limit above --idle + --slowloris (ulimit -n).

const { spawn } = require('child_process');
const net = require('net');
const http = require('http');
const path = require('path');
const readline = require('readline');
const { parseArgs } = require('./common');

const args = parseArgs(process.argv.slice(2), {
  model: { default: path.join(__dirname, '../fixtures/models/pp_lstm.safetensors') },
  idle: { default: 2000 },
  slowloris: { default: 200 },
  requests: { default: 200 },
  headersTimeout: { default: 2000 },
});

/** @returns {Promise<{ port: number, child: import('child_process').ChildProcess }>} */
function startServer() {
  const cli = path.join(__dirname, '../dist/cli/index.js');
  const child = spawn(process.execPath, [cli, 'serve', args.model, '--port', '0', '--json', '--quiet', '--headers-timeout', String(args.headersTimeout)], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
    readline.createInterface({ input: child.stdout }).once('line', (line) => resolve({ port: Number(new URL(JSON.parse(line).url).port), child }));
  });
}

/**
 * @param {number} port
 * @returns {{ socket: net.Socket, closed: Promise<{ ms: number, refused: boolean }> }} the socket; when (ms) it closed and whether with the server's 503 refusal
 */
function abusive(port) {
  const t0 = performance.now();
  const socket = net.connect({ port, host: '127.0.0.1' });
  socket.on('error', () => undefined);
  let received = '';
  socket.on('data', (d) => (received += String(d)));
  return {
    socket,
    closed: new Promise((resolve) => socket.once('close', () => resolve({ ms: performance.now() - t0, refused: received.startsWith('HTTP/1.1 503') }))),
  };
}

/**
 * One normal completion from 127.0.0.2; resolves with its latency in ms.
 * @param {number} port
 * @param {http.Agent} agent
 * @returns {Promise<number>}
 */
function normal(port, agent) {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = http.request(
      { port, host: '127.0.0.1', localAddress: '127.0.0.2', method: 'POST', path: '/v1/completions', agent, headers: { 'content-type': 'application/json' } },
      (res) => {
        res.resume();
        res.on('end', () => (res.statusCode === 200 ? resolve(performance.now() - t0) : reject(new Error(`status ${res.statusCode}`))));
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify({ prompt: 'It is', max_tokens: 8, seed: 1 }));
  });
}

async function main() {
  const { port, child } = await startServer();
  try {
    // Opened 100 at a time: thousands of simultaneous connects overflow the kernel's listen
    // backlog, which leaves client sockets the server never accepted (not what is measured).
    /** @type {ReturnType<typeof abusive>[]} */
    const idle = [];
    /** @type {ReturnType<typeof abusive>[]} */
    const slow = [];
    for (let i = 0; i < args.idle + args.slowloris; i += 100) {
      const batch = Array.from({ length: Math.min(100, args.idle + args.slowloris - i) }, (_, k) => {
        const s = abusive(port);
        if (i + k < args.idle) idle.push(s);
        else {
          slow.push(s);
          s.socket.once('connect', () => s.socket.write('POST /v1/completions HTTP/1.1\r\nHost: x\r\n'));
        }
        return new Promise((resolve) => (s.socket.once('connect', resolve), s.socket.once('close', resolve)));
      });
      await Promise.all(batch);
    }
    const drip = setInterval(() => {
      for (const s of slow) if (s.socket.writable) s.socket.write('X-Drip: 1\r\n');
    }, 200);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    /** @type {number[]} */
    const latencies = [];
    for (let i = 0; i < args.requests; i++) latencies.push(await normal(port, agent));
    // A socket still open well after the deadline counts as not closed.
    const deadline = new Promise((resolve) => setTimeout(resolve, 3 * args.headersTimeout + 5000));
    const closes = await Promise.all([...idle, ...slow].map((s) => Promise.race([s.closed, deadline.then(() => ({ ms: Infinity, refused: false }))])));
    clearInterval(drip);
    latencies.sort((a, b) => a - b);
    const q = (/** @type {number} */ p) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))].toFixed(1);
    const refused = closes.filter((c) => c.refused).length;
    const last = Math.max(...closes.map((c) => c.ms)).toFixed(0);
    console.log(
      `abusive sockets: ${closes.length} (${args.idle} idle, ${args.slowloris} slowloris), ${closes.filter((c) => c.ms === Infinity).length} still open at the end: ${refused} refused over the per-client cap, ${closes.length - refused} by the ${args.headersTimeout} ms headers deadline (last after ${last} ms)`,
    );
    console.log(`normal requests from another client: ${latencies.length} of ${args.requests} served, latency p50 ${q(0.5)} ms, p99 ${q(0.99)} ms`);
    agent.destroy();
  } finally {
    child.kill('SIGINT');
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
