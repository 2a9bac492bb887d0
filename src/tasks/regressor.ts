/**
 * Regression of dense sequences (MSE): {@link Regressor} (real-valued targets per row or per
 * step, evaluation, predicted values) and {@link createRegressor}.
 */

import type { NativeModel, NativeSequenceDataset } from '../../index';
import type { History } from '../types';
import { DenseDataset } from '../dataset';
import { describe, rangeError, typeError } from '../errors';
import { readInput, type Encoded, type InputCodec } from './codec';
import { checkDense, checkObject, createNative, denseBatches, SequenceModel, type Rows } from './sequence-model';
import type { RegressExample, RegressionEvaluation, RegressorOptions, SequenceFitOptions, EvaluateRowsOptions } from './types';

/** Regression (MSE) of dense sequences: one output vector per sequence, or one per step. */
export class Regressor extends SequenceModel {
  readonly task = 'regress' as const;

  /** Trains on a DenseDataset with per-step targets (per-step models) or rows `{ values, target }`; see {@link SequenceModel.fit}. */
  fit(data: DenseDataset | RegressExample[], options: SequenceFitOptions<DenseDataset | RegressExample[]> = {}): Promise<History> {
    return super.fit(data, options);
  }

  /** @internal Use {@link createRegressor} or `loadModel`. */
  constructor(handle: NativeModel, codec: InputCodec) {
    super(handle, codec);
  }

  /** Values predicted per row (or per step). */
  get outputSize(): number {
    return this.config.output_size as number;
  }

  protected get perStep(): boolean {
    return this.config.per_step === true;
  }

  private target(where: string, value: unknown, steps: number): Float32Array {
    const o = this.outputSize;
    const want = this.perStep ? steps * o : o;
    let t: ArrayLike<unknown>;
    if (typeof value === 'number') t = [value];
    else if (Array.isArray(value) || (ArrayBuffer.isView(value) && !(value instanceof DataView))) t = value as unknown as ArrayLike<unknown>;
    else throw typeError('ERR_RNNKIT_TYPE', `${where}: expected a number or an array of numbers, got ${describe(value)}`);
    if (t.length !== want)
      throw rangeError(
        'ERR_RNNKIT_SHAPE',
        `${where}: ${t.length} values, expected ${this.perStep ? `steps × outputSize = ${steps} × ${o}` : `outputSize = ${o}`}`,
      );
    return Float32Array.from({ length: want }, (_, k) => {
      const v = t[k];
      if (typeof v !== 'number') throw typeError('ERR_RNNKIT_TYPE', `${where}[${k}]: expected a number, got ${describe(v)}`);
      if (!Number.isFinite(v)) throw rangeError('ERR_RNNKIT_NON_FINITE', `${where}[${k}]: ${v}`);
      return v;
    });
  }

  protected rows(name: string, data: unknown, split: 'train' | 'validation'): Rows {
    const inputs: Encoded[] = [];
    const targets: Float32Array[] = [];
    if (data instanceof DenseDataset) {
      if (!this.perStep)
        throw typeError(
          'ERR_RNNKIT_CONFIG',
          `${name}: a DenseDataset holds per-step targets; this regressor predicts one value per row (pass an array of { values, target })`,
        );
      for (const b of denseBatches(name, data, split)) {
        if (!b.targets) throw typeError('ERR_RNNKIT_CONFIG', `${name}: the DenseDataset has no targets`);
        const O = b.targets.length / (b.batchSize * b.seqLen);
        if (O !== this.outputSize)
          throw rangeError('ERR_RNNKIT_SHAPE', `${name}: targets have ${O} values per step, the model's outputSize is ${this.outputSize}`);
        for (let r = 0; r < b.batchSize; r++) {
          const len = b.lengths[r];
          const e = this.denseRow(`${name} row ${inputs.length}`, b.inputs.slice(r * b.seqLen * b.inputSize, (r * b.seqLen + len) * b.inputSize));
          inputs.push(e);
          targets.push(b.targets.slice(r * b.seqLen * O, (r * b.seqLen + len) * O));
        }
      }
      return { inputs, targets };
    }
    if (!Array.isArray(data))
      throw typeError('ERR_RNNKIT_TYPE', `${name}: expected an array of { values, target }${this.perStep ? ' or a DenseDataset' : ''}, got ${describe(data)}`);
    data.forEach((r, i) => {
      const row = checkObject(`${name}[${i}]`, r);
      const e = this.denseRow(`${name}[${i}].values`, row.values);
      inputs.push(e);
      targets.push(this.target(`${name}[${i}].target`, row.target, e.steps));
    });
    return { inputs, targets };
  }

  protected packTargets(targets: Float32Array[], inputs: Encoded[], steps: number): Float32Array {
    const o = this.outputSize;
    if (!this.perStep) {
      const out = new Float32Array(targets.length * o);
      targets.forEach((t, i) => out.set(t, i * o));
      return out;
    }
    // [N, T, O] with padded steps 0: the engine masks them with the lengths.
    const out = new Float32Array(targets.length * steps * o);
    targets.forEach((t, i) => out.set(t.subarray(0, inputs[i].steps * o), i * steps * o));
    return out;
  }

  /** MSE (the training loss) and MAE over every predicted value, computed by the engine; `options.signal` aborts it between batches (an AbortError). */
  async evaluate(data: DenseDataset | RegressExample[], options: EvaluateRowsOptions = {}): Promise<RegressionEvaluation> {
    const e = await this.evaluation(data, options);
    return { loss: e.loss, mse: e.mse!, mae: e.mae!, count: e.count };
  }

  protected datasetOf(name: string, data: unknown): NativeSequenceDataset | null {
    if (data instanceof DenseDataset) {
      if (!this.perStep)
        throw typeError(
          'ERR_RNNKIT_CONFIG',
          `${name}: a DenseDataset holds per-step targets; this regressor predicts one value per row (pass an array of { values, target })`,
        );
      if (!data.hasTargets) throw typeError('ERR_RNNKIT_CONFIG', `${name}: the DenseDataset has no targets`);
      checkDense(name, data, this.codec);
      return data.native;
    }
    return null;
  }

  /** Predicted values: `[outputSize]` per row, or `[steps × outputSize]` per row for per-step models. */
  async predict(inputs: Float32Array): Promise<Float32Array>;
  async predict(inputs: Float32Array[]): Promise<Float32Array[]>;
  async predict(inputs: unknown): Promise<Float32Array | Float32Array[]> {
    const { rows, single } = this.predictInputs(inputs);
    const out = (await this.outputs(rows)).map((y) => y.outputs);
    return single ? out[0] : out;
  }

  /** {@link Regressor.predict} on the calling thread. */
  predictSync(inputs: Float32Array): Float32Array;
  predictSync(inputs: Float32Array[]): Float32Array[];
  predictSync(inputs: unknown): Float32Array | Float32Array[] {
    const { rows, single } = this.predictInputs(inputs);
    const out = this.outputsSync(rows).map((y) => y.outputs);
    return single ? out[0] : out;
  }
}

/** A regressor of dense sequences (MSE): many-to-one (pooled) or many-to-many (`perStep`). */
export function createRegressor(options: RegressorOptions): Regressor {
  const o = checkObject('options', options);
  const { handle, codec } = createNative('regress', o, {}, readInput(o, false), {});
  return new Regressor(handle, codec);
}
