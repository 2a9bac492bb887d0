#!/usr/bin/env node
// Kill and signal trials of `rnnkit train` on tiny data (node scripts/kill-trials.mjs after
// `npm run build`):
// - `--kills` runs with a checkpoint written every step, each killed with SIGKILL: the odd ones
//   at a random moment, the even ones the instant a temporary file of the checkpoint appears
//   (inotify through fs.watch), repeated until such a kill leaves a temporary file, so that at
//   least half land inside a write. The checkpoint must
//   still load; the temporary files left by killed writers are counted, and the next save of the
//   same checkpoint must remove them all;
// - `--terms` runs sent SIGTERM at a random moment of training (checkpoints only on the signal):
//   each must exit 143 with a checkpoint that `train --resume` continues.
// Prints one JSON summary; exits 1 when any trial failed.
//
//   node scripts/kill-trials.mjs [--kills 20] [--terms 10] [--seed 1]

import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const pkg = path.join(here, '..');
const cli = path.join(pkg, 'dist', 'cli', 'index.js');
const { loadModel } = createRequire(import.meta.url)(pkg);

const o = { kills: 20, terms: 10, seed: 1 };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) {
  const key = argv[i].replace(/^--/, '');
  if (!(key in o)) throw new Error(`unknown option --${key}; options: ${Object.keys(o).join(', ')}`);
  o[key] = Number(argv[i + 1]);
}

