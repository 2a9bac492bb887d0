/**
 * Loss curves as pictures: a standalone SVG file (open it in any browser) and a character chart
 * for the terminal. Both are pure functions of the data: no I/O, no clock, no randomness.
 *
 * The training history of `fit` (`steps`/`loss`, `valSteps`/`valLoss`) becomes two
 * {@link Series} with {@link lossSeries}; {@link svgChart} and {@link terminalChart} draw any list
 * of series against a shared x axis (the step) and y axis (the loss).
 */

/** One named curve: points (x[i], y[i]); non-finite points are skipped when drawing. */
export interface Series {
  /** Legend text. */
  name: string;
  /** X values (steps), ascending. */
  x: readonly number[];
  /** Y values (losses), same length as `x`. */
  y: readonly number[];
}

/** The parts of a training history the charts use (a `History` from `fit` fits). */
export interface LossHistory {
  steps: readonly number[];
  loss: readonly number[];
  valSteps: readonly number[];
  valLoss: readonly number[];
}

/** Evenly spaced "nice" tick values (steps of 1, 2 or 5 × 10^k) covering a range. */
export interface Ticks {
  /** Tick values, ascending; the first ≤ the range's min and the last ≥ its max. */
  values: number[];
  /** Distance between ticks. */
  step: number;
}

/** Options of {@link svgChart}. */
export interface SvgChartOptions {
  /** Title above the plot. Default none. */
  title?: string;
  /** X axis label. Default `"step"`. */
  xLabel?: string;
  /** Y axis label. Default `"loss"`. */
  yLabel?: string;
  /** Picture width in px. Default 760. */
  width?: number;
  /** Picture height in px. Default 440. */
  height?: number;
  /**
   * Most points drawn per series; longer series are averaged down to this many (see
   * {@link downsample}), which keeps the file small for a history of one point per step.
   * Default 500.
   */
  maxPoints?: number;
}

/** Options of {@link terminalChart}. */
export interface TerminalChartOptions {
  /** Plot columns (the y labels come in addition). Default 60. */
  width?: number;
  /** Plot rows. Default 12. */
  height?: number;
}

/** Colours of the SVG series, in order (repeated when there are more series). */
const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd'];
/** Markers of the terminal series, in order (repeated when there are more series). */
const MARKERS = ['*', 'o', '+', 'x'];

/**
 * The training and validation curves of a history: `"training loss"` (every step of the history) and,
 * when the history has validation points, `"validation loss"`.
 */
export function lossSeries(history: LossHistory): Series[] {
  const out: Series[] = [{ name: 'training loss', x: history.steps, y: history.loss }];
  if (history.valSteps.length > 0) out.push({ name: 'validation loss', x: history.valSteps, y: history.valLoss });
  return out;
}

/**
 * Nice ticks for the range [min, max], about `target` of them (at least 2). A zero-width range is
 * widened around its value so that it still gets distinct ticks.
 */
export function niceTicks(min: number, max: number, target = 5): Ticks {
  if (!Number.isFinite(min) || !Number.isFinite(max) || min > max) throw new RangeError(`niceTicks: expected finite min ≤ max, got ${min}, ${max}`);
  if (min === max) {
    const pad = min === 0 ? 1 : Math.abs(min) * 0.1;
    min -= pad;
    max += pad;
  }
  const raw = (max - min) / Math.max(1, target - 1);
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const norm = raw / mag;
  const step = (norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 5 ? 5 : 10) * mag;
  const first = Math.floor(min / step + 1e-9) * step;
  const last = Math.ceil(max / step - 1e-9) * step;
  const values: number[] = [];
  for (let k = 0; first + k * step <= last + step * 1e-9; k++) values.push(roundTo(first + k * step, step));
  return { values, step };
}

