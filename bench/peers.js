#!/usr/bin/env node
'use strict';
// rnnkit against its peers in ONE run: per config and thread count, rnnkit and each peer take
// turns (rnnkit, peer, rnnkit, peer, …) so that both see the same machine load. On a shared,
// noisy VM that is the only way a ratio means something: two runs minutes apart can differ by
// ±30 % on their own (see bench/RESULTS.md).

const fs = require('fs');
const path = require('path');
const { spawn, spawnSync } = require('child_process');
const C = require('./common');
const { measureInChild } = require('./run');

/** @typedef {import('./common').BenchRecord} BenchRecord */
/**
 * What one peer run gives: its records, an error, or that the peer does not run this case.
 * @typedef {{ skip: true } | { error: string } | { records: BenchRecord[] }} PeerResult
 */
/**
 * A peer found here, and how to run it on one (config, threads).
 * @typedef {{ name: string, variant?: string, run: (config: string, threads: number, quick: boolean) => Promise<PeerResult> }} Peer
 */

const HELP = `Usage: npm run bench:peers -- [options]     (or: node bench/peers.js [options])

Runs SPEC.md's configurations on rnnkit and on every installed peer, interleaved, and prints
rnnkit/peer ratios per config and thread count. Records (with a run_id) are appended to
$PEERS_OUT/results.jsonl (default /tmp/peers/out); bench/chart.js turns them into the chart.

Peers (each skipped, with the reason, when not installed; see bench/peers/setup.sh):
  pytorch            two builds: Debian's python3-torch 1.13 (OpenBLAS; run twice when the
                     environment sets OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE: as is, and with both
                     unset) and PyPI's torch 2.15 (MKL + oneDNN) in setup.sh's venv
  brain.js           brain.js 1.6.1 (TRAIN-*-S and GEN-LSTM-b1 at 1 thread, batch 1)
  onnxruntime-node   GEN-LSTM-b1/b64 from PyTorch's ONNX export
  tfjs               @tensorflow/tfjs 4.22, two variants: the wasm and the cpu (pure JS)
                     backends (every config but TRAIN-LSTM-M, 1 thread; the cpu backend trains
                     at ~100 tokens/s, so its three TRAIN configs take ~8 minutes each a round)

Options:
  --configs LIST   as bench/run.js (default: all)
  --threads LIST   default 1,2
  --rounds N       turns per config: rnnkit and each peer run N times, alternating (default 2)
  --peers LIST     subset of pytorch,brain.js,onnxruntime-node,tfjs, or none (rnnkit alone,
                   records still tagged with a run_id for chart.js)   (default: all four)
  --quick          few steps per measurement (smoke test only)
  --json           print every record as a JSON line too
  --help           this text

Environment: PEERS_OUT (default /tmp/peers/out), PEERS_NODE_MODULES (default
/tmp/rnnkit-peers/node_modules), PYTHON (default /usr/bin/python3: Debian's torch 1.13),
TORCH2_PYTHON (default /tmp/rnnkit-peers/torch215/bin/python: the PyTorch 2.15 venv of setup.sh).`;

const PY = process.env.PYTHON || '/usr/bin/python3';
const TORCH2_PY = process.env.TORCH2_PYTHON || '/tmp/rnnkit-peers/torch215/bin/python';
const OUT = process.env.PEERS_OUT || '/tmp/peers/out';
const HERE = __dirname;

/**
 * Runs a peer script; resolves with its JSON lines, or with {skip} when it does not apply.
 * @param {string} cmd
 * @param {string[]} argv
 * @param {NodeJS.ProcessEnv} env
 * @returns {Promise<PeerResult>}
 */
function runPeer(cmd, argv, env) {
  return new Promise((resolve) => {
    const p = spawn(cmd, argv, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    p.on('error', (e) => resolve({ error: String(e.message) }));
    p.on('close', (code) => {
      if (code === 4) return resolve({ skip: true }); // the peer cannot run this config/threads
      /** @type {BenchRecord[]} */
      const recs = out
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l));
      if (code !== 0) return resolve({ error: `exit ${code}: ${(err.trim().split('\n').pop() || '').slice(0, 300)}` });
      resolve({ records: recs.filter((r) => r.median !== undefined) });
    });
  });
}

/**
 * The peers available here, each with how to run one (config, threads).
 * @param {readonly string[]} wanted
 */
