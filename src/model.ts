/**
 * Models: the JavaScript handle on a native network. Weights, gradients and optimizer state live
 * in Rust; `fit` runs the whole training loop natively on its own thread and reports progress as
 * events, so the event loop stays free.
 */

import * as fs from 'fs';
import type { NativeModel } from '../index';
import { native } from './native';
import { checkBoolean, checkChoice, checkInt, checkNumber, checkString, describe, error, rangeError, typeError } from './errors';
import { TextCorpus } from './dataset';
import { Tokenizer, tokenizerFromJSON } from './tokenizer';
import { GenerationSession } from './session';
import {
  GenerationScheduler,
  ResolvedGenerateOptions,
  abortError,
  beamComplete,
  complete,
  resolveGenerateOptions,
  stream,
  type CompletionStream,
} from './generate';
import type {
  ArchitectureOptions,
  Completion,
  EvaluateResult,
  GenerateOptions,
  History,
  InitOptions,
  LanguageModelOptions,
  OptimizerOptions,
  ProgressEvent,
  ScheduleOptions,
} from './types';

export { GenerationSession, type SamplerOptions } from './session';

/** The INTEROP `config` object of a model (snake_case keys as in the file). */
export type ModelConfigJSON = Record<string, unknown> & { task: string; cell: string; hidden_size: number; num_layers: number };

/** Options of {@link LanguageModel.fit}. */
export interface FitOptions {
  /** Passes over the training data (default: 1 when neither `maxSteps` nor `timeLimit` is set). */
  epochs?: number;
  /** Stop after this many optimizer steps in this call. */
  maxSteps?: number;
  /** Stop after this many seconds. */
  timeLimit?: number;
  /** Windows per batch (default: the corpus's, else 32). */
  batchSize?: number;
  /** Steps per window, i.e. the BPTT length (default: the corpus's, else 64). */
  seqLen?: number;
  /** Tokens between window starts (default `seqLen`). */
  stride?: number;
  /** Truncated BPTT: read the text as `batchSize` contiguous lanes with state carried from one batch to the next. */
  tbptt?: boolean;
  /** Optimizer (default Adam, lr 2e-3). */
  optimizer?: OptimizerOptions;
  /** Learning-rate schedule (default constant). */
  schedule?: ScheduleOptions;
  /** Clip the global gradient norm to this value. */
  clipNorm?: number;
  /** Clip every gradient element to ±this value. */
  clipValue?: number;
  /** Seed of batch order and dropout (default: the corpus's seed, else 0). */
  seed?: number;
  /** Shuffle windows each epoch (default true). */
  shuffle?: boolean;
  /** Held-out text: a TextCorpus's validation split is used by default. */
  validation?: string | Int32Array;
  /** Validate every this many steps (default: at the end of each epoch and of the run). */
  validateEvery?: number;
  /** Steps between progress events (default 10). */
  logEvery?: number;
  /** Stops training between steps; the promise rejects with an AbortError carrying `.history`. */
  signal?: AbortSignal;
  /** Receives progress events. */
  onProgress?: (event: ProgressEvent) => void;
  /** Save a checkpoint (model + optimizer + RNG + position) every `every` steps to `path`. */
  checkpoint?: { path: string; every: number };
  /** Skip batches whose loss or gradient is not finite instead of stopping with an error. */
  skipNonFinite?: boolean;
}

const OPTIMIZERS = ['sgd', 'adam', 'adamw', 'rmsprop', 'adagrad'] as const;
const SCHEDULES = ['constant', 'step', 'exponential', 'cosine'] as const;
const DEFAULT_LR: Record<(typeof OPTIMIZERS)[number], number> = { sgd: 0.1, adam: 2e-3, adamw: 2e-3, rmsprop: 2e-3, adagrad: 0.01 };

function checkObject(name: string, value: unknown): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw typeError('ERR_RNNKIT_TYPE', `${name}: expected an object, got ${describe(value)}`);
  }
  return value as Record<string, unknown>;
}

