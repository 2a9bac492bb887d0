#!/usr/bin/env node
// Mutation test of the model-file loader through the built package (node scripts/fuzz-loader.mjs
// after `npm run build`): a small checkpoint (model, tokenizer, optimizer state, training
// metadata) is saved, then `--mutants` mutated copies of it are loaded in child processes,
// `--batch` files per child, each child under `ulimit -v` (1 GiB by default). Besides the
// mutants, files no loader may read whole are tried: a sparse 1 GiB file, one with a valid start
// and an endless header, a 7 KB file whose config declares 8e8 parameters, /dev/zero, a FIFO and a
// directory; each alone in its child, whose peak RSS must stay under `--max-rss-mb` (100).
//
// Every load must either succeed or be refused with a stable `code` (ERR_RNNKIT_*) and a
// message naming the file; a child that dies (crash) or outlives `--timeout` seconds (hang)
// fails the run. Prints one JSON summary; exits 1 when anything failed.
//
//   node scripts/fuzz-loader.mjs [--mutants 2000] [--batch 100] [--seed 1] [--vmem-kb 1048576]
//                                [--timeout 60] [--max-rss-mb 100] [--keep]

import { spawn, execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const pkg = path.join(here, '..');

function args() {
  const o = { mutants: 2000, batch: 100, seed: 1, 'vmem-kb': 1048576, timeout: 60, 'max-rss-mb': 100, keep: false };
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i++) {
    const key = argv[i].replace(/^--/, '');
    if (!(key in o)) throw new Error(`unknown option --${key}; options: ${Object.keys(o).join(', ')}`);
    if (typeof o[key] === 'boolean') o[key] = true;
    else o[key] = Number(argv[++i]);
  }
  return o;
}

// ---- child: load each file given on the command line, one JSON line per file ----
if (process.argv[2] === '--child') {
  const { loadModelSync } = createRequire(import.meta.url)(pkg);
  for (const file of process.argv.slice(3)) {
    let line;
    try {
      loadModelSync(file);
      line = { file, ok: true };
    } catch (e) {
      line = {
        file,
        ok: false,
        code: e?.code ?? null,
        namesFile: typeof e?.message === 'string' && e.message.includes(file),
        message: String(e?.message).slice(0, 300),
      };
    }
    process.stdout.write(JSON.stringify(line) + '\n');
  }
  process.stdout.write(JSON.stringify({ maxRssKb: process.resourceUsage().maxRSS }) + '\n');
  process.exit(0);
}

/** A seeded PRNG (mulberry32): the same seed makes the same mutants. */
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** One to five mutations, mostly in the header (where a changed digit is a wrong shape or offset). */
function mutate(base, rand) {
  let b = Buffer.from(base);
  const int = (n) => Math.floor(rand() * n);
  const k = 1 + int(5);
  for (let i = 0; i < k; i++) {
    const header = Math.max(0, Math.min(Number(b.length >= 8 ? b.readBigUInt64LE(0) : 0n), b.length - 8));
    const r = rand();
    if (r < 0.3 && header > 0) b[8 + int(header)] = int(256);
    else if (r < 0.6) {
      const digits = [];
      for (let j = 8; j < 8 + header; j++) if (b[j] >= 48 && b[j] <= 57) digits.push(j);
      if (digits.length) b[digits[int(digits.length)]] = 48 + int(10);
    } else if (r < 0.75 && b.length) b[int(b.length)] = int(256);
    else if (r < 0.82 && b.length >= 8) b.writeBigUInt64LE(rand() < 0.5 ? BigInt(int(4096)) : BigInt.asUintN(64, BigInt(int(2 ** 32)) << BigInt(int(33))), 0);
    else if (r < 0.9) b = b.subarray(0, int(b.length));
    else {
      const at = int(b.length + 1);
      const ins = Buffer.from(Array.from({ length: 1 + int(16) }, () => int(256)));
      b = Buffer.concat([b.subarray(0, at), ins, b.subarray(at)]);
    }
  }
  return b;
}

/** Runs one child over `files`; resolves with its lines, peak RSS and how it ended. */
function runChild(files, o) {
  return new Promise((resolve) => {
    const cmd = `ulimit -v ${o['vmem-kb']} && exec "$0" "$@"`;
    const child = spawn('sh', ['-c', cmd, process.execPath, fileURLToPath(import.meta.url), '--child', ...files], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    let hung = false;
    const timer = setTimeout(() => {
      hung = true;
      child.kill('SIGKILL');
    }, o.timeout * 1000);
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      const lines = out
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l));
      const rss = lines.find((l) => 'maxRssKb' in l)?.maxRssKb ?? null;
      resolve({ lines: lines.filter((l) => 'file' in l), rssKb: rss, status, signal, hung, stderr: err.slice(-2000) });
    });
  });
}