function discoverPeers(wanted) {
  /** @type {Peer[]} */
  const peers = [];
  /** @type {string[]} */
  const notes = [];
  const nodeModules = process.env.PEERS_NODE_MODULES || '/tmp/rnnkit-peers/node_modules';
  if (wanted.includes('pytorch')) {
    // "Which BLAS kernels" changes PyTorch's numbers by up to ~2x, so report it for each variant.
    const machine = { ...process.env };
    const unset = { ...process.env };
    delete unset.OPENBLAS_CORETYPE;
    delete unset.OPENBLAS_L2_SIZE;
    const envSetsCore = 'OPENBLAS_CORETYPE' in process.env || 'OPENBLAS_L2_SIZE' in process.env;
    /** @type {[string, NodeJS.ProcessEnv][]} */
    const openblasVariants = envSetsCore
      ? [
          ['machine env', machine],
          ['env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE', unset],
        ]
      : [['machine env = OPENBLAS_* unset', machine]];
    if (!envSetsCore)
      notes.push(
        'pytorch: this environment sets neither OPENBLAS_CORETYPE nor OPENBLAS_L2_SIZE, so "machine env" and "env -u …" are the same run; measured once',
      );
    // Both builds: Debian's (OpenBLAS, run in each OpenBLAS environment) and PyPI's 2.15 venv
    // (MKL + oneDNN: OPENBLAS_* do not apply, so one run with them unset).
    for (const python of [PY, TORCH2_PY]) {
      const info = spawnSync(python, [path.join(HERE, 'peers/torch_peer.py'), '--info'], { env: unset, encoding: 'utf8' });
      if (info.status !== 0) {
        notes.push(`pytorch (${python}): skipped, it cannot import torch: ${(info.stdout + info.stderr).trim().split('\n').pop()}`);
        continue;
      }
      const built = JSON.parse(info.stdout.trim().split('\n').pop() ?? '');
      /** @type {[string, NodeJS.ProcessEnv][]} */
      const variants = String(built.blas).startsWith('openblas') ? openblasVariants : [['OPENBLAS_* unset', unset]];
      for (const [label, env] of variants) {
        const i = JSON.parse(
          spawnSync(python, [path.join(HERE, 'peers/torch_peer.py'), '--info'], { env, encoding: 'utf8' })
            .stdout.trim()
            .split('\n')
            .pop() ?? '',
        );
        const variant = `torch ${i.torch} ${i.blas} (${label})`;
        notes.push(
          `pytorch (${label}): ${python}: torch ${i.torch}, ${i.blas}, OPENBLAS_CORETYPE=${i.OPENBLAS_CORETYPE ?? 'unset'}, OPENBLAS_L2_SIZE=${i.OPENBLAS_L2_SIZE ?? 'unset'}`,
        );
        peers.push({
          name: 'pytorch',
          variant,
          run: (config, threads, quick) =>
            runPeer(
              python,
              [path.join(HERE, 'peers/torch_peer.py'), '--config', config, '--threads', String(threads), '--variant', variant, ...(quick ? ['--quick'] : [])],
              { ...env, OMP_NUM_THREADS: String(threads) },
            ),
        });
      }
    }
  }
  /** @type {(name: string, script: string) => void} */
  const nodePeer = (name, script) => {
    if (!wanted.includes(name)) return;
    if (!fs.existsSync(path.join(nodeModules, name))) {
      notes.push(`${name}: skipped, not installed in ${nodeModules} (run bench/peers/setup.sh)`);
      return;
    }
    peers.push({
      name,
      run: (config, threads, quick) =>
        runPeer(process.execPath, [path.join(HERE, 'peers', script), '--config', config, '--threads', String(threads), ...(quick ? ['--quick'] : [])], {
          ...process.env,
          PEERS_OUT: OUT,
        }),
    });
  };
  nodePeer('brain.js', 'brain_peer.js');
  if (wanted.includes('tfjs')) {
    for (const backend of ['wasm', 'cpu']) {
      const pkg = backend === 'wasm' ? '@tensorflow/tfjs-backend-wasm' : '@tensorflow/tfjs';
      if (!fs.existsSync(path.join(nodeModules, pkg))) {
        notes.push(`tfjs ${backend}: skipped, ${pkg} is not installed in ${nodeModules} (run bench/peers/setup.sh)`);
        continue;
      }
      const script = path.join(HERE, 'peers/tfjs_peer.js');
      peers.push({
        name: 'tfjs',
        variant: `tfjs ${backend}`,
        run: (config, threads, quick) =>
          runPeer(process.execPath, [script, '--backend', backend, '--config', config, '--threads', String(threads), ...(quick ? ['--quick'] : [])], {
            ...process.env,
            PEERS_OUT: OUT,
          }),
      });
    }
  }
  if (wanted.includes('onnxruntime-node') && fs.existsSync(path.join(nodeModules, 'onnxruntime-node'))) {
    // The ONNX model is PyTorch's GEN-LSTM step; export it once per run, and check ORT computes
    // the same logits before timing it (a fast wrong answer is not a peer).
    const exp = spawnSync(PY, [path.join(HERE, 'peers/torch_peer.py'), '--export-onnx', OUT], { encoding: 'utf8' });
    const chk =
      exp.status === 0
        ? spawnSync(process.execPath, [path.join(HERE, 'peers/ort_peer.js'), '--check'], { env: { ...process.env, PEERS_OUT: OUT }, encoding: 'utf8' })
        : null;
    if (chk === null) notes.push(`onnxruntime-node: skipped, the ONNX export needs PyTorch: ${(exp.stdout + exp.stderr).trim().split('\n').pop()}`);
    else if (chk.status !== 0) notes.push(`onnxruntime-node: skipped, its logits differ from PyTorch's: ${chk.stdout.trim()} ${chk.stderr.trim()}`);
    else {
      notes.push(`onnxruntime-node: logits checked against PyTorch before timing: ${chk.stdout.trim()}`);
      nodePeer('onnxruntime-node', 'ort_peer.js');
    }
  } else if (wanted.includes('onnxruntime-node')) {
    notes.push(`onnxruntime-node: skipped, not installed in ${nodeModules} (run bench/peers/setup.sh)`);
  }
  return { peers, notes };
}