/** Removes floating-point noise from a tick value (0.30000000000000004 → 0.3). */
function roundTo(value: number, step: number): number {
  const decimals = Math.max(0, -Math.floor(Math.log10(step)) + 1);
  return Number(value.toFixed(Math.min(decimals, 20)));
}

/** A tick label with as many decimals as the tick step needs (`12k` for whole thousands ≥ 10000). */
export function formatTick(value: number, step: number): string {
  if (Math.abs(step) >= 1000 && Math.abs(value) >= 10000 && value % 1000 === 0) return `${value / 1000}k`;
  const decimals = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  return value.toFixed(decimals);
}

/** The finite points of a series. */
function finitePoints(s: Series): [number, number][] {
  const pts: [number, number][] = [];
  const n = Math.min(s.x.length, s.y.length);
  for (let i = 0; i < n; i++) if (Number.isFinite(s.x[i]) && Number.isFinite(s.y[i])) pts.push([s.x[i], s.y[i]]);
  return pts;
}

/**
 * The finite points of a series, at most `maxPoints` of them: longer runs are cut into that many
 * consecutive groups of equal size (the last may be smaller), each drawn as one point at the
 * group's last x with the mean y of the group, as a history's loss at a step is the mean since
 * the previous point.
 */
export function downsample(s: Series, maxPoints: number): Series {
  const pts = finitePoints(s);
  const limit = Math.max(1, Math.floor(maxPoints));
  if (pts.length <= limit) return { name: s.name, x: pts.map((p) => p[0]), y: pts.map((p) => p[1]) };
  const size = Math.ceil(pts.length / limit);
  const x: number[] = [];
  const y: number[] = [];
  for (let i = 0; i < pts.length; i += size) {
    const group = pts.slice(i, i + size);
    x.push(group[group.length - 1][0]);
    y.push(group.reduce((sum, p) => sum + p[1], 0) / group.length);
  }
  return { name: s.name, x, y };
}

/** The x and y extent of all finite points, or null when there are none. */
function extent(series: readonly Series[]): { x0: number; x1: number; y0: number; y1: number } | null {
  let x0 = Infinity,
    x1 = -Infinity,
    y0 = Infinity,
    y1 = -Infinity;
  for (const s of series) {
    for (const [x, y] of finitePoints(s)) {
      x0 = Math.min(x0, x);
      x1 = Math.max(x1, x);
      y0 = Math.min(y0, y);
      y1 = Math.max(y1, y);
    }
  }
  return x0 === Infinity ? null : { x0, x1, y0, y1 };
}

/** Escapes text for SVG content and attribute values. */
function xml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** Rounds a coordinate to 0.01 px to keep the file small. */
function px(v: number): string {
  return String(Math.round(v * 100) / 100);
}

/**
 * A standalone SVG picture of the series: axes with nice ticks and labels, grid lines, one
 * polyline per series (averaged down to `maxPoints`; series with few points, such as validation,
 * also get dot markers), a legend and an optional title. Series without finite points appear in the legend only; with no points
 * at all the plot says "no data".
 */
