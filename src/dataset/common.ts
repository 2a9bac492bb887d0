/**
 * What the dataset kinds share: argument checks, file reading, length limits, and the native
 * row set behind every row dataset. Splits, shuffles and batches are the engine's
 * (`NativeSequenceDataset`, `NativeTokenDataset`): `batches()` yields exactly what `fit` trains on.
 */

import * as fs from 'fs';
import type { NativeSequenceDataset, SequenceData } from '../../index';
import { native } from '../native';
import { checkChoice, checkInt, checkNumber, checkString, describe, error, rangeError, typeError } from '../errors';
import type { Tokenizer } from '../tokenizer';

/** Target value of positions the loss ignores (PyTorch's `ignore_index` default). */
export const IGNORE_INDEX = -100;

/** Which part of a dataset. */
export type Split = 'train' | 'validation';
export const SPLITS: readonly Split[] = ['train', 'validation'];

/** Rethrows an rnnkit error with `where` in front of its message, keeping its class and code. */
export function rethrowAt(where: string, e: unknown): never {
  const err = e as Error & { code?: string };
  if (typeof err?.code !== 'string') throw e;
  const message = `${where}: ${err.message}`;
  const code = err.code as Parameters<typeof error>[0];
  if (err instanceof RangeError) throw rangeError(code, message);
  if (err instanceof TypeError) throw typeError(code, message);
  throw error(code, message);
}

/** Checks an optional plain-object options argument. */
export function checkObject(name: string, value: unknown): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw typeError('ERR_RNNKIT_TYPE', `${name}: expected an object, got ${describe(value)}`);
  return value as Record<string, unknown>;
}

/** Checks a tokenizer argument (anything with the Tokenizer methods). */
export function checkTokenizer(name: string, value: unknown): Tokenizer {
  const t = value as Tokenizer;
  if (
    typeof value !== 'object' ||
    value === null ||
    typeof t.encode !== 'function' ||
    typeof t.streamEncoder !== 'function' ||
    typeof t.vocabSize !== 'number'
  ) {
    throw typeError('ERR_RNNKIT_TYPE', `${name}: expected a Tokenizer, got ${describe(value)}`);
  }
  return t;
}

/** Checks a validation fraction in [0, 1). */
export function checkFraction(name: string, value: unknown): number {
  const f = checkNumber(name, value, 0, 1);
  if (f === 1) throw rangeError('ERR_RNNKIT_RANGE', `${name}: expected a finite number in [0, 1), got 1`);
  return f;
}

/** Checks that `path` names a readable file; returns it. */
export async function checkFile(name: string, path: unknown): Promise<string> {
  checkString(name, path, true);
  let stat: fs.Stats;
  try {
    stat = await fs.promises.stat(path as string);
  } catch (e) {
    throw error('ERR_RNNKIT_IO', `${name}: cannot read ${JSON.stringify(path)} (${(e as Error).message})`);
  }
  if (!stat.isFile()) throw error('ERR_RNNKIT_IO', `${name}: ${JSON.stringify(path)} is not a file`);
  return path as string;
}

/** Options shared by the row datasets (labelled, tagged, dense). */
export interface BatchingOptions {
  /** Rows per batch (default 32). */
  batchSize?: number;
  /** Fraction of rows held out for validation, in [0, 1) (default 0). */
  validation?: number;
  /** Seed of the split and of the shuffles, an integer in [0, 2^32 − 1] (default 0). */
  seed?: number;
  /** Shuffle the training rows each epoch (default true); validation is never shuffled. */
  shuffle?: boolean;
  /** The last, smaller batch of an epoch: kept as a smaller batch (default) or dropped. */
  last?: 'keep' | 'drop';
}

/** A batch of variable-length token sequences, padded to the longest row. */
export interface SequenceBatch {
  /** Token ids `[batchSize, seqLen]` row-major, padded with the pad id. */
  inputs: Int32Array;
  /** Real length of each row. */
  lengths: Int32Array;
  batchSize: number;
  /** Length of the longest row of this batch. */
  seqLen: number;
}

/** Checks `maxLength` / `onTooLong` options. */
export function readLengthLimit(o: Record<string, unknown>): { maxLength: number; onTooLong: 'error' | 'truncate' } {
  return {
    maxLength: o.maxLength === undefined ? Number.MAX_SAFE_INTEGER : checkInt('options.maxLength', o.maxLength, 1),
    onTooLong: o.onTooLong === undefined ? 'error' : checkChoice('options.onTooLong', o.onTooLong, ['error', 'truncate'] as const),
  };
}

/** Applies the length limit to `ids` of row `where`. */
export function limitLength(where: string, ids: Int32Array, limit: { maxLength: number; onTooLong: 'error' | 'truncate' }): Int32Array {
  if (ids.length <= limit.maxLength) return ids;
  if (limit.onTooLong === 'truncate') return ids.slice(0, limit.maxLength);
  throw rangeError(
    'ERR_RNNKIT_RANGE',
    `${where}: ${ids.length} tokens, more than options.maxLength = ${limit.maxLength} (set options.onTooLong to "truncate" to cut)`,
  );
}

