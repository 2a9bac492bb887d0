/**
 * Step-by-step generation: a native session that carries the recurrent state of one text (or of
 * `rows` texts side by side) between calls, for callers that drive decoding themselves.
 */

import type { NativeSession } from '../index';
import { rangeError, typeError, describe } from './errors';
import type { Tokenizer } from './tokenizer';
import type { GenerateOptions } from './types';

/** How {@link GenerationSession.next} draws a token: the sampling fields of {@link GenerateOptions}. */
export type SamplerOptions = Pick<GenerateOptions, 'temperature' | 'topK' | 'topP' | 'repetitionPenalty' | 'greedy'>;

/** Step-by-step generation with carried state, for one stream or `rows` streams side by side. */
export class GenerationSession {
  /** @internal */
  constructor(
    private readonly handle: NativeSession,
    private readonly tokenizer: Tokenizer | null,
    /** Number of streams this session carries (the `rows` of {@link LanguageModel.session}). */
    readonly rows: number = 1,
  ) {}

  /**
   * Reads text (or token ids) and returns the next-token logits: `[V]` for a one-row session,
   * `[rows, V]` (row-major) otherwise. A multi-row session takes token ids `[rows, steps]`
   * batch-first (`steps` = length / rows), not text: rows of text rarely encode to the same length.
   */
  feed(input: string | Int32Array): Float32Array {
    let ids: Int32Array;
    if (typeof input === 'string') {
      if (this.rows !== 1) throw typeError('ERR_RNNKIT_TYPE', `input: a session of ${this.rows} rows reads token ids [rows, steps] as an Int32Array, not text`);
      if (!this.tokenizer) throw typeError('ERR_RNNKIT_CONFIG', 'feed: this model has no tokenizer; pass token ids');
      ids = this.tokenizer.encode(input);
    } else if (input instanceof Int32Array) {
      ids = input;
    } else {
      throw typeError('ERR_RNNKIT_TYPE', `input: expected a string or an Int32Array, got ${describe(input)}`);
    }
    if (ids.length === 0) throw rangeError('ERR_RNNKIT_EMPTY', 'input: expected at least one token');
    if (ids.length % this.rows !== 0) {
      throw rangeError('ERR_RNNKIT_SHAPE', `input: ${ids.length} token ids do not split into ${this.rows} rows of equal length ([rows, steps] batch-first)`);
    }
    return this.handle.feed(ids, ids.length / this.rows);
  }

  /**
   * Samples the next token (greedy, temperature, top-k, top-p, repetition penalty), reads it,
   * returns its id and text. The options are checked natively; an unknown key is a TypeError
   * with code `ERR_RNNKIT_UNKNOWN_OPTION`.
   */
  next(options: SamplerOptions = {}): { id: number; text: string } {
    if (this.rows !== 1) throw typeError('ERR_RNNKIT_TYPE', `next: this session has ${this.rows} rows; use nextBatch()`);
    const id = this.nextBatch(options)[0];
    return { id, text: this.tokenizer ? this.tokenizer.decode([id]) : '' };
  }

  /** Samples and reads the next token of every row; returns the ids `[rows]`. */
  nextBatch(options: SamplerOptions = {}): Int32Array {
    // The object goes to the engine as it is (checked there, no string in between): one
    // conversion of a handful of properties per token.
    return this.handle.next(options);
  }

  /** Back to the zero state. */
  reset(): void {
    this.handle.reset();
  }
}
