#!/usr/bin/env node
'use strict';
// Turn $PEERS_OUT/results.jsonl (or the file given as argument) into a markdown results table.
// When the same (peer, variant, config, threads, metric) was measured more than once, the
// last record wins.
//   node bench/peers/summarize.js [results.jsonl] > table.md
// Records of bench/run.js --json and bench/peers.js have the same shape (bench/SPEC.md).
const fs = require('fs');
const path = require('path');
// Default output directory as in bench/common.js: $PEERS_OUT, else /tmp/peers/out.
const OUT_DIR = process.env.PEERS_OUT || '/tmp/peers/out';

const file = process.argv[2] || path.join(OUT_DIR, 'results.jsonl');
const rows = new Map();
for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
  if (!line.trim()) continue;
  const r = JSON.parse(line);
  if (r.median === undefined && r.passed === undefined) continue;
  rows.set([r.peer, r.variant, r.config, r.threads, r.metric].join('|'), r);
}

/**
 * @param {number | undefined | null} v
 * @param {string} [unit]
 */
function fmt(v, unit) {
  if (v === undefined || v === null || Number.isNaN(v)) return '';
  if (/tok\/s|chars\/s/.test(unit || '')) return Math.round(v).toLocaleString('en-US');
  if (Math.abs(v) >= 100) return v.toFixed(0);
  if (Math.abs(v) >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

console.log('| peer | variant | config | threads | metric | median | min – max | n | notes |');
console.log('|---|---|---|---|---|---|---|---|---|');
for (const r of rows.values()) {
  const notes = [];
  if (r.achieved_gflops) notes.push(`${r.achieved_gflops.toFixed(0)} GFLOP/s achieved`);
  if (r.step_ms_median) notes.push(`step ${fmt(r.step_ms_median)} ms`);
  if (r.seq_ms_median) notes.push(`${fmt(r.seq_ms_median)} ms / 64-char seq`);
  if (r.embedding && r.embedding !== 'gather') notes.push(`embedding=${r.embedding}`);
  if (r.shape) notes.push(r.shape);
  if (r.note) notes.push(r.note);
  if (r.train_error) notes.push(`train error: ${r.train_error}`);
  if (r.error_last === null) notes.push('error became NaN');
  if (r.passed !== undefined) {
    if (r.loss_first !== undefined) notes.push(`loss ${r.loss_first.toFixed(2)} -> ${r.loss_last.toFixed(3)} in ${r.steps || ''} steps`);
    if (r.max_abs_diff !== undefined) notes.push(`max abs logit diff ${r.max_abs_diff.toExponential(1)}, argmax match ${r.argmax_match}`);
    notes.push(r.passed ? 'PASS' : 'FAIL');
  }
  const isCheck = String(r.config).startsWith('CHECK');
  const med = r.median !== undefined && !isCheck ? fmt(r.median, r.unit) : '';
  const range = r.min !== undefined && r.n > 1 && !isCheck ? `${fmt(r.min, r.unit)} – ${fmt(r.max, r.unit)}` : '';
  console.log(
    `| ${r.peer} | ${r.variant || ''} | ${r.config} | ${r.threads ?? ''} | ${r.unit || r.metric || ''} | ${med} | ${range} | ${isCheck ? '' : (r.n ?? '')} | ${notes.join('; ')} |`,
  );
}
