/** Dense float sequences `[T, I]` per row, with optional labels or per-step targets. */

import type { SequenceData } from '../../index';
import { native } from '../native';
import { checkBoolean, checkInt, checkNumber, describe, rangeError, typeError } from '../errors';
import { checkObject, IGNORE_INDEX, RowDataset, type BatchingOptions } from './common';
import { FeatureStats } from './feature-stats';

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
  /** Whether batches are normalised with {@link DenseDataset.stats}. */
  readonly normalize: boolean;
  /** Whether rows carry class labels. */
  readonly hasLabels: boolean;
  /** Whether rows carry per-step targets. */
  readonly hasTargets: boolean;

  private constructor(rows: Float32Array[], options: DenseOptions, rowName: (i: number) => string) {
    const o = checkObject('options', options);
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
    if (o.targets !== undefined && labels !== undefined)
      throw typeError('ERR_RNNKIT_CONFIG', 'options.targets: give labels (classification) or targets (regression), not both');
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
    const validation = o.validation === undefined ? 0 : checkNumber('options.validation', o.validation);
    // Statistics of the training rows (the engine's split), applied once here when normalising,
    // so the engine's batches are exactly the model's inputs.
    const [trainRows] = native.splitRowIndices(rows.length, validation, (o.seed as number | undefined) ?? 0, null);
    const stats = FeatureStats.compute(
      [...trainRows].map((i) => rows[i]),
      I,
    );
    const T = Math.max(...steps);
    const values = new Float32Array(rows.length * T * I);
    rows.forEach((r, i) => values.set(normalize ? stats.apply(r) : r, i * T * I));
    const data: SequenceData = { values, lengths: steps, rows: rows.length, steps: T };
    if (labels) data.labels = labels;
    else if (targets) {
      data.targets = new Float32Array(rows.length * T * outputSize);
      targets.forEach((t, i) => data.targets!.set(t, i * T * outputSize));
    } else {
      // No targets: every position is uncounted, so the rows can be batched and inspected.
      data.tags = new Int32Array(rows.length * T).fill(IGNORE_INDEX);
    }
    super(data, { validation, stratify: false, inputSize: I, outputSize, perStep: targets !== undefined }, o);
    this.inputSize = I;
    this.stats = stats;
    this.normalize = normalize;
    this.hasLabels = labels !== undefined;
    this.hasTargets = targets !== undefined;
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

  protected makeBatch(b: SequenceData): DenseBatch {
    const batch: DenseBatch = { inputs: b.values!, lengths: b.lengths, batchSize: b.rows, seqLen: b.steps, inputSize: this.inputSize };
    if (this.hasLabels) batch.labels = b.labels!;
    if (this.hasTargets) batch.targets = b.targets!;
    return batch;
  }
}
