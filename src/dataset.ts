/**
 * Datasets: text corpora for language models, labelled sequences (classification), tagged
 * sequences (one tag per step) and dense float sequences, with seeded splits, shuffling and
 * batching. All randomness comes from {@link SeededRandom}, so a seed gives the same splits and
 * batch orders on every machine.
 */

import * as fs from 'fs';
import * as readline from 'readline';
import { checkBoolean, checkChoice, checkInt, checkNumber, checkString, describe, error, rangeError, typeError } from './errors';
import { compareCodePoints, createTokenizerFitter, Tokenizer, TokenizerOptions } from './tokenizer';

/** Target value of positions the loss ignores (PyTorch's `ignore_index` default). */
export const IGNORE_INDEX = -100;

// ---------------------------------------------------------------------------------------------
// Seeded randomness

/** murmur3's 32-bit finaliser: mixes all bits of `h`. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * A small seeded PRNG: mulberry32 (32-bit state, period 2^32), enough for shuffling. The stream
 * for a dataset seed `s` is derived with murmur3's finaliser `fmix32`: epoch `e` shuffles with
 * `new SeededRandom(fmix32((s + e·0x9E3779B9) mod 2^32))` ({@link SeededRandom.forEpoch}) and
 * train/validation splits use `fmix32(s ^ 0xA511E9B3)` ({@link SeededRandom.forSplit}).
 */
export class SeededRandom {
  private state: number;

  /** `seed`: an integer in [0, 2^32 − 1]. */
  constructor(seed: number) {
    this.state = checkInt('seed', seed, 0, 0xffffffff);
  }

  /** The generator that shuffles epoch `epoch` of a dataset with seed `seed`. */
  static forEpoch(seed: number, epoch: number): SeededRandom {
    checkInt('seed', seed, 0, 0xffffffff);
    checkInt('epoch', epoch, 0);
    return new SeededRandom(fmix32((seed + Math.imul(epoch, 0x9e3779b9)) >>> 0));
  }

  /** The generator that splits a dataset with seed `seed` into train and validation. */
  static forSplit(seed: number): SeededRandom {
    return new SeededRandom(fmix32((checkInt('seed', seed, 0, 0xffffffff) ^ 0xa511e9b3) >>> 0));
  }

  /** The next 32-bit unsigned integer. */
  nextUint32(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** A float in [0, 1). */
  nextFloat(): number {
    return this.nextUint32() / 0x100000000;
  }

  /** An integer uniform in [0, n) (rejection sampling, no modulo bias); n in [1, 2^32]. */
  nextInt(n: number): number {
    checkInt('n', n, 1, 0x100000000);
    const limit = 0x100000000 - (0x100000000 % n);
    let x = this.nextUint32();
    while (x >= limit) x = this.nextUint32();
    return x % n;
  }

  /** Shuffles `array` in place (Fisher–Yates) and returns it. */
  shuffle<T extends { length: number; [i: number]: unknown }>(array: T): T {
    for (let i = array.length - 1; i > 0; i--) {
      const j = this.nextInt(i + 1);
      const t = array[i];
      array[i] = array[j];
      array[j] = t;
    }
    return array;
  }
}

// ---------------------------------------------------------------------------------------------
// Shared helpers

/** Which part of a dataset. */
export type Split = 'train' | 'validation';
const SPLITS: readonly Split[] = ['train', 'validation'];

/** Rethrows an rnnkit error with `where` in front of its message, keeping its class and code. */
function rethrowAt(where: string, e: unknown): never {
  const err = e as Error & { code?: string };
  if (typeof err?.code !== 'string') throw e;
  const message = `${where}: ${err.message}`;
  const code = err.code as Parameters<typeof error>[0];
  if (err instanceof RangeError) throw rangeError(code, message);
  if (err instanceof TypeError) throw typeError(code, message);
  throw error(code, message);
}

/** Checks an optional plain-object options argument. */
function checkObject(name: string, value: unknown): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw typeError('ERR_RNNKIT_TYPE', `${name}: expected an object, got ${describe(value)}`);
  return value as Record<string, unknown>;
}

/** Checks a tokenizer argument (anything with the Tokenizer methods). */
function checkTokenizer(name: string, value: unknown): Tokenizer {
  const t = value as Tokenizer;
  if (typeof value !== 'object' || value === null || typeof t.encode !== 'function' || typeof t.streamEncoder !== 'function' || typeof t.vocabSize !== 'number') {
    throw typeError('ERR_RNNKIT_TYPE', `${name}: expected a Tokenizer, got ${describe(value)}`);
  }
  return t;
}

/** Checks a validation fraction in [0, 1). */
function checkFraction(name: string, value: unknown): number {
  const f = checkNumber(name, value, 0, 1);
  if (f === 1) throw rangeError('ERR_RNNKIT_RANGE', `${name}: expected a finite number in [0, 1), got 1`);
  return f;
}

