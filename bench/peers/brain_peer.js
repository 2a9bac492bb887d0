#!/usr/bin/env node
'use strict';
// brain.js 1.6.1 peer for rnnkit's benchmark (pure JS, one thread, batch 1 only).
const HELP = `Usage: node bench/peers/brain_peer.js --config ID [--quick]

brain.js peer: one SPEC.md configuration per process; prints JSON records (metric, peak_rss_mb).
  TRAIN-LSTM-S, TRAIN-GRU-S, TRAIN-RNN-S: net.trainPattern(64 token ids) with the SPEC shapes
      (inputSize 64 = embedding, inputRange 96, hiddenLayers [256], outputSize 96). brain.js
      trains ONE sequence at a time (batch 1, not 32) with its own optimizer (not Adam), so
      tokens/s = 64 / time of one trainPattern call.
  GEN-LSTM-b1: 2-layer LSTM 256, E 64, V 96; one step = the network's per-step equation on the
      previous token, softmax + argmax (as net.run() does), timed per step.
brain.js has no batched generation, no TRAIN-LSTM-M-sized run in reasonable time, and no
thread setting: other configs and --threads 2 exit with status 4 (not applicable).
Packages load from $PEERS_NODE_MODULES (default /tmp/rnnkit-peers/node_modules).`;
const C = require('../common');
const U = require('./node_peer_util');

const args = U.peerArgs(HELP);
const SUPPORTED = ['TRAIN-LSTM-S', 'TRAIN-GRU-S', 'TRAIN-RNN-S', 'GEN-LSTM-b1'];
if (!SUPPORTED.includes(args.config) || args.threads !== 1) process.exit(4);

const brain = U.load('brain.js');
const steps = args.quick ? C.STEPS.quick : C.STEPS.full;
const base = { peer: 'brain.js', variant: `brain.js ${U.version('brain.js')}`, config: args.config, threads: 1 };

/**
 * @param {number} n
 * @param {number} V
 * @param {number} seed
 */
function ids(n, V, seed) {
  // LCG; any fixed random ids will do (speed does not depend on them)
  let x = seed;
  return Array.from({ length: n }, () => (x = (Math.imul(x, 1664525) + 1013904223) >>> 0) % V);
}

if (args.config.startsWith('TRAIN')) {
  const c = C.TRAIN_CONFIGS[args.config];
  const Net = { lstm: brain.recurrent.LSTM, gru: brain.recurrent.GRU, rnn: brain.recurrent.RNN }[c.cell];
  const net = new Net({ inputSize: c.E, inputRange: c.V, hiddenLayers: [c.H], outputSize: c.V, learningRate: C.LR });
  net.initialize();
  const pool = [0, 1, 2, 3].map((s) => ids(c.T, c.V, 100 + s));
  const times = [];
  for (let i = 0; i < steps.trainWarmup + steps.trainSteps; i++) {
    const t0 = process.hrtime.bigint();
    net.trainPattern(pool[i % pool.length], false);
    const dt = U.secondsSince(t0);
    if (i >= steps.trainWarmup) times.push(dt);
  }
  U.emit(
    base,
    { metric: 'train_tokens_per_s', unit: 'tok/s', step_ms_median: C.stats(times).median * 1e3 },
    times.map((t) => c.T / t),
    {
      note: `batch 1 (brain.js trains one sequence at a time; SPEC batch is ${c.B}); ${c.cell === 'rnn' ? 'ReLU RNN (brain.js has no tanh RNN); ' : ''}brain.js optimizer, not Adam`,
      quick: args.quick || undefined,
    },
  );
} else {
  const c = C.GEN_CONFIGS['GEN-LSTM-b1'];
  const net = new brain.recurrent.LSTM({ inputSize: c.E, inputRange: c.V, hiddenLayers: Array(c.L).fill(c.H), outputSize: c.V });
  net.initialize();
  const model = net.model;
  const n = steps.genWarmup + steps.b1Steps;
  // net.run() stops at the END token (id 0), which an untrained net predicts at random points;
  // driving its per-step equations directly (what run() does inside) gives every step a time.
  let prev = 1;
  const times = [];
  for (let i = 0; i < n; i++) {
    while (model.equations.length <= i) net.bindEquation();
    const t0 = process.hrtime.bigint();
    const out = model.equations[i].runIndex(prev).weights;
    let best = 0;
    for (let v = 1; v < out.length; v++) if (out[v] > out[best]) best = v;
    prev = best;
    const dt = U.secondsSince(t0);
    if (i >= steps.genWarmup) times.push(dt);
  }
  U.emit(
    base,
    { metric: 'us_per_token', unit: 'us/token' },
    times.map((t) => t * 1e6),
    {
      note: 'per-step equation + argmax (as net.run); brain.js has no batch > 1',
      quick: args.quick || undefined,
    },
  );
}
