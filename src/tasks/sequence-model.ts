/**
 * What the three sequence tasks share: the base class {@link SequenceModel} (input encoding, fit
 * through the native trainer, evaluation, batched prediction), the row types it works on, the
 * checks of options, label sets and datasets, class-weight resolution, the label names read back
 * from a model file, and the creation of the native model behind each constructor.
 */

import type { EvalInfo, NativeModel, NativeSequenceDataset, Prediction, SequenceData } from '../../index';
import { native } from '../native';
import { Model } from '../model';
import { refuseOrderKeys, runFit, splitFitOptions } from '../fit';
import { DenseDataset, FeatureStats, IGNORE_INDEX, type Label } from '../dataset';
import { checkNumber, describe, error, rangeError, typeError } from '../errors';
import { checkOptionKeys } from '../option-keys';
import type { Tokenizer } from '../tokenizer';
import type { History } from '../types';
import type { OnnxSource } from '../onnx';
import type { Encoded, InputCodec, readInput } from './codec';
import type { ClassificationEvaluation, ClassWeights, EvaluateRowsOptions, SequenceFitOptions } from './types';
import { checkSignal, withSignal } from '../cancel';

export function checkObject(name: string, value: unknown): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    throw typeError('ERR_RNNKIT_TYPE', `${name}: expected an object, got ${describe(value)}`);
  return value as Record<string, unknown>;
}

/** Checks a declared label set: non-empty, strings or finite numbers, no duplicates. */
export function checkLabelSet(name: string, value: unknown): Label[] {
  if (!Array.isArray(value) || value.length === 0)
    throw typeError('ERR_RNNKIT_TYPE', `${name}: expected a non-empty array of strings or numbers, got ${describe(value)}`);
  const seen = new Set<Label>();
  value.forEach((l, i) => {
    if (typeof l !== 'string' && !(typeof l === 'number' && Number.isFinite(l)))
      throw typeError('ERR_RNNKIT_TYPE', `${name}[${i}]: expected a string or finite number, got ${describe(l)}`);
    if (seen.has(l)) throw typeError('ERR_RNNKIT_TYPE', `${name}[${i}]: duplicate label ${describe(l)}`);
    seen.add(l);
  });
  return [...value] as Label[];
}

/** Lets the event loop run between chunks of synchronous native work. */
const yieldToLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** The engine's evaluation as the public classification result, with label names. */
export function classificationResult(e: EvalInfo, labels: readonly Label[]): ClassificationEvaluation {
  const k = labels.length;
  const counts = e.confusion!;
  return {
    loss: e.loss,
    accuracy: e.accuracy!,
    count: e.count,
    macroF1: e.macroF1!,
    perClass: e.perClass!.map((m, c) => ({ label: labels[c], precision: m.precision, recall: m.recall, f1: m.f1, support: m.support })),
    confusion: Array.from({ length: k }, (_, t) => counts.slice(t * k, (t + 1) * k)),
    labels: [...labels],
  };
}

/** Reads a JSON label list from metadata, or numbers 0..n-1 when the file has none. */
export function labelsFromFile(handle: NativeModel, key: string, n: number): Label[] {
  const raw = handle.metadataValue(key);
  if (raw === undefined || raw === null) return Array.from({ length: n }, (_, i) => i);
  let labels: Label[];
  try {
    labels = checkLabelSet(`metadata ${key}`, raw);
  } catch (e) {
    throw error('ERR_RNNKIT_FORMAT', `model file: ${(e as Error).message}`);
  }
  if (labels.length !== n) throw error('ERR_RNNKIT_FORMAT', `model file: metadata ${key} has ${labels.length} names, config.output_size is ${n}`);
  return labels;
}

/** Builds and creates the native model of a task. */
/** Keys of a task constructor's options that TypeScript handles (the rest are the engine's architecture options). */
const CALLER_KEYS = ['tokenizer', 'labels', 'tags', 'maxLength', 'normalize', 'featureStats'];

/**
 * Creates the native model of `task` from the user's options (architecture keys go to the
 * engine, which fills the task's defaults and validates) and attaches the codec's metadata.
 */
