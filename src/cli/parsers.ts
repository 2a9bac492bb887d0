/**
 * Parsers of option values for commander: each throws `InvalidArgumentError`, which commander
 * reports on one line.
 */

import { InvalidArgumentError } from 'commander';
import { SPECIAL_TOKENS, type SpecialToken } from '../tokenizer';
import type { Label } from '../dataset';

const INTEGER = /^[+-]?\d+$/;
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/** A parser of integers in [min, max] for commander options. */
export function parseInteger(min: number, max = Number.MAX_SAFE_INTEGER): (value: string) => number {
  return (value: string) => {
    const n = Number(value);
    if (!INTEGER.test(value.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(max === Number.MAX_SAFE_INTEGER ? `expected an integer ≥ ${min}.` : `expected an integer in [${min}, ${max}].`);
    }
    return n;
  };
}

/**
 * A parser of finite numbers for commander options, within [min, max]; `open: true` excludes
 * `min` (e.g. a learning rate must be > 0).
 */
export function parseNumber(min: number, max = Infinity, open = false): (value: string) => number {
  return (value: string) => {
    const n = Number(value);
    const ok = DECIMAL.test(value.trim()) && Number.isFinite(n) && (open ? n > min : n >= min) && n <= max;
    if (!ok) {
      const lo = `${open ? '>' : '≥'} ${min}`;
      throw new InvalidArgumentError(max === Infinity ? `expected a number ${lo}.` : `expected a number ${lo} and ≤ ${max}.`);
    }
    return n;
  };
}

/** A parser of a comma-separated list of special token names (`<pad>,<unk>`). */
export function parseSpecials(value: string): SpecialToken[] {
  const names = value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  for (const n of names) {
    if (!(SPECIAL_TOKENS as readonly string[]).includes(n))
      throw new InvalidArgumentError(`expected special token names from ${SPECIAL_TOKENS.join(',')}, got "${n}".`);
  }
  if (new Set(names).size !== names.length) throw new InvalidArgumentError('a special token is listed twice.');
  return names as SpecialToken[];
}

/**
 * A parser of a comma-separated label list (`neg,pos`, `0,1`): items that are numbers become
 * numbers, so that they match numeric labels in JSON.
 */
export function parseLabels(value: string): Label[] {
  const items = value.split(',').map((s) => s.trim());
  if (items.some((s) => s.length === 0)) throw new InvalidArgumentError('expected labels separated by commas, none empty.');
  const labels = items.map((s) => (DECIMAL.test(s) ? Number(s) : s));
  const twice = labels.find((l, i) => labels.indexOf(l) !== i);
  if (twice !== undefined) throw new InvalidArgumentError(`the label ${JSON.stringify(twice)} is listed twice.`);
  return labels;
}

/** Collects a repeatable string option into an array. */
export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** A parser of seeds: 32-bit unsigned integers. */
export const SEED = parseInteger(0, 0xffffffff);