function checkKnownKeys(name: string, value: Record<string, unknown>, known: readonly string[]): void {
  for (const key of Object.keys(value)) {
    if (!known.includes(key)) throw typeError('ERR_RNNKIT_TYPE', `${name}.${key}: unknown option (known: ${known.join(', ')})`);
  }
}

/** The optimizer options as the engine's JSON. */
function optimizerJSON(o: OptimizerOptions = {}): Record<string, unknown> {
  checkObject('options.optimizer', o);
  checkKnownKeys('options.optimizer', o as Record<string, unknown>, ['type', 'lr', 'momentum', 'nesterov', 'dampening', 'weightDecay', 'betas', 'eps', 'alpha', 'centered', 'lrDecay']);
  const type = o.type === undefined ? 'adam' : checkChoice('options.optimizer.type', o.type, OPTIMIZERS);
  const json: Record<string, unknown> = { type, lr: o.lr === undefined ? DEFAULT_LR[type] : checkNumber('options.optimizer.lr', o.lr, Number.MIN_VALUE) };
  const num = (key: keyof OptimizerOptions, out: string) => {
    if (o[key] !== undefined) json[out] = checkNumber(`options.optimizer.${key}`, o[key]);
  };
  num('momentum', 'momentum');
  num('dampening', 'dampening');
  num('weightDecay', 'weight_decay');
  num('eps', 'eps');
  num('alpha', 'alpha');
  num('lrDecay', 'lr_decay');
  if (o.nesterov !== undefined) json.nesterov = checkBoolean('options.optimizer.nesterov', o.nesterov);
  if (o.centered !== undefined) json.centered = checkBoolean('options.optimizer.centered', o.centered);
  if (o.betas !== undefined) {
    if (!Array.isArray(o.betas) || o.betas.length !== 2) throw typeError('ERR_RNNKIT_TYPE', `options.optimizer.betas: expected [beta1, beta2], got ${describe(o.betas)}`);
    json.betas = o.betas.map((b, i) => checkNumber(`options.optimizer.betas[${i}]`, b, 0, 1));
  }
  return json;
}

/** The schedule options as the engine's JSON; `totalSteps` is the cosine period by default. */
function scheduleJSON(s: ScheduleOptions | undefined, totalSteps: number | undefined): Record<string, unknown> {
  if (s === undefined) return { type: 'constant' };
  checkObject('options.schedule', s);
  checkKnownKeys('options.schedule', s as Record<string, unknown>, ['type', 'warmupSteps', 'stepSize', 'gamma', 'tMax', 'etaMin']);
  const type = s.type === undefined ? 'constant' : checkChoice('options.schedule.type', s.type, SCHEDULES);
  const json: Record<string, unknown> = { type };
  if (s.warmupSteps !== undefined) json.warmup_steps = checkInt('options.schedule.warmupSteps', s.warmupSteps, 0);
  if (type === 'step') {
    json.step_size = checkInt('options.schedule.stepSize', s.stepSize, 1);
    json.gamma = checkNumber('options.schedule.gamma', s.gamma ?? 0.1, 0);
  } else if (type === 'exponential') {
    json.gamma = checkNumber('options.schedule.gamma', s.gamma, 0);
  } else if (type === 'cosine') {
    const tMax = s.tMax ?? totalSteps;
    if (tMax === undefined) throw typeError('ERR_RNNKIT_TYPE', 'options.schedule.tMax: required for a cosine schedule when the run has no maxSteps');
    json.t_max = checkInt('options.schedule.tMax', tMax, 1);
    json.eta_min = checkNumber('options.schedule.etaMin', s.etaMin ?? 0, 0);
  }
  return json;
}

