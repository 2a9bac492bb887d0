/**
 * Pairs of texts for sequence-to-sequence models: {@link PairDataset} (a source and a target
 * text each, encoded by the two tokenizers; split and batched by the engine's `pairs.rs`, so
 * `batches()` is the order `fit` trains in) and {@link readPairs} (the pairs of a JSONL or CSV
 * file, for fitting tokenizers before the dataset is built).
 */

import * as fs from 'fs';
import type { NativePairDataset } from '../../index';
import { native } from '../native';
import { checkString, describe, error, rangeError, typeError } from '../errors';
import { checkOptionKeys } from '../option-keys';
import type { Tokenizer } from '../tokenizer';
import { checkFile, checkObject, checkTokenizer, rethrowAt, type Split } from './common';
import { parseCSV, type CsvRecord } from './csv';
import { readJSONLRecords } from './jsonl';

/** One pair: the text read and the text to write. */
export interface PairExample {
  source: string;
  target: string;
}

/** Options of a {@link PairDataset}. */
export interface PairOptions {
  /** Encodes the sources. */
  sourceTokenizer: Tokenizer;
  /** Encodes the targets (ids without `<bos>`/`<eos>`: the model adds them). */
  targetTokenizer: Tokenizer;
  /** Pairs per batch (default 64). */
  batchSize?: number;
  /** Seed of the validation split and of the data order (default 0). */
  seed?: number;
  /** Share of the pairs held out for validation, in [0, 1) (default 0). */
  validation?: number;
}

/** Where the two texts of a record are: JSONL fields or CSV header names. */
export interface PairColumns {
  /** The source's field or column (default `"source"`). */
  sourceColumn?: string;
  /** The target's field or column (default `"target"`). */
  targetColumn?: string;
  /** CSV only: the field delimiter (default `","`). */
  delimiter?: string;
}

/** Options of {@link readPairs}: the columns, and optionally one that groups the pairs. */
export interface ReadPairsOptions extends PairColumns {
  /** A field (or column) whose text each pair returns as `group` (e.g. `"task"`, to evaluate per direction). */
  groupColumn?: string;
}

/** Options of {@link PairDataset.fromFile}. */
export type PairFileOptions = PairOptions & PairColumns;

const PAIR_KEYS = ['sourceTokenizer', 'targetTokenizer', 'batchSize', 'seed', 'validation'] as const;
const COLUMN_KEYS = ['sourceColumn', 'targetColumn', 'delimiter'] as const;
const READ_KEYS = [...COLUMN_KEYS, 'groupColumn'] as const;

/** A pair read from a file, with where it was for errors. */
interface Located extends PairExample {
  where: string;
  group?: string;
}

function checkText(where: string, value: unknown): string {
  if (typeof value !== 'string') throw typeError('ERR_RNNKIT_TYPE', `${where}: expected a string, got ${describe(value)}`);
  return value;
}

/**
 * The pairs of a JSONL file (one object a line) or, for a `.csv` or `.tsv` path, a CSV file with
 * a header row; `sourceColumn`/`targetColumn` name the fields, `groupColumn` one more returned
 * as each pair's `group`. Errors name the file and line.
 */
export async function readPairs(path: string, options: ReadPairsOptions = {}): Promise<(PairExample & { where: string; group?: string })[]> {
  await checkFile('path', path);
  const o = checkObject('options', options);
  checkOptionKeys('options', o, READ_KEYS);
  const groupColumn = o.groupColumn === undefined ? undefined : checkString('options.groupColumn', o.groupColumn, true);
  const sourceColumn = o.sourceColumn === undefined ? 'source' : checkString('options.sourceColumn', o.sourceColumn, true);
  const targetColumn = o.targetColumn === undefined ? 'target' : checkString('options.targetColumn', o.targetColumn, true);
  const rows: Located[] = [];
  if (/\.(csv|tsv)$/i.test(path)) {
    const delimiter = o.delimiter === undefined ? (/\.tsv$/i.test(path) ? '\t' : ',') : checkString('options.delimiter', o.delimiter);
    let records: CsvRecord[];
    try {
      records = parseCSV(await fs.promises.readFile(path, 'utf8'), delimiter);
    } catch (e) {
      rethrowAt(JSON.stringify(path), e);
    }
    if (records.length === 0) throw rangeError('ERR_RNNKIT_EMPTY', `path: ${JSON.stringify(path)} has no header row`);
    const header = records[0].fields;
    const [si, ti] = [header.indexOf(sourceColumn), header.indexOf(targetColumn)];
    const gi = groupColumn === undefined ? -1 : header.indexOf(groupColumn);
    for (const [name, column, i] of [
      ['sourceColumn', sourceColumn, si],
      ['targetColumn', targetColumn, ti],
      ...(groupColumn === undefined ? [] : [['groupColumn', groupColumn, gi] as const]),
    ] as const) {
      if (i < 0)
        throw error('ERR_RNNKIT_FORMAT', `options.${name}: no column ${describe(column)} in the header of ${JSON.stringify(path)} (${header.join(', ')})`);
    }
    for (const { fields, line } of records.slice(1)) {
      const where = `${JSON.stringify(path)} line ${line}`;
      if (fields.length !== header.length) throw error('ERR_RNNKIT_FORMAT', `${where}: ${fields.length} fields, the header has ${header.length}`);
      rows.push({ source: fields[si], target: fields[ti], where, ...(gi < 0 ? {} : { group: fields[gi] }) });
    }
  } else {
    if (o.delimiter !== undefined) throw typeError('ERR_RNNKIT_CONFIG', 'options.delimiter: only CSV files (.csv, .tsv) have a delimiter');
    for await (const { record, where } of readJSONLRecords(path)) {
      for (const column of groupColumn === undefined ? [sourceColumn, targetColumn] : [sourceColumn, targetColumn, groupColumn]) {
        if (!(column in record)) throw error('ERR_RNNKIT_FORMAT', `${where}: no ${JSON.stringify(column)} field`);
      }
      rows.push({
        source: checkText(`${where}: ${sourceColumn}`, record[sourceColumn]),
        target: checkText(`${where}: ${targetColumn}`, record[targetColumn]),
        where,
        ...(groupColumn === undefined ? {} : { group: checkText(`${where}: ${groupColumn}`, record[groupColumn]) }),
      });
    }
  }
  if (rows.length === 0) throw rangeError('ERR_RNNKIT_EMPTY', `path: ${JSON.stringify(path)} holds no pairs`);
  return rows;
}