/** The CPU as RESULTS.md names it: model, the vector extensions the kernels use, and MHz. */
function cpuDescription() {
  let text = '';
  try {
    text = fs.readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    return `${process.arch} (no /proc/cpuinfo)`;
  }
  /** @type {(name: string) => string} */
  const field = (name) => new RegExp(`^${name}\\s*:\\s*(.*)$`, 'm').exec(text)?.[1].trim() ?? '?';
  const flags = new Set(field('flags').split(/\s+/));
  const isa = ['avx2', 'fma', 'avx512f', 'avx512bw', 'avx512vl', 'avx512_vnni', 'avx512_bf16'].filter((f) => flags.has(f));
  return `${field('model name')} (family ${field('cpu family')} model ${field('model')}), ${isa.join(' ') || 'no AVX2'}, ${field('cpu MHz')} MHz, ${require('node:os').cpus().length} logical CPUs`;
}

/**
 * torch.mm's GFLOP/s at `threads` threads with every installed torch build (the fastest is the
 * GEMM ceiling the achieved GFLOP/s are read against), measured now, in the same run.
 * @param {number} threads
 * @returns {{ variant: string, gflops: number }[]}
 */
function gemmCeilings(threads) {
  /** @type {NodeJS.ProcessEnv} */
  const env = { ...process.env, OMP_NUM_THREADS: String(threads) };
  delete env.OPENBLAS_CORETYPE;
  delete env.OPENBLAS_L2_SIZE;
  const found = [];
  for (const python of [PY, TORCH2_PY]) {
    const run = spawnSync(python, [path.join(HERE, 'peers/torch_peer.py'), '--ceiling', '--threads', String(threads)], { env, encoding: 'utf8' });
    if (run.status !== 0) continue;
    const r = JSON.parse(run.stdout.trim().split('\n').pop() ?? '{}');
    found.push({ variant: r.variant, gflops: r.median });
  }
  return found;
}