export function createNative(
  task: 'classify' | 'tag' | 'regress',
  o: Record<string, unknown>,
  extra: Record<string, unknown>,
  input: ReturnType<typeof readInput>,
  meta: Record<string, unknown>,
): { handle: NativeModel; codec: InputCodec } {
  const arch: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) if (!CALLER_KEYS.includes(k)) arch[k] = v;
  const handle = native.NativeModel.create(task, { ...arch, ...input.modelInput, ...extra });
  const codec = input.codec(handle.config());
  if (codec.tokenizer) handle.setTokenizer(codec.tokenizer.toJSON() as unknown as Record<string, unknown>);
  handle.setMetadata('max_length', String(codec.maxLength));
  if (codec.dense) {
    handle.setMetadata('normalize', String(codec.normalize));
    if (codec.stats) handle.setMetadataValue('feature_stats', codec.stats.toJSON());
  }
  for (const [k, v] of Object.entries(meta)) handle.setMetadataValue(k, v);
  return { handle, codec };
}

/** The engine's prediction for one row: outputs, and for class heads probabilities and classes. */
export interface RowPrediction {
  outputs: Float32Array;
  probabilities?: Float32Array;
  classes?: Int32Array;
}

/** Rows ready for the engine: inputs (raw dense, not yet normalised) and the task's targets. */
export interface Rows {
  inputs: Encoded[];
  /** Class id per row (classifier). */
  labels?: Int32Array;
  /** Tag ids per row (tagger). */
  tags?: Int32Array[];
  /** Float targets per row (regressor): `[O]` or `[T, O]`. */
  targets?: Float32Array[];
}

/** What the three tasks share: input encoding, fit through the native trainer, save/load metadata. */
export abstract class SequenceModel extends Model {
  abstract readonly task: 'classify' | 'tag' | 'regress';
  /** @internal */
  protected readonly codec: InputCodec;

  protected constructor(handle: NativeModel, codec: InputCodec) {
    super(handle);
    this.codec = codec;
  }

  /** The tokenizer (token input), else null. */
  get tokenizer(): Tokenizer | null {
    return this.codec.tokenizer;
  }

  /** Features per step (dense input), else null. */
  get inputSize(): number | null {
    return this.codec.dense ? this.codec.inputSize : null;
  }

  /** Longest accepted sequence in tokens or steps. */
  get maxLength(): number {
    return this.codec.maxLength;
  }

  /** Input statistics applied to dense rows (null before the first fit, or for token models). */
  get featureStats(): FeatureStats | null {
    return this.codec.stats;
  }

  /** @internal The ONNX graph normalises dense input as {@link SequenceModel.predict} does. */
  protected onnxSource(): OnnxSource {
    const src = super.onnxSource();
    if (this.codec.dense && this.codec.normalize && this.codec.stats) src.stats = { mean: this.codec.stats.mean, std: this.codec.stats.std };
    return src;
  }

  /** Turns the training data into rows; `split` picks a dataset's part. */
  protected abstract rows(name: string, data: unknown, split: 'train' | 'validation'): Rows;

  /** Engine input plus targets for a set of rows (dense rows normalised here). */
  protected sequenceData(r: Rows): SequenceData {
    const inputs = this.codec.dense ? this.codec.applyStats(r.inputs.map((e) => e.values!)).map((values, i) => ({ ...r.inputs[i], values })) : r.inputs;
    const { data, steps } = this.codec.pack(inputs);
    if (r.labels) data.labels = r.labels;
    if (r.tags) {
      const tags = new Int32Array(r.tags.length * steps).fill(IGNORE_INDEX);
      r.tags.forEach((t, i) => tags.set(t, i * steps));
      data.tags = tags;
    }
    if (r.targets) data.targets = this.packTargets(r.targets, r.inputs, steps);
    return data;
  }

  /** Regression targets in the engine's layout; overridden by the regressor. */
  protected packTargets(_targets: Float32Array[], _inputs: Encoded[], _steps: number): Float32Array {
    throw error('ERR_RNNKIT_CONFIG', 'targets: only regressors take real-valued targets');
  }

