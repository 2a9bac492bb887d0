#!/usr/bin/env node
'use strict';
// results.jsonl → bench/chart.svg (rnnkit vs PyTorch per config) and, with --update-results,
// the generated tables of bench/RESULTS.md. Hand-written SVG: no plotting dependency to install.

const fs = require('fs');
const path = require('path');
const C = require('./common');

/** @typedef {import('./common').BenchRecord} BenchRecord */
/** A record of bench/peers.js: it names its run. */
/** @typedef {BenchRecord & { run_id: string }} RunRecord */
/** One implementation/config/threads/metric over a run's rounds; `medians` holds each round's median. */
/** @typedef {RunRecord & { medians: number[] }} RoundsRow */
/**
 * One row of the chart: rnnkit against the best PyTorch variant of the run.
 * @typedef {{
 *   config: string, threads: number, unit: string, mine: number, torch: number, torchVariant: string | undefined,
 *   x: number, lo: number, hi: number, pairs: number,
 * }} ChartRow
 */

const HELP = `Usage: node bench/chart.js [results.jsonl] [--run RUN_ID[,RUN_ID…]] [--out FILE] [--update-results]

Reads the records of one run of bench/peers.js (the latest run_id in the file unless --run;
several comma-separated run ids are pooled, e.g. when TRAIN-LSTM-M was run on its own),
takes per implementation/config/threads the median over that run's rounds, and writes an SVG bar
chart of rnnkit's speed relative to PyTorch (best PyTorch variant of the run = 1.0, log scale).
  results.jsonl      default $PEERS_OUT/results.jsonl ($PEERS_OUT default /tmp/peers/out)
  --out FILE         default bench/chart.svg
  --update-results   also rewrite the generated block of bench/RESULTS.md (the full table and
                     the paired ratios), between its <!-- results:begin --> and <!-- results:end -->
  --help             this text`;

/**
 * @param {string} file
 * @param {string} runId
 */
function load(file, runId) {
  /** @type {RunRecord[]} */
  const recs = fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim().startsWith('{'))
    .map((l) => JSON.parse(l))
    .filter((r) => r.median !== undefined && r.run_id !== undefined);
  if (!recs.length) throw new Error(`${file}: no records of bench/peers.js (records with a run_id)`);
  // one run, or several (comma list) when a long config was run on its own
  const runs = runId
    ? runId.split(',')
    : [
        recs
          .map((r) => r.run_id)
          .sort()
          .pop(),
      ];
  const run = runs.join(', ');
  const mine = recs.filter((r) => runs.includes(r.run_id));
  if (!mine.length) throw new Error(`${file}: no records of run ${run}`);
  // median over rounds of the per-round medians; min/max over all rounds
  /** @type {Map<string, RoundsRow>} */
  const agg = new Map();
  for (const r of mine) {
    const k = [r.peer, r.variant, r.config, r.threads, r.metric].join('|');
    const a = agg.get(k) ?? { ...r, medians: [], min: r.min, max: r.max, n: 0 };
    agg.set(k, a);
    a.medians.push(r.median);
    a.min = Math.min(a.min, r.min);
    a.max = Math.max(a.max, r.max);
    a.n += r.n;
  }
  for (const a of agg.values()) a.median = C.stats(a.medians).median;
  return { run, rows: [...agg.values()], records: mine, quick: mine.some((r) => r.quick), machine: machineOf(file, run.split(', ')) };
}

/**
 * The lines naming the run's CPU and its GEMM ceiling (bench/peers.js's `machine` record);
 * none for a run that recorded no machine.
 * @param {string} file
 * @param {readonly string[]} runs
 * @returns {string[]}
 */
function machineOf(file, runs) {
  const found = fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.includes('"metric":"machine"'))
    .map((l) => JSON.parse(l))
    .find((r) => runs.includes(r.run_id));
  if (!found) return [];
  /** @type {[string, number][]} */
  const ceilings = Object.entries(found.gemm_ceiling_gflops ?? {});
  const limit = ceilings.map(([t, g]) => `${t} thread${t === '1' ? '' : 's'} ${C.fmt(g)} GFLOP/s`).join(', ');
  return [`CPU: ${found.cpu}`, ...(limit ? [`GEMM ceiling (torch.mm 2048² float32, same run): ${limit}`] : [])];
}

/**
 * @param {readonly RoundsRow[]} rows
 * @param {readonly RunRecord[]} records
 * @returns {ChartRow[]}
 */