/**
 * Source/target text pairs encoded for a sequence-to-sequence model. The engine holds the ids,
 * splits them (a seeded share for validation) and orders them: each epoch a seeded shuffle, then
 * length buckets so that a batch's rows have similar lengths.
 */
export class PairDataset {
  /** Encodes the sources. */
  readonly sourceTokenizer: Tokenizer;
  /** Encodes the targets. */
  readonly targetTokenizer: Tokenizer;
  /** @internal The engine's dataset. */
  readonly native: NativePairDataset;

  private constructor(rows: Located[], options: PairOptions) {
    const o = checkObject('options', options);
    checkOptionKeys('options', o, PAIR_KEYS);
    this.sourceTokenizer = checkTokenizer('options.sourceTokenizer', o.sourceTokenizer);
    this.targetTokenizer = checkTokenizer('options.targetTokenizer', o.targetTokenizer);
    const encode = (tokenizer: Tokenizer, text: unknown, where: string): Int32Array => {
      try {
        return tokenizer.encode(checkText(where, text));
      } catch (e) {
        rethrowAt(where, e);
      }
    };
    const source = rows.map((r) => encode(this.sourceTokenizer, r.source, `${r.where}: source`));
    const target = rows.map((r) => encode(this.targetTokenizer, r.target, `${r.where}: target`));
    const empty = source.findIndex((s) => s.length === 0);
    if (empty >= 0) throw rangeError('ERR_RNNKIT_RANGE', `${rows[empty].where}: source: a source must have at least one token`);
    this.native = new native.NativePairDataset(source, target, this.sourceTokenizer.vocabSize, this.targetTokenizer.vocabSize, {
      batchSize: o.batchSize as number | undefined,
      seed: o.seed as number | undefined,
      validationSplit: o.validation as number | undefined,
    });
  }

  /** A dataset from an array of `{ source, target }` (named `rows[i]` in errors). */
  static fromArray(rows: PairExample[], options: PairOptions): PairDataset {
    if (!Array.isArray(rows)) throw typeError('ERR_RNNKIT_TYPE', `rows: expected an array of { source, target }, got ${describe(rows)}`);
    if (rows.length === 0) throw rangeError('ERR_RNNKIT_EMPTY', 'rows: expected at least one pair');
    return new PairDataset(
      rows.map((r, i) => {
        if (typeof r !== 'object' || r === null) throw typeError('ERR_RNNKIT_TYPE', `rows[${i}]: expected { source, target }, got ${describe(r)}`);
        return { source: r.source, target: r.target, where: `rows[${i}]` };
      }),
      options,
    );
  }

  /** A dataset from a JSONL or CSV file ({@link readPairs}'s formats and columns). */
  static async fromFile(path: string, options: PairFileOptions): Promise<PairDataset> {
    const o = checkObject('options', options);
    checkOptionKeys('options', o, [...PAIR_KEYS, ...COLUMN_KEYS]);
    const { sourceColumn, targetColumn, delimiter, ...rest } = o as unknown as PairFileOptions;
    const rows = await readPairs(path, { sourceColumn, targetColumn, delimiter });
    return new PairDataset(rows, rest);
  }

  /** Pairs in `split`. */
  size(split: Split = 'train'): number {
    return this.native.size(split);
  }

  /** Pairs per batch. */
  get batchSize(): number {
    return this.native.batchSize;
  }

  /** The row indices (into `split`) of each batch of `epoch`, in the order `fit` trains them. */
  batches(split: Split = 'train', epoch = 0): number[][] {
    return this.native.batches(split, epoch);
  }
}
