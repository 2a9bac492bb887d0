/**
 * Models: the JavaScript handle on a native network. Weights, gradients and optimizer state live
 * in Rust; `fit` runs the whole training loop natively on its own thread and reports progress as
 * events, so the event loop stays free.
 */

import * as fs from 'fs';
import type { NativeModel, NativeTokenDataset } from '../index';
import { native } from './native';
import { checkBoolean, checkInt, checkString, describe, rangeError, typeError } from './errors';
import { checkOptionKeys } from './option-keys';
import { TextCorpus } from './dataset';
import { checkFile, rethrowAt } from './dataset/common';
import { encodeTextFile, readFileOptions, tokenBuffer } from './dataset/text-corpus';
import { Tokenizer } from './tokenizer';
import { refuseOrderKeys, runFit, splitFitOptions, type FitOptions } from './fit';
import { GenerationSession } from './session';
import { GenerationScheduler, ResolvedGenerateOptions, beamComplete, complete, resolveGenerateOptions, stream, type CompletionStream } from './generate';
import type {
  Completion,
  EvaluateFileOptions,
  EvaluateOptions,
  EvaluateResult,
  GenerateOptions,
  History,
  LanguageModelOptions,
  StateCacheOptions,
  StateCacheStats,
} from './types';
import { checkSignal, withSignal } from './cancel';
import { buildOnnx, type OnnxGraph, type OnnxSource, type OnnxTensorInfo } from './onnx';

/** Options of {@link Model.exportOnnx} and {@link Model.toOnnx}. */
export interface ExportOnnxOptions {
  /** Extra `metadata_props` of the ONNX model (string pairs, beside `config`, `tokenizer` and the model's metadata). */
  metadata?: Record<string, string>;
}

/** What {@link Model.exportOnnx} wrote. */
export interface OnnxExport {
  path: string;
  /** File size in bytes. */
  bytes: number;
  /** The ONNX operator set (`ai.onnx`) the graph uses. */
  opset: number;
  /** Graph inputs in order (`tokens` or `features`, then `lengths` or the initial states). */
  inputs: OnnxTensorInfo[];
  /** Graph outputs in order (the head's output, then a language model's final states). */
  outputs: OnnxTensorInfo[];
}

/** `fit` options of a language model: on raw text or ids, also how to cut it (a TextCorpus fixes these itself). */
export interface LanguageModelFitOptions extends FitOptions {
  /** Windows per batch (raw text only; default 32). */
  batchSize?: number;
  /** Steps per window, the BPTT length (raw text only; default 64). */
  seqLen?: number;
  /** Tokens between window starts (raw text only; default `seqLen`). */
  stride?: number;
  /** Truncated BPTT over `batchSize` contiguous lanes with carried state (raw text only). */
  tbptt?: boolean;
  /** Shuffle windows each epoch (raw text only; default true). */
  shuffle?: boolean;
  /** The last partial batch (raw text only; default `'drop'`; `'pad'` needs `padId`). */
  last?: 'drop' | 'keep' | 'pad';
  /** Input id of the padding rows of `last: 'pad'` (raw text only). */
  padId?: number;
  /** Held-out text or ids (raw text only; a TextCorpus brings its own). */
  validation?: string | Int32Array;
}

/** Options of {@link LanguageModel.trainStep}: the engine's training options (the batch is yours). */
export type TrainStepOptions = Omit<FitOptions, 'signal' | 'onProgress' | 'checkpoint' | 'epochs' | 'maxSteps' | 'timeLimit'>;

export { GenerationSession, type SamplerOptions } from './session';

/** The `config` object of docs/FORMAT.md of a model (snake_case keys as in the file). */
export type ModelConfigJSON = Record<string, unknown> & { task: string; cell: string; hidden_size: number; num_layers: number };

function checkObject(name: string, value: unknown): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw typeError('ERR_RNNKIT_TYPE', `${name}: expected an object, got ${describe(value)}`);
  }
  return value as Record<string, unknown>;
}