  /** Computes the feature statistics on the first fit of a normalising dense model. */
  private ensureStats(train: Rows): void {
    if (!this.codec.dense || !this.codec.normalize || this.codec.stats) return;
    this.codec.stats = FeatureStats.compute(
      train.inputs.map((e) => e.values!),
      this.codec.inputSize,
    );
    this.native.setMetadataValue('feature_stats', this.codec.stats.toJSON());
  }

  /** Class weights in class-id order (classifier and tagger). */
  protected classWeights(_value: ClassWeights, _train: NativeSequenceDataset): number[] {
    throw typeError('ERR_RNNKIT_CONFIG', 'options.classWeights: only classifiers and taggers take class weights');
  }

  /** Counted positions of each class in the training split of `train` (for balanced weights). */
  protected classCounts(train: NativeSequenceDataset, classes: number): number[] {
    const n = new Array<number>(classes).fill(0);
    for (let k = 0; k < train.numBatches('train'); k++) {
      const b = train.batch('train', 0, k);
      for (const y of b.labels ?? b.tags ?? []) if (y >= 0) n[y]++;
    }
    return n;
  }

  /** The native row set of a dataset argument this model can train on, or null for arrays of rows. */
  protected abstract datasetOf(name: string, data: unknown): NativeSequenceDataset | null;

  /** Packs arrays of rows into a native row set (all rows in its training split). */
  private rowDataset(name: string, data: unknown, order: Record<string, unknown>, train: boolean): NativeSequenceDataset {
    const r = this.rows(name, data, 'train');
    if (r.inputs.length === 0) throw rangeError('ERR_RNNKIT_EMPTY', `${name}: no rows`);
    if (train) this.ensureStats(r);
    const layout = {
      validation: 0,
      stratify: false,
      inputSize: this.codec.dense ? this.codec.inputSize : 0,
      outputSize: this.task === 'regress' ? (this.config.output_size as number) : 0,
      perStep: this.perStep && this.task === 'regress',
    };
    return new native.NativeSequenceDataset(this.sequenceData(r), layout, { batchSize: 32, ...order });
  }

  /**
   * Trains off the JS thread through the native trainer (same progress events, abort and busy
   * refusal as language models), on a dataset in its own data order or on arrays of rows.
   * Resolves with the history.
   */
  async fit(data: unknown, options: SequenceFitOptions = {}): Promise<History> {
    const { order, engine, validation } = splitFitOptions(options);
    const { classWeights, ...rest } = engine;
    for (const k of ['seqLen', 'stride', 'tbptt']) {
      if (order[k] !== undefined) throw typeError('ERR_RNNKIT_CONFIG', `options.${k}: sequence models train on whole rows; there are no windows to set`);
    }
    let train = this.datasetOf('data', data);
    if (train) {
      refuseOrderKeys(options as Record<string, unknown>, 'dataset');
      // A normalising model adopts a dense dataset's statistics: save them with the model.
      if (this.codec.stats) this.native.setMetadataValue('feature_stats', this.codec.stats.toJSON());
    } else train = this.rowDataset('data', data, { ...order, ...(rest.seed === undefined ? {} : { seed: rest.seed }) }, true);
    const valid =
      validation === undefined ? null : (this.datasetOf('options.validation', validation) ?? this.rowDataset('options.validation', validation, {}, false));
    if (classWeights !== undefined) rest.classWeights = this.classWeights(classWeights as ClassWeights, train);
    const ds = train;
    return runFit(this.native, options, (onEvent, cancel) => this.native.fitSequences(ds, valid, rest, onEvent, cancel));
  }

