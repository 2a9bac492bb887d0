#!/usr/bin/env node
'use strict';
// The defaults against hand-written recipes: `rnnkit train` with no tuning flags versus the
// recipes of docs/CLI.md, on the bundled sentiment data (classify), a capitalisation tagging set
// made from the bundled novel (scripts/make-caps-dataset.mjs) and the novel itself (language
// model). Each pair runs interleaved in one process tree (default, recipe, default, recipe, ...)
// so that both see the same machine; the table gives each run's validation figure and wall time,
// and the median over the repeats.

const { spawnSync, execFileSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const HELP = `Usage: npm run bench:defaults -- [--repeats N] [--only sentiment,caps,novel] [--json]

Runs dist/cli/index.js (run \`npm run build\` first) on each data set with no tuning flags and with
the hand-written recipe beside it, N times each (default 1), interleaved, and prints a table:
validation accuracy (classify, tag; higher is better) or bits per character (language model;
lower is better), and wall seconds.`;

const root = path.join(__dirname, '..');
const cli = path.join(root, 'dist', 'cli', 'index.js');

/** @typedef {{ value: number, seconds: number, steps: number, stopReason: string }} Run */
/** @typedef {{ name: string, metric: 'accuracy' | 'bits', data: string[], recipe: string[] }} Comparison */

/**
 * The comparisons: the data, the task flags both runs share, and the recipe's flags.
 * @param {string} dir where the generated tagging set goes
 * @returns {Comparison[]}
 */
function comparisons(dir) {
  const caps = path.join(dir, 'caps.jsonl');
  execFileSync(process.execPath, [path.join(root, 'scripts', 'make-caps-dataset.mjs'), caps], { stdio: 'ignore' });
  const sentiment = path.join(root, 'data', 'sentiment.jsonl');
  return [
    {
      name: 'sentiment',
      metric: 'accuracy',
      data: [sentiment, '--task', 'classify'],
      recipe: ['--tokenizer', 'word', '--min-count', '2', '--labels', '0,1', '--cell', 'gru', '--hidden', '64', '--pooling', 'max', '--epochs', '5'],
    },
    {
      name: 'sentiment, recipe split',
      metric: 'accuracy',
      data: [sentiment, '--task', 'classify', '--validation', '0.2', '--seed', '7'],
      recipe: ['--tokenizer', 'word', '--min-count', '2', '--labels', '0,1', '--cell', 'gru', '--hidden', '64', '--pooling', 'max', '--epochs', '5'],
    },
    {
      name: 'caps (tag)',
      metric: 'accuracy',
      data: [caps, '--task', 'tag'],
      recipe: ['--cell', 'gru', '--hidden', '64', '--epochs', '5'],
    },
    {
      name: 'novel (language model)',
      metric: 'bits',
      data: [path.join(root, 'data', 'pride-and-prejudice.txt')],
      recipe: ['--cell', 'lstm', '--hidden', '128', '--layers', '1', '--time-limit', '120'],
    },
  ];
}

/**
 * One `rnnkit train --json` run: its validation figure and wall seconds.
 * @param {string[]} args
 * @param {string} out
 * @returns {Run}
 */
function run(args, out) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(process.execPath, [cli, 'train', ...args, '--out', out, '--json'], { encoding: 'utf8', maxBuffer: 1 << 28 });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0) throw new Error(`rnnkit train ${args.join(' ')} failed (${r.status}): ${r.stderr.split('\n').slice(-3).join(' ')}`);
  const result = JSON.parse(r.stdout);
  const value = result.metrics ? result.metrics.accuracy : result.valBitsPerToken;
  return { value, seconds, steps: result.steps, stopReason: result.stopReason };
}

/** @param {number[]} xs */
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

function main() {
  const argv = process.argv.slice(2);
  if (argv.includes('--help')) return console.log(HELP);
  /** @type {(flag: string, fallback: string) => string} */
  const at = (flag, fallback) => (argv.includes(flag) ? argv[argv.indexOf(flag) + 1] : fallback);
  const repeats = Number(at('--repeats', '1'));
  const only = at('--only', '');
  if (!fs.existsSync(cli)) throw new Error('dist/cli/index.js is missing: run `npm run build` first');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rnnkit-bench-defaults-'));
  const rows = [];
  try {
    for (const c of comparisons(dir)) {
      if (only && !only.split(',').some((/** @type {string} */ o) => c.name.startsWith(o))) continue;
      /** @type {{ defaults: Run[], recipe: Run[] }} */
      const runs = { defaults: [], recipe: [] };
      for (let i = 0; i < repeats; i++) {
        runs.defaults.push(run(c.data, path.join(dir, 'd.safetensors')));
        runs.recipe.push(run([...c.data, ...c.recipe], path.join(dir, 'r.safetensors')));
      }
      /** @param {Run[]} rs */
      const summary = (rs) => ({ value: median(rs.map((r) => r.value)), seconds: median(rs.map((r) => r.seconds)), runs: rs });
      rows.push({ name: c.name, metric: c.metric, recipe: c.recipe.join(' '), defaults: summary(runs.defaults), recipeRun: summary(runs.recipe) });
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  if (argv.includes('--json')) return rows.forEach((r) => console.log(JSON.stringify(r)));
  console.log(`${os.cpus()[0].model}, ${os.cpus().length} cores; ${repeats} run${repeats === 1 ? '' : 's'} each, medians\n`);
  console.log('| data | metric | defaults | s | recipe | s | recipe flags |');
  console.log('| --- | --- | --- | --- | --- | --- | --- |');
  for (const r of rows) {
    /** @param {number} v */
    const f = (v) => (r.metric === 'bits' ? v.toFixed(3) : v.toFixed(4));
    console.log(
      `| ${r.name} | ${r.metric === 'bits' ? 'bits/char (lower is better)' : 'validation accuracy'} | ${f(r.defaults.value)} | ${r.defaults.seconds.toFixed(1)} | ${f(r.recipeRun.value)} | ${r.recipeRun.seconds.toFixed(1)} | \`${r.recipe}\` |`,
    );
  }
}

main();
