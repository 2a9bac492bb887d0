/** Text corpora for language models: a token stream cut into windows by the engine. */

import type { NativeTokenDataset } from '../../index';
import { native } from '../native';
import { checkChoice, checkInt, checkString, rangeError } from '../errors';
import { createTokenizerFitter, type Tokenizer, type TokenizerOptions } from '../tokenizer';
import { checkFile, checkObject, checkTokenizer, Int32Builder, readChunks, resolvePadId, rethrowAt, SPLITS, type Split } from './common';

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

/** Options of {@link TextCorpus.fromFile}. */
export interface TextFileOptions extends Omit<TextCorpusOptions, 'validation'> {
  /** As for strings, or `{ file }`: a validation text file (also streamed). */
  validation?: number | { text: string } | { file: string };
  /** Bytes read at a time (default 1 MiB). */
  chunkSize?: number;
}

/**
 * A token stream for language modelling, from a string or a (streamed) UTF-8 file. Window k of a
 * stream of N tokens holds tokens `[k·stride, k·stride + seqLen]` (inputs: the first seqLen,
 * targets: the last seqLen), for k in `[0, floor((N − seqLen − 1) / stride)]`. The windows, the
 * split and the order of each epoch are the engine's: {@link TextCorpus.batches} yields exactly
 * the batches `fit` trains on.
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
    tokens: Int32Array,
    explicitValid: Int32Array | undefined,
  ): TextCorpus {
    const { tokenizer: _t, tokenizerOptions: _o, validation, chunkSize: _c, ...order } = r.o;
    if (order.last === 'pad' && order.padId === undefined) order.padId = resolvePadId(undefined, tokenizer.vocabSize, tokenizer);
    const fraction = typeof validation === 'number' ? validation : 0;
    const handle = new native.NativeTokenDataset(tokens, explicitValid ?? null, fraction, tokenizer.vocabSize, order);
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
    }

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

  /** The training token stream (a copy). */
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