/** Keys of a row dataset's options that set its data order (the engine reads them). */
const ROW_ORDER_KEYS = ['batchSize', 'seed', 'shuffle', 'last'] as const;

/** The data-order part of a dataset's options, for the engine (which validates it). */
export function orderOptions(o: Record<string, unknown>, keys: readonly string[] = ROW_ORDER_KEYS): Record<string, unknown> {
  const order: Record<string, unknown> = {};
  for (const k of keys) if (o[k] !== undefined) order[k] = o[k];
  return order;
}

/** How the rows of a dataset are laid out for the engine. */
export interface RowLayout {
  /** Validation fraction in [0, 1). */
  validation: number;
  /** Split within each class (needs `labels` in the data). */
  stratify: boolean;
  /** Dense features per step (0 for token rows). */
  inputSize: number;
  /** Target values per step or row (0 for classes). */
  outputSize: number;
  /** Regression targets per step. */
  perStep: boolean;
}

/**
 * Rows split into train/validation with per-epoch batch orders, all computed by the engine from
 * the rows packed once at construction.
 */
export abstract class RowDataset<B> {
  /** @internal The engine's row set: what `fit` and `evaluate` read. */
  readonly native: NativeSequenceDataset;

  protected constructor(data: SequenceData, layout: RowLayout, options: Record<string, unknown>) {
    this.native = new native.NativeSequenceDataset(
      data,
      layout,
      orderOptions(
        options,
        Object.keys(options).filter((k) => !CALLER_KEYS.has(k)),
      ),
    );
  }

  /** Builds the public batch from the engine's. */
  protected abstract makeBatch(batch: SequenceData): B;

  /** Number of rows in a split. */
  size(split: Split = 'train'): number {
    return this.native.size(checkChoice('split', split, SPLITS));
  }

  /** Indices (into the rows given at construction) of a split, ascending. */
  rowIndices(split: Split = 'train'): Uint32Array {
    return this.native.rowIndices(checkChoice('split', split, SPLITS));
  }

  /** Number of batches of a split per epoch. */
  numBatches(split: Split = 'train'): number {
    return this.native.numBatches(checkChoice('split', split, SPLITS));
  }

  /** The batches of one epoch, exactly as `fit` trains on them (validation never shuffled). */
  *batches(split: Split = 'train', epoch = 0): Generator<B> {
    checkChoice('split', split, SPLITS);
    checkInt('epoch', epoch, 0);
    const n = this.native.numBatches(split);
    for (let k = 0; k < n; k++) yield this.makeBatch(this.native.batch(split, epoch, k));
  }
}

/**
 * The engine's seeded train/validation split of `n` rows, each part ascending: the split a row
 * dataset with the same `validation` and `seed` makes.
 */
export function splitRowIndices(n: number, fraction: number, seed: number, strata?: Int32Array): [Uint32Array, Uint32Array] {
  const [train, validation] = native.splitRowIndices(n, fraction, seed, strata ?? null);
  return [train, validation];
}

/** Options every dataset kind handles itself (the rest is data order, for the engine). */
const CALLER_KEYS = new Set([
  'tokenizer',
  'tokenizerOptions',
  'validation',
  'chunkSize',
  'labels',
  'tags',
  'maxLength',
  'onTooLong',
  'stratify',
  'textField',
  'labelField',
  'textColumn',
  'labelColumn',
  'delimiter',
  'lossy',
  'inputSize',
  'outputSize',
  'targets',
  'normalize',
  'vocabSize',
  'padId',
  'alphabet',
  'featureSize',
]);

/** Pads token rows into a {@link SequenceBatch}. */
export function padTokens(rows: Int32Array[], padId: number): SequenceBatch {
  const seqLen = Math.max(...rows.map((r) => r.length));
  const inputs = new Int32Array(rows.length * seqLen).fill(padId);
  const lengths = new Int32Array(rows.length);
  rows.forEach((r, i) => {
    inputs.set(r, i * seqLen);
    lengths[i] = r.length;
  });
  return { inputs, lengths, batchSize: rows.length, seqLen };
}

/** The pad id: `options.padId`, or the tokenizer's `<pad>`. */
export function resolvePadId(value: unknown, vocabSize: number, tokenizer?: Tokenizer): number {
  if (value !== undefined) return checkInt('options.padId', value, 0, vocabSize - 1);
  const pad = tokenizer?.specials['<pad>'];
  if (pad === undefined) throw typeError('ERR_RNNKIT_CONFIG', 'options.padId: required when the tokenizer has no "<pad>" special token');
  return pad;
}