let seed = o.seed >>> 0;
/** mulberry32: the same seed gives the same kill moments (the machine's timing still varies). */
function rand() {
  seed = (seed + 0x6d2b79f5) >>> 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Starts `rnnkit train` in `dir`; `ready` resolves at the first progress line on stderr. */
function train(dir, extra) {
  const args = [cli, 'train', 'data.txt', '--threads', '1', '--json', ...extra];
  // A resumed run takes the architecture and windowing from its checkpoint.
  if (!extra.includes('--resume')) args.push('--cell', 'lstm', '--hidden', '256', '--layers', '2', '--embed', '16', '--seq-len', '4', '--batch-size', '2');
  const child = spawn(process.execPath, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  let stdout = '';
  const ready = new Promise((resolve) => {
    child.stderr.on('data', (d) => {
      stderr += d;
      if (stderr.includes('"step"')) resolve();
    });
    child.on('close', resolve);
  });
  child.stdout.on('data', (d) => (stdout += d));
  const done = new Promise((resolve) => child.on('close', (status, signal) => resolve({ status, signal, stderr, stdout })));
  return { child, ready, done };
}

/** The temporary files left next to `file` (rnnkit's atomic writes name them `.<name>.<pid>.<n>.tmp`). */
function temps(file) {
  const name = path.basename(file);
  return fs.readdirSync(path.dirname(file)).filter((f) => f.startsWith(`.${name}.`) && f.endsWith('.tmp'));
}

async function loads(file) {
  try {
    await loadModel(file);
    return null;
  } catch (e) {
    return `${e.code}: ${e.message}`;
  }
}

async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rnnkit-kill-trials-'));
  const words = ['the', 'cat', 'sat', 'on', 'a', 'mat', 'dog', 'log', 'ran', 'far', 'away', 'and', 'back'];
  let text = '';
  while (text.length < 60_000) text += words[Math.floor(rand() * words.length)] + (rand() < 0.1 ? '.\n' : ' ');
  fs.writeFileSync(path.join(dir, 'data.txt'), text);
  const failures = [];
  const started = Date.now();

  // kill -9 during checkpointing: a checkpoint every step, so writes take much of the run.
  const ck = path.join(dir, 'ck.safetensors');
  let killedWithTemp = 0;
  let maxTemps = 0;
  let previous = [];
  let removedByNextSave = 0;
  const writeKillAttempts = [];
  /** One run killed with SIGKILL, at a random moment or (`inWrite`) as a checkpoint write starts. */
  async function killedRun(trial, inWrite) {
    const run = train(dir, ['--max-steps', '100000', '--checkpoint', 'ck.safetensors', '--checkpoint-every', '1', '--out', 'out.safetensors']);
    await run.ready;
    await sleep(50 + rand() * 1000);
    if (inWrite) {
      await new Promise((resolve) => {
        const w = fs.watch(dir, (_, f) => {
          if (f && f.startsWith('.ck.safetensors.') && f.endsWith('.tmp')) {
            run.child.kill('SIGKILL');
            w.close();
            resolve();
          }
        });
        run.done.then(() => {
          w.close();
          resolve();
        });
      });
    }
    run.child.kill('SIGKILL');
    const r = await run.done;
    if (r.signal !== 'SIGKILL') failures.push({ trial, why: `ended by itself (${r.status}): ${r.stderr.slice(-300)}` });
    const now = temps(ck);
    // What the previous killed writer left is gone: this run saved the checkpoint before its kill.
    const kept = previous.filter((f) => now.includes(f));
    if (kept.length > 0) failures.push({ trial, why: `temporary files of the previous kill remain: ${kept}` });
    removedByNextSave += previous.length - kept.length;
    previous = now;
    maxTemps = Math.max(maxTemps, now.length);
    if (!fs.existsSync(ck)) failures.push({ trial, why: 'no checkpoint yet' });
    else {
      const bad = await loads(ck);
      if (bad) failures.push({ trial, why: `checkpoint does not load: ${bad}` });
    }
    return now.length > 0;
  }
  for (let i = 0; i < o.kills; i++) {
    if (i % 2 === 1) {
      if (await killedRun(`kill ${i}`, false)) killedWithTemp++;
      continue;
    }
    // The signal can arrive after a short write has finished (a busy machine delays the watcher):
    // such a run is repeated, up to 10 times, so that the trial really kills a writer.
    let attempts = 0;
    let leftTemp = false;
    while (!leftTemp && attempts < 10) {
      attempts++;
      leftTemp = await killedRun(`kill ${i}, attempt ${attempts}`, true);
    }
    writeKillAttempts.push(attempts);
    if (leftTemp) killedWithTemp++;
    else failures.push({ trial: `kill ${i}`, why: 'no kill landed inside a checkpoint write in 10 attempts' });
  }
  const tempsBeforeSave = temps(ck).length;
  // The next save of the same checkpoint (a resumed run of one step) removes what the killed writers left.
  if (o.kills > 0) {
    const next = train(dir, [
      '--resume',
      'ck.safetensors',
      '--max-steps',
      '1',
      '--checkpoint',
      'ck.safetensors',
      '--checkpoint-every',
      '1',
      '--out',
      'out.safetensors',
    ]);
    const r = await next.done;
    if (r.status !== 0) failures.push({ trial: 'save after kills', why: `exit ${r.status}: ${r.stderr.slice(-300)}` });
  }
  const tempsAfterSave = temps(ck).length;
  removedByNextSave += tempsBeforeSave - tempsAfterSave;
  if (tempsAfterSave > 0) failures.push({ trial: 'save after kills', why: `${tempsAfterSave} temporary files remain` });

  // SIGTERM during training: the checkpoint is written by the signal alone.
  let resumable = 0;
  for (let i = 0; i < o.terms; i++) {
    const file = `term-${i}.safetensors`;
    const run = train(dir, ['--max-steps', '100000', '--checkpoint', file, '--checkpoint-every', '1000000', '--out', 'out.safetensors']);
    await run.ready;
    await sleep(rand() * 1500);
    run.child.kill('SIGTERM');
    const r = await run.done;
    if (r.status !== 143) {
      failures.push({ trial: `term ${i}`, why: `exit ${r.status ?? r.signal}, expected 143: ${r.stderr.slice(-300)}` });
      continue;
    }
    const resume = train(dir, ['--resume', file, '--max-steps', '1', '--out', `resumed-${i}.safetensors`]);
    const rr = await resume.done;
    if (rr.status === 0) resumable++;
    else failures.push({ trial: `term ${i}`, why: `resume failed (${rr.status}): ${rr.stderr.slice(-300)}` });
  }
  const summary = {
    kills: o.kills,
    killsThatLeftTempFiles: killedWithTemp,
    attemptsPerKillInWrite: writeKillAttempts,
    mostTempFilesAtOnce: maxTemps,
    tempFilesRemovedByNextSave: removedByNextSave,
    tempFilesBeforeNextSave: tempsBeforeSave,
    tempFilesAfterNextSave: tempsAfterSave,
    terms: o.terms,
    termsResumable: resumable,
    seconds: +((Date.now() - started) / 1000).toFixed(1),
    failures,
  };
  process.stdout.write(JSON.stringify(summary, null, 2) + '\n');
  fs.rmSync(dir, { recursive: true, force: true });
  process.exit(failures.length === 0 ? 0 : 1);
}

main().catch((e) => {
  console.error(e);
  process.exit(2);
});
