#!/usr/bin/env node
'use strict';
// TensorFlow.js peer for rnnkit's benchmark: the `cpu` (pure JS) and `wasm` backends of
// @tensorflow/tfjs 4.22 (tfjs-node, the native backend, cannot be installed here: its install
// script downloads libtensorflow). Both backends run on one thread in Node.
const HELP = `Usage: node bench/peers/tfjs_peer.js --backend cpu|wasm --config ID --threads 1 [--quick]

TensorFlow.js peer: one SPEC.md configuration per process; prints JSON records (metric,
peak_rss_mb) with peer "tfjs" and the backend in the variant.
  TRAIN-LSTM-S, TRAIN-GRU-S, TRAIN-RNN-S: tf.layers embedding → lstm/gru/simpleRNN(tanh)
      (returnSequences) → dense(V) on every step; one step = tf.train.adam(2e-3).minimize of
      softmax cross-entropy on a [B, T] batch, the loss read back (dataSync), as rnnkit returns
      it. The wasm backend has no gradient for gather (UnsortedSegmentSum), so there the
      embedding is one-hot(V) → dense(E, no bias): the same function.
  GEN-LSTM-b1, GEN-LSTM-b64: the 2-layer LSTM built stateful with batch input [B, 1];
      one step = predictOnBatch(previous tokens) → logits read back → argmax in JS.
      The cpu backend times 100 batch-64 steps (SPEC.md), the wasm backend 300.
TRAIN-LSTM-M and --threads 2 exit with status 4 (not applicable: the M model does not fit the
wasm backend's 4 GiB and takes hours on the cpu backend; neither backend uses threads in Node).
Packages load from $PEERS_NODE_MODULES (default /tmp/rnnkit-peers/node_modules).`;
const C = require('../common');
const U = require('./node_peer_util');

const args = U.peerArgs(HELP, { backend: { default: 'wasm' } });
const SUPPORTED = ['TRAIN-LSTM-S', 'TRAIN-GRU-S', 'TRAIN-RNN-S', 'GEN-LSTM-b1', 'GEN-LSTM-b64'];
if (!['cpu', 'wasm'].includes(args.backend)) {
  console.error(`tfjs_peer: --backend must be cpu or wasm, got ${JSON.stringify(args.backend)}`);
  process.exit(2);
}
if (!SUPPORTED.includes(args.config) || args.threads !== 1) process.exit(4);

const tf = U.load('@tensorflow/tfjs');
const steps = args.quick ? C.STEPS.quick : C.STEPS.full;
const base = { peer: 'tfjs', variant: `tfjs ${U.version('@tensorflow/tfjs')} ${args.backend}`, config: args.config, threads: 1 };

/**
 * Fixed pseudo-random token ids (speed does not depend on them).
 * @param {number} n
 * @param {number} V
 * @param {number} seed
 */
function ids(n, V, seed) {
  let x = seed;
  return Int32Array.from({ length: n }, () => (x = (Math.imul(x, 1664525) + 1013904223) >>> 0) % V);
}

// tf.layers' default recurrent initializer is orthogonal, a QR decomposition in JS that takes
// minutes on a [256, 1024] kernel; the initial values do not change the time of a step.
const FAST_INIT = { recurrentInitializer: 'glorotUniform' };

/**
 * @param {import('../common').Cell} cell
 * @param {Record<string, unknown>} options
 */
function recurrentLayer(cell, options) {
  if (cell === 'lstm') return tf.layers.lstm({ ...FAST_INIT, ...options });
  if (cell === 'gru') return tf.layers.gru({ ...FAST_INIT, ...options });
  return tf.layers.simpleRNN({ ...FAST_INIT, ...options, activation: 'tanh' });
}