  /**
   * The engine's loss and metrics of `data` (a dataset: its validation split when it has one);
   * `options.signal` aborts between batches (an AbortError, `code: 'ABORT_ERR'`).
   */
  protected async evaluation(data: unknown, options: EvaluateRowsOptions): Promise<EvalInfo> {
    checkOptionKeys('options', checkObject('options', options), ['signal']);
    const signal = checkSignal('options.signal', options.signal);
    const ds = this.datasetOf('data', data);
    if (ds) return withSignal(signal, 'evaluation', (cancel) => this.native.evaluateDataset(ds, ds.size('validation') > 0 ? 'validation' : 'train', cancel));
    const r = this.rows('data', data, 'train');
    if (r.inputs.length === 0) throw rangeError('ERR_RNNKIT_EMPTY', 'data: no rows to evaluate');
    const set = this.sequenceData(r);
    return withSignal(signal, 'evaluation', (cancel) => this.native.evaluateSequences(set, 64, cancel));
  }

  /**
   * Engine outputs for rows, in their order: `[C]` per row or, per step, `[T_i, C]` per row. Rows
   * are sorted by length so each native batch pads little, and run in chunks; the generator
   * yields between chunks so the async callers can free the event loop there.
   */
  private *outputChunks(inputs: Encoded[], out: RowPrediction[]): Generator<void> {
    if (this.isTraining) throw error('ERR_RNNKIT_BUSY', 'this model is training; wait for fit() to settle or abort it');
    const order = inputs.map((_, i) => i).sort((a, b) => inputs[a].steps - inputs[b].steps);
    const c = this.config.output_size as number;
    const perStep = this.perStep;
    const CHUNK = 256;
    for (let lo = 0; lo < order.length; lo += CHUNK) {
      const idx = order.slice(lo, lo + CHUNK);
      const part = idx.map((i) => inputs[i]);
      const ready = this.codec.dense ? this.codec.applyStats(part.map((e) => e.values!)).map((values, k) => ({ ...part[k], values })) : part;
      const { data, steps } = this.codec.pack(ready);
      const y: Prediction = this.native.predict(data);
      idx.forEach((i, k) => {
        const [lo, hi] = perStep ? [k * steps, k * steps + inputs[i].steps] : [k, k + 1];
        out[i] = { outputs: y.outputs.slice(lo * c, hi * c), probabilities: y.probabilities?.slice(lo * c, hi * c), classes: y.classes?.slice(lo, hi) };
      });
      yield;
    }
  }

  protected async outputs(inputs: Encoded[]): Promise<RowPrediction[]> {
    const out: RowPrediction[] = new Array(inputs.length);
    for (const _ of this.outputChunks(inputs, out)) await yieldToLoop();
    return out;
  }

  protected outputsSync(inputs: Encoded[]): RowPrediction[] {
    const out: RowPrediction[] = new Array(inputs.length);
    for (const _ of this.outputChunks(inputs, out));
    return out;
  }

  /** Whether the head gives one output per step. */
  protected get perStep(): boolean {
    return false;
  }

  /** Encodes the inputs of `predict`: a text/row, or an array of them. */
  protected predictInputs(inputs: unknown): { rows: Encoded[]; single: boolean } {
    const single = typeof inputs === 'string' || inputs instanceof Float32Array;
    const list = single ? [inputs] : inputs;
    if (!Array.isArray(list))
      throw typeError(
        'ERR_RNNKIT_TYPE',
        `inputs: expected ${this.codec.dense ? 'a Float32Array or an array of them' : 'a string or an array of strings'}, got ${describe(inputs)}`,
      );
    if (list.length === 0) throw rangeError('ERR_RNNKIT_EMPTY', 'inputs: no rows');
    const name = (i: number) => (single ? 'inputs' : `inputs[${i}]`);
    const rows = list.map((x, i) => (this.codec.dense ? this.denseRow(name(i), x) : this.tokenRow(name(i), x)));
    return { rows, single };
  }

  protected tokenRow(where: string, x: unknown): Encoded {
    const ids = typeof x === 'string' ? this.codec.text(where, x) : this.codec.ids(where, x);
    return { ids, steps: ids.length };
  }

  protected denseRow(where: string, x: unknown): Encoded {
    const values = this.codec.values(where, x);
    return { values, steps: values.length / this.codec.inputSize };
  }
}

