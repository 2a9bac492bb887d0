/** Text corpora for language models: a token stream cut into windows by the engine. */

import type { NativeTokenBuffer, NativeTokenDataset } from '../../index';
import { native } from '../native';
import { checkBoolean, checkChoice, checkInt, checkString, describe, rangeError, typeError } from '../errors';
import { createTokenizerFitter, type Tokenizer, type TokenizerOptions } from '../tokenizer';
import { checkFile, checkObject, checkTokenizer, resolvePadId, rethrowAt, SPLITS, type Split } from './common';
import { readTextChunks } from './text-chunks';
import { abortedError } from '../cancel';

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
  /** Input tokens per window (a window holds `seqLen + 1` tokens; default 100). */
  seqLen?: number;
  /** Tokens between the starts of consecutive windows (default `seqLen`). */
  stride?: number;
  /** Windows per batch (default 32). */
  batchSize?: number;
  /** Validation: the fraction of tokens at the tail, in [0, 1), or an explicit text (default 0). */
  validation?: number | { text: string };
  /** The last partial batch of an epoch: dropped (default), kept smaller, or padded to `batchSize`. */
  last?: 'drop' | 'keep' | 'pad';
  /** Truncated BPTT: read the text as `batchSize` contiguous lanes, each batch continuing the previous one (state carried), instead of shuffled windows. */
  tbptt?: boolean;
  /** Pad id for `last: "pad"` (default: the tokenizer's `<pad>`). */
  padId?: number;
  /** Shuffle the training windows each epoch (default true). */
  shuffle?: boolean;
  /** Seed of the shuffles, an integer in [0, 2^32 − 1] (default 0). */
  seed?: number;
}

/** Options of {@link TextCorpus.fromFile} and {@link TextCorpus.fromFiles}. */
export interface TextFileOptions extends Omit<TextCorpusOptions, 'validation'> {
  /** As for strings, or `{ file }`: a validation text file (also streamed). */
  validation?: number | { text: string } | { file: string };
  /** Bytes read at a time (default 1 MiB). */
  chunkSize?: number;
  /**
   * Read invalid UTF-8 with U+FFFD replacements (default false: invalid UTF-8 is a TypeError
   * `ERR_RNNKIT_ENCODING` naming the file and the byte offset).
   */
  lossy?: boolean;
}

/** UTF-16 units of a string encoded at a time, so no encoder output outgrows a typed array. */
const STRING_PIECE = 1 << 20;

/** `text` in pieces of about {@link STRING_PIECE} units, never splitting a surrogate pair. */
function* stringPieces(text: string): Generator<string> {
  for (let at = 0; at < text.length;) {
    let end = Math.min(text.length, at + STRING_PIECE);
    const last = text.charCodeAt(end - 1);
    if (end < text.length && last >= 0xd800 && last <= 0xdbff) end++;
    yield text.slice(at, end);
    at = end;
  }
}

/** The engine's compact token buffer holding `ids` (checked against `vocabSize`). */
export function tokenBuffer(ids: Int32Array, vocabSize: number): NativeTokenBuffer {
  const buffer = new native.NativeTokenBuffer(vocabSize);
  buffer.push(ids);
  return buffer;
}

/**
 * Encodes text given in pieces into a new token buffer, piece by piece (`where` names the text in
 * errors): the ids go to the engine as they are made, so neither the text nor its ids are ever
 * held whole in JavaScript.
 */
class Encoding {
  readonly buffer: NativeTokenBuffer;
  private readonly encoder: ReturnType<Tokenizer['streamEncoder']>;

  constructor(tokenizer: Tokenizer) {
    this.buffer = new native.NativeTokenBuffer(tokenizer.vocabSize);
    this.encoder = tokenizer.streamEncoder();
  }

  push(where: string, text: string): void {
    try {
      this.buffer.push(this.encoder.push(text));
    } catch (e) {
      rethrowAt(where, e);
    }
  }

  end(where: string): NativeTokenBuffer {
    try {
      this.buffer.push(this.encoder.end());
    } catch (e) {
      rethrowAt(where, e);
    }
    return this.buffer;
  }
}

/**
 * The ids of a UTF-8 file read in chunks (`name`: the argument naming it, for errors), in the
 * engine's compact token buffer.
 */
export async function encodeTextFile(
  tokenizer: Tokenizer,
  file: string,
  name: string,
  o: { chunkSize: number; lossy: boolean },
  signal?: AbortSignal,
): Promise<NativeTokenBuffer> {
  const where = JSON.stringify(file);
  const enc = new Encoding(tokenizer);
  for await (const chunk of readTextChunks(file, { ...o, name })) {
    // A gigabyte is a thousand pieces: an abort stops the reading too.
    if (signal?.aborted) throw abortedError('evaluation');
    enc.push(where, chunk);
  }
  return enc.end(where);
}