function chartData(rows, records) {
  // The bar is the same paired ratio as the RESULTS.md table (rnnkit and PyTorch measured back
  // to back, median over rounds); the whisker spans the paired ratios of the rounds.
  const ratios = C.pairedRatios(records).filter((r) => r.peer === 'pytorch' && r.metric !== 'peak_rss_mb');
  /** @type {ChartRow[]} */
  const out = [];
  for (const config of C.ALL_CONFIGS) {
    for (const threads of [1, 2]) {
      const cands = ratios.filter((r) => r.config === config && r.threads === threads);
      if (!cands.length) continue;
      // the best PyTorch variant of the run: the one rnnkit leads by least in paired rounds (the
      // targets are against PyTorch at its best)
      const best = cands.reduce((a, b) => (b.faster < a.faster ? b : a));
      const lo = C.higherIsBetter(best.metric) ? best.lo : 1 / best.hi;
      const hi = C.higherIsBetter(best.metric) ? best.hi : 1 / best.lo;
      out.push({
        config,
        threads,
        unit: best.unit,
        mine: best.rnnkit,
        torch: best.value,
        torchVariant: best.variant,
        x: best.faster,
        lo,
        hi,
        pairs: best.pairs,
      });
    }
  }
  void rows;
  return out;
}

/**
 * @param {readonly ChartRow[]} data
 * @param {string} title
 * @param {readonly string[]} machine
 */
function svg(data, title, machine) {
  const rowH = 44;
  const left = 200;
  const plotW = 520;
  const top = 56 + 14 * machine.length;
  const variants = [...new Set(data.map((d) => d.torchVariant))];
  const h = top + data.length * rowH + 56 + 16 * variants.length;
  const w = left + plotW + 250; // room for the value labels right of the longest bar
  const xs = data.flatMap((d) => [d.x, d.lo, d.hi]).concat([1]);
  // log axis covering every value with a decade of margin, so 0.05x and 3x both fit
  const lo = Math.pow(10, Math.floor(Math.log10(Math.min(...xs))));
  const hi = Math.pow(10, Math.ceil(Math.log10(Math.max(...xs) * 1.01)));
  /** @type {(v: number) => number} */
  const X = (v) => left + (Math.log10(v / lo) / Math.log10(hi / lo)) * plotW;
  /** @type {(s: unknown) => string} */
  const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" font-family="sans-serif" font-size="12">`,
    `<rect width="${w}" height="${h}" fill="white"/>`,
    `<text x="${w / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${esc(title)}</text>`,
    `<text x="${w / 2}" y="40" text-anchor="middle" fill="#555">rnnkit speed relative to PyTorch measured back to back (= 1×), log scale; higher is better; whisker = range over rounds</text>`,
    ...machine.map((line, i) => `<text x="${w / 2}" y="${56 + 14 * i}" text-anchor="middle" font-size="11" fill="#555">${esc(line)}</text>`),
  ];
  for (let d = lo; d <= hi * 1.0001; d *= 10) {
    for (const m of [1, 2, 5]) {
      const v = d * m;
      if (v > hi * 1.0001) break;
      parts.push(`<line x1="${X(v)}" y1="${top - 4}" x2="${X(v)}" y2="${top + data.length * rowH}" stroke="${m === 1 ? '#ccc' : '#eee'}"/>`);
      parts.push(`<text x="${X(v)}" y="${top + data.length * rowH + 16}" text-anchor="middle" fill="#555">${v >= 1 ? v : v.toPrecision(1)}×</text>`);
    }
  }
  data.forEach((d, i) => {
    const y = top + i * rowH;
    parts.push(`<text x="${left - 8}" y="${y + 16}" text-anchor="end">${esc(d.config)}</text>`);
    parts.push(`<text x="${left - 8}" y="${y + 30}" text-anchor="end" fill="#555">${d.threads} thread${d.threads > 1 ? 's' : ''}</text>`);
    /** @type {(v: number, yy: number, color: string, label: string, labelAt?: number) => void} */
    const bar = (v, yy, color, label, labelAt = v) => {
      parts.push(`<rect x="${left}" y="${yy}" width="${Math.max(1, X(v) - left)}" height="16" fill="${color}"/>`);
      parts.push(`<text x="${X(labelAt) + 6}" y="${yy + 12}" fill="#333">${esc(label)}</text>`);
    };
    bar(d.x, y + 2, '#d9480f', `rnnkit ${C.fmt(d.mine, d.unit)} ${d.unit} (${d.x.toFixed(2)}×)`, d.pairs > 1 ? Math.max(d.x, d.hi) : d.x);
    if (d.pairs > 1) {
      // whisker: the range of the per-round paired ratios (the run's visible noise)
      parts.push(`<line x1="${X(d.lo)}" y1="${y + 10}" x2="${X(d.hi)}" y2="${y + 10}" stroke="#222" stroke-width="1.5"/>`);
      for (const v of [d.lo, d.hi]) parts.push(`<line x1="${X(v)}" y1="${y + 5}" x2="${X(v)}" y2="${y + 15}" stroke="#222" stroke-width="1.5"/>`);
    }
    bar(1, y + 20, '#868e96', `PyTorch ${C.fmt(d.torch, d.unit)} ${d.unit}`);
  });
  parts.push(`<line x1="${X(1)}" y1="${top - 4}" x2="${X(1)}" y2="${top + data.length * rowH}" stroke="#333" stroke-dasharray="4 3"/>`);
  // which PyTorch build each bar is (the one rnnkit leads by least, per row), one per line
  parts.push(`<text x="20" y="${top + data.length * rowH + 40}" fill="#555">PyTorch per row = the build rnnkit leads by least (paired rounds):</text>`);
  variants.forEach((v, i) => parts.push(`<text x="36" y="${top + data.length * rowH + 56 + 16 * i}" fill="#555">${esc(v)}</text>`));
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}