/** Checks that a dataset's tokenizer is the model's (ids mean nothing under another vocabulary). */
export function checkSameTokenizer(name: string, model: Tokenizer | null, data: Tokenizer): void {
  if (!model || JSON.stringify(model.toJSON()) !== JSON.stringify(data.toJSON())) {
    throw typeError('ERR_RNNKIT_VOCAB', `${name}: the dataset was tokenized with another tokenizer than the model's`);
  }
}

/** Checks that a dataset's label set is the model's, in the same id order. */
export function checkSameLabels(name: string, data: readonly Label[], model: readonly Label[], what: string): void {
  if (data.length !== model.length || data.some((l, i) => l !== model[i])) {
    throw typeError(
      'ERR_RNNKIT_CONFIG',
      `${name}: the dataset's ${what} (${data.map((l) => JSON.stringify(l)).join(', ')}) are not the model's (${model.map((l) => JSON.stringify(l)).join(', ')}) in the same order; build the dataset with options.${what} set to the model's`,
    );
  }
}

/** Checks that a dense dataset's rows are this model's inputs, normalised as the model does. */
export function checkDense(name: string, data: DenseDataset, codec: InputCodec): void {
  if (!codec.dense) throw typeError('ERR_RNNKIT_CONFIG', `${name}: this model reads text, not a DenseDataset`);
  if (data.inputSize !== codec.inputSize)
    throw rangeError('ERR_RNNKIT_SHAPE', `${name}: the dataset has ${data.inputSize} features per step, the model reads ${codec.inputSize}`);
  if (data.normalize !== codec.normalize) {
    throw typeError(
      'ERR_RNNKIT_CONFIG',
      `${name}: build the DenseDataset with normalize: ${codec.normalize}, as the model's inputs are ${codec.normalize ? '' : 'not '}normalised`,
    );
  }
  if (codec.normalize) {
    // The dataset's batches are normalised with its training statistics: the model adopts them.
    if (!codec.stats) codec.stats = data.stats;
    else if (codec.stats.mean.some((m, i) => m !== data.stats.mean[i]) || codec.stats.std.some((v, i) => v !== data.stats.std[i])) {
      throw typeError('ERR_RNNKIT_CONFIG', `${name}: the dataset is normalised with other statistics than the model's`);
    }
  }
}

/** Class weights in id order from the public forms. */
export function resolveClassWeights(value: ClassWeights, labels: readonly Label[], counts: () => number[]): number[] {
  if (value === 'balanced') {
    const n = counts();
    const total = n.reduce((a, b) => a + b, 0);
    // A class absent from the training rows gets weight 0: there is nothing to weigh.
    return n.map((c) => (c === 0 ? 0 : total / (labels.length * c)));
  }
  if (Array.isArray(value)) {
    if (value.length !== labels.length) throw rangeError('ERR_RNNKIT_SHAPE', `options.classWeights: ${value.length} weights for ${labels.length} classes`);
    return value.map((w, i) => checkNumber(`options.classWeights[${i}]`, w, 0));
  }
  const o = checkObject('options.classWeights', value);
  const byName = new Map(labels.map((l, i) => [String(l), i]));
  const out = new Array<number>(labels.length).fill(1);
  for (const [k, w] of Object.entries(o)) {
    const i = byName.get(k);
    if (i === undefined)
      throw rangeError('ERR_RNNKIT_RANGE', `options.classWeights.${k}: not one of the labels (${labels.map((l) => JSON.stringify(l)).join(', ')})`);
    out[i] = checkNumber(`options.classWeights.${k}`, w, 0);
  }
  return out;
}

/** Batches of a DenseDataset split, refusing normalised ones (the model normalises itself). */
export function denseBatches(name: string, data: DenseDataset, split: 'train' | 'validation') {
  // DenseDataset keeps `normalize` private; its batches would already be normalised with the
  // dataset's statistics, and the model would normalise again. Refuse rather than guess.
  if ((data as unknown as { normalize: boolean }).normalize) {
    throw typeError('ERR_RNNKIT_CONFIG', `${name}: build the DenseDataset with normalize: false; the model normalises with its own saved statistics`);
  }
  return data.batches(split, 0);
}
