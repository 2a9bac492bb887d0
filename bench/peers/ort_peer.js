#!/usr/bin/env node
'use strict';
// onnxruntime-node peer for GEN-LSTM: the PyTorch GEN-LSTM step exported to ONNX by
// torch_peer.py --export-onnx, run with the CPU execution provider bundled in the package.
const HELP = `Usage: node bench/peers/ort_peer.js --config GEN-LSTM-b1|GEN-LSTM-b64 --threads N [--quick]
       node bench/peers/ort_peer.js --check

One step = int64 token tensor [B] + state in, await session.run(), argmax of the logits in JS,
the returned h/c fed back. Threads = intraOpNumThreads (interOp 1, sequential).
--check compares 5 steps against PyTorch's reference (gen_lstm_ref.json) and exits 1 on mismatch.
Reads $PEERS_OUT/gen_lstm.onnx (default /tmp/peers/out); packages from $PEERS_NODE_MODULES.
TRAIN configs exit with status 4 (onnxruntime-node does not train).`;
const fs = require('fs');
const path = require('path');
const C = require('../common');
const U = require('./node_peer_util');

const args = U.peerArgs(HELP);
const OUT = process.env.PEERS_OUT || '/tmp/peers/out';
const MODEL = path.join(OUT, 'gen_lstm.onnx');
if (!args.check && !(args.config in C.GEN_CONFIGS)) process.exit(4);
if (!fs.existsSync(MODEL)) {
  console.error(`ort_peer: ${MODEL} missing (run: /usr/bin/python3 bench/peers/torch_peer.py --export-onnx ${OUT})`);
  process.exit(5);
}
const ort = U.load('onnxruntime-node');

/**
 * @param {Float32Array} logits
 * @param {number} B
 * @param {number} V
 * @param {BigInt64Array} tok
 */
function argmaxInto(logits, B, V, tok) {
  for (let b = 0; b < B; b++) {
    let best = 0;
    for (let v = 1; v < V; v++) if (logits[b * V + v] > logits[b * V + best]) best = v;
    tok[b] = BigInt(best);
  }
}

/** @param {number} threads */
const open = (threads) =>
  ort.InferenceSession.create(MODEL, { intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all' });

async function check() {
  const ref = JSON.parse(fs.readFileSync(path.join(OUT, 'gen_lstm_ref.json'), 'utf8'));
  const s = await open(1);
  const { B, L, H, V } = ref;
  const tok = BigInt64Array.from(ref.token0.map(BigInt));
  let h = new ort.Tensor('float32', new Float32Array(L * B * H), [L, B, H]);
  let c = new ort.Tensor('float32', new Float32Array(L * B * H), [L, B, H]);
  let maxDiff = 0;
  for (const step of ref.steps) {
    const out = await s.run({ token: new ort.Tensor('int64', tok, [B]), h, c });
    /** @type {Float32Array} */
    const logits = out.logits.data;
    logits.forEach((x, i) => (maxDiff = Math.max(maxDiff, Math.abs(x - step.logits[i]))));
    argmaxInto(logits, B, V, tok);
    ({ h_out: h, c_out: c } = out);
  }
  const passed = maxDiff < 1e-4;
  console.log(JSON.stringify({ peer: 'onnxruntime-node', check: 'vs-pytorch', max_abs_logit_diff: maxDiff, passed }));
  if (!passed) process.exit(1);
}

async function bench() {
  const g = C.GEN_CONFIGS[args.config];
  const steps = args.quick ? C.STEPS.quick : C.STEPS.full;
  const s = await open(args.threads);
  const B = g.rows;
  const tok = new BigInt64Array(B).fill(1n);
  let h = new ort.Tensor('float32', new Float32Array(g.L * B * g.H), [g.L, B, g.H]);
  let c = new ort.Tensor('float32', new Float32Array(g.L * B * g.H), [g.L, B, g.H]);
  const n = B === 1 ? steps.b1Steps : steps.b64Steps;
  const times = [];
  for (let i = 0; i < steps.genWarmup + n; i++) {
    const t0 = process.hrtime.bigint();
    const out = await s.run({ token: new ort.Tensor('int64', tok, [B]), h, c });
    argmaxInto(out.logits.data, B, g.V, tok);
    ({ h_out: h, c_out: c } = out);
    const dt = U.secondsSince(t0);
    if (i >= steps.genWarmup) times.push(dt);
  }
  const base = { peer: 'onnxruntime-node', variant: `onnxruntime-node ${U.version('onnxruntime-node')}`, config: args.config, threads: args.threads };
  const samples = B === 1 ? times.map((t) => t * 1e6) : times.map((t) => B / t);
  U.emit(base, { metric: g.metric, unit: g.unit }, samples, { quick: args.quick || undefined });
}

(args.check ? check() : bench()).catch((e) => {
  console.error(e);
  process.exit(1);
});
