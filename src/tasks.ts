/**
 * Sequence tasks beyond language modelling: classification (many-to-one), tagging (one label per
 * input step) and regression on dense (numeric) sequences. Each is a {@link Model} over the same
 * native network; this module turns texts, labels and float rows into the padded batch-first
 * arrays the engine takes (`SequenceData`), and the engine's logits back into labels.
 *
 * What the weights alone cannot say is kept in the model file's metadata so a loaded model
 * predicts exactly as the trained one did: the label names (`labels`), the tag names (`tags`),
 * the input-normalisation statistics (`feature_stats`), whether to normalise (`normalize`) and
 * the longest accepted sequence (`max_length`). docs/FORMAT.md lists them.
 */

import type { EvalInfo, NativeModel, NativeSequenceDataset, Prediction, SequenceData } from '../index';
import { native } from './native';
import { architectureJSON, Model } from './model';
import { refuseOrderKeys, runFit, splitFitOptions, type FitOptions } from './fit';
import { DenseDataset, FeatureStats, IGNORE_INDEX, LabelledDataset, TaggedDataset, type Label } from './dataset';
import { checkBoolean, checkChoice, checkInt, checkNumber, describe, error, rangeError, typeError } from './errors';
import type { Tokenizer } from './tokenizer';
import type { ArchitectureOptions, History, Pooling } from './types';

// ---------------------------------------------------------------------------------------------
// Options and results

/** Input side shared by the task constructors: a tokenizer (text) or a feature count (dense). */
export interface SequenceInputOptions {
  /** Tokenizer of the texts (token input). Either this or `inputSize`. */
  tokenizer?: Tokenizer;
  /** Features per step (dense `Float32Array` input `[T, inputSize]` per row). */
  inputSize?: number;
  /** Embedding width for token input. Default 64. */
  embedDim?: number;
  /** Longest sequence accepted, in tokens or steps; longer rows are errors naming the row. Default 1024. */
  maxLength?: number;
  /** Dense input: normalise each feature with the training rows' mean and std (saved with the model). Default true. */
  normalize?: boolean;
  /** Dense input: statistics to use instead of computing them on the first `fit`. */
  featureStats?: FeatureStats;
}

/** Options of {@link createClassifier}. */
export interface ClassifierOptions extends ArchitectureOptions, SequenceInputOptions {
  /** The classes, in class-id order (strings or numbers); any other label is an error. */
  labels: Label[];
  /** Read each sequence in both directions. Default true. */
  bidirectional?: boolean;
  /** How the real steps of a sequence become one vector. Default `'mean'`. */
  pooling?: Pooling;
}

/** Options of {@link createTagger}. */
export interface TaggerOptions extends ArchitectureOptions, SequenceInputOptions {
  /** The tags, in tag-id order. */
  tags: Label[];
  /** Read each sequence in both directions (a tag may depend on what follows). Default true. */
  bidirectional?: boolean;
}

/** Options of {@link createRegressor}. */
export interface RegressorOptions extends ArchitectureOptions, Omit<SequenceInputOptions, 'tokenizer' | 'embedDim'> {
  /** Features per step of the input. */
  inputSize: number;
  /** Values predicted per row (or per step with `perStep`). Default 1. */
  outputSize?: number;
  /** One output per step (many-to-many) instead of one per sequence. Default false. */
  perStep?: boolean;
  /** Many-to-one pooling. Default `'last'`. */
  pooling?: Pooling;
  /** Read each sequence in both directions. Default false (a forecast must not see the future of its window… it has none, but a per-step regressor would). */
  bidirectional?: boolean;
}

/** Class weights: one per class in class-id order, by label, or `'balanced'` (n / (classes · count)). */
export type ClassWeights = number[] | Record<string, number> | 'balanced';

/** Options of `fit` for the sequence tasks. */
export interface SequenceFitOptions<Data = unknown> extends FitOptions {
  /** Held-out rows, in the same form as the training data; a dataset's validation split is used by default. */
  validation?: Data;
  /** Loss weight of each class or tag (classification, tagging). */
  classWeights?: ClassWeights;
  /** Rows per batch (arrays of rows only; a dataset fixes its own). Default 32. */
  batchSize?: number;
  /** Shuffle rows each epoch (arrays of rows only). Default true. */
  shuffle?: boolean;
  /** The last, smaller batch (arrays of rows only). Default `'keep'`. */
  last?: 'keep' | 'drop';
}

/** Precision, recall and F1 of one class. */
export interface ClassMetrics {
  label: Label;
  precision: number;
  recall: number;
  f1: number;
  /** Counted positions whose true class is this one. */
  support: number;
}

/** Result of `evaluate` on a classifier or tagger. */
export interface ClassificationEvaluation {
  /** Mean cross-entropy (nats) over counted rows (classifier) or steps (tagger). */
  loss: number;
  accuracy: number;
  /** Counted rows or steps. */
  count: number;
  /** Unweighted mean of the per-class F1. */
  macroF1: number;
  perClass: ClassMetrics[];
  /** `confusion[i][j]`: positions of true class i predicted as class j (class-id order). */
  confusion: number[][];
  labels: Label[];
}

