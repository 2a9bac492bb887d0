import { describe, expect, it } from 'vitest';
import { downsample, formatTick, lossSeries, niceTicks, svgChart, terminalChart, type Series } from '../src/chart';

describe('niceTicks', () => {
  it('covers the range with 1/2/5 × 10^k steps', () => {
    for (const [lo, hi] of [
      [0, 1],
      [1.234, 4.567],
      [0, 1234],
      [0.0012, 0.0087],
      [-3, 7],
      [950, 10230],
    ]) {
      const t = niceTicks(lo, hi, 5);
      expect(t.values[0]).toBeLessThanOrEqual(lo);
      expect(t.values[t.values.length - 1]).toBeGreaterThanOrEqual(hi);
      expect(t.values.length).toBeGreaterThanOrEqual(2);
      expect(t.values.length).toBeLessThanOrEqual(12);
      const mant = t.step / Math.pow(10, Math.floor(Math.log10(t.step)));
      expect([1, 2, 5].some((m) => Math.abs(mant - m) < 1e-9)).toBe(true);
      for (let i = 1; i < t.values.length; i++) expect(t.values[i] - t.values[i - 1]).toBeCloseTo(t.step, 9);
    }
  });

  it('gives clean decimal values', () => {
    expect(niceTicks(0, 1, 6).values).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
    expect(niceTicks(1.3, 2.9, 5).values).toEqual([1, 1.5, 2, 2.5, 3]);
  });

  it('widens a zero-width range', () => {
    const t = niceTicks(2, 2);
    expect(t.values[0]).toBeLessThan(2);
    expect(t.values[t.values.length - 1]).toBeGreaterThan(2);
    expect(niceTicks(0, 0).values.length).toBeGreaterThanOrEqual(2);
  });

  it('rejects non-finite or inverted ranges', () => {
    expect(() => niceTicks(NaN, 1)).toThrow(RangeError);
    expect(() => niceTicks(2, 1)).toThrow(RangeError);
  });
});

describe('formatTick', () => {
  it('uses the decimals of the step', () => {
    expect(formatTick(0.5, 0.5)).toBe('0.5');
    expect(formatTick(1.25, 0.05)).toBe('1.25');
    expect(formatTick(200, 100)).toBe('200');
    expect(formatTick(20000, 5000)).toBe('20k');
  });
});

describe('lossSeries', () => {
  it('makes a training series and a validation series when there are validation points', () => {
    const s = lossSeries({ steps: [1, 2], loss: [3, 2], valSteps: [2], valLoss: [2.5] });
    expect(s.map((x) => x.name)).toEqual(['training loss', 'validation loss']);
    expect(s[1].x).toEqual([2]);
    expect(lossSeries({ steps: [1], loss: [3], valSteps: [], valLoss: [] })).toHaveLength(1);
  });
});

const train: Series = { name: 'training loss', x: [0, 10, 20, 30, 40, 50], y: [4.2, 3.1, 2.5, 2.2, 2.0, 1.9] };
const valid: Series = { name: 'validation <loss>', x: [25, 50], y: [2.4, 2.1] };

describe('svgChart', () => {
  const svg = svgChart([train, valid], { title: 'Loss & friends', yLabel: 'loss (nats/char)' });

  it('is one well-formed standalone SVG element', () => {
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
    // Every opened element is closed or self-closing.
    const opens = (svg.match(/<(g|text|svg)[\s>]/g) ?? []).length;
    const closes = (svg.match(/<\/(g|text|svg)>/g) ?? []).length;
    expect(opens).toBe(closes);
  });

  it('draws one polyline per series with one point per data point, inside the plot', () => {
    const lines = [...svg.matchAll(/<polyline [^>]*points="([^"]+)"/g)].map((m) => m[1].split(' ').map((p) => p.split(',').map(Number)));
    expect(lines.map((l) => l.length)).toEqual([6, 2]);
    for (const l of lines)
      for (const [x, y] of l) {
        expect(x).toBeGreaterThanOrEqual(72);
        expect(x).toBeLessThanOrEqual(760 - 24);
        expect(y).toBeGreaterThanOrEqual(44);
        expect(y).toBeLessThanOrEqual(440 - 56);
      }
    // Lower loss is drawn lower on the page: y grows as the loss falls.
    const ys = lines[0].map((p) => p[1]);
    for (let i = 1; i < ys.length; i++) expect(ys[i]).toBeGreaterThan(ys[i - 1]);
  });

  it('has axis labels, tick labels, the legend, and escapes text', () => {
    expect(svg).toContain('>step</text>');
    expect(svg).toContain('>loss (nats/char)</text>');
    expect(svg).toContain('>Loss &amp; friends</text>');
    expect(svg).toContain('>validation &lt;loss&gt;</text>');
    expect(svg).toContain('>training loss</text>');
    expect(svg).toContain('>50</text>');
    expect(svg).not.toContain('<loss>');
  });

  it('skips non-finite points and says "no data" when nothing is left', () => {
    const s = svgChart([{ name: 'a', x: [1, 2, 3], y: [1, NaN, 2] }]);
    const pts = /points="([^"]+)"/.exec(s)![1].split(' ');
    expect(pts).toHaveLength(2);
    const empty = svgChart([{ name: 'a', x: [], y: [] }]);
    expect(empty).toContain('no data');
    expect(empty).not.toContain('<polyline');
  });

  it('draws a long per-step series averaged down to maxPoints', () => {
    const n = 10_000;
    const long: Series = { name: 'training loss', x: Array.from({ length: n }, (_, i) => i + 1), y: Array.from({ length: n }, (_, i) => 3 - i / n) };
    const pts = /points="([^"]+)"/.exec(svgChart([long]))![1].split(' ');
    expect(pts).toHaveLength(500);
    expect(/points="([^"]+)"/.exec(svgChart([long], { maxPoints: 100 }))![1].split(' ')).toHaveLength(100);
  });
});