/** The package version, written as the ONNX producer version. */
function packageVersion(): string {
  return (require('../package.json') as { version: string }).version;
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

  /** The architecture (the file's `config`, snake_case keys). */
  get config(): ModelConfigJSON {
    return this.native.config() as ModelConfigJSON;
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
   * Saves the model in rnnkit's safetensors format (docs/FORMAT.md) (PyTorch-readable safetensors), atomically: a temp
   * file in the same directory, then a rename. With `checkpoint: true` the optimizer, RNG and
   * position are saved too, and `loadModel` + `fit` continue exactly where training stopped.
   */
  saveSync(path: string, options: { checkpoint?: boolean; metadata?: Record<string, string> } = {}): void {
    this.native.save(path, this.saveOptions(path, options));
  }

  /**
   * {@link Model.saveSync}, returning a promise; also while `fit` runs (e.g. from `onProgress`):
   * the file then holds the weights of the step that finishes next (`checkpoint: true` adds the
   * training state, so `fit` can resume from it). `metadata` is refused while training.
   */
  async save(path: string, options: { checkpoint?: boolean; metadata?: Record<string, string> } = {}): Promise<void> {
    await this.native.saveSnapshot(path, this.saveOptions(path, options));
  }

  /** Checks the arguments of a save and applies its `metadata`; returns whether it is a checkpoint. */
  private saveOptions(path: string, options: { checkpoint?: boolean; metadata?: Record<string, string> }): boolean {
    checkPath('path', path);
    const o = checkObject('options', options);
    checkOptionKeys('options', o, ['checkpoint', 'metadata']);
    if (o.metadata !== undefined) {
      for (const [k, v] of Object.entries(checkObject('options.metadata', o.metadata))) this.setMetadata(k, checkString(`options.metadata.${k}`, v));
    }
    return o.checkpoint === undefined ? false : checkBoolean('options.checkpoint', o.checkpoint);
  }

  /** @internal What the ONNX exporter reads; sequence models add their input normalisation. */
  protected onnxSource(): OnnxSource {
    const metadata: Record<string, string> = { ...this.metadata, config: JSON.stringify(this.config) };
    const tokenizer = this.native.tokenizer();
    if (tokenizer !== null) metadata.tokenizer = JSON.stringify(tokenizer);
    return { config: this.config, tensor: (name) => this.native.getTensor(name), stats: null, metadata };
  }

  /**
   * The model as an ONNX graph of ONNX's own RNN/LSTM/GRU operators (opset 14; inputs, outputs
   * and gate mapping in docs/FORMAT.md), in memory: for onnxruntime-web, or to write yourself.
   */
  toOnnx(options: ExportOnnxOptions = {}): OnnxGraph {
    const o = checkObject('options', options);
    checkOptionKeys('options', o, ['metadata']);
    const src = this.onnxSource();
    if (o.metadata !== undefined) {
      for (const [k, v] of Object.entries(checkObject('options.metadata', o.metadata))) src.metadata[k] = checkString(`options.metadata.${k}`, v);
    }
    return buildOnnx(src, packageVersion());
  }

  /** Writes {@link Model.toOnnx}'s graph to `path` atomically (temp file, then rename). */
  async exportOnnx(path: string, options: ExportOnnxOptions = {}): Promise<OnnxExport> {
    checkPath('path', path);
    const g = this.toOnnx(options);
    native.writeFileAtomic(path, g.bytes);
    return { path, bytes: g.bytes.byteLength, opset: g.opset, inputs: g.inputs, outputs: g.outputs };
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

  /** The precision of the weights generation and evaluation use (`loadModel`'s `precision`). */
  get precision(): 'f32' | 'bf16' | 'int8' {
    return this.native.precision();
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
  async fit(data: TextCorpus | string | Int32Array, options: LanguageModelFitOptions = {}): Promise<History> {
    const { order, engine, validation } = splitFitOptions(options);
    let corpus: NativeTokenDataset;
    if (data instanceof TextCorpus) {
      refuseOrderKeys(options as Record<string, unknown>, 'corpus');
      if (validation !== undefined)
        throw typeError('ERR_RNNKIT_CONFIG', 'options.validation: the corpus has its own validation text; give it when building the TextCorpus');
      if (this.tok && JSON.stringify(data.tokenizer.toJSON()) !== JSON.stringify(this.tok.toJSON())) {
        throw typeError('ERR_RNNKIT_VOCAB', "data: the corpus was tokenized with another tokenizer than the model's");
      }
      corpus = data.native;
    } else {
      const train = this.ids('data', data);
      if (train.length === 0) throw rangeError('ERR_RNNKIT_EMPTY', 'data: the training text is empty');
      const valid = validation === undefined ? null : this.ids('options.validation', validation as string | Int32Array);
      const cut = { ...order, ...(engine.seed === undefined ? {} : { seed: engine.seed as number }) };
      const vocab = this.config.output_size as number;
      const buffer = (where: string, ids: Int32Array) => {
        try {
          return tokenBuffer(ids, vocab);
        } catch (e) {
          rethrowAt(where, e);
        }
      };
      corpus = new native.NativeTokenDataset(buffer('data', train), valid && buffer('options.validation', valid), 0, cut);
    }
    return runFit(this.native, options, (onEvent, cancel) => this.native.fitTokens(corpus, engine, onEvent, cancel));
  }

  /**
   * One optimizer step on a batch you made: `inputs` and `targets` are `[rows, steps]` token
   * ids (targets -100 are not counted). For hand-written training loops; synchronous.
   */
  trainStep(
    inputs: Int32Array,
    targets: Int32Array,
    shape: { rows: number; steps: number },
    options: TrainStepOptions = {},
  ): { loss: number; gradNorm: number; lr: number; step: number } {
    if (!(inputs instanceof Int32Array)) throw typeError('ERR_RNNKIT_TYPE', `inputs: expected an Int32Array, got ${describe(inputs)}`);
    if (!(targets instanceof Int32Array)) throw typeError('ERR_RNNKIT_TYPE', `targets: expected an Int32Array, got ${describe(targets)}`);
    const rows = checkInt('shape.rows', shape?.rows, 1);
    const steps = checkInt('shape.steps', shape?.steps, 1);
    const r = this.native.trainStep(inputs, targets, rows, steps, options);
    return { loss: r.loss, gradNorm: r.gradNorm, lr: r.lr, step: r.step };
  }

  /**
   * Mean cross-entropy of a text under the stateful protocol of docs/FORMAT.md: the text is one
   * token stream read once with state carried from the first token to the last (in chunks of
   * `chunk` steps), and the loss is the mean over predicting tokens 2..N. `lanes` > 1 reads the
   * stream as that many contiguous lanes in one batch, each from the zero state at its start
   * (faster; the restarts are the only difference); by default the engine takes 1 lane below
   * 2,097,152 tokens, then one per 1,048,576 tokens up to 64. `signal` aborts between chunks
   * (an AbortError, `code: 'ABORT_ERR'`).
   */
  async evaluate(text: string | Int32Array, options: EvaluateOptions = {}): Promise<EvaluateResult> {
    const { ids, chunk, lanes } = this.evalArgs(text, options, ['chunk', 'lanes', 'signal']);
    const signal = checkSignal('options.signal', options.signal);
    return evalResult(await withSignal(signal, 'evaluation', (cancel) => this.native.evaluateStream(ids, lanes, chunk, cancel)));
  }

  /**
   * {@link LanguageModel.evaluate} on a UTF-8 text file, read in chunks of `chunkSize` bytes
   * (default 1 MiB) and encoded chunk by chunk into the engine's compact ids: the text is never
   * held whole, so a file of any size is evaluated in memory bounded by its ids (1 byte each for
   * vocabularies of at most 256) and the model. Invalid UTF-8 is a TypeError
   * `ERR_RNNKIT_ENCODING` naming the file and the byte offset, unless `lossy`. `signal` aborts
   * between the file's pieces and between the evaluation's chunks.
   */
  async evaluateFile(path: string, options: EvaluateFileOptions = {}): Promise<EvaluateResult> {
    checkOptionKeys('options', checkObject('options', options), ['chunk', 'chunkSize', 'lossy', 'lanes', 'signal']);
    const chunk = options.chunk === undefined ? 256 : checkInt('options.chunk', options.chunk, 1, 1 << 20);
    const lanes = options.lanes === undefined ? undefined : checkInt('options.lanes', options.lanes, 1, 2 ** 32 - 1);
    const signal = checkSignal('options.signal', options.signal);
    const tokenizer = this.requireTokenizer('evaluateFile');
    return withSignal(signal, 'evaluation', async (cancel) => {
      const ids = await encodeTextFile(tokenizer, await checkFile('path', path), 'path', readFileOptions(options as Record<string, unknown>), signal);
      if (ids.length < 2)
        throw rangeError('ERR_RNNKIT_EMPTY', `path: ${JSON.stringify(path)} gives ${ids.length} tokens, fewer than the 2 needed to predict one`);
      return evalResult(await this.native.evaluateBuffer(ids, lanes, chunk, cancel));
    });
  }

  /** {@link LanguageModel.evaluate} on the calling thread (no `signal`). */
  evaluateSync(text: string | Int32Array, options: Omit<EvaluateOptions, 'signal'> = {}): EvaluateResult {
    const { ids, chunk, lanes } = this.evalArgs(text, options, ['chunk', 'lanes']);
    return evalResult(this.native.evaluateStreamSync(ids, lanes, chunk));
  }

  private evalArgs(text: string | Int32Array, options: EvaluateOptions, keys: string[]): { ids: Int32Array; chunk: number; lanes?: number } {
    checkOptionKeys('options', checkObject('options', options), keys);
    const ids = this.ids('text', text);
    if (ids.length < 2) throw rangeError('ERR_RNNKIT_EMPTY', `text: expected at least 2 tokens to predict one, got ${ids.length}`);
    const chunk = options.chunk === undefined ? 256 : checkInt('options.chunk', options.chunk, 1, 1 << 20);
    // The upper bound is the engine's (a RangeError naming `lanes`).
    const lanes = options.lanes === undefined ? undefined : checkInt('options.lanes', options.lanes, 1, 2 ** 32 - 1);
    return { ids, chunk, lanes };
  }

  private generation(): GenerationScheduler {
    this.scheduler ??= new GenerationScheduler(this.native, this.requireTokenizer('generate'));
    return this.scheduler;
  }

  /**
   * Bounds the prompt state cache of this model's generation (off until called): the recurrent
   * state after every 64-token boundary of a prompt is kept, and a later prompt that shares a
   * prefix with an earlier one (a system prompt, a conversation's earlier turns) restores the
   * state at the longest shared boundary instead of reading those tokens again. The output is
   * the same bit for bit as without the cache; only the time to the first token changes.
   */
  setStateCache(options: StateCacheOptions): void {
    if (options === null || typeof options !== 'object') throw typeError('ERR_RNNKIT_TYPE', `options: expected an object, got ${describe(options)}`);
    checkOptionKeys('options', options, ['maxBytes']);
    this.generation().setStateCacheLimit(checkInt('options.maxBytes', options.maxBytes, 0));
  }

  /**
   * Prompt tokens this model's generation reads per call into the engine while other
   * generations are producing tokens (chunked prefill; default 128): a long new prompt is read a
   * few 64-token chunks per call between the others' batched steps, and the others' tokens of a
   * call are handed out when it returns, so they wait for that much reading instead of the whole
   * prompt. A multiple of 64; 0 reads every prompt whole in the step it joins. The output is the
   * same bit for bit whatever the value; only latencies change.
   */
  setPrefillChunk(tokens: number): void {
    this.generation().setPrefillChunk(checkInt('tokens', tokens, 0, 1 << 30));
  }

  /** Counts of the prompt state cache (see {@link LanguageModel.setStateCache}). */
  stateCacheStats(): StateCacheStats {
    return this.generation().stateCacheStats();
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

/** Creates a language model: embedding → stacked RNN/LSTM/GRU → vocabulary logits. */
export function createLanguageModel(options: LanguageModelOptions): LanguageModel {
  const { tokenizer = null, ...arch } = checkObject('options', options) as LanguageModelOptions & Record<string, unknown>;
  if (tokenizer !== null && (typeof tokenizer !== 'object' || typeof tokenizer.encode !== 'function')) {
    throw typeError('ERR_RNNKIT_TYPE', `options.tokenizer: expected a Tokenizer, got ${describe(tokenizer)}`);
  }
  if (tokenizer) {
    if (arch.vocabSize !== undefined && arch.vocabSize !== tokenizer.vocabSize) {
      throw typeError('ERR_RNNKIT_VOCAB', `options.vocabSize: ${describe(arch.vocabSize)} disagrees with the tokenizer's vocabulary of ${tokenizer.vocabSize}`);
    }
    arch.vocabSize = tokenizer.vocabSize;
  } else if (arch.vocabSize === undefined) {
    throw typeError('ERR_RNNKIT_CONFIG', 'options: give a tokenizer or a vocabSize');
  }
  // The engine fills the defaults and validates every architecture option.
  const handle = native.NativeModel.create('language_model', arch);
  if (tokenizer) handle.setTokenizer(tokenizer.toJSON() as unknown as Record<string, unknown>);
  return new LanguageModel(handle, tokenizer);
}

/** True when `path` names an existing file (for friendlier CLI errors). */
export function fileExists(path: string): boolean {
  return fs.existsSync(path) && fs.statSync(path).isFile();
}