/** Result of `evaluate` on a regressor. */
export interface RegressionEvaluation {
  /** Mean squared error over every predicted value (real steps only for per-step models). */
  loss: number;
  mse: number;
  /** Mean absolute error. */
  mae: number;
  /** Predicted values counted. */
  count: number;
}

/** One classified row. */
export interface ClassPrediction {
  label: Label;
  /** Probability of `label`. */
  probability: number;
  /** Probability of every class, keyed by label. */
  probabilities: Record<string, number>;
}

/** One tagged row. */
export interface TagPrediction {
  /** The text of each token (token input) — empty strings for dense input. */
  tokens: string[];
  tags: Label[];
  /** Probability of each chosen tag. */
  probabilities: number[];
}

/** A labelled row: a text (token models) or a `[T, inputSize]` Float32Array (dense models). */
export interface ClassifyExample {
  text?: string;
  values?: Float32Array;
  label: Label;
}

/** A tagged row: a text whose tokens each get a tag, token ids, or dense steps. */
export interface TagExample {
  text?: string;
  ids?: ArrayLike<number>;
  values?: Float32Array;
  tags: ArrayLike<Label>;
}

/** A regression row: `values` `[T, inputSize]`, `target` `[outputSize]` (or `[T, outputSize]` per step). */
export interface RegressExample {
  values: Float32Array;
  target: number | ArrayLike<number>;
}

// ---------------------------------------------------------------------------------------------
// Helpers

function checkObject(name: string, value: unknown): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw typeError('ERR_RNNKIT_TYPE', `${name}: expected an object, got ${describe(value)}`);
  return value as Record<string, unknown>;
}

function checkKnownKeys(name: string, value: Record<string, unknown>, known: readonly string[]): void {
  for (const key of Object.keys(value)) {
    if (!known.includes(key)) throw typeError('ERR_RNNKIT_TYPE', `${name}.${key}: unknown option (known: ${known.join(', ')})`);
  }
}

/** Rethrows an rnnkit error with `where` in front, keeping class and code (encoding errors name the row). */
function rethrowAt(where: string, e: unknown): never {
  const err = e as Error & { code?: string };
  if (typeof err?.code !== 'string') throw e;
  const code = err.code as Parameters<typeof error>[0];
  const message = `${where}: ${err.message}`;
  if (err instanceof RangeError) throw rangeError(code, message);
  if (err instanceof TypeError) throw typeError(code, message);
  throw error(code, message);
}

/** Checks a declared label set: non-empty, strings or finite numbers, no duplicates. */
function checkLabelSet(name: string, value: unknown): Label[] {
  if (!Array.isArray(value) || value.length === 0) throw typeError('ERR_RNNKIT_TYPE', `${name}: expected a non-empty array of strings or numbers, got ${describe(value)}`);
  const seen = new Set<Label>();
  value.forEach((l, i) => {
    if (typeof l !== 'string' && !(typeof l === 'number' && Number.isFinite(l))) throw typeError('ERR_RNNKIT_TYPE', `${name}[${i}]: expected a string or finite number, got ${describe(l)}`);
    if (seen.has(l)) throw typeError('ERR_RNNKIT_TYPE', `${name}[${i}]: duplicate label ${describe(l)}`);
    seen.add(l);
  });
  return [...value] as Label[];
}