/** Checks the options of reading a text file: `chunkSize` (default 1 MiB) and `lossy`. */
export function readFileOptions(o: Record<string, unknown>): { chunkSize: number; lossy: boolean } {
  return {
    chunkSize: o.chunkSize === undefined ? 1 << 20 : checkInt('options.chunkSize', o.chunkSize, 4),
    lossy: o.lossy === undefined ? false : checkBoolean('options.lossy', o.lossy),
  };
}

/**
 * A token stream for language modelling, from a string or (streamed) UTF-8 files. Window k of a
 * stream of N tokens holds tokens `[k·stride, k·stride + seqLen]` (inputs: the first seqLen,
 * targets: the last seqLen), for k in `[0, floor((N − seqLen − 1) / stride)]`. The windows, the
 * split and the order of each epoch are the engine's: {@link TextCorpus.batches} yields exactly
 * the batches `fit` trains on. The ids live in the engine, 1 byte each when the vocabulary has at
 * most 256 ids, 2 up to 65,536, else 4.
 */
export class TextCorpus {
  /** @internal The engine's token dataset: what `fit` reads. */
  readonly native: NativeTokenDataset;

  private constructor(
    /** The tokenizer of the corpus. */
    readonly tokenizer: Tokenizer,
    handle: NativeTokenDataset,
    /** Input tokens per window. */
    readonly seqLen: number,
    /** Windows per batch. */
    readonly batchSize: number,
  ) {
    this.native = handle;
  }

  /** Validates the options the corpus itself handles; the data order is the engine's to check. */
  private static readOptions(options: unknown) {
    const o = checkObject('options', options);
    return {
      o,
      tokenizer: o.tokenizer === undefined ? undefined : checkTokenizer('options.tokenizer', o.tokenizer),
      tokenizerOptions: (o.tokenizerOptions ?? { type: 'char' }) as TokenizerOptions,
    };
  }

  /** Builds the corpus once the streams are encoded. */
  private static build(
    r: ReturnType<typeof TextCorpus.readOptions>,
    tokenizer: Tokenizer,
    tokens: NativeTokenBuffer,
    explicitValid: NativeTokenBuffer | undefined,
  ): TextCorpus {
    const { tokenizer: _t, tokenizerOptions: _o, validation, chunkSize: _c, lossy: _l, ...order } = r.o;
    if (order.last === 'pad' && order.padId === undefined) order.padId = resolvePadId(undefined, tokenizer.vocabSize, tokenizer);
    const fraction = typeof validation === 'number' ? validation : 0;
    const handle = new native.NativeTokenDataset(tokens, explicitValid ?? null, fraction, order);
    return new TextCorpus(tokenizer, handle, order.seqLen as number, order.batchSize as number);
  }

  /** A corpus from a string. An empty text is an ERR_RNNKIT_EMPTY error. */
  static fromString(text: string, options: TextCorpusOptions): TextCorpus {
    checkString('text', text, true);
    const r = TextCorpus.readOptions(options);
    const v = r.o.validation;
    let validText: string | undefined;
    if (v !== undefined && typeof v !== 'number') {
      validText = checkString('options.validation.text', checkObject('options.validation', v).text, true);
    }
    let tokenizer = r.tokenizer;
    if (!tokenizer) {
      const fitter = createTokenizerFitter(r.tokenizerOptions);
      for (const piece of stringPieces(text)) fitter.push(piece);
      if (validText !== undefined) fitter.push('\n' + validText);
      tokenizer = fitter.finish();
    }
    const encodeAll = (where: string, s: string): NativeTokenBuffer => {
      const enc = new Encoding(tokenizer);
      for (const piece of stringPieces(s)) enc.push(where, piece);
      return enc.end(where);
    };
    const tokens = encodeAll('text', text);
    return TextCorpus.build(r, tokenizer, tokens, validText === undefined ? undefined : encodeAll('options.validation.text', validText));
  }

  /**
   * A corpus from a UTF-8 file read in chunks of `chunkSize` bytes: the text is never held whole,
   * and its ids go to the engine chunk by chunk (stored compactly there). Without a tokenizer, a
   * first streaming pass fits one and a second pass encodes. The ids equal those of
   * {@link TextCorpus.fromString} on the same text.
   */
  static async fromFile(path: string, options: TextFileOptions): Promise<TextCorpus> {
    return TextCorpus.read([await checkFile('path', path)], ['path'], options);
  }

