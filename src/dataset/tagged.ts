/** Tagged sequences: token ids with one tag per step, for tagging tasks. */

import type { SequenceData } from '../../index';
import { checkInt, checkNumber, describe, rangeError, typeError } from '../errors';
import { checkObject, IGNORE_INDEX, limitLength, padTokens, readLengthLimit, RowDataset, type BatchingOptions, type SequenceBatch } from './common';
import { LabelSet, type Label } from './labels';

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
  /** Size of the token vocabulary of the rows' ids. */
  readonly vocabSize: number;

  private constructor(rows: TaggedExample[], options: TaggedOptions) {
    const o = checkObject('options', options);
    const limit = readLengthLimit(o);
    const vocabSize = checkInt('options.vocabSize', o.vocabSize, 1);
    const padId = checkInt('options.padId', o.padId, 0, vocabSize - 1);
    if (rows.length === 0) throw rangeError('ERR_RNNKIT_EMPTY', 'rows: no rows');
    const found: { label: unknown; where: string }[] = [];
    const ids = rows.map((r, i) => {
      const where = `rows[${i}]`;
      if (typeof r !== 'object' || r === null) throw typeError('ERR_RNNKIT_TYPE', `${where}: expected { ids, tags }, got ${describe(r)}`);
      const okIds =
        Array.isArray(r.ids) || r.ids instanceof Int32Array || r.ids instanceof Uint32Array || r.ids instanceof Uint16Array || r.ids instanceof Uint8Array;
      if (!okIds) throw typeError('ERR_RNNKIT_TYPE', `${where}.ids: expected an array or integer typed array, got ${describe(r.ids)}`);
      if (!Array.isArray(r.tags) && !ArrayBuffer.isView(r.tags))
        throw typeError('ERR_RNNKIT_TYPE', `${where}.tags: expected an array, got ${describe(r.tags)}`);
      if (r.ids.length === 0) throw rangeError('ERR_RNNKIT_EMPTY', `${where}: no tokens`);
      if (r.tags.length !== r.ids.length) throw rangeError('ERR_RNNKIT_SHAPE', `${where}: ${r.ids.length} ids but ${r.tags.length} tags`);
      const out = new Int32Array(r.ids.length);
      for (let t = 0; t < r.ids.length; t++) out[t] = checkInt(`${where}.ids[${t}]`, r.ids[t], 0, vocabSize - 1);
      for (let t = 0; t < r.tags.length; t++) found.push({ label: r.tags[t], where: `${where}.tags[${t}]` });
      return limitLength(where, out, limit);
    });
    const tagSet = new LabelSet(o.tags, found, 'options.tags');
    const tagIds = ids.map((row, i) => Int32Array.from({ length: row.length }, (_, t) => tagSet.id(rows[i].tags[t])));
    const packed = padTokens(ids, padId);
    const tags = new Int32Array(packed.inputs.length).fill(IGNORE_INDEX);
    tagIds.forEach((t, r) => tags.set(t, r * packed.seqLen));
    const validation = o.validation === undefined ? 0 : checkNumber('options.validation', o.validation);
    super(
      { tokens: packed.inputs, lengths: packed.lengths, rows: packed.batchSize, steps: packed.seqLen, tags },
      { validation, stratify: false, inputSize: 0, outputSize: 0, perStep: false },
      o,
    );
    this.tags = tagSet.labels;
    this.padId = padId;
    this.vocabSize = vocabSize;
  }

  /** A dataset from an array of `{ ids, tags }`. */
  static fromArray(rows: TaggedExample[], options: TaggedOptions): TaggedDataset {
    if (!Array.isArray(rows)) throw typeError('ERR_RNNKIT_TYPE', `rows: expected an array of { ids, tags }, got ${describe(rows)}`);
    return new TaggedDataset(rows, options);
  }

  protected makeBatch(b: SequenceData): TaggedBatch {
    return { inputs: b.tokens!, lengths: b.lengths, batchSize: b.rows, seqLen: b.steps, tags: b.tags! };
  }
}
