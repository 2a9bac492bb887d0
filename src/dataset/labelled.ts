/** Labelled sequences: texts with one label each, for sequence classification. */

import * as fs from 'fs';
import type { SequenceData } from '../../index';
import { native } from '../native';
import { checkBoolean, checkInt, checkNumber, checkString, describe, error, rangeError, typeError } from '../errors';
import { createTokenizerFitter, type Tokenizer, type TokenizerOptions } from '../tokenizer';
import {
  checkFile,
  checkObject,
  checkTokenizer,
  limitLength,
  padTokens,
  readLengthLimit,
  resolvePadId,
  rethrowAt,
  RowDataset,
  type BatchingOptions,
  type SequenceBatch,
} from './common';
import { parseCSV, type CsvRecord } from './csv';
import { readJSONLRecords } from './jsonl';
import { decodeUtf8 } from './text-chunks';
import { LabelSet, type Label } from './labels';

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
  /** Replace invalid UTF-8 with U+FFFD instead of refusing the file (default: an `ERR_RNNKIT_ENCODING` TypeError naming the byte offset and line). */
  lossy?: boolean;
}

/** Options of {@link LabelledDataset.fromCSV}. */
export interface LabelledCsvOptions extends LabelledOptions {
  /** Header of the text column (default `"text"`). */
  textColumn?: string;
  /** Header of the label column (default `"label"`). */
  labelColumn?: string;
  /** Field delimiter (default `","`). */
  delimiter?: string;
  /** Replace invalid UTF-8 with U+FFFD instead of refusing the file (default: an `ERR_RNNKIT_ENCODING` TypeError naming the byte offset and line). */
  lossy?: boolean;
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
    const limit = readLengthLimit(o);
    const stratify = o.stratify === undefined ? false : checkBoolean('options.stratify', o.stratify);
    const validation = o.validation === undefined ? 0 : checkNumber('options.validation', o.validation);
    let tokenizer = o.tokenizer === undefined ? undefined : checkTokenizer('options.tokenizer', o.tokenizer);
    if (rows.length === 0) throw rangeError('ERR_RNNKIT_EMPTY', 'rows: no rows');
    rows.forEach(({ text, where }) => {
      if (typeof text !== 'string') throw typeError('ERR_RNNKIT_TYPE', `${where}: text: expected a string, got ${describe(text)}`);
      if (text.length === 0) throw rangeError('ERR_RNNKIT_EMPTY', `${where}: empty text`);
    });
    const labelSet = new LabelSet(o.labels, rows, 'options.labels');
    const classes = Int32Array.from(rows, (r) => labelSet.id(r.label as Label));
    if (!tokenizer) {
      // Fitted on the training rows only, so validation measures unseen text; the split is the
      // engine's, the same the dataset makes below.
      const [trainRows] = native.splitRowIndices(rows.length, validation, (o.seed as number | undefined) ?? 0, stratify ? classes : null);
      const fitter = createTokenizerFitter((o.tokenizerOptions ?? { type: 'word', specials: ['<pad>', '<unk>'] }) as TokenizerOptions);
      for (const i of trainRows) fitter.push((rows[i].text as string) + '\n');
      tokenizer = fitter.finish();
    }
    const padId = resolvePadId(o.padId, tokenizer.vocabSize, tokenizer);
    const tokens = rows.map(({ text, where }) => {
      let ids: Int32Array;
      try {
        ids = tokenizer!.encode(text as string);
      } catch (e) {
        rethrowAt(where, e);
      }
      if (ids.length === 0) throw rangeError('ERR_RNNKIT_EMPTY', `${where}: the text ${describe(text)} gives no tokens`);
      return limitLength(where, ids, limit);
    });
    const packed = padTokens(tokens, padId);
    super(
      { tokens: packed.inputs, lengths: packed.lengths, rows: packed.batchSize, steps: packed.seqLen, labels: classes },
      { validation, stratify, inputSize: 0, outputSize: 0, perStep: false },
      o,
    );
    this.tokenizer = tokenizer;
    this.labels = labelSet.labels;
    this.classes = classes;
    this.padId = padId;
    this.tokens = tokens;
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
    const lossy = o.lossy === undefined ? false : checkBoolean('options.lossy', o.lossy);
    for await (const { record, where } of readJSONLRecords(path, { name: 'path', lossy })) {
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
    const lossy = o.lossy === undefined ? false : checkBoolean('options.lossy', o.lossy);
    const text = decodeUtf8(await fs.promises.readFile(path), path, { name: 'path', lossy });
    let records: CsvRecord[];
    try {
      records = parseCSV(text, delimiter);
    } catch (e) {
      rethrowAt(JSON.stringify(path), e);
    }
    if (records.length === 0) throw rangeError('ERR_RNNKIT_EMPTY', `path: ${JSON.stringify(path)} has no header row`);
    const header = records[0].fields;
    const ti = header.indexOf(textColumn);
    const li = header.indexOf(labelColumn);
    if (ti < 0)
      throw error('ERR_RNNKIT_FORMAT', `options.textColumn: no column ${describe(textColumn)} in the header of ${JSON.stringify(path)} (${header.join(', ')})`);
    if (li < 0)
      throw error(
        'ERR_RNNKIT_FORMAT',
        `options.labelColumn: no column ${describe(labelColumn)} in the header of ${JSON.stringify(path)} (${header.join(', ')})`,
      );
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

  protected makeBatch(b: SequenceData): LabelledBatch {
    return { inputs: b.tokens!, lengths: b.lengths, batchSize: b.rows, seqLen: b.steps, labels: b.labels! };
  }
}
