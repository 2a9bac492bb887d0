#!/usr/bin/env node
// Peak memory and speed of `rnnkit train` and `rnnkit eval` on a large generated text (default
// 1 GiB): streamed corpora keep the text out of memory and its ids compact (1 byte per id for a
// char vocabulary), so peak RSS stays far below the text's size in UTF-16 or Int32 ids.
//
//   npm run build && node bench/big-text.mjs [--bytes N] [--dir D] [--steps N] [--lanes N]
//                                            [--skip-eval] [--eval-seconds S]
//
// train: a small model (RNN, hidden 32, embedding 16) for --steps optimizer steps (default 50)
// after the whole file is read, its tokenizer fitted and every id stored; no validation split.
// eval: the whole file with that model, read as contiguous lanes (`rnnkit eval --lanes`; by
// default the engine's choice, 64 lanes for 1 GiB), each lane from the zero state at its start.
// `--eval-seconds S` stops evaluation (SIGINT) after S seconds instead of waiting for the end.
//
// The text comes from scripts/make-big-text.mjs (seeded; reused when D already has it). Peak
// RSS is the "Maximum resident set size" of GNU time (`/usr/bin/time -v`, Debian package
// `time`) around each command, in a fresh process; tokens/s is the tokens evaluated over the
// whole command's wall time (reading and encoding the file included).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = args.indexOf(name);
  return i < 0 ? fallback : args[i + 1];
};
const bytes = Number(opt('--bytes', String(1 << 30)));
const dir = opt('--dir', path.join(os.tmpdir(), 'rnnkit-big-text'));
const steps = Number(opt('--steps', '50'));
const lanes = opt('--lanes', undefined);
const skipEval = args.includes('--skip-eval');
const evalSeconds = opt('--eval-seconds', undefined);
const GIB = 1 << 30;

fs.mkdirSync(dir, { recursive: true });
const text = path.join(dir, `text-${bytes}.txt`);
if (!fs.existsSync(text) || fs.statSync(text).size !== bytes) {
  const r = spawnSync(process.execPath, [path.join(root, 'scripts', 'make-big-text.mjs'), text, '--bytes', String(bytes)], { stdio: 'inherit' });
  if (r.status !== 0) process.exit(1);
}
if (!fs.existsSync('/usr/bin/time')) {
  console.error('big-text: needs GNU time at /usr/bin/time (apt-get install time)');
  process.exit(1);
}

/** Runs the CLI under GNU time (stopped by SIGINT after `seconds` when given): exit status, peak RSS in bytes, wall seconds, output. */
function measured(cliArgs, seconds) {
  const t0 = Date.now();
  const command = [process.execPath, path.join(root, 'dist', 'cli', 'index.js'), ...cliArgs];
  // GNU time's figure covers `timeout`'s waited-for child too.
  if (seconds !== undefined) command.unshift('timeout', '-s', 'INT', String(seconds));
  const r = spawnSync('/usr/bin/time', ['-v', ...command], { encoding: 'utf8', maxBuffer: 1 << 26 });
  const kb = /Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr);
  return { status: r.status, rss: kb ? Number(kb[1]) * 1024 : NaN, seconds: (Date.now() - t0) / 1000, out: r.stdout.trim(), err: r.stderr };
}

const model = path.join(dir, 'model.safetensors');
const runs = [
  [
    'train',
    undefined,
    ['train', text, '--max-steps', String(steps), '--validation', '0', '--cell', 'rnn', '--hidden', '32', '--embed', '16', '--out', model, '--json'],
  ],
];
if (!skipEval) runs.push(['eval', evalSeconds, ['eval', model, text, '--json', ...(lanes === undefined ? [] : ['--lanes', lanes])]]);
let failed = false;
const cpu = /model name\s*:\s*(.*)/.exec(fs.existsSync('/proc/cpuinfo') ? fs.readFileSync('/proc/cpuinfo', 'utf8') : '')?.[1] ?? os.cpus()[0]?.model;
console.log(
  `${new Date().toISOString()}  ${cpu} (${os.cpus().length} threads), load ${os
    .loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')}`,
);
console.log(`text: ${text} (${(bytes / GIB).toFixed(2)} GiB)`);
for (const [name, seconds, cliArgs] of runs) {
  const r = measured(cliArgs, seconds);
  const stopped = seconds !== undefined && r.status === 124;
  const ok = r.status === 0 || stopped;
  failed ||= !ok || !(r.rss <= 1.5 * GIB);
  const how = stopped ? `stopped after ${seconds} s` : `exit ${r.status}`;
  console.log(
    `${name.padEnd(5)}  ${how}  peak RSS ${(r.rss / (1 << 20)).toFixed(0)} MiB (${((r.rss / bytes) * 100).toFixed(0)}% of the text)  ${r.seconds.toFixed(1)} s`,
  );
  console.log(`       rnnkit ${cliArgs.join(' ')}`);
  if (!ok) console.log(r.err.split('\n').slice(-30).join('\n'));
  else if (name === 'train') {
    const t = JSON.parse(r.out.split('\n').pop());
    const read = r.seconds - t.elapsed;
    console.log(
      `       ${t.steps} steps, ${t.tokens} tokens trained in ${t.elapsed.toFixed(1)} s (${(t.tokens / t.elapsed).toFixed(0)} tokens/s); reading, tokenising and storing the text ${read.toFixed(1)} s (${(bytes / read / (1 << 20)).toFixed(1)} MiB/s)`,
    );
  } else if (name === 'eval' && !stopped) {
    const e = JSON.parse(r.out.split('\n').pop());
    console.log(`       ${e.tokens} tokens, ${(e.tokens / r.seconds).toFixed(0)} tokens/s, loss ${e.loss.toFixed(4)} nats/token`);
  }
}
process.exit(failed ? 1 : 0);