/** Builds the engine's training options from `fit`'s. */
export function trainOptionsJSON(options: FitOptions, defaults: { batchSize: number; seqLen: number; seed: number; shuffle: boolean; stride?: number }, stepsBefore: number): Record<string, unknown> {
  const o = checkObject('options', options);
  checkKnownKeys('options', o, [
    'epochs', 'maxSteps', 'timeLimit', 'batchSize', 'seqLen', 'stride', 'tbptt', 'optimizer', 'schedule', 'clipNorm', 'clipValue',
    'seed', 'shuffle', 'validation', 'validateEvery', 'logEvery', 'signal', 'onProgress', 'checkpoint', 'skipNonFinite',
  ]);
  const opt = <T>(key: string, check: (name: string, v: unknown) => T): T | undefined => (o[key] === undefined ? undefined : check(`options.${key}`, o[key]));
  const maxSteps = opt('maxSteps', (n, v) => checkInt(n, v, 1));
  const checkpoint = o.checkpoint === undefined ? undefined : checkObject('options.checkpoint', o.checkpoint);
  if (checkpoint) {
    checkString('options.checkpoint.path', checkpoint.path, true);
    checkInt('options.checkpoint.every', checkpoint.every, 1);
  }
  return {
    batch_size: opt('batchSize', (n, v) => checkInt(n, v, 1, 1 << 20)) ?? defaults.batchSize,
    seq_len: opt('seqLen', (n, v) => checkInt(n, v, 1, 1 << 20)) ?? defaults.seqLen,
    stride: opt('stride', (n, v) => checkInt(n, v, 1)) ?? defaults.stride ?? null,
    tbptt: opt('tbptt', checkBoolean) ?? false,
    epochs: opt('epochs', (n, v) => checkInt(n, v, 1)) ?? null,
    max_steps: maxSteps === undefined ? null : stepsBefore + maxSteps,
    time_limit: opt('timeLimit', (n, v) => checkNumber(n, v, Number.MIN_VALUE)) ?? null,
    optimizer: optimizerJSON(options.optimizer),
    schedule: scheduleJSON(options.schedule, maxSteps),
    clip_norm: opt('clipNorm', (n, v) => checkNumber(n, v, Number.MIN_VALUE)) ?? null,
    clip_value: opt('clipValue', (n, v) => checkNumber(n, v, Number.MIN_VALUE)) ?? null,
    seed: opt('seed', (n, v) => checkInt(n, v, 0)) ?? defaults.seed,
    shuffle: opt('shuffle', checkBoolean) ?? defaults.shuffle,
    log_every: opt('logEvery', (n, v) => checkInt(n, v, 1)) ?? 10,
    validate_every: opt('validateEvery', (n, v) => checkInt(n, v, 1)) ?? null,
    checkpoint_every: checkpoint ? checkpoint.every : null,
    skip_non_finite: opt('skipNonFinite', checkBoolean) ?? false,
  };
}

/** Shapes a native progress event into the public {@link ProgressEvent}. */
function progressEvent(raw: Record<string, unknown>, last: ProgressEvent | undefined): ProgressEvent {
  const base: ProgressEvent = last ?? { type: 'step', step: 0, totalSteps: 0, epoch: 0, epochProgress: 0, loss: NaN, lr: 0, gradNorm: 0, tokensPerSecond: 0, elapsed: 0, eta: 0 };
  if (raw.type === 'validation') {
    const valLoss = raw.valLoss as number;
    return {
      ...base,
      type: 'validation',
      step: raw.step as number,
      elapsed: raw.elapsed as number,
      valLoss,
      valPerplexity: Math.exp(valLoss),
      valBitsPerToken: valLoss / Math.LN2,
      ...(raw.valAccuracy == null ? {} : { valAccuracy: raw.valAccuracy as number }),
    };
  }
  if (raw.type === 'checkpoint') return { ...base, type: 'checkpoint', step: raw.step as number, path: raw.path as string };
  return { ...(raw as unknown as ProgressEvent), type: 'step' };
}