export function svgChart(all: readonly Series[], options: SvgChartOptions = {}): string {
  // The extent and the ticks follow the points drawn, so a noisy step does not stretch the axis
  // past a curve that averages it away.
  const series = all.map((s) => downsample(s, options.maxPoints ?? 500));
  const W = options.width ?? 760;
  const H = options.height ?? 440;
  const m = { left: 72, right: 24, top: options.title ? 44 : 20, bottom: 56 };
  const pw = W - m.left - m.right;
  const ph = H - m.top - m.bottom;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect x="0" y="0" width="${W}" height="${H}" fill="white"/>`);
  if (options.title) out.push(`<text x="${px(W / 2)}" y="26" text-anchor="middle" font-size="16">${xml(options.title)}</text>`);
  const ext = extent(series);
  const xt = niceTicks(ext ? ext.x0 : 0, ext ? ext.x1 : 1, 6);
  const yt = niceTicks(ext ? ext.y0 : 0, ext ? ext.y1 : 1, 6);
  const xa = xt.values[0],
    xb = xt.values[xt.values.length - 1];
  const ya = yt.values[0],
    yb = yt.values[yt.values.length - 1];
  const sx = (x: number) => m.left + ((x - xa) / (xb - xa)) * pw;
  const sy = (y: number) => m.top + ph - ((y - ya) / (yb - ya)) * ph;

  out.push('<g stroke="#e5e5e5" stroke-width="1">');
  for (const v of xt.values) out.push(`<line x1="${px(sx(v))}" y1="${m.top}" x2="${px(sx(v))}" y2="${m.top + ph}"/>`);
  for (const v of yt.values) out.push(`<line x1="${m.left}" y1="${px(sy(v))}" x2="${m.left + pw}" y2="${px(sy(v))}"/>`);
  out.push('</g>');
  out.push(
    `<g stroke="black" stroke-width="1"><line x1="${m.left}" y1="${m.top + ph}" x2="${m.left + pw}" y2="${m.top + ph}"/><line x1="${m.left}" y1="${m.top}" x2="${m.left}" y2="${m.top + ph}"/></g>`,
  );
  out.push('<g fill="#333">');
  for (const v of xt.values) {
    out.push(`<line x1="${px(sx(v))}" y1="${m.top + ph}" x2="${px(sx(v))}" y2="${m.top + ph + 5}" stroke="black"/>`);
    out.push(`<text x="${px(sx(v))}" y="${m.top + ph + 19}" text-anchor="middle">${xml(formatTick(v, xt.step))}</text>`);
  }
  for (const v of yt.values) {
    out.push(`<line x1="${m.left - 5}" y1="${px(sy(v))}" x2="${m.left}" y2="${px(sy(v))}" stroke="black"/>`);
    out.push(`<text x="${m.left - 8}" y="${px(sy(v) + 4)}" text-anchor="end">${xml(formatTick(v, yt.step))}</text>`);
  }
  out.push('</g>');
  out.push(`<text x="${px(m.left + pw / 2)}" y="${H - 14}" text-anchor="middle">${xml(options.xLabel ?? 'step')}</text>`);
  out.push(`<text transform="translate(18 ${px(m.top + ph / 2)}) rotate(-90)" text-anchor="middle">${xml(options.yLabel ?? 'loss')}</text>`);
  if (!ext) out.push(`<text x="${px(m.left + pw / 2)}" y="${px(m.top + ph / 2)}" text-anchor="middle" fill="#888">no data</text>`);

  series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length];
    const pts = finitePoints(s);
    if (pts.length === 0) return;
    const coords = pts.map(([x, y]) => `${px(sx(x))},${px(sy(y))}`);
    out.push(`<polyline fill="none" stroke="${color}" stroke-width="2" stroke-linejoin="round" points="${coords.join(' ')}"/>`);
    if (pts.length <= 60) {
      out.push(
        `<g fill="${color}">${coords
          .map((c) => {
            const [x, y] = c.split(',');
            return `<circle cx="${x}" cy="${y}" r="3"/>`;
          })
          .join('')}</g>`,
      );
    }
  });

  const lx = m.left + pw - 170;
  series.forEach((s, i) => {
    const y = m.top + 16 + i * 20;
    const color = COLORS[i % COLORS.length];
    out.push(`<line x1="${lx}" y1="${y}" x2="${lx + 24}" y2="${y}" stroke="${color}" stroke-width="3"/>`);
    out.push(`<text x="${lx + 32}" y="${y + 4}">${xml(s.name)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}

/**
 * Joins (c0, r0) to (c1, r1), c0 < c1, with `marker`: a straight line through the columns in
 * between, and a vertical run in each column where the line drops or climbs more than one row.
 */
function drawSegment(grid: string[][], c0: number, r0: number, c1: number, r1: number, marker: string): void {
  let prevRow = r0;
  for (let c = c0 + 1; c <= c1; c++) {
    const r = Math.round(r0 + ((r1 - r0) * (c - c0)) / (c1 - c0));
    const dir = Math.sign(r - prevRow);
    // Fill the rows between the previous column's row and this one's, in the previous column.
    for (let k = prevRow + dir; dir !== 0 && k !== r; k += dir) grid[k][c - 1] = marker;
    if (c < c1) grid[r][c] = marker;
    prevRow = r;
  }
}

/**
 * A character chart of the series for a terminal: `height` rows × `width` columns of plot with y
 * labels on the left (top, middle, bottom), the x range below, and a legend. Each series has its
 * own marker (`*`, `o`, `+`, `x`); points falling in one column are averaged, and consecutive
 * points are joined by straight lines so a curve reads as a line. Later series draw over earlier ones.
 */
export function terminalChart(series: readonly Series[], options: TerminalChartOptions = {}): string {
  const W = Math.max(2, Math.floor(options.width ?? 60));
  const H = Math.max(2, Math.floor(options.height ?? 12));
  const ext = extent(series);
  const legend = series.map((s, i) => `${MARKERS[i % MARKERS.length]} ${s.name}`).join('   ');
  if (!ext) return `(no data)\n${legend}\n`;
  const y0 = ext.y0 === ext.y1 ? ext.y0 - 0.5 : ext.y0;
  const y1 = ext.y0 === ext.y1 ? ext.y1 + 0.5 : ext.y1;
  const col = (x: number) => (ext.x1 === ext.x0 ? 0 : Math.round(((x - ext.x0) / (ext.x1 - ext.x0)) * (W - 1)));
  const row = (y: number) => Math.round(((y1 - y) / (y1 - y0)) * (H - 1));
  const grid: string[][] = Array.from({ length: H }, () => new Array<string>(W).fill(' '));

  series.forEach((s, i) => {
    const marker = MARKERS[i % MARKERS.length];
    const sums = new Map<number, { sum: number; n: number }>();
    for (const [x, y] of finitePoints(s)) {
      const c = col(x);
      const acc = sums.get(c) ?? { sum: 0, n: 0 };
      acc.sum += y;
      acc.n += 1;
      sums.set(c, acc);
    }
    const cols = [...sums.keys()].sort((a, b) => a - b);
    let prev: { c: number; r: number } | null = null;
    for (const c of cols) {
      const { sum, n } = sums.get(c)!;
      const r = row(sum / n);
      if (prev) drawSegment(grid, prev.c, prev.r, c, r, marker);
      grid[r][c] = marker;
      prev = { c, r };
    }
  });

  const labelAt = new Map<number, number>([
    [0, y1],
    [Math.floor((H - 1) / 2), y1 - ((y1 - y0) * Math.floor((H - 1) / 2)) / (H - 1)],
    [H - 1, y0],
  ]);
  const decimals = Math.max(0, Math.min(4, 2 - Math.floor(Math.log10(y1 - y0))));
  const labels = [...labelAt.values()].map((v) => v.toFixed(decimals));
  const lw = Math.max(...labels.map((l) => l.length));
  const lines: string[] = [];
  for (let r = 0; r < H; r++) {
    const v = labelAt.get(r);
    const label = v === undefined ? ' '.repeat(lw) : v.toFixed(decimals).padStart(lw);
    lines.push(`${label} ${v === undefined ? '│' : '┤'}${grid[r].join('').replace(/\s+$/, '')}`);
  }
  lines.push(`${' '.repeat(lw)} └${'─'.repeat(W)}`);
  const xs = String(ext.x0);
  const xe = String(ext.x1);
  lines.push(`${' '.repeat(lw + 2)}${xs}${' '.repeat(Math.max(1, W - xs.length - xe.length))}${xe}`);
  lines.push(`${' '.repeat(lw + 2)}${legend}`);
  return lines.join('\n') + '\n';
}