/** Checks that `path` names a readable file; returns it. */
async function checkFile(name: string, path: unknown): Promise<string> {
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

/** Reads a UTF-8 file as strings of about `chunkSize` bytes (never splitting a character). */
async function* readChunks(path: string, chunkSize: number): AsyncGenerator<string> {
  const stream = fs.createReadStream(path, { encoding: 'utf8', highWaterMark: chunkSize });
  try {
    for await (const chunk of stream) yield chunk as string;
  } catch (e) {
    throw error('ERR_RNNKIT_IO', `${JSON.stringify(path)}: read failed (${(e as Error).message})`);
  }
}

/** An Int32Array that grows by doubling. */
class Int32Builder {
  private buf = new Int32Array(1024);
  length = 0;

  push(ids: Int32Array): void {
    if (this.length + ids.length > this.buf.length) {
      let n = this.buf.length * 2;
      while (n < this.length + ids.length) n *= 2;
      const next = new Int32Array(n);
      next.set(this.buf.subarray(0, this.length));
      this.buf = next;
    }
    this.buf.set(ids, this.length);
    this.length += ids.length;
  }

  finish(): Int32Array {
    return this.buf.slice(0, this.length);
  }
}

/** The order of `n` items in epoch `epoch`: shuffled with the epoch's generator, or in order. */
function epochOrder(n: number, shuffle: boolean, seed: number, epoch: number): Uint32Array {
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  return shuffle ? SeededRandom.forEpoch(seed, epoch).shuffle(order) : order;
}

/**
 * Splits `n` rows into train and validation (each ascending). Plain: a seeded shuffle, the first
 * round(fraction·n) go to validation. Stratified (`strata[i]` = class of row i): the same within
 * each class, classes in ascending order, so each class keeps its share.
 */
export function splitRows(n: number, fraction: number, seed: number, strata?: Int32Array): { train: Uint32Array; validation: Uint32Array } {
  const rng = SeededRandom.forSplit(seed);
  const inValidation = new Uint8Array(n);
  const groups = new Map<number, number[]>();
  for (let i = 0; i < n; i++) {
    const g = strata ? strata[i] : 0;
    if (!groups.has(g)) groups.set(g, []);
    groups.get(g)!.push(i);
  }
  for (const g of [...groups.keys()].sort((a, b) => a - b)) {
    const rows = rng.shuffle(groups.get(g)!);
    const k = Math.round(fraction * rows.length);
    for (let i = 0; i < k; i++) inValidation[rows[i]] = 1;
  }
  const train: number[] = [];
  const validation: number[] = [];
  for (let i = 0; i < n; i++) (inValidation[i] ? validation : train).push(i);
  return { train: Uint32Array.from(train), validation: Uint32Array.from(validation) };
}

/** Options shared by the row datasets (labelled, tagged, dense). */
export interface BatchingOptions {
  /** Rows per batch. */
  batchSize: number;
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

interface Batching {
  batchSize: number;
  seed: number;
  shuffle: boolean;
  last: 'keep' | 'drop';
  validation: number;
}

/** Validates {@link BatchingOptions}. */
function readBatching(o: Record<string, unknown>): Batching {
  return {
    batchSize: checkInt('options.batchSize', o.batchSize, 1),
    seed: o.seed === undefined ? 0 : checkInt('options.seed', o.seed, 0, 0xffffffff),
    shuffle: o.shuffle === undefined ? true : checkBoolean('options.shuffle', o.shuffle),
    last: o.last === undefined ? 'keep' : checkChoice('options.last', o.last, ['keep', 'drop'] as const),
    validation: o.validation === undefined ? 0 : checkFraction('options.validation', o.validation),
  };
}

/** Checks `maxLength` / `onTooLong` options. */
function readLengthLimit(o: Record<string, unknown>): { maxLength: number; onTooLong: 'error' | 'truncate' } {
  return {
    maxLength: o.maxLength === undefined ? Number.MAX_SAFE_INTEGER : checkInt('options.maxLength', o.maxLength, 1),
    onTooLong: o.onTooLong === undefined ? 'error' : checkChoice('options.onTooLong', o.onTooLong, ['error', 'truncate'] as const),
  };
}

/** Applies the length limit to `ids` of row `where`. */
function limitLength(where: string, ids: Int32Array, limit: { maxLength: number; onTooLong: 'error' | 'truncate' }): Int32Array {
  if (ids.length <= limit.maxLength) return ids;
  if (limit.onTooLong === 'truncate') return ids.slice(0, limit.maxLength);
  throw rangeError('ERR_RNNKIT_RANGE', `${where}: ${ids.length} tokens, more than options.maxLength = ${limit.maxLength} (set options.onTooLong to "truncate" to cut)`);
}

/** Rows split into train/validation with per-epoch batch orders. */
abstract class RowDataset<B> {
  protected readonly parts: { train: Uint32Array; validation: Uint32Array };

  protected constructor(
    protected readonly batching: Batching,
    count: number,
    strata?: Int32Array,
  ) {
    this.parts = splitRows(count, batching.validation, batching.seed, strata);
    if (this.parts.train.length === 0) throw rangeError('ERR_RNNKIT_EMPTY', `options.validation: ${batching.validation} leaves no training rows out of ${count}`);
  }

  /** Builds the batch of the given row indices. */
  protected abstract makeBatch(rows: Uint32Array): B;

  /** Number of rows in a split. */
  size(split: Split = 'train'): number {
    return this.parts[checkChoice('split', split, SPLITS)].length;
  }

  /** Indices (into the rows given at construction) of a split, ascending. */
  rowIndices(split: Split = 'train'): Uint32Array {
    return this.parts[checkChoice('split', split, SPLITS)].slice();
  }

  /** Number of batches of a split per epoch. */
  numBatches(split: Split = 'train'): number {
    const n = this.size(split);
    const b = this.batching.batchSize;
    return this.batching.last === 'drop' ? Math.floor(n / b) : Math.ceil(n / b);
  }

  /** The batches of one epoch (training rows shuffled per epoch when `shuffle`; validation in order). */
  *batches(split: Split = 'train', epoch = 0): Generator<B> {
    checkChoice('split', split, SPLITS);
    checkInt('epoch', epoch, 0);
    const rows = this.parts[split];
    const order = epochOrder(rows.length, split === 'train' && this.batching.shuffle, this.batching.seed, epoch);
    const b = this.batching.batchSize;
    for (let k = 0; k < this.numBatches(split); k++) {
      const idx = order.subarray(k * b, Math.min((k + 1) * b, rows.length)).map((i) => rows[i]);
      yield this.makeBatch(idx);
    }
  }
}

/** Pads token rows into a {@link SequenceBatch}. */
function padTokens(rows: Int32Array[], padId: number): SequenceBatch {
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
function resolvePadId(value: unknown, vocabSize: number, tokenizer?: Tokenizer): number {
  if (value !== undefined) return checkInt('options.padId', value, 0, vocabSize - 1);
  const pad = tokenizer?.specials['<pad>'];
  if (pad === undefined) throw typeError('ERR_RNNKIT_CONFIG', 'options.padId: required when the tokenizer has no "<pad>" special token');
  return pad;
}

// ---------------------------------------------------------------------------------------------
// Labels

/** A class label: a string or a number. */
export type Label = string | number;

/**
 * The label set: declared (checked) or inferred (sorted: numbers ascending, strings by code point).
 * `found` are the labels of the rows, each with `where` to name its row in errors; `optionName`
 * names the declared set in errors.
 */
export class LabelSet {
  readonly labels: readonly Label[];
  private readonly ids = new Map<Label, number>();

  constructor(declared: unknown, found: { label: unknown; where: string }[], optionName: string) {
    if (declared !== undefined) {
      if (!Array.isArray(declared) || declared.length === 0) throw typeError('ERR_RNNKIT_TYPE', `${optionName}: expected a non-empty array of strings or numbers, got ${describe(declared)}`);
      declared.forEach((l, i) => {
        if (typeof l !== 'string' && !(typeof l === 'number' && Number.isFinite(l))) throw typeError('ERR_RNNKIT_TYPE', `${optionName}[${i}]: expected a string or finite number, got ${describe(l)}`);
        if (this.ids.has(l)) throw typeError('ERR_RNNKIT_TYPE', `${optionName}[${i}]: duplicate label ${describe(l)}`);
        this.ids.set(l, i);
      });
      this.labels = [...declared];
      for (const { label, where } of found) {
        if (!this.ids.has(label as Label)) throw rangeError('ERR_RNNKIT_RANGE', `${where}: label ${describe(label)} is not in ${optionName} (${this.labels.map((l) => JSON.stringify(l)).join(', ')})`);
      }
      return;
    }
    let kind: 'string' | 'number' | undefined;
    const set = new Set<Label>();
    for (const { label, where } of found) {
      if (typeof label !== 'string' && !(typeof label === 'number' && Number.isFinite(label))) throw typeError('ERR_RNNKIT_TYPE', `${where}: label: expected a string or finite number, got ${describe(label)}`);
      kind ??= typeof label as 'string' | 'number';
      if (typeof label !== kind) throw typeError('ERR_RNNKIT_TYPE', `${where}: label ${describe(label)} is a ${typeof label} but earlier labels are ${kind}s (declare ${optionName} to mix)`);
      set.add(label);
    }
    this.labels = kind === 'number' ? [...(set as Set<number>)].sort((a, b) => a - b) : [...(set as Set<string>)].sort(compareCodePoints);
    this.labels.forEach((l, i) => this.ids.set(l, i));
  }

  /** The id of a label (must be in the set). */
  id(label: Label): number {
    return this.ids.get(label)!;
  }
}

// ---------------------------------------------------------------------------------------------
// Text corpus (language modelling)

/** A batch of language-model windows: `targets` are `inputs` shifted by one token. */
export interface TokenBatch {
  /** `[batchSize, seqLen]` row-major. Padding rows (option `last: "pad"`) hold the pad id. */
  inputs: Int32Array;
  /** `[batchSize, seqLen]`: the next token of each input; padding rows hold {@link IGNORE_INDEX}. */
  targets: Int32Array;
  batchSize: number;
  seqLen: number;
  /** Rows holding real windows (the rest, at the end, are padding). */
  rows: number;
}

/** Options of {@link TextCorpus.fromString}. */
export interface TextCorpusOptions {
  /** The tokenizer; default: fitted on the whole text (train and validation) with `tokenizerOptions`. */
  tokenizer?: Tokenizer;
  /** How to fit the tokenizer when none is given (default `{ type: "char" }`). */
  tokenizerOptions?: TokenizerOptions;
  /** Input tokens per window (a window holds `seqLen + 1` tokens). */
  seqLen: number;
  /** Tokens between the starts of consecutive windows (default `seqLen`). */
  stride?: number;
  /** Windows per batch. */
  batchSize: number;
  /** Validation: the fraction of tokens at the tail, in [0, 1), or an explicit text (default 0). */
  validation?: number | { text: string };
  /** The last partial batch of an epoch: dropped (default) or padded to `batchSize`. */
  last?: 'drop' | 'pad';
  /** Pad id for `last: "pad"` (default: the tokenizer's `<pad>`). */
  padId?: number;
  /** Shuffle the training windows each epoch (default true). */
  shuffle?: boolean;
  /** Seed of the shuffles, an integer in [0, 2^32 − 1] (default 0). */
  seed?: number;
}

/** Options of {@link TextCorpus.fromFile}. */
export interface TextFileOptions extends Omit<TextCorpusOptions, 'validation'> {
  /** As for strings, or `{ file }`: a validation text file (also streamed). */
  validation?: number | { text: string } | { file: string };
  /** Bytes read at a time (default 1 MiB). */
  chunkSize?: number;
}

/** How a corpus cuts its token stream into windows (the native trainer uses the same rule). */
export interface WindowParams {
  seqLen: number;
  stride: number;
  /** Windows of the training stream: window k covers tokens [k·stride, k·stride + seqLen]. */
  numWindows: number;
}

/**
 * A token stream for language modelling, from a string or a (streamed) UTF-8 file. Window k of a
 * stream of N tokens holds tokens `[k·stride, k·stride + seqLen]` (inputs: the first seqLen,
 * targets: the last seqLen), for k in `[0, floor((N − seqLen − 1) / stride)]`. An epoch visits
 * every training window once, in the order {@link TextCorpus.windowOrder} gives.
 */
export class TextCorpus {
  private constructor(
    /** The tokenizer of the corpus. */
    readonly tokenizer: Tokenizer,
    private readonly train: Int32Array,
    private readonly valid: Int32Array,
    private readonly seqLen: number,
    private readonly stride: number,
    private readonly batchSize: number,
    private readonly last: 'drop' | 'pad',
    private readonly padId: number | undefined,
    private readonly shuffle: boolean,
    private readonly seed: number,
  ) {
    if (this.numWindows('train') === 0) {
      throw rangeError('ERR_RNNKIT_EMPTY', `options.seqLen: the training stream has ${train.length} tokens, fewer than seqLen + 1 = ${seqLen + 1}`);
    }
    if (this.numBatches('train') === 0) {
      throw rangeError('ERR_RNNKIT_EMPTY', `options.batchSize: ${batchSize} is more than the ${this.numWindows('train')} training windows and options.last is "drop"`);
    }
  }

  /** Validates options; returns them with defaults (tokenizer resolved later). */
  private static readOptions(options: unknown) {
    const o = checkObject('options', options);
    const seqLen = checkInt('options.seqLen', o.seqLen, 1);
    const last = o.last === undefined ? 'drop' : checkChoice('options.last', o.last, ['drop', 'pad'] as const);
    return {
      o,
      seqLen,
      stride: o.stride === undefined ? seqLen : checkInt('options.stride', o.stride, 1),
      batchSize: checkInt('options.batchSize', o.batchSize, 1),
      last,
      shuffle: o.shuffle === undefined ? true : checkBoolean('options.shuffle', o.shuffle),
      seed: o.seed === undefined ? 0 : checkInt('options.seed', o.seed, 0, 0xffffffff),
      tokenizer: o.tokenizer === undefined ? undefined : checkTokenizer('options.tokenizer', o.tokenizer),
      tokenizerOptions: (o.tokenizerOptions ?? { type: 'char' }) as TokenizerOptions,
    };
  }

  /** Builds the corpus once the streams are encoded. */
  private static build(r: ReturnType<typeof TextCorpus.readOptions>, tokenizer: Tokenizer, tokens: Int32Array, explicitValid: Int32Array | undefined): TextCorpus {
    let train = tokens;
    let valid = explicitValid ?? new Int32Array(0);
    if (typeof r.o.validation === 'number') {
      const n = Math.floor(tokens.length * r.o.validation);
      train = tokens.subarray(0, tokens.length - n);
      valid = tokens.subarray(tokens.length - n);
    }
    if (valid.length > 0 && valid.length < r.seqLen + 1) {
      throw rangeError('ERR_RNNKIT_EMPTY', `options.validation: the validation stream has ${valid.length} tokens, fewer than seqLen + 1 = ${r.seqLen + 1}`);
    }
    const padId = r.last === 'pad' ? resolvePadId(r.o.padId, tokenizer.vocabSize, tokenizer) : undefined;
    return new TextCorpus(tokenizer, train, valid, r.seqLen, r.stride, r.batchSize, r.last, padId, r.shuffle, r.seed);
  }

  /** A corpus from a string. An empty text is an ERR_RNNKIT_EMPTY error. */
  static fromString(text: string, options: TextCorpusOptions): TextCorpus {
    checkString('text', text, true);
    const r = TextCorpus.readOptions(options);
    const v = r.o.validation;
    let validText: string | undefined;
    if (v !== undefined && typeof v !== 'number') {
      validText = checkString('options.validation.text', checkObject('options.validation', v).text, true);
    } else if (v !== undefined) checkFraction('options.validation', v);
    let tokenizer = r.tokenizer;
    if (!tokenizer) {
      const fitter = createTokenizerFitter(r.tokenizerOptions);
      fitter.push(text);
      if (validText !== undefined) fitter.push('\n' + validText);
      tokenizer = fitter.finish();
    }
    const encodeAll = (where: string, s: string): Int32Array => {
      try {
        const enc = tokenizer!.streamEncoder();
        const a = enc.push(s);
        const b = enc.end();
        const out = new Int32Array(a.length + b.length);
        out.set(a);
        out.set(b, a.length);
        return out;
      } catch (e) {
        rethrowAt(where, e);
      }
    };
    const tokens = encodeAll('text', text);
    return TextCorpus.build(r, tokenizer, tokens, validText === undefined ? undefined : encodeAll('options.validation.text', validText));
  }

  /**
   * A corpus from a UTF-8 file read in chunks of `chunkSize` bytes: the text is never held whole
   * (the token ids are, 4 bytes each). Without a tokenizer, a first streaming pass fits one and a
   * second pass encodes. The ids equal those of {@link TextCorpus.fromString} on the same text.
   */
  static async fromFile(path: string, options: TextFileOptions): Promise<TextCorpus> {
    await checkFile('path', path);
    const r = TextCorpus.readOptions(options);
    const chunkSize = r.o.chunkSize === undefined ? 1 << 20 : checkInt('options.chunkSize', r.o.chunkSize, 4);
    const v = r.o.validation;
    let validText: string | undefined;
    let validFile: string | undefined;
    if (v !== undefined && typeof v !== 'number') {
      const vo = checkObject('options.validation', v);
      if (vo.file !== undefined) validFile = await checkFile('options.validation.file', vo.file);
      else validText = checkString('options.validation.text', vo.text, true);
    } else if (v !== undefined) checkFraction('options.validation', v);

    let tokenizer = r.tokenizer;
    if (!tokenizer) {
      const fitter = createTokenizerFitter(r.tokenizerOptions);
      for await (const chunk of readChunks(path, chunkSize)) fitter.push(chunk);
      if (validText !== undefined) fitter.push('\n' + validText);
      if (validFile !== undefined) {
        fitter.push('\n');
        for await (const chunk of readChunks(validFile, chunkSize)) fitter.push(chunk);
      }
      try {
        tokenizer = fitter.finish();
      } catch (e) {
        rethrowAt(JSON.stringify(path), e);
      }
    }
    const encodeFile = async (file: string): Promise<Int32Array> => {
      const builder = new Int32Builder();
      const enc = tokenizer!.streamEncoder();
      try {
        for await (const chunk of readChunks(file, chunkSize)) builder.push(enc.push(chunk));
        builder.push(enc.end());
      } catch (e) {
        rethrowAt(JSON.stringify(file), e);
      }
      return builder.finish();
    };
    const tokens = await encodeFile(path);
    if (tokens.length === 0) throw rangeError('ERR_RNNKIT_EMPTY', `path: ${JSON.stringify(path)} gives no tokens`);
    let valid: Int32Array | undefined;
    if (validFile !== undefined) valid = await encodeFile(validFile);
    else if (validText !== undefined) {
      try {
        valid = tokenizer.encode(validText);
      } catch (e) {
        rethrowAt('options.validation.text', e);
      }
    }
    return TextCorpus.build(r, tokenizer, tokens, valid);
  }

  /** The training token stream (shared, not copied: do not modify). The native trainer takes this with {@link windowParams}. */
  trainTokens(): Int32Array {
    return this.train;
  }

  /** The validation token stream (empty without validation; shared, not copied). */
  validationTokens(): Int32Array {
    return this.valid;
  }

  /** The window rule, for the native trainer. */
  windowParams(): WindowParams {
    return { seqLen: this.seqLen, stride: this.stride, numWindows: this.numWindows('train') };
  }

  /** Number of windows of a split. */
  numWindows(split: Split = 'train'): number {
    const n = (checkChoice('split', split, SPLITS) === 'train' ? this.train : this.valid).length;
    return n < this.seqLen + 1 ? 0 : Math.floor((n - this.seqLen - 1) / this.stride) + 1;
  }

  /** Number of batches of a split per epoch (`last: "drop"`: whole batches only). */
  numBatches(split: Split = 'train'): number {
    const w = this.numWindows(split);
    return this.last === 'drop' ? Math.floor(w / this.batchSize) : Math.ceil(w / this.batchSize);
  }

  /** Window indices in the order epoch `epoch` visits them (train shuffled when `shuffle`). */
  windowOrder(split: Split = 'train', epoch = 0): Uint32Array {
    checkInt('epoch', epoch, 0);
    return epochOrder(this.numWindows(split), split === 'train' && this.shuffle, this.seed, epoch);
  }

  /** The batches of one epoch of a split. */
  *batches(split: Split = 'train', epoch = 0): Generator<TokenBatch> {
    const order = this.windowOrder(split, epoch);
    const tokens = split === 'train' ? this.train : this.valid;
    const B = this.batchSize;
    const T = this.seqLen;
    for (let k = 0; k < this.numBatches(split); k++) {
      const rows = Math.min(B, order.length - k * B);
      const inputs = new Int32Array(B * T);
      const targets = new Int32Array(B * T);
      for (let r = 0; r < rows; r++) {
        const start = order[k * B + r] * this.stride;
        inputs.set(tokens.subarray(start, start + T), r * T);
        targets.set(tokens.subarray(start + 1, start + T + 1), r * T);
      }
      if (rows < B) {
        inputs.fill(this.padId!, rows * T);
        targets.fill(IGNORE_INDEX, rows * T);
      }
      yield { inputs, targets, batchSize: B, seqLen: T, rows };
    }
  }
}

// ---------------------------------------------------------------------------------------------
// CSV

/** A parsed CSV record with the (1-based) line it starts on. */
export interface CsvRecord {
  fields: string[];
  line: number;
}

/**
 * Parses CSV text (RFC 4180): fields separated by `delimiter`, optionally quoted with `"` (a
 * quote inside a quoted field is doubled; quoted fields may hold delimiters and newlines), records
 * ended by LF, CRLF or CR. Blank lines are skipped. Errors name the line: an unterminated quoted
 * field, a quote inside an unquoted field, text after a closing quote.
 */
export function parseCSV(text: string, delimiter = ','): CsvRecord[] {
  checkString('text', text);
  checkString('delimiter', delimiter);
  if (delimiter.length !== 1 || delimiter === '"' || delimiter === '\n' || delimiter === '\r') {
    throw rangeError('ERR_RNNKIT_RANGE', `delimiter: expected one character other than a quote or newline, got ${describe(delimiter)}`);
  }
  const records: CsvRecord[] = [];
  let fields: string[] = [];
  let field = '';
  let line = 1;
  let recordLine = 1;
  let quoted = false; // the current field was quoted
  let i = 0;
  const endRecord = () => {
    fields.push(field);
    if (!(fields.length === 1 && fields[0] === '' && !quoted)) records.push({ fields, line: recordLine });
    fields = [];
    field = '';
    quoted = false;
  };
  while (i < text.length) {
    const c = text[i];
    if (c === '"') {
      if (field !== '' || quoted) throw error('ERR_RNNKIT_FORMAT', `CSV line ${line}: a quote inside an unquoted field`);
      quoted = true;
      const start = line;
      i++;
      for (;;) {
        if (i >= text.length) throw error('ERR_RNNKIT_FORMAT', `CSV line ${start}: unterminated quoted field`);
        const d = text[i];
        if (d === '"') {
          if (text[i + 1] === '"') {
            field += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        if (d === '\n' || (d === '\r' && text[i + 1] !== '\n')) line++;
        field += d;
        i++;
      }
      const next = text[i];
      if (i < text.length && next !== delimiter && next !== '\n' && next !== '\r') {
        throw error('ERR_RNNKIT_FORMAT', `CSV line ${line}: text after a closing quote`);
      }
      continue;
    }
    if (c === delimiter) {
      fields.push(field);
      field = '';
      quoted = false;
      i++;
      continue;
    }
    if (c === '\n' || c === '\r') {
      endRecord();
      i += c === '\r' && text[i + 1] === '\n' ? 2 : 1;
      line++;
      recordLine = line;
      continue;
    }
    field += c;
    i++;
  }
  if (field !== '' || fields.length > 0 || quoted) endRecord();
  return records;
}

/**
 * The records of a JSONL file: one JSON object a line, blank lines skipped. Each comes with
 * `where`, `"<path>" line L`, for errors; a line that is not a JSON object is an error naming it.
 */
export async function* readJSONLRecords(path: string): AsyncGenerator<{ record: Record<string, unknown>; where: string }> {
  const lines = readline.createInterface({ input: fs.createReadStream(path, { encoding: 'utf8' }), crlfDelay: Infinity });
  let n = 0;
  for await (const line of lines) {
    n++;
    if (line.trim() === '') continue;
    const where = `${JSON.stringify(path)} line ${n}`;
    let obj: unknown;
    try {
      obj = JSON.parse(line);
    } catch (e) {
      throw error('ERR_RNNKIT_FORMAT', `${where}: not valid JSON (${(e as Error).message})`);
    }
    if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) throw error('ERR_RNNKIT_FORMAT', `${where}: expected a JSON object, got ${describe(obj)}`);
    yield { record: obj as Record<string, unknown>, where };
  }
}

// ---------------------------------------------------------------------------------------------
// Labelled sequences (classification)

/** One labelled text. */
export interface LabelledExample {
  text: string;
  label: Label;
}

/** A batch of labelled sequences. */
export interface LabelledBatch extends SequenceBatch {
  /** Class id of each row (index into {@link LabelledDataset.labels}). */
  labels: Int32Array;
}

/** Options of {@link LabelledDataset}. */
export interface LabelledOptions extends BatchingOptions {
  /** The tokenizer; default: fitted on the training rows with `tokenizerOptions`. */
  tokenizer?: Tokenizer;
  /** How to fit the tokenizer (default `{ type: "word", specials: ["<pad>", "<unk>"] }`). */
  tokenizerOptions?: TokenizerOptions;
  /** The label set, in class-id order; a row with another label is an error. Default: inferred. */
  labels?: Label[];
  /** Pad id (default: the tokenizer's `<pad>`). */
  padId?: number;
  /** Longest row in tokens (default: no limit). */
  maxLength?: number;
  /** A longer row: an error naming it (default) or cut to `maxLength`. */
  onTooLong?: 'error' | 'truncate';
  /** Split so that each label keeps its share in validation (default false). */
  stratify?: boolean;
}

/** Options of {@link LabelledDataset.fromJSONL}. */
export interface LabelledJsonlOptions extends LabelledOptions {
  /** Field holding the text (default `"text"`). */
  textField?: string;
  /** Field holding the label (default `"label"`). */
  labelField?: string;
}

/** Options of {@link LabelledDataset.fromCSV}. */
export interface LabelledCsvOptions extends LabelledOptions {
  /** Header of the text column (default `"text"`). */
  textColumn?: string;
  /** Header of the label column (default `"label"`). */
  labelColumn?: string;
  /** Field delimiter (default `","`). */
  delimiter?: string;
}

/**
 * Texts with one label each, for sequence classification. Rows are named in errors as `rows[i]`
 * (arrays) or `<file> line L` (files). Batches pad to the longest row of the batch.
 */
export class LabelledDataset extends RowDataset<LabelledBatch> {
  /** The tokenizer of the texts. */
  readonly tokenizer: Tokenizer;
  /** The labels in class-id order. */
  readonly labels: readonly Label[];
  /** The pad id of the batches. */
  readonly padId: number;
  private readonly tokens: Int32Array[];
  private readonly classes: Int32Array;

  private constructor(rows: { text: unknown; label: unknown; where: string }[], options: LabelledOptions) {
    const o = checkObject('options', options);
    const batching = readBatching(o);
    const limit = readLengthLimit(o);
    const stratify = o.stratify === undefined ? false : checkBoolean('options.stratify', o.stratify);
    let tokenizer = o.tokenizer === undefined ? undefined : checkTokenizer('options.tokenizer', o.tokenizer);
    if (rows.length === 0) throw rangeError('ERR_RNNKIT_EMPTY', 'rows: no rows');
    rows.forEach(({ text, where }) => {
      if (typeof text !== 'string') throw typeError('ERR_RNNKIT_TYPE', `${where}: text: expected a string, got ${describe(text)}`);
      if (text.length === 0) throw rangeError('ERR_RNNKIT_EMPTY', `${where}: empty text`);
    });
    const labelSet = new LabelSet(o.labels, rows, 'options.labels');
    const classes = Int32Array.from(rows, (r) => labelSet.id(r.label as Label));
    super(batching, rows.length, stratify ? classes : undefined);
    if (!tokenizer) {
      const fitter = createTokenizerFitter((o.tokenizerOptions ?? { type: 'word', specials: ['<pad>', '<unk>'] }) as TokenizerOptions);
      for (const i of this.parts.train) fitter.push((rows[i].text as string) + '\n');
      tokenizer = fitter.finish();
    }
    this.tokenizer = tokenizer;
    this.labels = labelSet.labels;
    this.classes = classes;
    this.padId = resolvePadId(o.padId, tokenizer.vocabSize, tokenizer);
    this.tokens = rows.map(({ text, where }) => {
      let ids: Int32Array;
      try {
        ids = tokenizer!.encode(text as string);
      } catch (e) {
        rethrowAt(where, e);
      }
      if (ids.length === 0) throw rangeError('ERR_RNNKIT_EMPTY', `${where}: the text ${describe(text)} gives no tokens`);
      return limitLength(where, ids, limit);
    });
  }

  /** A dataset from an array of `{ text, label }`. */
  static fromArray(rows: LabelledExample[], options: LabelledOptions): LabelledDataset {
    if (!Array.isArray(rows)) throw typeError('ERR_RNNKIT_TYPE', `rows: expected an array of { text, label }, got ${describe(rows)}`);
    return new LabelledDataset(
      rows.map((r, i) => {
        if (typeof r !== 'object' || r === null) throw typeError('ERR_RNNKIT_TYPE', `rows[${i}]: expected { text, label }, got ${describe(r)}`);
        return { text: r.text, label: r.label, where: `rows[${i}]` };
      }),
      options,
    );
  }

  /** A dataset from a JSONL file: one JSON object a line (blank lines skipped). */
  static async fromJSONL(path: string, options: LabelledJsonlOptions): Promise<LabelledDataset> {
    await checkFile('path', path);
    const o = checkObject('options', options);
    const textField = o.textField === undefined ? 'text' : checkString('options.textField', o.textField, true);
    const labelField = o.labelField === undefined ? 'label' : checkString('options.labelField', o.labelField, true);
    const rows: { text: unknown; label: unknown; where: string }[] = [];
    for await (const { record, where } of readJSONLRecords(path)) {
      if (!(labelField in record)) throw error('ERR_RNNKIT_FORMAT', `${where}: no ${JSON.stringify(labelField)} field`);
      rows.push({ text: record[textField], label: record[labelField], where });
    }
    return new LabelledDataset(rows, options);
  }

  /**
   * A dataset from a CSV file with a header row (parsed by {@link parseCSV}). Label cells are
   * strings; when `labels` are declared, a cell matches the declared label whose `String()` is
   * equal (so `labels: [0, 1]` reads cells `0` and `1`).
   */
  static async fromCSV(path: string, options: LabelledCsvOptions): Promise<LabelledDataset> {
    await checkFile('path', path);
    const o = checkObject('options', options);
    const textColumn = o.textColumn === undefined ? 'text' : checkString('options.textColumn', o.textColumn, true);
    const labelColumn = o.labelColumn === undefined ? 'label' : checkString('options.labelColumn', o.labelColumn, true);
    const delimiter = o.delimiter === undefined ? ',' : checkString('options.delimiter', o.delimiter);
    let records: CsvRecord[];
    try {
      records = parseCSV(await fs.promises.readFile(path, 'utf8'), delimiter);
    } catch (e) {
      rethrowAt(JSON.stringify(path), e);
    }
    if (records.length === 0) throw rangeError('ERR_RNNKIT_EMPTY', `path: ${JSON.stringify(path)} has no header row`);
    const header = records[0].fields;
    const ti = header.indexOf(textColumn);
    const li = header.indexOf(labelColumn);
    if (ti < 0) throw error('ERR_RNNKIT_FORMAT', `options.textColumn: no column ${describe(textColumn)} in the header of ${JSON.stringify(path)} (${header.join(', ')})`);
    if (li < 0) throw error('ERR_RNNKIT_FORMAT', `options.labelColumn: no column ${describe(labelColumn)} in the header of ${JSON.stringify(path)} (${header.join(', ')})`);
    const declared = Array.isArray(o.labels) ? new Map((o.labels as unknown[]).map((l) => [String(l), l])) : undefined;
    const rows = records.slice(1).map(({ fields, line }) => {
      const where = `${JSON.stringify(path)} line ${line}`;
      if (fields.length !== header.length) throw error('ERR_RNNKIT_FORMAT', `${where}: ${fields.length} fields, the header has ${header.length}`);
      const cell = fields[li];
      return { text: fields[ti], label: declared?.has(cell) ? declared.get(cell) : cell, where };
    });
    return new LabelledDataset(rows, options);
  }

  /** The token ids of row `i` (after truncation). */
  rowTokens(i: number): Int32Array {
    return this.tokens[checkInt('i', i, 0, this.tokens.length - 1)];
  }

  /** The class id of row `i`. */
  rowLabel(i: number): number {
    return this.classes[checkInt('i', i, 0, this.classes.length - 1)];
  }

  protected makeBatch(rows: Uint32Array): LabelledBatch {
    const batch = padTokens([...rows].map((i) => this.tokens[i]), this.padId);
    return { ...batch, labels: Int32Array.from(rows, (i) => this.classes[i]) };
  }
}

// ---------------------------------------------------------------------------------------------
// Tagged sequences

/** Token ids with one tag per step. */
export interface TaggedExample {
  ids: ArrayLike<number>;
  tags: ArrayLike<Label>;
}

/** A batch of tagged sequences. */
export interface TaggedBatch extends SequenceBatch {
  /** Tag id per step `[batchSize, seqLen]`; padded steps hold {@link IGNORE_INDEX}. */
  tags: Int32Array;
}

/** Options of {@link TaggedDataset.fromArray}. */
export interface TaggedOptions extends BatchingOptions {
  /** Size of the token vocabulary: ids must be in [0, vocabSize). */
  vocabSize: number;
  /** Pad id, in [0, vocabSize). */
  padId: number;
  /** The tag set, in tag-id order; default: inferred (numbers ascending, strings by code point). */
  tags?: Label[];
  /** Longest row in steps (default: no limit). */
  maxLength?: number;
  /** A longer row: an error naming it (default) or cut to `maxLength`. */
  onTooLong?: 'error' | 'truncate';
}

/** Token sequences with a tag per step (tagging tasks). Errors name rows as `rows[i]`. */
export class TaggedDataset extends RowDataset<TaggedBatch> {
  /** The tags in tag-id order. */
  readonly tags: readonly Label[];
  /** The pad id of the batches. */
  readonly padId: number;
  private readonly ids: Int32Array[];
  private readonly tagIds: Int32Array[];

  private constructor(rows: TaggedExample[], options: TaggedOptions) {
    const o = checkObject('options', options);
    const batching = readBatching(o);
    const limit = readLengthLimit(o);
    const vocabSize = checkInt('options.vocabSize', o.vocabSize, 1);
    const padId = checkInt('options.padId', o.padId, 0, vocabSize - 1);
    if (rows.length === 0) throw rangeError('ERR_RNNKIT_EMPTY', 'rows: no rows');
    const found: { label: unknown; where: string }[] = [];
    const ids = rows.map((r, i) => {
      const where = `rows[${i}]`;
      if (typeof r !== 'object' || r === null) throw typeError('ERR_RNNKIT_TYPE', `${where}: expected { ids, tags }, got ${describe(r)}`);
      const okIds = Array.isArray(r.ids) || r.ids instanceof Int32Array || r.ids instanceof Uint32Array || r.ids instanceof Uint16Array || r.ids instanceof Uint8Array;
      if (!okIds) throw typeError('ERR_RNNKIT_TYPE', `${where}.ids: expected an array or integer typed array, got ${describe(r.ids)}`);
      if (!Array.isArray(r.tags) && !ArrayBuffer.isView(r.tags)) throw typeError('ERR_RNNKIT_TYPE', `${where}.tags: expected an array, got ${describe(r.tags)}`);
      if (r.ids.length === 0) throw rangeError('ERR_RNNKIT_EMPTY', `${where}: no tokens`);
      if (r.tags.length !== r.ids.length) throw rangeError('ERR_RNNKIT_SHAPE', `${where}: ${r.ids.length} ids but ${r.tags.length} tags`);
      const out = new Int32Array(r.ids.length);
      for (let t = 0; t < r.ids.length; t++) out[t] = checkInt(`${where}.ids[${t}]`, r.ids[t], 0, vocabSize - 1);
      for (let t = 0; t < r.tags.length; t++) found.push({ label: r.tags[t], where: `${where}.tags[${t}]` });
      return limitLength(where, out, limit);
    });
    const tagSet = new LabelSet(o.tags, found, 'options.tags');
    super(batching, rows.length);
    this.tags = tagSet.labels;
    this.padId = padId;
    this.ids = ids;
    this.tagIds = ids.map((row, i) => Int32Array.from({ length: row.length }, (_, t) => tagSet.id(rows[i].tags[t])));
  }

  /** A dataset from an array of `{ ids, tags }`. */
  static fromArray(rows: TaggedExample[], options: TaggedOptions): TaggedDataset {
    if (!Array.isArray(rows)) throw typeError('ERR_RNNKIT_TYPE', `rows: expected an array of { ids, tags }, got ${describe(rows)}`);
    return new TaggedDataset(rows, options);
  }

  protected makeBatch(rows: Uint32Array): TaggedBatch {
    const batch = padTokens([...rows].map((i) => this.ids[i]), this.padId);
    const tags = new Int32Array(batch.inputs.length).fill(IGNORE_INDEX);
    [...rows].forEach((i, r) => tags.set(this.tagIds[i], r * batch.seqLen));
    return { ...batch, tags };
  }
}

// ---------------------------------------------------------------------------------------------
// Dense float sequences

/** Per-feature mean and standard deviation, computed on a training split and applied later. */
export class FeatureStats {
  /**
   * `mean` and `std` of length `inputSize`; `std` entries must be positive. Use
   * {@link FeatureStats.compute} to get them from data.
   */
  constructor(
    readonly mean: Float32Array,
    readonly std: Float32Array,
  ) {
    if (!(mean instanceof Float32Array)) throw typeError('ERR_RNNKIT_TYPE', `mean: expected a Float32Array, got ${describe(mean)}`);
    if (!(std instanceof Float32Array)) throw typeError('ERR_RNNKIT_TYPE', `std: expected a Float32Array, got ${describe(std)}`);
    if (mean.length !== std.length || mean.length === 0) throw rangeError('ERR_RNNKIT_SHAPE', `std: length ${std.length} must equal mean's length ${mean.length} (> 0)`);
    mean.forEach((m, i) => checkNumber(`mean[${i}]`, m));
    std.forEach((s, i) => {
      if (!(s > 0) || !Number.isFinite(s)) throw rangeError('ERR_RNNKIT_RANGE', `std[${i}]: expected a finite number > 0, got ${describe(s)}`);
    });
  }

  /**
   * Mean and population standard deviation of each feature over all steps of `rows` (each `[T, I]`
   * row-major), accumulated in float64. A feature with std below 1e-8 gets std 1 (constant
   * features are only centred).
   */
  static compute(rows: readonly Float32Array[], inputSize: number): FeatureStats {
    const I = checkInt('inputSize', inputSize, 1);
    const sum = new Float64Array(I);
    const sq = new Float64Array(I);
    let n = 0;
    for (const row of rows) {
      for (let k = 0; k < row.length; k++) sum[k % I] += row[k];
      n += row.length / I;
    }
    if (n === 0) throw rangeError('ERR_RNNKIT_EMPTY', 'rows: no steps to compute statistics on');
    const mean = Float64Array.from(sum, (s) => s / n);
    for (const row of rows) for (let k = 0; k < row.length; k++) sq[k % I] += (row[k] - mean[k % I]) ** 2;
    const std = Float32Array.from(sq, (s) => {
      const d = Math.sqrt(s / n);
      return d < 1e-8 ? 1 : d;
    });
    return new FeatureStats(Float32Array.from(mean), std);
  }

  /** `(x − mean) / std` for `x` laid out `[..., I]`; returns a new array. */
  apply(x: Float32Array): Float32Array {
    if (!(x instanceof Float32Array)) throw typeError('ERR_RNNKIT_TYPE', `x: expected a Float32Array, got ${describe(x)}`);
    const I = this.mean.length;
    if (x.length % I !== 0) throw rangeError('ERR_RNNKIT_SHAPE', `x: length ${x.length} is not a multiple of the ${I} features`);
    return x.map((v, k) => (v - this.mean[k % I]) / this.std[k % I]);
  }

  /** `{ mean: number[], std: number[] }`, to save with a model. */
  toJSON(): { mean: number[]; std: number[] } {
    return { mean: [...this.mean], std: [...this.std] };
  }

  /** Reads the form {@link FeatureStats.toJSON} writes. */
  static fromJSON(json: { mean: number[]; std: number[] }): FeatureStats {
    const o = checkObject('json', json);
    if (!Array.isArray(o.mean) || !Array.isArray(o.std)) throw typeError('ERR_RNNKIT_TYPE', 'json: expected { mean: number[], std: number[] }');
    o.mean.forEach((v, i) => checkNumber(`json.mean[${i}]`, v));
    o.std.forEach((v, i) => checkNumber(`json.std[${i}]`, v));
    return new FeatureStats(Float32Array.from(o.mean as number[]), Float32Array.from(o.std as number[]));
  }
}

/** A batch of dense sequences. */
export interface DenseBatch {
  /** `[batchSize, seqLen, inputSize]`; padded steps are 0 (after normalisation). */
  inputs: Float32Array;
  lengths: Int32Array;
  batchSize: number;
  seqLen: number;
  inputSize: number;
  /** Class id per row, when the dataset has labels. */
  labels?: Int32Array;
  /** `[batchSize, seqLen, outputSize]` per-step targets, when the dataset has them; padded steps are 0 (mask with `lengths`). */
  targets?: Float32Array;
}

/** Options of {@link DenseDataset}. */
export interface DenseOptions extends BatchingOptions {
  /** Features per step. */
  inputSize: number;
  /** A class id (integer ≥ 0) per row. */
  labels?: ArrayLike<number>;
  /** Per-step targets, one `[T, outputSize]` row per input row (same T). */
  targets?: Float32Array[];
  /** Features per target step (required with `targets`). */
  outputSize?: number;
  /** Normalise the inputs of every batch with the training statistics (default false). */
  normalize?: boolean;
}

/** Checks a dense row: a Float32Array of whole steps with finite values. Returns its steps. */
function checkDenseRow(where: string, row: unknown, size: number, sizeName: string): number {
  if (!(row instanceof Float32Array)) throw typeError('ERR_RNNKIT_TYPE', `${where}: expected a Float32Array, got ${describe(row)}`);
  if (row.length === 0) throw rangeError('ERR_RNNKIT_EMPTY', `${where}: no steps`);
  if (row.length % size !== 0) throw rangeError('ERR_RNNKIT_SHAPE', `${where}: length ${row.length} is not a multiple of ${sizeName} = ${size}`);
  for (let k = 0; k < row.length; k++) {
    if (!Number.isFinite(row[k])) {
      throw rangeError('ERR_RNNKIT_NON_FINITE', `${where}: ${row[k]} at step ${Math.floor(k / size)}, feature ${k % size}`);
    }
  }
  return row.length / size;
}

/**
 * Dense float sequences `[T, I]` per row (T may differ between rows), with optional labels or
 * per-step targets. {@link DenseDataset.stats} are computed on the training split.
 */
export class DenseDataset extends RowDataset<DenseBatch> {
  /** Features per step. */
  readonly inputSize: number;
  /** Feature statistics of the training split (applied to batches when `normalize`). */
  readonly stats: FeatureStats;
  private readonly rows: Float32Array[];
  private readonly steps: Int32Array;
  private readonly labels?: Int32Array;
  private readonly targets?: Float32Array[];
  private readonly outputSize: number;
  private readonly normalize: boolean;

  private constructor(rows: Float32Array[], options: DenseOptions, rowName: (i: number) => string) {
    const o = checkObject('options', options);
    const batching = readBatching(o);
    const I = checkInt('options.inputSize', o.inputSize, 1);
    const normalize = o.normalize === undefined ? false : checkBoolean('options.normalize', o.normalize);
    if (rows.length === 0) throw rangeError('ERR_RNNKIT_EMPTY', 'rows: no rows');
    const steps = Int32Array.from(rows, (r, i) => checkDenseRow(rowName(i), r, I, 'options.inputSize'));
    let labels: Int32Array | undefined;
    if (o.labels !== undefined) {
      const l = o.labels as ArrayLike<unknown>;
      if (!Array.isArray(l) && !ArrayBuffer.isView(l)) throw typeError('ERR_RNNKIT_TYPE', `options.labels: expected an array of class ids, got ${describe(l)}`);
      if (l.length !== rows.length) throw rangeError('ERR_RNNKIT_SHAPE', `options.labels: ${l.length} labels for ${rows.length} rows`);
      labels = Int32Array.from({ length: l.length }, (_, i) => checkInt(`options.labels[${i}]`, l[i], 0, 0x7fffffff));
    }
    let targets: Float32Array[] | undefined;
    let outputSize = 0;
    if (o.targets !== undefined) {
      if (!Array.isArray(o.targets)) throw typeError('ERR_RNNKIT_TYPE', `options.targets: expected an array of Float32Array, got ${describe(o.targets)}`);
      outputSize = checkInt('options.outputSize', o.outputSize, 1);
      if (o.targets.length !== rows.length) throw rangeError('ERR_RNNKIT_SHAPE', `options.targets: ${o.targets.length} rows for ${rows.length} input rows`);
      targets = o.targets as Float32Array[];
      targets.forEach((t, i) => {
        const T = checkDenseRow(`options.targets[${i}]`, t, outputSize, 'options.outputSize');
        if (T !== steps[i]) throw rangeError('ERR_RNNKIT_SHAPE', `options.targets[${i}]: ${T} steps but ${rowName(i)} has ${steps[i]}`);
      });
    }
    super(batching, rows.length, undefined);
    this.inputSize = I;
    this.rows = rows;
    this.steps = steps;
    this.labels = labels;
    this.targets = targets;
    this.outputSize = outputSize;
    this.normalize = normalize;
    this.stats = FeatureStats.compute([...this.parts.train].map((i) => rows[i]), I);
  }

  /** A dataset from one Float32Array `[T, inputSize]` per row. Errors name rows as `rows[i]`. */
  static fromRows(rows: Float32Array[], options: DenseOptions): DenseDataset {
    if (!Array.isArray(rows)) throw typeError('ERR_RNNKIT_TYPE', `rows: expected an array of Float32Array, got ${describe(rows)}`);
    return new DenseDataset(rows, options, (i) => `rows[${i}]`);
  }

  /**
   * A dataset from one Float32Array `[B, T, I]` with `dims = [B, T, I]` (all rows T steps;
   * `I` must equal `options.inputSize`). Errors name rows as `row i`.
   */
  static fromArray(data: Float32Array, dims: [number, number, number], options: DenseOptions): DenseDataset {
    if (!(data instanceof Float32Array)) throw typeError('ERR_RNNKIT_TYPE', `data: expected a Float32Array, got ${describe(data)}`);
    if (!Array.isArray(dims) || dims.length !== 3) throw typeError('ERR_RNNKIT_TYPE', `dims: expected [B, T, I], got ${describe(dims)}`);
    const B = checkInt('dims[0]', dims[0], 1);
    const T = checkInt('dims[1]', dims[1], 1);
    const I = checkInt('dims[2]', dims[2], 1);
    if (B * T * I !== data.length) throw rangeError('ERR_RNNKIT_SHAPE', `data: length ${data.length} is not B·T·I = ${B}·${T}·${I} = ${B * T * I}`);
    const o = checkObject('options', options);
    if (o.inputSize !== I) throw rangeError('ERR_RNNKIT_SHAPE', `dims[2]: ${I} features but options.inputSize is ${describe(o.inputSize)}`);
    const rows = Array.from({ length: B }, (_, b) => data.subarray(b * T * I, (b + 1) * T * I));
    return new DenseDataset(rows, options, (i) => `row ${i}`);
  }

  protected makeBatch(rows: Uint32Array): DenseBatch {
    const I = this.inputSize;
    const seqLen = Math.max(...[...rows].map((i) => this.steps[i]));
    const inputs = new Float32Array(rows.length * seqLen * I);
    const lengths = Int32Array.from(rows, (i) => this.steps[i]);
    rows.forEach((i, r) => inputs.set(this.normalize ? this.stats.apply(this.rows[i]) : this.rows[i], r * seqLen * I));
    const batch: DenseBatch = { inputs, lengths, batchSize: rows.length, seqLen, inputSize: I };
    if (this.labels) batch.labels = Int32Array.from(rows, (i) => this.labels![i]);
    if (this.targets) {
      const O = this.outputSize;
      batch.targets = new Float32Array(rows.length * seqLen * O);
      rows.forEach((i, r) => batch.targets!.set(this.targets![i], r * seqLen * O));
    }
    return batch;
  }
}