/** @param {import('../common').TrainConfig} c */
function train(c) {
  const oneHotEmbedding = args.backend === 'wasm';
  const model = tf.sequential();
  if (oneHotEmbedding) model.add(tf.layers.dense({ units: c.E, useBias: false, inputShape: [c.T, c.V] }));
  else model.add(tf.layers.embedding({ inputDim: c.V, outputDim: c.E, inputLength: c.T }));
  for (let l = 0; l < c.L; l++) model.add(recurrentLayer(c.cell, { units: c.H, returnSequences: true }));
  model.add(tf.layers.dense({ units: c.V }));
  const optimizer = tf.train.adam(C.LR);
  // A pool of 4 batches, made once: x [B, T] ids (or their one-hot rows), y one-hot [B, T, V].
  const pool = [0, 1, 2, 3].map((s) => {
    const x = tf.tensor2d(ids(c.B * c.T, c.V, 100 + s), [c.B, c.T], 'int32');
    const y = tf.oneHot(tf.tensor2d(ids(c.B * c.T, c.V, 200 + s), [c.B, c.T], 'int32'), c.V);
    return { x: oneHotEmbedding ? tf.oneHot(x, c.V).toFloat() : x, y };
  });
  const times = [];
  for (let i = 0; i < steps.trainWarmup + steps.trainSteps; i++) {
    const { x, y } = pool[i % pool.length];
    const t0 = process.hrtime.bigint();
    const cost = optimizer.minimize(() => tf.losses.softmaxCrossEntropy(y, model.apply(x)), true);
    const loss = cost.dataSync()[0];
    cost.dispose();
    const dt = U.secondsSince(t0);
    if (!Number.isFinite(loss)) throw new Error(`tfjs_peer: loss ${loss} at step ${i}`);
    if (i >= steps.trainWarmup) times.push(dt);
  }
  U.emit(
    base,
    { metric: 'train_tokens_per_s', unit: 'tok/s' },
    times.map((t) => (c.B * c.T) / t),
    {
      note: `${oneHotEmbedding ? 'embedding as one-hot → dense (wasm has no gather gradient); ' : ''}one thread`,
      quick: args.quick || undefined,
    },
  );
}

/** @param {import('../common').GenConfig} c */
function generate(c) {
  const B = c.rows;
  const model = tf.sequential();
  model.add(tf.layers.embedding({ inputDim: c.V, outputDim: c.E, batchInputShape: [B, 1] }));
  for (let l = 0; l < c.L; l++) model.add(recurrentLayer('lstm', { units: c.H, stateful: true, returnSequences: l < c.L - 1 }));
  model.add(tf.layers.dense({ units: c.V }));
  const timed = B === 1 ? steps.b1Steps : args.backend === 'cpu' && !args.quick ? 100 : steps.b64Steps;
  let tokens = ids(B, c.V, 7);
  const times = [];
  for (let i = 0; i < steps.genWarmup + timed; i++) {
    const t0 = process.hrtime.bigint();
    const logits = tf.tidy(() => model.predictOnBatch(tf.tensor2d(tokens, [B, 1], 'int32')));
    const values = logits.dataSync();
    logits.dispose();
    const next = new Int32Array(B);
    for (let b = 0; b < B; b++) {
      let best = 0;
      for (let v = 1; v < c.V; v++) if (values[b * c.V + v] > values[b * c.V + best]) best = v;
      next[b] = best;
    }
    tokens = next;
    const dt = U.secondsSince(t0);
    if (i >= steps.genWarmup) times.push(dt);
  }
  const samples = c.metric === 'us_per_token' ? times.map((t) => t * 1e6) : times.map((t) => B / t);
  U.emit(base, { metric: c.metric, unit: c.unit }, samples, {
    note: 'stateful tf.layers LSTM, predictOnBatch per token, one thread',
    quick: args.quick || undefined,
  });
}

async function main() {
  if (args.backend === 'wasm') U.load('@tensorflow/tfjs-backend-wasm');
  if (!(await tf.setBackend(args.backend))) throw new Error(`tfjs_peer: backend ${args.backend} did not initialise`);
  await tf.ready();
  if (args.config in C.GEN_CONFIGS) generate(C.GEN_CONFIGS[args.config]);
  else train(C.TRAIN_CONFIGS[args.config]);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
