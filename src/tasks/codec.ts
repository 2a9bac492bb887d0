/**
 * The input codec of the sequence tasks: how a text, token ids or a dense float row becomes
 * engine input (checked, normalised, padded), read from the constructors' options or restored
 * from a model file.
 */

import type { NativeModel, SequenceData } from '../../index';
import { FeatureStats } from '../dataset';
import { checkBoolean, checkInt, describe, error, rangeError, typeError } from '../errors';
import type { Tokenizer } from '../tokenizer';

/** Rethrows an rnnkit error with `where` in front, keeping class and code (encoding errors name the row). */
function rethrowAt(where: string, e: unknown): never {
  const err = e as Error & { code?: string };
  if (typeof err?.code !== 'string') throw e;
  const code = err.code as Parameters<typeof error>[0];
  const message = `${where}: ${err.message}`;
  if (err instanceof RangeError) throw rangeError(code, message);
  if (err instanceof TypeError) throw typeError(code, message);
  throw error(code, message);
}

/** One encoded row: token ids or dense values (already normalised), and its length in steps. */
export type Encoded = { ids?: Int32Array; values?: Float32Array; steps: number };

/**
 * The input side of a sequence model: how a text or a float row becomes engine input, with the
 * checks that name the row and field.
 */
export class InputCodec {
  constructor(
    readonly tokenizer: Tokenizer | null,
    readonly inputSize: number,
    readonly maxLength: number,
    readonly normalize: boolean,
    public stats: FeatureStats | null,
  ) {}

  get dense(): boolean {
    return this.tokenizer === null;
  }

  /** The id padded steps hold: masked by the lengths anyway, but it must be a valid id. */
  get padId(): number {
    return this.tokenizer?.specials['<pad>'] ?? 0;
  }

  text(where: string, value: unknown): Int32Array {
    if (!this.tokenizer) throw typeError('ERR_RNNKIT_TYPE', `${where}: this model reads dense Float32Array rows, not text`);
    if (typeof value !== 'string') throw typeError('ERR_RNNKIT_TYPE', `${where}: expected a string, got ${describe(value)}`);
    if (value.length === 0) throw rangeError('ERR_RNNKIT_EMPTY', `${where}: empty text`);
    let ids: Int32Array;
    try {
      ids = this.tokenizer.encode(value);
    } catch (e) {
      rethrowAt(where, e);
    }
    if (ids.length === 0) throw rangeError('ERR_RNNKIT_EMPTY', `${where}: the text ${describe(value)} gives no tokens`);
    return this.limit(where, ids.length, 'tokens', ids);
  }

  ids(where: string, value: unknown): Int32Array {
    if (!this.tokenizer) throw typeError('ERR_RNNKIT_TYPE', `${where}: this model reads dense Float32Array rows, not token ids`);
    if (!Array.isArray(value) && !(ArrayBuffer.isView(value) && !(value instanceof Float32Array) && !(value instanceof Float64Array))) {
      throw typeError('ERR_RNNKIT_TYPE', `${where}: expected an array or integer typed array of token ids, got ${describe(value)}`);
    }
    const a = value as ArrayLike<number>;
    if (a.length === 0) throw rangeError('ERR_RNNKIT_EMPTY', `${where}: no tokens`);
    const v = this.tokenizer.vocabSize;
    const out = Int32Array.from({ length: a.length }, (_, t) => checkInt(`${where}[${t}]`, a[t], 0, v - 1));
    return this.limit(where, out.length, 'tokens', out);
  }

  /** Checks a raw dense row and returns it normalised (when the model normalises). */
  values(where: string, value: unknown): Float32Array {
    if (this.tokenizer) throw typeError('ERR_RNNKIT_TYPE', `${where}: this model reads text (it has a tokenizer), not Float32Array rows`);
    if (!(value instanceof Float32Array))
      throw typeError('ERR_RNNKIT_TYPE', `${where}: expected a Float32Array [steps × ${this.inputSize}], got ${describe(value)}`);
    if (value.length === 0) throw rangeError('ERR_RNNKIT_EMPTY', `${where}: no steps`);
    const I = this.inputSize;
    if (value.length % I !== 0)
      throw rangeError('ERR_RNNKIT_SHAPE', `${where}: length ${value.length} is not a multiple of the model's inputSize ${I} (features per step)`);
    for (let k = 0; k < value.length; k++) {
      if (!Number.isFinite(value[k])) throw rangeError('ERR_RNNKIT_NON_FINITE', `${where}: ${value[k]} at step ${Math.floor(k / I)}, feature ${k % I}`);
    }
    this.limit(where, value.length / I, 'steps', null);
    return value;
  }

  /** Normalises checked dense rows with the model's statistics (none before the first fit). */
  applyStats(rows: Float32Array[]): Float32Array[] {
    if (!this.normalize || !this.stats) return rows;
    return rows.map((r) => this.stats!.apply(r));
  }

  private limit<T>(where: string, n: number, unit: string, value: T): T {
    if (n > this.maxLength) throw rangeError('ERR_RNNKIT_RANGE', `${where}: ${n} ${unit}, more than the model's maxLength ${this.maxLength}`);
    return value;
  }

