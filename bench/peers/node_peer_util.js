'use strict';
// Helpers of the Node peer scripts: load a peer package from $PEERS_NODE_MODULES (peers are
// installed outside the repository, see bench/peers/setup.sh), print records, time steps.
const fs = require('fs');
const path = require('path');
const C = require('../common');

const NODE_MODULES = process.env.PEERS_NODE_MODULES || '/tmp/rnnkit-peers/node_modules';

/**
 * A peer package, from outside the repository. Its API is untyped here: the peer packages are
 * not dependencies of rnnkit, so their type declarations are not installed with it.
 * @param {string} name
 * @returns {any}
 */
function load(name) {
  return require(require.resolve(name, { paths: [NODE_MODULES] }));
}

/**
 * @param {string} name
 * @returns {string | null}
 */
function version(name) {
  try {
    return JSON.parse(fs.readFileSync(path.join(NODE_MODULES, name, 'package.json'), 'utf8')).version;
  } catch {
    return null;
  }
}

/**
 * Prints the metric record and the process's peak RSS, as bench/run.js's child does.
 * @param {{ peer: string, variant: string, config: string, threads: number }} base
 * @param {{ metric: string, unit: string, [field: string]: unknown }} metricRecord
 * @param {number[]} samples
 * @param {Record<string, unknown>} [extra]
 */
function emit(base, metricRecord, samples, extra = {}) {
  const rec = { ...base, ...metricRecord, ...C.stats(samples), ...extra };
  console.log(JSON.stringify(rec));
  const rss = process.resourceUsage().maxRSS / 1024;
  console.log(JSON.stringify({ ...base, metric: 'peak_rss_mb', unit: 'MiB', median: rss, min: rss, max: rss, n: 1, ...extra }));
}

/**
 * `--config X --threads N --quick` (the interface bench/peers.js calls every peer with), plus
 * the peer's own options in `extra` (parseArgs spec, e.g. tfjs's `--backend`).
 * @template {Record<string, import('../common').OptionSpec>} [E={}]
 * @param {string} help
 * @param {E} [extra]
 */
function peerArgs(help, extra = /** @type {E} */ ({})) {
  const a = C.parseArgs(process.argv.slice(2), {
    config: { default: '' },
    threads: { default: 1 },
    quick: { flag: true, default: false },
    help: { flag: true, default: false },
    check: { flag: true, default: false },
    ...extra,
  });
  if (a.help) {
    console.log(help);
    process.exit(0);
  }
  return a;
}

/** @type {(t0: bigint) => number} */
const secondsSince = (t0) => Number(process.hrtime.bigint() - t0) / 1e9;

module.exports = { NODE_MODULES, load, version, emit, peerArgs, secondsSince };