describe('downsample', () => {
  it('averages consecutive groups, each at its last x, and keeps short series as they are', () => {
    expect(downsample({ name: 'a', x: [1, 2, 3, 4, 5], y: [1, 3, 5, 7, 9] }, 2)).toEqual({ name: 'a', x: [3, 5], y: [3, 8] });
    expect(downsample({ name: 'a', x: [1, 2, 3], y: [1, NaN, 2] }, 10)).toEqual({ name: 'a', x: [1, 3], y: [1, 2] });
  });
});

describe('terminalChart', () => {
  it('has height plot rows, an axis, the x range and a legend', () => {
    const out = terminalChart([train, valid], { width: 40, height: 10 });
    const lines = out.trimEnd().split('\n');
    expect(lines).toHaveLength(10 + 3);
    expect(lines[10]).toMatch(/└─{40}$/);
    expect(lines[11].trim()).toMatch(/^0\s+50$/);
    expect(lines[12]).toContain('* training loss');
    expect(lines[12]).toContain('o validation <loss>');
  });

  it('puts the highest value in the top row at the left and the lowest in the bottom row at the right', () => {
    const out = terminalChart([train], { width: 30, height: 8 });
    const rows = out
      .split('\n')
      .slice(0, 8)
      .map((l) => l.slice(l.search(/[┤│]/) + 1));
    expect(rows[0][0]).toBe('*');
    expect(rows[7][29]).toBe('*');
    expect(out.split('\n')[0]).toMatch(/^4\.20 ┤/);
    expect(out.split('\n')[7]).toMatch(/^1\.90 ┤/);
  });

  it('joins steep drops vertically so the curve is continuous', () => {
    const out = terminalChart([{ name: 's', x: [0, 1], y: [10, 0] }], { width: 2, height: 6 });
    const rows = out
      .split('\n')
      .slice(0, 6)
      .map((l) => l.slice(l.search(/[┤│]/) + 1).padEnd(2));
    expect(rows.map((r) => r[0]).join('')).toBe('***** ');
    expect(rows[5][1]).toBe('*');
  });

  it('draws straight lines between points far apart', () => {
    const out = terminalChart([{ name: 's', x: [0, 10], y: [4, 0] }], { width: 11, height: 5 });
    const rows = out
      .split('\n')
      .slice(0, 5)
      .map((l) => l.slice(l.search(/[┤│]/) + 1).padEnd(11));
    // Every column is marked once or more, and the marks descend from top-left to bottom-right.
    let last = -1;
    for (let c = 0; c < 11; c++) {
      const marked = rows.map((r, i) => (r[c] === '*' ? i : -1)).filter((i) => i >= 0);
      expect(marked.length).toBeGreaterThan(0);
      expect(Math.max(...marked)).toBeGreaterThanOrEqual(last);
      last = Math.max(...marked);
    }
    expect(rows[0][0]).toBe('*');
    expect(rows[4][10]).toBe('*');
  });

  it('handles a single point and empty input', () => {
    expect(terminalChart([{ name: 'one', x: [3], y: [1.5] }], { width: 10, height: 4 })).toContain('*');
    expect(terminalChart([{ name: 'none', x: [], y: [] }])).toBe('(no data)\n* none\n');
  });
});