/** Lets the event loop run between chunks of synchronous native work. */
const yieldToLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** The engine's evaluation as the public classification result, with label names. */
function classificationResult(e: EvalInfo, labels: readonly Label[]): ClassificationEvaluation {
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

// ---------------------------------------------------------------------------------------------
// Input encoding

/** One encoded row: token ids or dense values (already normalised), and its length in steps. */
type Encoded = { ids?: Int32Array; values?: Float32Array; steps: number };

/**
 * The input side of a sequence model: how a text or a float row becomes engine input, with the
 * checks that name the row and field.
 */
class InputCodec {
  constructor(
    readonly tokenizer: Tokenizer | null,
    readonly inputSize: number,
    readonly maxLength: number,
    readonly normalize: boolean,
    public stats: FeatureStats | null,
  ) {}

  get dense(): boolean {
    return this.tokenizer === null;
  }

  /** The id padded steps hold: masked by the lengths anyway, but it must be a valid id. */
  get padId(): number {
    return this.tokenizer?.specials['<pad>'] ?? 0;
  }

  text(where: string, value: unknown): Int32Array {
    if (!this.tokenizer) throw typeError('ERR_RNNKIT_TYPE', `${where}: this model reads dense Float32Array rows, not text`);
    if (typeof value !== 'string') throw typeError('ERR_RNNKIT_TYPE', `${where}: expected a string, got ${describe(value)}`);
    if (value.length === 0) throw rangeError('ERR_RNNKIT_EMPTY', `${where}: empty text`);
    let ids: Int32Array;
    try {
      ids = this.tokenizer.encode(value);
    } catch (e) {
      rethrowAt(where, e);
    }
    if (ids.length === 0) throw rangeError('ERR_RNNKIT_EMPTY', `${where}: the text ${describe(value)} gives no tokens`);
    return this.limit(where, ids.length, 'tokens', ids);
  }

  ids(where: string, value: unknown): Int32Array {
    if (!this.tokenizer) throw typeError('ERR_RNNKIT_TYPE', `${where}: this model reads dense Float32Array rows, not token ids`);
    if (!Array.isArray(value) && !(ArrayBuffer.isView(value) && !(value instanceof Float32Array) && !(value instanceof Float64Array))) {
      throw typeError('ERR_RNNKIT_TYPE', `${where}: expected an array or integer typed array of token ids, got ${describe(value)}`);
    }
    const a = value as ArrayLike<number>;
    if (a.length === 0) throw rangeError('ERR_RNNKIT_EMPTY', `${where}: no tokens`);
    const v = this.tokenizer.vocabSize;
    const out = Int32Array.from({ length: a.length }, (_, t) => checkInt(`${where}[${t}]`, a[t], 0, v - 1));
    return this.limit(where, out.length, 'tokens', out);
  }

  /** Checks a raw dense row and returns it normalised (when the model normalises). */
  values(where: string, value: unknown): Float32Array {
    if (this.tokenizer) throw typeError('ERR_RNNKIT_TYPE', `${where}: this model reads text (it has a tokenizer), not Float32Array rows`);
    if (!(value instanceof Float32Array)) throw typeError('ERR_RNNKIT_TYPE', `${where}: expected a Float32Array [steps × ${this.inputSize}], got ${describe(value)}`);
    if (value.length === 0) throw rangeError('ERR_RNNKIT_EMPTY', `${where}: no steps`);
    const I = this.inputSize;
    if (value.length % I !== 0) throw rangeError('ERR_RNNKIT_SHAPE', `${where}: length ${value.length} is not a multiple of the model's inputSize ${I} (features per step)`);
    for (let k = 0; k < value.length; k++) {
      if (!Number.isFinite(value[k])) throw rangeError('ERR_RNNKIT_NON_FINITE', `${where}: ${value[k]} at step ${Math.floor(k / I)}, feature ${k % I}`);
    }
    this.limit(where, value.length / I, 'steps', null);
    return value;
  }

  /** Normalises checked dense rows with the model's statistics (none before the first fit). */
  applyStats(rows: Float32Array[]): Float32Array[] {
    if (!this.normalize || !this.stats) return rows;
    return rows.map((r) => this.stats!.apply(r));
  }

  private limit<T>(where: string, n: number, unit: string, value: T): T {
    if (n > this.maxLength) throw rangeError('ERR_RNNKIT_RANGE', `${where}: ${n} ${unit}, more than the model's maxLength ${this.maxLength}`);
    return value;
  }

  /** Packs rows into batch-first padded arrays. */
  pack(rows: Encoded[]): { data: SequenceData; steps: number } {
    const n = rows.length;
    const T = Math.max(...rows.map((r) => r.steps));
    const lengths = Int32Array.from(rows, (r) => r.steps);
    if (this.dense) {
      const I = this.inputSize;
      const values = new Float32Array(n * T * I);
      rows.forEach((r, i) => values.set(r.values!, i * T * I));
      return { data: { values, lengths, rows: n, steps: T }, steps: T };
    }
    const tokens = new Int32Array(n * T).fill(this.padId);
    rows.forEach((r, i) => tokens.set(r.ids!, i * T));
    return { data: { tokens, lengths, rows: n, steps: T }, steps: T };
  }
}

/** Reads the input options shared by every task into the config and a codec. */
function readInput(o: Record<string, unknown>, allowTokens: boolean): { config: Record<string, unknown>; codec: InputCodec } {
  const maxLength = o.maxLength === undefined ? 1024 : checkInt('options.maxLength', o.maxLength, 1, 1 << 24);
  if (o.tokenizer !== undefined && o.tokenizer !== null) {
    if (!allowTokens) throw typeError('ERR_RNNKIT_CONFIG', 'options.tokenizer: a regressor reads dense inputs; give inputSize');
    const t = o.tokenizer as Tokenizer;
    if (typeof t !== 'object' || typeof t.encode !== 'function' || typeof t.vocabSize !== 'number') throw typeError('ERR_RNNKIT_TYPE', `options.tokenizer: expected a Tokenizer, got ${describe(t)}`);
    if (o.inputSize !== undefined) throw typeError('ERR_RNNKIT_CONFIG', 'options.inputSize: give a tokenizer (text) or an inputSize (dense), not both');
    for (const k of ['normalize', 'featureStats']) if (o[k] !== undefined) throw typeError('ERR_RNNKIT_CONFIG', `options.${k}: only for dense input (inputSize)`);
    const embedDim = o.embedDim === undefined ? 64 : checkInt('options.embedDim', o.embedDim, 1, 1 << 16);
    return { config: { vocab_size: t.vocabSize, embed_dim: embedDim }, codec: new InputCodec(t, 0, maxLength, false, null) };
  }
  if (o.inputSize === undefined) throw typeError('ERR_RNNKIT_CONFIG', allowTokens ? 'options: give a tokenizer (text input) or an inputSize (dense input)' : 'options.inputSize: required');
  const inputSize = checkInt('options.inputSize', o.inputSize, 1, 1 << 20);
  if (o.embedDim !== undefined) throw typeError('ERR_RNNKIT_CONFIG', 'options.embedDim: only for token input (tokenizer)');
  const normalize = o.normalize === undefined ? true : checkBoolean('options.normalize', o.normalize);
  let stats: FeatureStats | null = null;
  if (o.featureStats !== undefined) {
    if (!(o.featureStats instanceof FeatureStats)) throw typeError('ERR_RNNKIT_TYPE', `options.featureStats: expected a FeatureStats, got ${describe(o.featureStats)}`);
    if (o.featureStats.mean.length !== inputSize) throw rangeError('ERR_RNNKIT_SHAPE', `options.featureStats: ${o.featureStats.mean.length} features but inputSize is ${inputSize}`);
    stats = o.featureStats;
  }
  return { config: { input_size: inputSize }, codec: new InputCodec(null, inputSize, maxLength, normalize, stats) };
}

/** Restores the codec of a loaded model from its config, tokenizer and metadata. */
export function codecFromFile(handle: NativeModel, tokenizer: Tokenizer | null): InputCodec {
  const config = handle.config();
  const meta = handle.metadata();
  const maxLength = meta.max_length === undefined ? 1024 : Number(meta.max_length);
  if (!Number.isInteger(maxLength) || maxLength < 1) throw error('ERR_RNNKIT_FORMAT', `model file: metadata max_length ${describe(meta.max_length)} is not a positive integer`);
  if (typeof config.input_size === 'number') {
    let stats: FeatureStats | null = null;
    if (meta.feature_stats !== undefined) {
      try {
        stats = FeatureStats.fromJSON(JSON.parse(meta.feature_stats));
      } catch (e) {
        throw error('ERR_RNNKIT_FORMAT', `model file: metadata feature_stats: ${(e as Error).message}`);
      }
      if (stats.mean.length !== config.input_size) throw error('ERR_RNNKIT_FORMAT', `model file: metadata feature_stats has ${stats.mean.length} features, config.input_size is ${config.input_size}`);
    }
    // A file without the key (e.g. written by PyTorch) is read as raw, unnormalised input.
    const normalize = meta.normalize === undefined ? stats !== null : meta.normalize === 'true';
    return new InputCodec(null, config.input_size, maxLength, normalize, stats);
  }
  if (!tokenizer) throw error('ERR_RNNKIT_FORMAT', 'model file: a token-input sequence model needs its tokenizer in the file');
  return new InputCodec(tokenizer, 0, maxLength, false, null);
}

/** Reads a JSON label list from metadata, or numbers 0..n-1 when the file has none. */
export function labelsFromFile(handle: NativeModel, key: string, n: number): Label[] {
  const raw = handle.metadata()[key];
  if (raw === undefined) return Array.from({ length: n }, (_, i) => i);
  let labels: Label[];
  try {
    labels = checkLabelSet(`metadata ${key}`, JSON.parse(raw));
  } catch (e) {
    throw error('ERR_RNNKIT_FORMAT', `model file: ${(e as Error).message}`);
  }
  if (labels.length !== n) throw error('ERR_RNNKIT_FORMAT', `model file: metadata ${key} has ${labels.length} names, config.output_size is ${n}`);
  return labels;
}

/** Builds and creates the native model of a task. */
function createNative(o: Record<string, unknown>, config: Record<string, unknown>, codec: InputCodec, meta: Record<string, string>): NativeModel {
  const seed = o.seed === undefined ? 0 : checkInt('options.seed', o.seed, 0);
  const handle = native.NativeModel.create(config, o.init as never, seed);
  if (codec.tokenizer) handle.setTokenizer(codec.tokenizer.toJSON() as unknown as Record<string, unknown>);
  handle.setMetadata('max_length', String(codec.maxLength));
  if (codec.dense) {
    handle.setMetadata('normalize', String(codec.normalize));
    if (codec.stats) handle.setMetadata('feature_stats', JSON.stringify(codec.stats.toJSON()));
  }
  for (const [k, v] of Object.entries(meta)) handle.setMetadata(k, v);
  return handle;
}

const ARCH_KEYS = ['cell', 'nonlinearity', 'hiddenSize', 'numLayers', 'dropout', 'seed', 'init'] as const;
const INPUT_KEYS = ['tokenizer', 'inputSize', 'embedDim', 'maxLength', 'normalize', 'featureStats'] as const;

// ---------------------------------------------------------------------------------------------
// The shared base class

/** The engine's prediction for one row: outputs, and for class heads probabilities and classes. */
interface RowPrediction {
  outputs: Float32Array;
  probabilities?: Float32Array;
  classes?: Int32Array;
}

/** Rows ready for the engine: inputs (raw dense, not yet normalised) and the task's targets. */
interface Rows {
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
    this.codec.stats = FeatureStats.compute(train.inputs.map((e) => e.values!), this.codec.inputSize);
    this.native.setMetadata('feature_stats', JSON.stringify(this.codec.stats.toJSON()));
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
    const layout = { validation: 0, stratify: false, inputSize: this.codec.dense ? this.codec.inputSize : 0, outputSize: this.task === 'regress' ? (this.config.output_size as number) : 0, perStep: this.perStep && this.task === 'regress' };
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
      if (this.codec.stats) this.native.setMetadata('feature_stats', JSON.stringify(this.codec.stats.toJSON()));
    }
    else train = this.rowDataset('data', data, { ...order, ...(rest.seed === undefined ? {} : { seed: rest.seed }) }, true);
    const valid = validation === undefined ? null : (this.datasetOf('options.validation', validation) ?? this.rowDataset('options.validation', validation, {}, false));
    if (classWeights !== undefined) rest.classWeights = this.classWeights(classWeights as ClassWeights, train);
    const ds = train;
    return runFit(this.native, options, (onEvent, cancel) => this.native.fitSequences(ds, valid, rest, onEvent, cancel));
  }

  /** The engine's loss and metrics of `data` (a dataset: its validation split when it has one). */
  protected async evaluation(data: unknown): Promise<EvalInfo> {
    const ds = this.datasetOf('data', data);
    if (ds) return this.native.evaluateDataset(ds, ds.size('validation') > 0 ? 'validation' : 'train');
    const r = this.rows('data', data, 'train');
    if (r.inputs.length === 0) throw rangeError('ERR_RNNKIT_EMPTY', 'data: no rows to evaluate');
    return this.native.evaluateSequences(this.sequenceData(r), 64);
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
    if (!Array.isArray(list)) throw typeError('ERR_RNNKIT_TYPE', `inputs: expected ${this.codec.dense ? 'a Float32Array or an array of them' : 'a string or an array of strings'}, got ${describe(inputs)}`);
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
function checkSameTokenizer(name: string, model: Tokenizer | null, data: Tokenizer): void {
  if (!model || JSON.stringify(model.toJSON()) !== JSON.stringify(data.toJSON())) {
    throw typeError('ERR_RNNKIT_VOCAB', `${name}: the dataset was tokenized with another tokenizer than the model's`);
  }
}

/** Checks that a dataset's label set is the model's, in the same id order. */
function checkSameLabels(name: string, data: readonly Label[], model: readonly Label[], what: string): void {
  if (data.length !== model.length || data.some((l, i) => l !== model[i])) {
    throw typeError('ERR_RNNKIT_CONFIG', `${name}: the dataset's ${what} (${data.map((l) => JSON.stringify(l)).join(', ')}) are not the model's (${model.map((l) => JSON.stringify(l)).join(', ')}) in the same order; build the dataset with options.${what} set to the model's`);
  }
}

/** Checks that a dense dataset's rows are this model's inputs, normalised as the model does. */
function checkDense(name: string, data: DenseDataset, codec: InputCodec): void {
  if (!codec.dense) throw typeError('ERR_RNNKIT_CONFIG', `${name}: this model reads text, not a DenseDataset`);
  if (data.inputSize !== codec.inputSize) throw rangeError('ERR_RNNKIT_SHAPE', `${name}: the dataset has ${data.inputSize} features per step, the model reads ${codec.inputSize}`);
  if (data.normalize !== codec.normalize) {
    throw typeError('ERR_RNNKIT_CONFIG', `${name}: build the DenseDataset with normalize: ${codec.normalize}, as the model's inputs are ${codec.normalize ? '' : 'not '}normalised`);
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
function resolveClassWeights(value: ClassWeights, labels: readonly Label[], counts: () => number[]): number[] {
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
    if (i === undefined) throw rangeError('ERR_RNNKIT_RANGE', `options.classWeights.${k}: not one of the labels (${labels.map((l) => JSON.stringify(l)).join(', ')})`);
    out[i] = checkNumber(`options.classWeights.${k}`, w, 0);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Classification

/** Many-to-one classification of texts or dense sequences. */
export class Classifier extends SequenceModel {
  readonly task = 'classify' as const;
  /** Class names in class-id order. */
  readonly labels: readonly Label[];
  private readonly ids: Map<Label, number>;

  /** @internal Use {@link createClassifier} or `loadModel`. */
  constructor(handle: NativeModel, codec: InputCodec, labels: Label[]) {
    super(handle, codec);
    this.labels = labels;
    this.ids = new Map(labels.map((l, i) => [l, i]));
  }

  private labelId(where: string, label: unknown): number {
    const id = this.ids.get(label as Label);
    if (id === undefined) throw rangeError('ERR_RNNKIT_RANGE', `${where}: label ${describe(label)} is not one of the model's labels (${this.labels.map((l) => JSON.stringify(l)).join(', ')})`);
    return id;
  }

  protected rows(name: string, data: unknown, split: 'train' | 'validation'): Rows {
    if (data instanceof LabelledDataset) {
      checkSameTokenizer(name, this.codec.tokenizer, data.tokenizer);
      const idx = data.rowIndices(split);
      const inputs = [...idx].map((i) => this.codec.ids(`${name} row ${i}`, data.rowTokens(i))).map((ids) => ({ ids, steps: ids.length }));
      const labels = Int32Array.from(idx, (i) => this.labelId(`${name} row ${i}`, data.labels[data.rowLabel(i)]));
      return { inputs, labels };
    }
    if (data instanceof DenseDataset) {
      const inputs: Encoded[] = [];
      const labels: number[] = [];
      for (const b of denseBatches(name, data, split)) {
        if (!b.labels) throw typeError('ERR_RNNKIT_CONFIG', `${name}: the DenseDataset has no labels`);
        for (let r = 0; r < b.batchSize; r++) {
          inputs.push(this.denseRow(`${name} row ${inputs.length}`, b.inputs.slice(r * b.seqLen * b.inputSize, (r * b.seqLen + b.lengths[r]) * b.inputSize)));
          // DenseDataset labels are class ids: they index the model's labels.
          labels.push(this.labelId(`${name} row ${labels.length}.label`, this.labels[b.labels[r]] ?? `#${b.labels[r]}`));
        }
      }
      return { inputs, labels: Int32Array.from(labels) };
    }
    if (!Array.isArray(data)) throw typeError('ERR_RNNKIT_TYPE', `${name}: expected a LabelledDataset, a DenseDataset or an array of { ${this.codec.dense ? 'values' : 'text'}, label }, got ${describe(data)}`);
    const inputs = data.map((r, i) => {
      const row = checkObject(`${name}[${i}]`, r);
      return this.codec.dense ? this.denseRow(`${name}[${i}].values`, row.values) : this.tokenRow(`${name}[${i}].text`, row.text);
    });
    const labels = Int32Array.from(data as ClassifyExample[], (r, i) => this.labelId(`${name}[${i}].label`, r.label));
    return { inputs, labels };
  }

  protected classWeights(value: ClassWeights, train: NativeSequenceDataset): number[] {
    return resolveClassWeights(value, this.labels, () => this.classCounts(train, this.labels.length));
  }

  protected datasetOf(name: string, data: unknown): NativeSequenceDataset | null {
    if (data instanceof LabelledDataset) {
      checkSameTokenizer(name, this.codec.tokenizer, data.tokenizer);
      checkSameLabels(name, data.labels, this.labels, 'labels');
      return data.native;
    }
    if (data instanceof DenseDataset) {
      if (!data.hasLabels) throw typeError('ERR_RNNKIT_CONFIG', `${name}: the DenseDataset has no labels`);
      checkDense(name, data, this.codec);
      return data.native;
    }
    return null;
  }

  /** Loss, accuracy, per-class precision/recall/F1 and the confusion matrix on labelled rows (a dataset: its validation split when it has one), computed by the engine. */
  async evaluate(data: LabelledDataset | DenseDataset | ClassifyExample[]): Promise<ClassificationEvaluation> {
    return classificationResult(await this.evaluation(data), this.labels);
  }

  /** The most probable label of each text (or dense row), with the probability of every label. */
  async predict(inputs: string | Float32Array): Promise<ClassPrediction>;
  async predict(inputs: (string | Float32Array)[]): Promise<ClassPrediction[]>;
  async predict(inputs: unknown): Promise<ClassPrediction | ClassPrediction[]> {
    const { rows, single } = this.predictInputs(inputs);
    const out = (await this.outputs(rows)).map((y) => this.decode(y));
    return single ? out[0] : out;
  }

  /** {@link Classifier.predict} on the calling thread. */
  predictSync(inputs: string | Float32Array): ClassPrediction;
  predictSync(inputs: (string | Float32Array)[]): ClassPrediction[];
  predictSync(inputs: unknown): ClassPrediction | ClassPrediction[] {
    const { rows, single } = this.predictInputs(inputs);
    const out = this.outputsSync(rows).map((y) => this.decode(y));
    return single ? out[0] : out;
  }

  private decode(y: RowPrediction): ClassPrediction {
    const p = y.probabilities!;
    const best = y.classes![0];
    const probabilities: Record<string, number> = {};
    this.labels.forEach((l, i) => (probabilities[String(l)] = p[i]));
    return { label: this.labels[best], probability: p[best], probabilities };
  }
}

/** Whether a dataset argument has a validation split to evaluate on. */
function hasValidation(data: unknown): boolean {
  return (data instanceof LabelledDataset || data instanceof TaggedDataset || data instanceof DenseDataset) && data.size('validation') > 0;
}

/** Batches of a DenseDataset split, refusing normalised ones (the model normalises itself). */
function denseBatches(name: string, data: DenseDataset, split: 'train' | 'validation') {
  // DenseDataset keeps `normalize` private; its batches would already be normalised with the
  // dataset's statistics, and the model would normalise again. Refuse rather than guess.
  if ((data as unknown as { normalize: boolean }).normalize) {
    throw typeError('ERR_RNNKIT_CONFIG', `${name}: build the DenseDataset with normalize: false; the model normalises with its own saved statistics`);
  }
  return data.batches(split, 0);
}


// ---------------------------------------------------------------------------------------------
// Tagging

/** Many-to-many tagging: one tag per input token (or dense step). */
export class Tagger extends SequenceModel {
  readonly task = 'tag' as const;
  /** Tag names in tag-id order. */
  readonly tags: readonly Label[];
  private readonly ids: Map<Label, number>;

  /** @internal Use {@link createTagger} or `loadModel`. */
  constructor(handle: NativeModel, codec: InputCodec, tags: Label[]) {
    super(handle, codec);
    this.tags = tags;
    this.ids = new Map(tags.map((l, i) => [l, i]));
  }

  protected get perStep(): boolean {
    return true;
  }

  private tagIds(where: string, tags: unknown, steps: number): Int32Array {
    if (!Array.isArray(tags) && !ArrayBuffer.isView(tags)) throw typeError('ERR_RNNKIT_TYPE', `${where}: expected an array of tags, got ${describe(tags)}`);
    const t = tags as ArrayLike<unknown>;
    if (t.length !== steps) throw rangeError('ERR_RNNKIT_SHAPE', `${where}: ${t.length} tags for ${steps} ${this.codec.dense ? 'steps' : 'tokens'}`);
    return Int32Array.from({ length: steps }, (_, s) => {
      const id = this.ids.get(t[s] as Label);
      if (id === undefined) throw rangeError('ERR_RNNKIT_RANGE', `${where}[${s}]: tag ${describe(t[s])} is not one of the model's tags (${this.tags.map((l) => JSON.stringify(l)).join(', ')})`);
      return id;
    });
  }

  protected rows(name: string, data: unknown, split: 'train' | 'validation'): Rows {
    const inputs: Encoded[] = [];
    const tags: Int32Array[] = [];
    if (data instanceof TaggedDataset) {
      let n = 0;
      for (const b of data.batches(split, 0)) {
        for (let r = 0; r < b.batchSize; r++, n++) {
          const len = b.lengths[r];
          const where = `${name} row ${n}`;
          const ids = this.codec.ids(`${where}.ids`, b.inputs.subarray(r * b.seqLen, r * b.seqLen + len));
          inputs.push({ ids, steps: len });
          const own = b.tags.subarray(r * b.seqLen, r * b.seqLen + len);
          tags.push(this.tagIds(`${where}.tags`, Array.from(own, (id) => data.tags[id]), len));
        }
      }
      return { inputs, tags };
    }
    if (!Array.isArray(data)) throw typeError('ERR_RNNKIT_TYPE', `${name}: expected a TaggedDataset or an array of { ${this.codec.dense ? 'values' : 'text'}, tags }, got ${describe(data)}`);
    data.forEach((r, i) => {
      const row = checkObject(`${name}[${i}]`, r);
      let e: Encoded;
      if (this.codec.dense) e = this.denseRow(`${name}[${i}].values`, row.values);
      else if (row.ids !== undefined) e = this.tokenRow(`${name}[${i}].ids`, row.ids);
      else e = this.tokenRow(`${name}[${i}].text`, row.text);
      inputs.push(e);
      tags.push(this.tagIds(`${name}[${i}].tags`, row.tags, e.steps));
    });
    return { inputs, tags };
  }

  protected classWeights(value: ClassWeights, train: NativeSequenceDataset): number[] {
    return resolveClassWeights(value, this.tags, () => this.classCounts(train, this.tags.length));
  }

  protected datasetOf(name: string, data: unknown): NativeSequenceDataset | null {
    if (data instanceof TaggedDataset) {
      if (data.vocabSize !== this.codec.tokenizer?.vocabSize) throw typeError('ERR_RNNKIT_VOCAB', `${name}: the dataset's ids are of a vocabulary of ${data.vocabSize}, the model's tokenizer has ${this.codec.tokenizer?.vocabSize ?? 'none'}`);
      checkSameLabels(name, data.tags, this.tags, 'tags');
      return data.native;
    }
    if (data instanceof DenseDataset) throw typeError('ERR_RNNKIT_CONFIG', `${name}: a tagger trains on a TaggedDataset or an array of rows`);
    return null;
  }

  /** Token accuracy, per-tag precision/recall/F1 and the confusion matrix over every real step (computed by the engine). */
  async evaluate(data: TaggedDataset | TagExample[]): Promise<ClassificationEvaluation> {
    return classificationResult(await this.evaluation(data), this.tags);
  }

  /** The most probable tag of every token of each text (or step of each dense row). */
  async predict(inputs: string | Float32Array): Promise<TagPrediction>;
  async predict(inputs: (string | Float32Array)[]): Promise<TagPrediction[]>;
  async predict(inputs: unknown): Promise<TagPrediction | TagPrediction[]> {
    const { rows, single } = this.predictInputs(inputs);
    const out = (await this.outputs(rows)).map((y, i) => this.decode(y, rows[i]));
    return single ? out[0] : out;
  }

  /** {@link Tagger.predict} on the calling thread. */
  predictSync(inputs: string | Float32Array): TagPrediction;
  predictSync(inputs: (string | Float32Array)[]): TagPrediction[];
  predictSync(inputs: unknown): TagPrediction | TagPrediction[] {
    const { rows, single } = this.predictInputs(inputs);
    const out = this.outputsSync(rows).map((y, i) => this.decode(y, rows[i]));
    return single ? out[0] : out;
  }

  private decode(y: RowPrediction, row: Encoded): TagPrediction {
    const c = this.tags.length;
    const tok = this.codec.tokenizer;
    const result: TagPrediction = { tokens: [], tags: [], probabilities: [] };
    for (let s = 0; s < row.steps; s++) {
      const best = y.classes![s];
      result.tokens.push(tok ? tok.idToToken(row.ids![s]) : '');
      result.tags.push(this.tags[best]);
      result.probabilities.push(y.probabilities![s * c + best]);
    }
    return result;
  }
}

// ---------------------------------------------------------------------------------------------
// Regression

/** Regression (MSE) of dense sequences: one output vector per sequence, or one per step. */
export class Regressor extends SequenceModel {
  readonly task = 'regress' as const;

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
    if (t.length !== want) throw rangeError('ERR_RNNKIT_SHAPE', `${where}: ${t.length} values, expected ${this.perStep ? `steps × outputSize = ${steps} × ${o}` : `outputSize = ${o}`}`);
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
      if (!this.perStep) throw typeError('ERR_RNNKIT_CONFIG', `${name}: a DenseDataset holds per-step targets; this regressor predicts one value per row (pass an array of { values, target })`);
      for (const b of denseBatches(name, data, split)) {
        if (!b.targets) throw typeError('ERR_RNNKIT_CONFIG', `${name}: the DenseDataset has no targets`);
        const O = b.targets.length / (b.batchSize * b.seqLen);
        if (O !== this.outputSize) throw rangeError('ERR_RNNKIT_SHAPE', `${name}: targets have ${O} values per step, the model's outputSize is ${this.outputSize}`);
        for (let r = 0; r < b.batchSize; r++) {
          const len = b.lengths[r];
          const e = this.denseRow(`${name} row ${inputs.length}`, b.inputs.slice(r * b.seqLen * b.inputSize, (r * b.seqLen + len) * b.inputSize));
          inputs.push(e);
          targets.push(b.targets.slice(r * b.seqLen * O, (r * b.seqLen + len) * O));
        }
      }
      return { inputs, targets };
    }
    if (!Array.isArray(data)) throw typeError('ERR_RNNKIT_TYPE', `${name}: expected an array of { values, target }${this.perStep ? ' or a DenseDataset' : ''}, got ${describe(data)}`);
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

  /** MSE (the training loss) and MAE over every predicted value, computed by the engine. */
  async evaluate(data: DenseDataset | RegressExample[]): Promise<RegressionEvaluation> {
    const e = await this.evaluation(data);
    return { loss: e.loss, mse: e.mse!, mae: e.mae!, count: e.count };
  }

  protected datasetOf(name: string, data: unknown): NativeSequenceDataset | null {
    if (data instanceof DenseDataset) {
      if (!this.perStep) throw typeError('ERR_RNNKIT_CONFIG', `${name}: a DenseDataset holds per-step targets; this regressor predicts one value per row (pass an array of { values, target })`);
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

// ---------------------------------------------------------------------------------------------
// Constructors and loading

/**
 * A sequence classifier: tokens → embedding (or dense steps) → (bidirectional) stacked
 * RNN/LSTM/GRU → pooling over each row's real steps → dense → softmax over `labels`.
 */
export function createClassifier(options: ClassifierOptions): Classifier {
  const o = checkObject('options', options);
  checkKnownKeys('options', o, [...ARCH_KEYS, ...INPUT_KEYS, 'labels', 'bidirectional', 'pooling']);
  const labels = checkLabelSet('options.labels', o.labels);
  const { config, codec } = readInput(o, true);
  const full = {
    ...architectureJSON(options, 'classify'),
    ...config,
    output_size: labels.length,
    bidirectional: o.bidirectional === undefined ? true : checkBoolean('options.bidirectional', o.bidirectional),
    skip: false,
    pooling: o.pooling === undefined ? 'mean' : checkChoice('options.pooling', o.pooling, ['last', 'mean', 'max'] as const),
    per_step: false,
  };
  return new Classifier(createNative(o, full, codec, { labels: JSON.stringify(labels) }), codec, labels);
}

/** A sequence tagger: one softmax over `tags` at every input step (bidirectional by default). */
export function createTagger(options: TaggerOptions): Tagger {
  const o = checkObject('options', options);
  checkKnownKeys('options', o, [...ARCH_KEYS, ...INPUT_KEYS, 'tags', 'bidirectional']);
  const tags = checkLabelSet('options.tags', o.tags);
  const { config, codec } = readInput(o, true);
  const full = {
    ...architectureJSON(options, 'tag'),
    ...config,
    output_size: tags.length,
    bidirectional: o.bidirectional === undefined ? true : checkBoolean('options.bidirectional', o.bidirectional),
    skip: false,
    pooling: 'last',
    per_step: true,
  };
  return new Tagger(createNative(o, full, codec, { tags: JSON.stringify(tags) }), codec, tags);
}

/** A regressor of dense sequences (MSE): many-to-one (pooled) or many-to-many (`perStep`). */
export function createRegressor(options: RegressorOptions): Regressor {
  const o = checkObject('options', options);
  checkKnownKeys('options', o, [...ARCH_KEYS, 'inputSize', 'maxLength', 'normalize', 'featureStats', 'outputSize', 'perStep', 'pooling', 'bidirectional']);
  const { config, codec } = readInput(o, false);
  const perStep = o.perStep === undefined ? false : checkBoolean('options.perStep', o.perStep);
  if (perStep && o.pooling !== undefined) throw typeError('ERR_RNNKIT_CONFIG', 'options.pooling: a per-step regressor does not pool');
  const full = {
    ...architectureJSON(options, 'regress'),
    ...config,
    output_size: o.outputSize === undefined ? 1 : checkInt('options.outputSize', o.outputSize, 1, 1 << 20),
    bidirectional: o.bidirectional === undefined ? false : checkBoolean('options.bidirectional', o.bidirectional),
    skip: false,
    pooling: o.pooling === undefined ? 'last' : checkChoice('options.pooling', o.pooling, ['last', 'mean', 'max'] as const),
    per_step: perStep,
  };
  return new Regressor(createNative(o, full, codec, {}), codec);
}