  /** Packs rows into batch-first padded arrays. */
  pack(rows: Encoded[]): { data: SequenceData; steps: number } {
    const n = rows.length;
    const T = Math.max(...rows.map((r) => r.steps));
    const lengths = Int32Array.from(rows, (r) => r.steps);
    if (this.dense) {
      const I = this.inputSize;
      const values = new Float32Array(n * T * I);
      rows.forEach((r, i) => values.set(r.values!, i * T * I));
      return { data: { values, lengths, rows: n, steps: T }, steps: T };
    }
    const tokens = new Int32Array(n * T).fill(this.padId);
    rows.forEach((r, i) => tokens.set(r.ids!, i * T));
    return { data: { tokens, lengths, rows: n, steps: T }, steps: T };
  }
}

/** Reads the input options shared by every task into the config and a codec. */
export function readInput(
  o: Record<string, unknown>,
  allowTokens: boolean,
): { modelInput: Record<string, unknown>; codec: (config: Record<string, unknown>) => InputCodec } {
  const maxLength = o.maxLength === undefined ? 1024 : checkInt('options.maxLength', o.maxLength, 1, 1 << 24);
  if (o.tokenizer !== undefined && o.tokenizer !== null) {
    if (!allowTokens) throw typeError('ERR_RNNKIT_CONFIG', 'options.tokenizer: a regressor reads dense inputs; give inputSize');
    const t = o.tokenizer as Tokenizer;
    if (typeof t !== 'object' || typeof t.encode !== 'function' || typeof t.vocabSize !== 'number')
      throw typeError('ERR_RNNKIT_TYPE', `options.tokenizer: expected a Tokenizer, got ${describe(t)}`);
    if (o.inputSize !== undefined) throw typeError('ERR_RNNKIT_CONFIG', 'options.inputSize: give a tokenizer (text) or an inputSize (dense), not both');
    for (const k of ['normalize', 'featureStats'])
      if (o[k] !== undefined) throw typeError('ERR_RNNKIT_CONFIG', `options.${k}: only for dense input (inputSize)`);
    return { modelInput: { vocabSize: t.vocabSize }, codec: () => new InputCodec(t, 0, maxLength, false, null) };
  }
  if (o.inputSize === undefined)
    throw typeError('ERR_RNNKIT_CONFIG', allowTokens ? 'options: give a tokenizer (text input) or an inputSize (dense input)' : 'options.inputSize: required');
  const normalize = o.normalize === undefined ? true : checkBoolean('options.normalize', o.normalize);
  if (o.featureStats !== undefined && !(o.featureStats instanceof FeatureStats))
    throw typeError('ERR_RNNKIT_TYPE', `options.featureStats: expected a FeatureStats, got ${describe(o.featureStats)}`);
  const stats = (o.featureStats as FeatureStats | undefined) ?? null;
  // The input size is the engine's to check; the codec reads it from the model's config.
  const codec = (config: Record<string, unknown>) => {
    const inputSize = config.input_size as number;
    if (stats && stats.mean.length !== inputSize)
      throw rangeError('ERR_RNNKIT_SHAPE', `options.featureStats: ${stats.mean.length} features but inputSize is ${inputSize}`);
    return new InputCodec(null, inputSize, maxLength, normalize, stats);
  };
  return { modelInput: {}, codec };
}

/** Restores the codec of a loaded model from its config, tokenizer and metadata. */
export function codecFromFile(handle: NativeModel, tokenizer: Tokenizer | null): InputCodec {
  const config = handle.config();
  const meta = handle.metadata();
  const maxLength = meta.max_length === undefined ? 1024 : Number(meta.max_length);
  if (!Number.isInteger(maxLength) || maxLength < 1)
    throw error('ERR_RNNKIT_FORMAT', `model file: metadata max_length ${describe(meta.max_length)} is not a positive integer`);
  if (typeof config.input_size === 'number') {
    let stats: FeatureStats | null = null;
    if (meta.feature_stats !== undefined) {
      try {
        stats = FeatureStats.fromJSON(handle.metadataValue('feature_stats') as { mean: number[]; std: number[] });
      } catch (e) {
        throw error('ERR_RNNKIT_FORMAT', `model file: metadata feature_stats: ${(e as Error).message}`);
      }
      if (stats.mean.length !== config.input_size)
        throw error('ERR_RNNKIT_FORMAT', `model file: metadata feature_stats has ${stats.mean.length} features, config.input_size is ${config.input_size}`);
    }
    // A file without the key (e.g. written by PyTorch) is read as raw, unnormalised input.
    const normalize = meta.normalize === undefined ? stats !== null : meta.normalize === 'true';
    return new InputCodec(null, config.input_size, maxLength, normalize, stats);
  }
  if (!tokenizer) throw error('ERR_RNNKIT_FORMAT', 'model file: a token-input sequence model needs its tokenizer in the file');
  return new InputCodec(tokenizer, 0, maxLength, false, null);
}