async function main() {
  const o = args();
  const { createLanguageModel, TextCorpus } = createRequire(import.meta.url)(pkg);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rnnkit-fuzz-loader-'));
  const started = Date.now();
  // The base: a checkpoint of a small LSTM language model after two Adam steps.
  const text = 'the cat sat on the mat. the dog sat on the log. '.repeat(20);
  const corpus = TextCorpus.fromString(text, { seqLen: 8, batchSize: 2 });
  const model = createLanguageModel({ tokenizer: corpus.tokenizer, cell: 'lstm', embedDim: 4, hiddenSize: 6, numLayers: 1 });
  const base = path.join(dir, 'base.safetensors');
  await model.fit(corpus, { maxSteps: 2, checkpoint: { path: base, every: 2 } });
  const good = fs.readFileSync(base);

  const rand = prng(o.seed);
  const mutants = [];
  for (let i = 0; i < o.mutants; i++) {
    const p = path.join(dir, `mutant-${i}.safetensors`);
    fs.writeFileSync(p, mutate(good, rand));
    mutants.push(p);
  }
  // Files that must be refused from their first bytes, without reading (or allocating) more.
  const absurd = [];
  const sparse = path.join(dir, 'sparse-1g.safetensors');
  fs.closeSync(fs.openSync(sparse, 'w'));
  fs.truncateSync(sparse, 2 ** 30);
  absurd.push(sparse);
  const endless = path.join(dir, 'endless-header.safetensors');
  fs.closeSync(fs.openSync(endless, 'w'));
  fs.truncateSync(endless, 2 ** 30);
  const fd = fs.openSync(endless, 'r+');
  const start = Buffer.alloc(10);
  start.writeBigUInt64LE(99_000_000n, 0);
  start.write('{"', 8);
  fs.writeSync(fd, start, 0, start.length, 0);
  fs.closeSync(fd);
  absurd.push(endless);
  // A 7 KB file whose config declares ~8e8 parameters (3.3 GB of f32), with one tensor.
  const huge = Buffer.from(good);
  const n = Number(huge.readBigUInt64LE(0));
  const header = JSON.parse(huge.subarray(8, 8 + n).toString('utf8'));
  const cfg = JSON.parse(header.__metadata__.config);
  Object.assign(cfg, { vocab_size: 250000, embed_dim: 1024, hidden_size: 2048, num_layers: 2 });
  header.__metadata__.config = JSON.stringify(cfg);
  const name = Object.keys(header).find((k) => k !== '__metadata__');
  const [s, e] = header[name].data_offsets;
  const h2 = { __metadata__: header.__metadata__, [name]: { ...header[name], data_offsets: [0, e - s] } };
  const hb = Buffer.from(JSON.stringify(h2));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(hb.length), 0);
  const hugeFile = path.join(dir, 'huge-config.safetensors');
  fs.writeFileSync(hugeFile, Buffer.concat([len, hb, huge.subarray(8 + n + s, 8 + n + e)]));
  absurd.push(hugeFile);
  if (fs.existsSync('/dev/zero')) absurd.push('/dev/zero');
  const fifo = path.join(dir, 'pipe.safetensors');
  try {
    execFileSync('mkfifo', [fifo]);
    absurd.push(fifo);
  } catch {
    // No mkfifo on this system: the FIFO case is skipped.
  }
  absurd.push(dir);

  const failures = [];
  const codes = {};
  let loaded = 0;
  let refused = 0;
  let peakKb = 0;
  let absurdPeakKb = 0;
  const tally = (lines) => {
    for (const l of lines) {
      if (l.ok) loaded++;
      else {
        refused++;
        codes[l.code] = (codes[l.code] ?? 0) + 1;
        if (typeof l.code !== 'string' || !/^ERR_RNNKIT_/.test(l.code)) failures.push({ kind: 'uncoded', ...l });
        else if (!l.namesFile) failures.push({ kind: 'file not named', ...l });
      }
    }
  };
  const check = async (files, isAbsurd) => {
    const r = await runChild(files, o);
    tally(r.lines);
    if (r.rssKb !== null) {
      peakKb = Math.max(peakKb, r.rssKb);
      if (isAbsurd) absurdPeakKb = Math.max(absurdPeakKb, r.rssKb);
    }
    if (r.hung) failures.push({ kind: 'hang', files: files.length === 1 ? files[0] : `${files.length} files`, done: r.lines.length });
    else if (r.status !== 0 || r.lines.length !== files.length)
      failures.push({ kind: 'crash', status: r.status, signal: r.signal, file: files[r.lines.length], stderr: r.stderr });
    if (isAbsurd && r.rssKb !== null && r.rssKb > o['max-rss-mb'] * 1024) failures.push({ kind: 'peak RSS', file: files[0], rssMb: r.rssKb / 1024 });
    return r;
  };
  // Two children at a time: the machine's two cores.
  const batches = [];
  for (let i = 0; i < mutants.length; i += o.batch) batches.push(mutants.slice(i, i + o.batch));
  const absurdRuns = [];
  for (const f of absurd) {
    const t0 = Date.now();
    const r = await check([f], true);
    absurdRuns.push({
      file: path.basename(f),
      ms: Date.now() - t0,
      rssMb: r.rssKb === null ? null : +(r.rssKb / 1024).toFixed(1),
      code: r.lines[0]?.code ?? null,
    });
  }
  let next = 0;
  const worker = async () => {
    while (next < batches.length) await check(batches[next++], false);
  };
  await Promise.all([worker(), worker()]);

  const summary = {
    mutants: mutants.length,
    absurd: absurdRuns,
    loaded,
    refused,
    codes,
    crashes: failures.filter((f) => f.kind === 'crash').length,
    hangs: failures.filter((f) => f.kind === 'hang').length,
    uncoded: failures.filter((f) => f.kind === 'uncoded').length,
    unnamed: failures.filter((f) => f.kind === 'file not named').length,
    peakRssMb: +(peakKb / 1024).toFixed(1),
    absurdPeakRssMb: +(absurdPeakKb / 1024).toFixed(1),
    vmemLimitKb: o['vmem-kb'],
    seconds: +((Date.now() - started) / 1000).toFixed(1),
    failures: failures.slice(0, 20),
  };
  process.stdout.write(JSON.stringify(summary, null, 2) + '\n');
  if (!o.keep) fs.rmSync(dir, { recursive: true, force: true });
  process.exit(failures.length === 0 ? 0 : 1);
}

main().catch((e) => {
  console.error(e);
  process.exit(2);
});