/** Runs a native fit call with progress, abort and history handling shared by every task. */
export async function runFit(
  model: NativeModel,
  options: FitOptions,
  start: (onEvent: (json: string) => void, cancel: InstanceType<typeof native.CancelToken>) => Promise<string>,
): Promise<History> {
  const onProgress = options.onProgress;
  if (onProgress !== undefined && typeof onProgress !== 'function') throw typeError('ERR_RNNKIT_TYPE', `options.onProgress: expected a function, got ${describe(onProgress)}`);
  const signal = options.signal;
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw typeError('ERR_RNNKIT_TYPE', `options.signal: expected an AbortSignal, got ${describe(signal)}`);
  if (model.isTraining) throw error('ERR_RNNKIT_BUSY', 'fit: this model is already training; wait for the running fit() to settle or abort it');
  if (signal?.aborted) throw abortError();
  const cancel = new native.CancelToken();
  const onAbort = () => cancel.cancel();
  signal?.addEventListener('abort', onAbort, { once: true });
  let last: ProgressEvent | undefined;
  const onEvent = (json: string) => {
    const event = progressEvent(JSON.parse(json), last);
    if (event.type === 'step') last = event;
    // A throwing handler must not kill the training thread's event delivery.
    try {
      onProgress?.(event);
    } catch (e) {
      process.emitWarning(`rnnkit: onProgress threw: ${e instanceof Error ? e.message : String(e)}`);
    }
  };
  try {
    const history = JSON.parse(await start(onEvent, cancel)) as History & { stopReason: string };
    if (last) onProgress?.({ ...last, type: 'done', eta: 0 });
    if (history.stopReason === 'aborted') {
      const e = abortError() as Error & { history?: History };
      e.message = 'training was aborted; the model keeps the weights of the last completed step';
      e.history = history;
      throw e;
    }
    return history;
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}

/** Opens a model file, refusing non-strings. */
function checkPath(name: string, path: unknown): string {
  return checkString(name, path, true);
}

/** What every model has: config, metadata, save, tensors, training state. */
export abstract class Model {
  /** @internal The native handle. */
  readonly native: NativeModel;

  protected constructor(handle: NativeModel) {
    this.native = handle;
  }

  /** The architecture (INTEROP `config`, snake_case keys). */
  get config(): ModelConfigJSON {
    return JSON.parse(this.native.configJson()) as ModelConfigJSON;
  }

  /** Scalar parameters. */
  get numParams(): number {
    return this.native.numParams();
  }

  /** Whether `fit` is running (other calls are refused with `ERR_RNNKIT_BUSY` meanwhile). */
  get isTraining(): boolean {
    return this.native.isTraining;
  }

  /** Optimizer steps taken over the model's life. */
  get stepsTrained(): number {
    return this.native.stepsTrained();
  }

  /** String metadata saved with the model (training summary, user keys). */
  get metadata(): Record<string, string> {
    return this.native.metadata();
  }

  /** Sets a metadata pair saved with the model. */
  setMetadata(key: string, value: string): void {
    this.native.setMetadata(checkString('key', key, true), checkString('value', value));
  }

  /** Names and shapes of the parameter tensors (PyTorch `state_dict` names). */
  tensors(): { name: string; shape: number[] }[] {
    return this.native.tensors();
  }

  /** A copy of a parameter tensor. */
  getTensor(name: string): Float32Array {
    return this.native.getTensor(checkString('name', name, true));
  }

  /** Overwrites a parameter tensor (same length, finite values). */
  setTensor(name: string, values: Float32Array): void {
    if (!(values instanceof Float32Array)) throw typeError('ERR_RNNKIT_TYPE', `values: expected a Float32Array, got ${describe(values)}`);
    this.native.setTensor(checkString('name', name, true), values);
  }

  /** The gradient of a parameter from the last `trainStep`. */
  getGradient(name: string): Float32Array {
    return this.native.getGradient(checkString('name', name, true));
  }

  /**
   * Saves the model in the INTEROP format (PyTorch-readable safetensors), atomically: a temp
   * file in the same directory, then a rename. With `checkpoint: true` the optimizer, RNG and
   * position are saved too, and `loadModel` + `fit` continue exactly where training stopped.
   */
  saveSync(path: string, options: { checkpoint?: boolean; metadata?: Record<string, string> } = {}): void {
    checkPath('path', path);
    const o = checkObject('options', options);
    const checkpoint = o.checkpoint === undefined ? false : checkBoolean('options.checkpoint', o.checkpoint);
    if (o.metadata !== undefined) {
      for (const [k, v] of Object.entries(checkObject('options.metadata', o.metadata))) this.setMetadata(k, checkString(`options.metadata.${k}`, v));
    }
    this.native.save(path, checkpoint);
  }

  /** {@link Model.saveSync}, returning a promise (the write itself is short). */
  async save(path: string, options: { checkpoint?: boolean; metadata?: Record<string, string> } = {}): Promise<void> {
    this.saveSync(path, options);
  }
}

/** A next-token language model over a tokenizer's vocabulary. */
export class LanguageModel extends Model {
  readonly task = 'language_model' as const;
  private readonly tok: Tokenizer | null;
  private scheduler?: GenerationScheduler;

  /** @internal Use {@link createLanguageModel} or {@link loadModel}. */
  constructor(handle: NativeModel, tokenizer: Tokenizer | null) {
    super(handle);
    this.tok = tokenizer;
  }

  /** The tokenizer (null when the model was built from `vocabSize` alone). */
  get tokenizer(): Tokenizer | null {
    return this.tok;
  }

  private requireTokenizer(what: string): Tokenizer {
    if (!this.tok) throw typeError('ERR_RNNKIT_CONFIG', `${what}: this model has no tokenizer; pass token ids (Int32Array) instead of text`);
    return this.tok;
  }

  private ids(name: string, data: string | Int32Array): Int32Array {
    if (typeof data === 'string') return this.requireTokenizer(name).encode(data);
    if (data instanceof Int32Array) return data;
    throw typeError('ERR_RNNKIT_TYPE', `${name}: expected a string or an Int32Array of token ids, got ${describe(data)}`);
  }

  /**
   * Trains on a corpus (its train split; its validation split validates), a string, or token
   * ids. Runs natively off the JS thread; resolves with the history.
   */
  async fit(data: TextCorpus | string | Int32Array, options: FitOptions = {}): Promise<History> {
    checkObject('options', options);
    let train: Int32Array;
    let valid: Int32Array | undefined;
    let defaults = { batchSize: 32, seqLen: 64, seed: 0, shuffle: true } as { batchSize: number; seqLen: number; seed: number; shuffle: boolean; stride?: number };
    if (data instanceof TextCorpus) {
      if (this.tok && JSON.stringify(data.tokenizer.toJSON()) !== JSON.stringify(this.tok.toJSON())) {
        throw typeError('ERR_RNNKIT_VOCAB', 'data: the corpus was tokenized with another tokenizer than the model\'s');
      }
      train = data.trainTokens();
      const v = data.validationTokens();
      valid = v.length >= 2 ? v : undefined;
      const w = data.windowParams();
      const c = data as unknown as { batchSize: number; seed: number; shuffle: boolean };
      defaults = { batchSize: c.batchSize, seqLen: w.seqLen, stride: w.stride, seed: c.seed, shuffle: c.shuffle };
    } else {
      train = this.ids('data', data);
    }
    if (options.validation !== undefined) valid = this.ids('options.validation', options.validation);
    if (train.length === 0) throw rangeError('ERR_RNNKIT_EMPTY', 'data: the training text is empty');
    const json = JSON.stringify(trainOptionsJSON(options, defaults, this.native.stepsTrained()));
    const checkpointPath = options.checkpoint?.path;
    return runFit(this.native, options, (onEvent, cancel) => this.native.fitStream(train, valid ?? null, json, onEvent, cancel, checkpointPath ?? null));
  }

  /**
   * One optimizer step on a batch you made: `inputs` and `targets` are `[rows, steps]` token
   * ids (targets -100 are not counted). For hand-written training loops; synchronous.
   */
  trainStep(inputs: Int32Array, targets: Int32Array, shape: { rows: number; steps: number }, options: FitOptions = {}): { loss: number; gradNorm: number; lr: number; step: number } {
    if (!(inputs instanceof Int32Array)) throw typeError('ERR_RNNKIT_TYPE', `inputs: expected an Int32Array, got ${describe(inputs)}`);
    if (!(targets instanceof Int32Array)) throw typeError('ERR_RNNKIT_TYPE', `targets: expected an Int32Array, got ${describe(targets)}`);
    const rows = checkInt('shape.rows', shape?.rows, 1);
    const steps = checkInt('shape.steps', shape?.steps, 1);
    const json = JSON.stringify(trainOptionsJSON({ ...options, batchSize: rows, seqLen: steps }, { batchSize: rows, seqLen: steps, seed: 0, shuffle: false }, 0));
    const r = this.native.trainStep(inputs, targets, rows, steps, json);
    return { loss: r.loss, gradNorm: r.gradNorm, lr: r.lr, step: r.step };
  }

  /**
   * Mean cross-entropy of a text under INTEROP's stateful protocol: the text is one token
   * stream read once with state carried from the first token to the last (in chunks of `chunk`
   * steps), and the loss is the mean over predicting tokens 2..N.
   */
  async evaluate(text: string | Int32Array, options: { chunk?: number } = {}): Promise<EvaluateResult> {
    const { ids, chunk } = this.evalArgs(text, options);
    return evalResult(await this.native.evaluateStream(ids, 1, chunk));
  }

  /** {@link LanguageModel.evaluate} on the calling thread. */
  evaluateSync(text: string | Int32Array, options: { chunk?: number } = {}): EvaluateResult {
    const { ids, chunk } = this.evalArgs(text, options);
    return evalResult(this.native.evaluateStreamSync(ids, 1, chunk));
  }

  private evalArgs(text: string | Int32Array, options: { chunk?: number }): { ids: Int32Array; chunk: number } {
    const ids = this.ids('text', text);
    if (ids.length < 2) throw rangeError('ERR_RNNKIT_EMPTY', `text: expected at least 2 tokens to predict one, got ${ids.length}`);
    const chunk = options.chunk === undefined ? 256 : checkInt('options.chunk', options.chunk, 1, 1 << 20);
    return { ids, chunk };
  }

  private generation(): GenerationScheduler {
    this.scheduler ??= new GenerationScheduler(this.native, this.requireTokenizer('generate'));
    return this.scheduler;
  }

  /** Generates a continuation of `prompt` (the prompt itself is not included). */
  async generate(prompt: string, options: GenerateOptions = {}): Promise<string> {
    return (await this.complete(prompt, options)).text;
  }

  /** Generates a continuation with its accounting (finish reason, token counts). */
  async complete(prompt: string, options: GenerateOptions = {}): Promise<Completion> {
    checkString('prompt', prompt);
    const opts = resolveGenerateOptions(options);
    if (opts.beams > 0) return beamComplete(this.native, this.requireTokenizer('generate'), prompt, opts);
    return complete(this.generation(), prompt, opts);
  }

  /** Streams a continuation as text pieces while it is generated; `.completion` gives the accounting. */
  stream(prompt: string, options: GenerateOptions = {}): CompletionStream {
    checkString('prompt', prompt);
    const opts = resolveGenerateOptions(options);
    if (opts.beams > 0) throw typeError('ERR_RNNKIT_TYPE', `options.beams: beam search cannot stream (got ${opts.beams}); use generate()`);
    return stream(this.generation(), prompt, opts);
  }

  /** Generates continuations of many prompts together (one batched step for all). */
  async generateBatch(prompts: string[], options: GenerateOptions = {}): Promise<string[]> {
    if (!Array.isArray(prompts)) throw typeError('ERR_RNNKIT_TYPE', `prompts: expected an array of strings, got ${describe(prompts)}`);
    prompts.forEach((p, i) => checkString(`prompts[${i}]`, p));
    const base = resolveGenerateOptions(options);
    // Each prompt gets its own seed derived from the base one, so results are reproducible.
    const jobs = prompts.map((p, i): Promise<Completion> => {
      const opts: ResolvedGenerateOptions = { ...base, seed: (base.seed + i) % Number.MAX_SAFE_INTEGER };
      return opts.beams > 0 ? beamComplete(this.native, this.requireTokenizer('generate'), p, opts) : complete(this.generation(), p, opts);
    });
    return (await Promise.all(jobs)).map((c) => c.text);
  }

  /** Number of tokens `text` encodes to. */
  countTokens(text: string): number {
    return this.requireTokenizer('countTokens').encode(checkString('text', text)).length;
  }

  /**
   * A stateful session for step-by-step use: feed text, read logits, sample the next token.
   * With `rows` > 1 the session carries that many independent streams and every `feed` reads
   * `[rows, steps]` token ids (batch-first), returning `[rows, V]` logits: one native call per
   * step for the whole batch, as batched generation needs.
   */
  session(options: { seed?: number; rows?: number } = {}): GenerationSession {
    // Checked natively (unknown keys refused with a did-you-mean); the handle knows its rows.
    const handle = new native.NativeSession(this.native, options);
    return new GenerationSession(handle, this.tok, handle.rows);
  }
}

function evalResult(e: { loss: number; count: number; accuracy?: number | null }): EvaluateResult {
  return {
    loss: e.loss,
    perplexity: Math.exp(e.loss),
    bitsPerToken: e.loss / Math.LN2,
    tokens: e.count,
    ...(e.accuracy == null ? {} : { accuracy: e.accuracy }),
  };
}

/** The engine's JSON config of an architecture. */
export function architectureJSON(o: ArchitectureOptions, task: string): Record<string, unknown> {
  const cell = o.cell === undefined ? 'lstm' : checkChoice('options.cell', o.cell, ['rnn', 'lstm', 'gru'] as const);
  if (o.nonlinearity !== undefined && cell !== 'rnn') throw typeError('ERR_RNNKIT_CONFIG', `options.nonlinearity: only the "rnn" cell takes one, got ${describe(o.nonlinearity)} for "${cell}"`);
  return {
    task,
    cell,
    nonlinearity: cell === 'rnn' ? (o.nonlinearity === undefined ? 'tanh' : checkChoice('options.nonlinearity', o.nonlinearity, ['tanh', 'relu'] as const)) : null,
    hidden_size: o.hiddenSize === undefined ? 128 : checkInt('options.hiddenSize', o.hiddenSize, 1, 1 << 16),
    num_layers: o.numLayers === undefined ? 1 : checkInt('options.numLayers', o.numLayers, 1, 64),
    dropout: o.dropout === undefined ? 0 : checkNumber('options.dropout', o.dropout, 0, 0.999),
  };
}

/** The engine's JSON of initialisation options. */
export function initJSON(init: InitOptions | undefined): string {
  if (init === undefined) return '{}';
  const o = checkObject('options.init', init);
  checkKnownKeys('options.init', o, ['scheme', 'orthogonalRecurrent', 'forgetBias']);
  return JSON.stringify({
    scheme: init.scheme === undefined ? 'pytorch' : checkChoice('options.init.scheme', init.scheme, ['pytorch', 'xavier'] as const),
    recurrent: init.orthogonalRecurrent === undefined ? 'default' : checkBoolean('options.init.orthogonalRecurrent', init.orthogonalRecurrent) ? 'orthogonal' : 'default',
    ...(init.forgetBias === undefined ? {} : { forget_bias: checkNumber('options.init.forgetBias', init.forgetBias) }),
  });
}

/** Creates a language model: embedding → stacked RNN/LSTM/GRU → vocabulary logits. */
export function createLanguageModel(options: LanguageModelOptions): LanguageModel {
  const o = checkObject('options', options);
  checkKnownKeys('options', o, ['cell', 'nonlinearity', 'hiddenSize', 'numLayers', 'dropout', 'seed', 'init', 'tokenizer', 'vocabSize', 'embedDim', 'skip']);
  const tokenizer = options.tokenizer ?? null;
  if (tokenizer !== null && (typeof tokenizer !== 'object' || typeof tokenizer.encode !== 'function')) {
    throw typeError('ERR_RNNKIT_TYPE', `options.tokenizer: expected a Tokenizer, got ${describe(tokenizer)}`);
  }
  let vocabSize: number;
  if (tokenizer) {
    vocabSize = tokenizer.vocabSize;
    if (options.vocabSize !== undefined && options.vocabSize !== vocabSize) {
      throw typeError('ERR_RNNKIT_VOCAB', `options.vocabSize: ${describe(options.vocabSize)} disagrees with the tokenizer's vocabulary of ${vocabSize}`);
    }
  } else {
    if (options.vocabSize === undefined) throw typeError('ERR_RNNKIT_CONFIG', 'options: give a tokenizer or a vocabSize');
    vocabSize = checkInt('options.vocabSize', options.vocabSize, 1, 1 << 20);
  }
  const config = {
    ...architectureJSON(options, 'language_model'),
    vocab_size: vocabSize,
    embed_dim: options.embedDim === undefined ? 64 : checkInt('options.embedDim', options.embedDim, 1, 1 << 16),
    output_size: vocabSize,
    bidirectional: false,
    skip: options.skip === undefined ? false : checkBoolean('options.skip', options.skip),
  };
  const seed = options.seed === undefined ? 0 : checkInt('options.seed', options.seed, 0);
  const handle = native.NativeModel.create(JSON.stringify(config), initJSON(options.init), seed);
  if (tokenizer) handle.setTokenizerJson(JSON.stringify(tokenizer.toJSON()));
  return new LanguageModel(handle, tokenizer);
}

/** Wraps a loaded native model in the class of its task. */
export type ModelWrapper = (handle: NativeModel, tokenizer: Tokenizer | null) => Model;
const wrappers = new Map<string, ModelWrapper>([['language_model', (h, t) => new LanguageModel(h, t)]]);

/** @internal Lets task modules (classify/tag/regress) register their class for `loadModel`. */
export function registerModelClass(task: string, wrap: ModelWrapper): void {
  wrappers.set(task, wrap);
}

function wrap(handle: NativeModel): Model {
  const json = handle.tokenizerJson();
  const tokenizer = json === null ? null : tokenizerFromJSON(json);
  const task = (JSON.parse(handle.configJson()) as { task: string }).task;
  const w = wrappers.get(task);
  if (!w) throw error('ERR_RNNKIT_FORMAT', `model file: task "${task}" is not supported by this version of rnnkit`);
  return w(handle, tokenizer);
}

/** Loads a model file or checkpoint (INTEROP format; PyTorch-written files too), off the JS thread. */
export async function loadModel(path: string): Promise<Model> {
  checkPath('path', path);
  return wrap(await native.NativeModel.loadAsync(path));
}

/** {@link loadModel} on the calling thread. */
export function loadModelSync(path: string): Model {
  checkPath('path', path);
  return wrap(native.NativeModel.load(path));
}

/** Loads a language model file; a file of another task is an error. */
export async function loadLanguageModel(path: string): Promise<LanguageModel> {
  const m = await loadModel(path);
  if (!(m instanceof LanguageModel)) throw typeError('ERR_RNNKIT_CONFIG', `${JSON.stringify(path)}: expected a language model, got task "${m.config.task}"`);
  return m;
}

/** True when `path` names an existing file (for friendlier CLI errors). */
export function fileExists(path: string): boolean {
  return fs.existsSync(path) && fs.statSync(path).isFile();
}