  /**
   * A corpus from several UTF-8 files, streamed as {@link TextCorpus.fromFile} streams one: their
   * texts joined with a blank line (`"\n\n"`) between consecutive files, so the ids equal those
   * of {@link TextCorpus.fromString} on that joined text.
   */
  static async fromFiles(paths: readonly string[], options: TextFileOptions): Promise<TextCorpus> {
    if (!Array.isArray(paths) || paths.length === 0)
      throw typeError('ERR_RNNKIT_TYPE', `paths: expected a non-empty array of file paths, got ${describe(paths)}`);
    const names = paths.map((_, i) => `paths[${i}]`);
    const files: string[] = [];
    for (let i = 0; i < paths.length; i++) files.push(await checkFile(names[i], paths[i]));
    return TextCorpus.read(files, names, options);
  }

  /** Reads `files` (named `names` in errors) as one stream, a blank line between files. */
  private static async read(files: string[], names: string[], options: TextFileOptions): Promise<TextCorpus> {
    const r = TextCorpus.readOptions(options);
    const reading = readFileOptions(r.o);
    const v = r.o.validation;
    let validText: string | undefined;
    let validFile: string | undefined;
    if (v !== undefined && typeof v !== 'number') {
      const vo = checkObject('options.validation', v);
      if (vo.file !== undefined) validFile = await checkFile('options.validation.file', vo.file);
      else validText = checkString('options.validation.text', vo.text, true);
    }
    const chunks = (file: string, name: string) => readTextChunks(file, { ...reading, name });
    /** Every piece of the joined training text, with the file it came from. */
    async function* pieces(): AsyncGenerator<[string, string]> {
      for (let i = 0; i < files.length; i++) {
        const where = JSON.stringify(files[i]);
        if (i > 0) yield [where, '\n\n'];
        for await (const chunk of chunks(files[i], names[i])) yield [where, chunk];
      }
    }
    const allFiles = files.map((f) => JSON.stringify(f)).join(', ');

    let tokenizer = r.tokenizer;
    if (!tokenizer) {
      const fitter = createTokenizerFitter(r.tokenizerOptions);
      for await (const [, chunk] of pieces()) fitter.push(chunk);
      if (validText !== undefined) fitter.push('\n' + validText);
      if (validFile !== undefined) {
        fitter.push('\n');
        for await (const chunk of chunks(validFile, 'options.validation.file')) fitter.push(chunk);
      }
      try {
        tokenizer = fitter.finish();
      } catch (e) {
        rethrowAt(allFiles, e);
      }
    }
    const train = new Encoding(tokenizer);
    for await (const [where, chunk] of pieces()) train.push(where, chunk);
    const tokens = train.end(JSON.stringify(files[files.length - 1]));
    if (tokens.length === 0) throw rangeError('ERR_RNNKIT_EMPTY', `${names.length === 1 ? names[0] : 'paths'}: ${allFiles} gives no tokens`);
    let valid: NativeTokenBuffer | undefined;
    if (validFile !== undefined) valid = await encodeTextFile(tokenizer, validFile, 'options.validation.file', reading);
    else if (validText !== undefined) {
      const enc = new Encoding(tokenizer);
      for (const piece of stringPieces(validText)) enc.push('options.validation.text', piece);
      valid = enc.end('options.validation.text');
    }
    return TextCorpus.build(r, tokenizer, tokens, valid);
  }

  /** Tokens in a split (0 for a corpus without validation). */
  numTokens(split: Split = 'train'): number {
    return this.native.numTokens(checkChoice('split', split, SPLITS));
  }

  /** Bytes each token id takes in the engine: 1, 2 or 4, the narrowest that holds the vocabulary. */
  get bytesPerToken(): number {
    return this.native.bytesPerId;
  }

  /** The training token stream (a copy; a RangeError past 2^30 tokens: use {@link TextCorpus.batches}). */
  trainTokens(): Int32Array {
    return this.native.tokens('train');
  }

  /** The validation token stream (empty without validation; a copy). */
  validationTokens(): Int32Array {
    return this.native.tokens('validation');
  }

  /** Number of windows of a split. */
  numWindows(split: Split = 'train'): number {
    return this.native.numWindows(checkChoice('split', split, SPLITS));
  }

  /** Number of batches of a split per epoch (under the `last` policy). */
  numBatches(split: Split = 'train'): number {
    return this.native.numBatches(checkChoice('split', split, SPLITS));
  }

  /** Window indices in the order epoch `epoch` visits them (train shuffled when `shuffle`). */
  windowOrder(split: Split = 'train', epoch = 0): Uint32Array {
    checkInt('epoch', epoch, 0);
    return this.native.windowOrder(checkChoice('split', split, SPLITS), epoch);
  }

  /** The batches of one epoch of a split, exactly as `fit` trains on them. */
  *batches(split: Split = 'train', epoch = 0): Generator<TokenBatch> {
    checkChoice('split', split, SPLITS);
    checkInt('epoch', epoch, 0);
    const n = this.native.numBatches(split);
    for (let k = 0; k < n; k++) yield this.native.batch(split, epoch, k);
  }
}
