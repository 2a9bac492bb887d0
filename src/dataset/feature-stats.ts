/** Per-feature normalisation statistics of dense inputs (computed on a training split, saved with models). */

import { checkInt, checkNumber, describe, rangeError, typeError } from '../errors';
import { checkObject } from './common';

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
    if (mean.length !== std.length || mean.length === 0)
      throw rangeError('ERR_RNNKIT_SHAPE', `std: length ${std.length} must equal mean's length ${mean.length} (> 0)`);
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
