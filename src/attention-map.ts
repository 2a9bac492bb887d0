/**
 * The attention of one translation as a picture: {@link attentionSvg} draws the matrix of a
 * decode's attention weights as a heat map, the source tokens along the top and the output
 * tokens down the left, a darker cell for more weight (`rnnkit translate --attention out.svg`).
 */

import { checkObject } from './dataset/common';
import { describe, typeError } from './errors';
import { checkOptionKeys } from './option-keys';
import type { AttentionTranslation } from './tasks/seq2seq';

/** Options of {@link attentionSvg}. */
export interface AttentionSvgOptions {
  /** A title above the map (default none). */
  title?: string;
  /** Side of a cell in pixels (default 22). */
  cell?: number;
}

function xml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** A token as drawn: spaces shown as `␣` so that they can be seen. */
function label(token: string): string {
  return xml(token.replace(/ /g, '␣'));
}

/**
 * A standalone SVG heat map of `translation.weights` (from `translate(text, { attention: true })`):
 * one row per output token (the final `<eos>` included), one column per source token, each cell
 * shaded by its weight from white (0) to dark blue (1), its value in its tooltip.
 */
export function attentionSvg(translation: AttentionTranslation, options: AttentionSvgOptions = {}): string {
  const o = checkObject('options', options);
  checkOptionKeys('options', o, ['title', 'cell']);
  const t = translation as Partial<AttentionTranslation> | null;
  if (t === null || typeof t !== 'object' || !Array.isArray(t.weights) || !Array.isArray(t.sourceTokens) || !Array.isArray(t.outputTokens))
    throw typeError('ERR_RNNKIT_TYPE', `translation: expected the result of translate(text, { attention: true }), got ${describe(translation)}`);
  if (t.weights.length !== t.outputTokens.length || t.weights.some((r) => r.length !== t.sourceTokens!.length))
    throw typeError('ERR_RNNKIT_SHAPE', `translation.weights: expected ${t.outputTokens.length} rows of ${t.sourceTokens.length} weights`);
  const cell = o.cell === undefined ? 22 : (o.cell as number);
  if (!(Number.isFinite(cell) && cell >= 4 && cell <= 200))
    throw typeError('ERR_RNNKIT_RANGE', `options.cell: expected a number of pixels in [4, 200], got ${describe(o.cell)}`);
  const title = o.title === undefined ? undefined : String(o.title);
  const charW = 7.5;
  const left = 16 + Math.max(...t.outputTokens.map((s) => s.length), 1) * charW;
  const top = (title ? 40 : 12) + Math.max(...t.sourceTokens.map((s) => s.length), 1) * charW;
  const width = Math.ceil(left + t.sourceTokens.length * cell + 16);
  const height = Math.ceil(top + t.outputTokens.length * cell + 16);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="monospace" font-size="12">`,
    `<rect x="0" y="0" width="${width}" height="${height}" fill="white"/>`,
  ];
  if (title) out.push(`<text x="${width / 2}" y="24" text-anchor="middle" font-family="sans-serif" font-size="15">${xml(title)}</text>`);
  t.sourceTokens.forEach((s, j) => {
    const x = left + (j + 0.5) * cell + 4;
    out.push(`<text x="${x}" y="${top - 6}" transform="rotate(-90 ${x} ${top - 6})">${label(s)}</text>`);
  });
  t.outputTokens.forEach((s, i) => out.push(`<text x="${left - 6}" y="${top + (i + 0.5) * cell + 4}" text-anchor="end">${label(s)}</text>`));
  t.weights.forEach((row, i) =>
    Array.from(row).forEach((w, j) => {
      // White to rgb(8, 48, 107) (dark blue) as the weight goes from 0 to 1.
      const mix = (a: number, b: number) => Math.round(a + (b - a) * Math.min(1, Math.max(0, w)));
      out.push(
        `<rect x="${left + j * cell}" y="${top + i * cell}" width="${cell}" height="${cell}" fill="rgb(${mix(255, 8)},${mix(255, 48)},${mix(255, 107)})"><title>${label(t.outputTokens![i])} ← ${label(t.sourceTokens![j])}: ${w.toFixed(3)}</title></rect>`,
      );
    }),
  );
  out.push(`<rect x="${left}" y="${top}" width="${t.sourceTokens.length * cell}" height="${t.outputTokens.length * cell}" fill="none" stroke="#888"/>`);
  out.push('</svg>');
  return out.join('\n') + '\n';
}