async function main() {
  const args = C.parseArgs(process.argv.slice(2), {
    configs: { default: 'all' },
    threads: { default: '1,2' },
    rounds: { default: 2 },
    peers: { default: 'pytorch,brain.js,onnxruntime-node,tfjs' },
    quick: { flag: true, default: false },
    json: { flag: true, default: false },
    help: { flag: true, default: false },
  });
  if (args.help) return console.log(HELP);
  const configs = C.parseConfigs(args.configs);
  const threads = C.parseThreads(args.threads);
  if (!Number.isInteger(args.rounds) || args.rounds < 1) throw new Error('--rounds: expected an integer >= 1');
  const known = ['pytorch', 'brain.js', 'onnxruntime-node', 'tfjs', 'none'];
  const wanted = args.peers.split(',').filter(Boolean);
  for (const w of wanted) if (!known.includes(w)) throw new Error(`--peers: unknown peer "${w}" (known: ${known.join(', ')})`);
  const { peers, notes } = discoverPeers(wanted);
  notes.unshift(`CPU: ${cpuDescription()}`);
  /** @type {Map<number, number>} */
  const ceiling = new Map();
  if (wanted.includes('pytorch')) {
    for (const t of threads) {
      const found = gemmCeilings(t);
      if (found.length === 0) continue;
      ceiling.set(t, Math.max(...found.map((f) => f.gflops)));
      notes.push(`GEMM ceiling at ${t} thread(s), torch.mm 2048x2048 float32: ${found.map((f) => `${f.variant} ${C.fmt(f.gflops)} GFLOP/s`).join(', ')}`);
    }
  }
  for (const n of notes) console.error(`# ${n}`);

  const runId = new Date().toISOString();
  // The machine of the run, for bench/chart.js: no `median`, so no table reads it as a result.
  const machine = { peer: 'machine', metric: 'machine', cpu: cpuDescription(), gemm_ceiling_gflops: Object.fromEntries(ceiling), run_id: runId };
  fs.mkdirSync(OUT, { recursive: true });
  fs.appendFileSync(path.join(OUT, 'results.jsonl'), JSON.stringify(machine) + '\n');
  /** @type {BenchRecord[]} */
  const all = [];
  /** @type {(recs: readonly BenchRecord[], round: number) => void} */
  const keep = (recs, round) => {
    const tagged = recs.map((r) => ({ ...r, run_id: runId, round }));
    all.push(...tagged);
    C.appendResults(tagged, OUT);
    if (args.json) for (const r of tagged) console.log(JSON.stringify(r));
  };
  const skipped = new Set();
  for (const config of configs) {
    for (const t of threads) {
      for (let round = 0; round < args.rounds; round++) {
        process.stderr.write(`${config} threads=${t} round ${round + 1}/${args.rounds}: rnnkit`);
        try {
          keep(await measureInChild(config, t, { quick: args.quick }), round);
        } catch (e) {
          process.stderr.write(` FAILED (${C.messageOf(e)})`);
        }
        for (const p of peers) {
          const key = `${p.variant || p.name}|${config}|${t}`;
          if (skipped.has(key)) continue;
          process.stderr.write(`, ${p.variant || p.name}`);
          const r = await p.run(config, t, args.quick);
          if ('skip' in r) skipped.add(key);
          else if ('error' in r) process.stderr.write(` FAILED (${r.error})`);
          else keep(r.records, round);
        }
        process.stderr.write('\n');
      }
    }
  }

  const lines = [
    `run ${runId}${args.quick ? ' (quick: not a benchmark)' : ''}: rnnkit / peer, paired round by round (rnnkit and the peer measured back to back)`,
    '',
    C.ratioTable(C.pairedRatios(all)),
  ];
  // Each TRAIN config's achieved GFLOP/s (SPEC.md's FLOP model) and its share of the ceiling.
  const achieved = all.filter((r) => r.peer === 'rnnkit' && r.achieved_gflops !== undefined);
  if (achieved.length > 0) {
    lines.push('', '| config | threads | rnnkit GFLOP/s (median of rounds) | share of the GEMM ceiling |', '| --- | --- | --- | --- |');
    for (const config of configs) {
      for (const t of threads) {
        const rates = achieved.filter((r) => r.config === config && r.threads === t).map((r) => Number(r.achieved_gflops));
        if (rates.length === 0) continue;
        const median = rates.sort((a, b) => a - b)[Math.floor((rates.length - 1) / 2)];
        const limit = ceiling.get(t);
        lines.push(`| ${config} | ${t} | ${C.fmt(median)} | ${limit ? `${((100 * median) / limit).toFixed(0)} %` : 'no ceiling measured'} |`);
      }
    }
  }
  const report = [...notes.map((n) => `- ${n}`), '', ...lines].join('\n');
  console.log(report);
  fs.mkdirSync(OUT, { recursive: true });
  fs.writeFileSync(path.join(OUT, 'ratios.md'), report + '\n');
  console.error(`# records: ${path.join(OUT, 'results.jsonl')} (run_id ${runId}); ratios: ${path.join(OUT, 'ratios.md')}`);
}

main().catch((e) => {
  console.error(e.message || e);
  process.exit(2);
});