/** @param {readonly RoundsRow[]} rows */
function table(rows) {
  const lines = ['| implementation | variant | config | threads | unit | median | min – max | n |', '|---|---|---|---|---|---|---|---|'];
  /** @type {(r: RoundsRow) => (number | string)[]} */
  const order = (r) => [C.ALL_CONFIGS.indexOf(r.config), r.metric === 'peak_rss_mb' ? 1 : 0, r.threads, r.peer === 'rnnkit' ? 0 : 1, r.peer, r.variant ?? ''];
  /** @type {(a: RoundsRow, b: RoundsRow) => number} */
  const cmp = (a, b) => {
    const x = order(a);
    const y = order(b);
    for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return x[i] < y[i] ? -1 : 1;
    return 0;
  };
  for (const r of [...rows].sort(cmp)) {
    const range = r.metric === 'peak_rss_mb' ? '' : `${C.fmt(r.min, r.unit)} – ${C.fmt(r.max, r.unit)}`;
    lines.push(
      `| ${r.peer} | ${r.variant} | ${r.config} | ${r.threads} | ${r.metric === 'peak_rss_mb' ? 'peak RSS MiB' : r.unit} | ${C.fmt(r.median, r.unit)} | ${range} | ${r.metric === 'peak_rss_mb' ? '' : r.n} |`,
    );
  }
  return lines.join('\n');
}

function main() {
  const argv = process.argv.slice(2);
  const positional = argv[0] && !argv[0].startsWith('--') ? argv.shift() : undefined;
  const file = positional || path.join(process.env.PEERS_OUT || '/tmp/peers/out', 'results.jsonl');
  const args = C.parseArgs(argv, {
    run: { default: '' },
    out: { default: path.join(__dirname, 'chart.svg') },
    updateResults: { flag: true, default: false },
    help: { flag: true, default: false },
  });
  if (args.help) return console.log(HELP);
  const { run, rows, records, quick, machine } = load(file, args.run);
  const data = chartData(rows, records);
  if (!data.length) throw new Error(`run ${run}: no config has both rnnkit and PyTorch records`);
  const runs = run.split(', ');
  const when = runs.length > 1 ? `${runs[0].slice(0, 16)}Z + ${runs.length - 1} more run(s)` : runs[0].slice(0, 16) + 'Z';
  fs.writeFileSync(args.out, svg(data, `rnnkit vs PyTorch, ${when}${quick ? ' (QUICK: not a benchmark)' : ''}`, machine));
  console.error(`wrote ${args.out} (${data.length} bars, run ${run})`);
  if (args.updateResults) {
    const md = path.join(__dirname, 'RESULTS.md');
    const block = [
      '<!-- results:begin (generated by `node bench/chart.js --update-results`; do not edit by hand) -->',
      `Run \`${run}\`${quick ? ' — QUICK run, not a benchmark' : ''}. Medians over the run's rounds (each round's median of its steps); min – max over all steps of all rounds.`,
      '',
      table(rows),
      '',
      '### Ratios (rnnkit / peer, paired round by round)',
      '',
      C.ratioTable(C.pairedRatios(records)),
      '<!-- results:end -->',
    ].join('\n');
    const text = fs.readFileSync(md, 'utf8');
    const re = /<!-- results:begin[\s\S]*?<!-- results:end -->/;
    if (!re.test(text)) throw new Error(`${md}: no <!-- results:begin --> … <!-- results:end --> block`);
    fs.writeFileSync(
      md,
      text.replace(re, () => block),
    );
    console.error(`updated ${md}`);
  }
}

try {
  main();
} catch (e) {
  console.error(C.messageOf(e));
  process.exit(2);
}
