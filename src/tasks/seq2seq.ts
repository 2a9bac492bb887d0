/**
 * Sequence to sequence with attention: {@link Seq2SeqModel} reads one text and writes another
 * (translation, normalisation, numbers to words), and {@link createSeq2Seq}. Source and target
 * have their own tokenizers, saved in the model file's metadata (`source_tokenizer`,
 * `target_tokenizer`). Training, decoding and evaluation run in the engine
 * (`crates/rnn-core/src/model/seq2seq*.rs`); this class encodes texts, decodes ids and shapes
 * results.
 */

import type { NativeSeq2Seq } from '../../index';
import { native } from '../native';
import { checkBoolean, checkString, describe, error, typeError } from '../errors';
import { checkOptionKeys } from '../option-keys';
import { runFit, type FitOptions } from '../fit';
import { abortError } from '../generate';
import { PairDataset } from '../dataset/pairs';
import { checkObject, checkTokenizer, type Split } from '../dataset/common';
import { tokenizerFromJSON, type Tokenizer, type TokenizerJSON } from '../tokenizer';
import type { History } from '../types';

/** Options of {@link createSeq2Seq}: the tokenizers and the architecture. */
export interface Seq2SeqOptions {
  /** Encodes the sources. */
  sourceTokenizer: Tokenizer;
  /** Encodes and decodes the targets; must have the specials `<bos>` and `<eos>`. */
  targetTokenizer: Tokenizer;
  /** Recurrent cell of encoder and decoder (default `'gru'`). */
  cell?: 'rnn' | 'lstm' | 'gru';
  /** Elman RNN only (default `'tanh'`). */
  nonlinearity?: 'tanh' | 'relu';
  /** Hidden width of encoder and decoder (default 128). */
  hiddenSize?: number;
  /** Layers of encoder and decoder (default 1). */
  layers?: number;
  /** A bidirectional encoder, bridged to the decoder's state (default true). */
  bidirectional?: boolean;
  /** Width of both embeddings (default 64). */
  embedDim?: number;
  /** Score of the attention: Bahdanau `'additive'`, Luong `'dot'` or `'general'` (default `'general'`). */
  attention?: 'additive' | 'dot' | 'general';
  /** Hidden width of the additive score (default the hidden size). */
  attentionSize?: number;
  /** Seed of the initial weights (default 0). */
  seed?: number;
}

/** The architecture of a sequence-to-sequence model (the file's `config`, snake_case keys). */
export interface Seq2SeqConfigJSON {
  task: 'seq2seq';
  cell: 'rnn' | 'lstm' | 'gru';
  nonlinearity?: 'tanh' | 'relu' | null;
  source_vocab_size: number;
  target_vocab_size: number;
  embed_dim: number;
  hidden_size: number;
  num_layers: number;
  bidirectional: boolean;
  attention: 'additive' | 'dot' | 'general';
  attention_size: number;
  bos_id: number;
  eos_id: number;
}

/** How outputs are decoded. */
export interface Seq2SeqDecodeOptions {
  /** 1 (default): greedy, batched; more: beam search with this many hypotheses. */
  beams?: number;
  /** Most tokens of an output (default 12 × the source's tokens + 16). */
  maxLength?: number;
  /** Beam search's GNMT length penalty α (default 0.6; 0: none). */
  lengthPenalty?: number;
}

/** Options of {@link Seq2SeqModel.translate}. */
export interface TranslateOptions extends Seq2SeqDecodeOptions {
  /** Also return the attention of the decode (default false). */
  attention?: boolean;
  /** Stops decoding between batches (and beam steps); the promise rejects with an AbortError. */
  signal?: AbortSignal;
}

/** Options of {@link Seq2SeqModel.stream}. */
export interface Seq2SeqStreamOptions extends Seq2SeqDecodeOptions {
  /** Stops the stream: the pending step rejects with an AbortError (`ABORT_ERR`). */
  signal?: AbortSignal;
}

/** A translation with its attention. */
export interface AttentionTranslation {
  source: string;
  output: string;
  /** The source's tokens (the columns of `weights`). */
  sourceTokens: string[];
  /** The output's tokens and a final `<eos>` (the rows of `weights`). */
  outputTokens: string[];
  /** One row per output token: how much it attended to each source token (each row sums to 1). */
  weights: Float32Array[];
}

/** Options of {@link Seq2SeqModel.evaluate}. */
export interface Seq2SeqEvaluateOptions extends Seq2SeqDecodeOptions {
  /** Which part of the dataset (default: its validation split when it has pairs, else train). */
  split?: Split;
  /** Stops the evaluation between batches. */
  signal?: AbortSignal;
}

/** The engine's figures of a pair set. */
export interface Seq2SeqEvaluation {
  /** Mean teacher-forced cross-entropy per target token (`<eos>` included). */
  loss: number;
  /** Teacher-forced: the share of target tokens (`<eos>` included) the most likely token predicts. */
  tokenAccuracy: number;
  /** The share of pairs whose decoded output equals the target exactly. */
  exactMatch: number;
  /** Pairs evaluated, and their target tokens (`<eos>` included). */
  pairs: number;
  tokens: number;
}

/**
 * `fit`'s options for a sequence-to-sequence model: those of every model (its checkpoints hold
 * the optimizer state, RNG and position, so `loadModel` + `fit` resume exactly), and scheduled
 * sampling.
 */
export interface Seq2SeqFitOptions extends FitOptions {
  /**
   * Scheduled sampling: the probability, per target step, that the decoder reads its own
   * previous greedy prediction instead of the target token (drawn from the training RNG, so
   * seeded and resumed exactly; no gradient flows through the choice). Default 0: teacher forcing.
   */
  scheduledSampling?: number;
  /** With `scheduledSampling`: the probability rises linearly from 0 over this many steps of the model's life. */
  scheduledSamplingRamp?: number;
}

/** Options of {@link Seq2SeqModel.save}. */
export interface Seq2SeqSaveOptions {
  /** Also save the optimizer state, RNG and position, so `loadModel` + `fit` continue exactly (default false). */
  checkpoint?: boolean;
}

const OPTION_KEYS = [
  'sourceTokenizer',
  'targetTokenizer',
  'cell',
  'nonlinearity',
  'hiddenSize',
  'layers',
  'bidirectional',
  'embedDim',
  'attention',
  'attentionSize',
  'seed',
] as const;
const DECODE_KEYS = ['beams', 'maxLength', 'lengthPenalty'] as const;

/** Whether a save's `options` ask for a checkpoint (unknown keys refused). */
function saveCheckpoint(options: unknown): boolean {
  const o = checkObject('options', options);
  checkOptionKeys('options', o, ['checkpoint']);
  return o.checkpoint === undefined ? false : checkBoolean('options.checkpoint', o.checkpoint);
}

/** The id of `special` in `tokenizer`, or a TypeError naming the option. */
function specialId(tokenizer: Tokenizer, special: '<bos>' | '<eos>'): number {
  const id = tokenizer.specials[special];
  if (id === undefined)
    throw typeError('ERR_RNNKIT_CONFIG', `options.targetTokenizer: needs the special ${special} (fit it with specials: ['<bos>', '<eos>'])`);
  return id;
}

/** The decoding part of `options`, unknown keys refused (`allowed` are the caller's own). */
function decodeOptions(options: unknown, allowed: readonly string[]): { decode: Seq2SeqDecodeOptions; rest: Record<string, unknown> } {
  const o = checkObject('options', options);
  checkOptionKeys('options', o, [...DECODE_KEYS, ...allowed]);
  const { beams, maxLength, lengthPenalty, ...rest } = o;
  return { decode: { beams, maxLength, lengthPenalty } as Seq2SeqDecodeOptions, rest };
}

function checkSignal(signal: unknown): AbortSignal | undefined {
  if (signal !== undefined && !(signal instanceof AbortSignal))
    throw typeError('ERR_RNNKIT_TYPE', `options.signal: expected an AbortSignal, got ${describe(signal)}`);
  return signal as AbortSignal | undefined;
}

/** Runs native work with a cancel token wired to `signal`. */
async function cancellable<T>(signal: AbortSignal | undefined, run: (cancel: InstanceType<typeof native.CancelToken>) => Promise<T>): Promise<T> {
  if (signal?.aborted) throw abortError();
  const cancel = new native.CancelToken();
  const onAbort = () => cancel.cancel();
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    return await run(cancel);
  } catch (e) {
    if ((e as { code?: string }).code === 'ABORT_ERR') throw abortError();
    throw e;
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}

/** An encoder–decoder model with attention that maps a source text to a target text. */
export class Seq2SeqModel {
  readonly task = 'seq2seq' as const;
  /** Encodes the sources. */
  readonly sourceTokenizer: Tokenizer;
  /** Encodes and decodes the targets. */
  readonly targetTokenizer: Tokenizer;
  /** @internal The native handle. */
  readonly native: NativeSeq2Seq;

  /** @internal Use {@link createSeq2Seq} or `loadModel`. */
  constructor(handle: NativeSeq2Seq, sourceTokenizer: Tokenizer, targetTokenizer: Tokenizer) {
    this.native = handle;
    this.sourceTokenizer = sourceTokenizer;
    this.targetTokenizer = targetTokenizer;
  }

  /** @internal A loaded model: the tokenizers from the file's metadata, checked against the config. */
  static fromNative(handle: NativeSeq2Seq, path: string): Seq2SeqModel {
    const { source, target } = handle.tokenizers();
    if (source === null || target === null)
      throw error(
        'ERR_RNNKIT_FORMAT',
        `${JSON.stringify(path)}: a seq2seq model file needs both tokenizers in its metadata (source_tokenizer, target_tokenizer)`,
      );
    const s = tokenizerFromJSON(source as unknown as TokenizerJSON);
    const t = tokenizerFromJSON(target as unknown as TokenizerJSON);
    const config = handle.config() as unknown as Seq2SeqConfigJSON;
    if (s.vocabSize !== config.source_vocab_size || t.vocabSize !== config.target_vocab_size)
      throw error(
        'ERR_RNNKIT_FORMAT',
        `${JSON.stringify(path)}: the tokenizers' vocabularies (${s.vocabSize} → ${t.vocabSize}) are not the model's; the file is inconsistent`,
      );
    return new Seq2SeqModel(handle, s, t);
  }

  /** The architecture (the file's `config`, snake_case keys). */
  get config(): Seq2SeqConfigJSON {
    return this.native.config() as unknown as Seq2SeqConfigJSON;
  }

  /** Scalar parameters. */
  get numParams(): number {
    return this.native.numParams();
  }

  /** Whether `fit` is running (other calls are refused with `ERR_RNNKIT_BUSY` meanwhile). */
  get isTraining(): boolean {
    return this.native.isTraining;
  }

  /** Optimizer steps taken over the model's life (a loaded checkpoint's count; 0 for a plain model file). */
  get stepsTrained(): number {
    return this.native.stepsTrained();
  }

  /** String metadata saved with the model (the tokenizers, the last fit's summary, user keys). */
  get metadata(): Record<string, string> {
    return this.native.metadata();
  }

  /** Sets a metadata pair saved with the model. */
  setMetadata(key: string, value: string): void {
    this.native.setMetadata(checkString('key', key, true), checkString('value', value));
  }

  /**
   * Trains on `data`'s training split off the JS thread, validating on its validation split when
   * it has pairs: progress events, abort (`signal`), early stopping and checkpoints as for every
   * model. Resolves with the history.
   */
  async fit(data: PairDataset, options: Seq2SeqFitOptions = {}): Promise<History> {
    if (!(data instanceof PairDataset)) throw typeError('ERR_RNNKIT_TYPE', `data: expected a PairDataset, got ${describe(data)}`);
    this.checkTokenizers(data);
    const o = checkObject('options', options);
    const { signal: _signal, onProgress: _onProgress, ...engine } = o;
    return runFit(this.native, options, (onEvent, cancel) => this.native.fit(data.native, engine, onEvent, cancel));
  }

  private checkTokenizers(data: PairDataset): void {
    const same = (a: Tokenizer, b: Tokenizer) => a === b || JSON.stringify(a.toJSON()) === JSON.stringify(b.toJSON());
    if (!same(data.sourceTokenizer, this.sourceTokenizer) || !same(data.targetTokenizer, this.targetTokenizer))
      throw typeError('ERR_RNNKIT_VOCAB', "data: the dataset's tokenizers are not the model's");
  }

  private encodeAll(texts: unknown): Int32Array[] {
    if (!Array.isArray(texts)) throw typeError('ERR_RNNKIT_TYPE', `texts: expected an array of strings, got ${describe(texts)}`);
    return texts.map((t, i) => this.encodeSource(`texts[${i}]`, t));
  }

  private encodeSource(where: string, text: unknown): Int32Array {
    const ids = this.sourceTokenizer.encode(checkString(where, text));
    if (ids.length === 0) throw typeError('ERR_RNNKIT_RANGE', `${where}: expected at least one token, got an empty text`);
    return ids;
  }

  private output(ids: number[]): string {
    return this.targetTokenizer.decode(ids);
  }

  private withAttention(text: string, source: Int32Array, ids: number[]): AttentionTranslation {
    const flat = this.native.attention(source, ids);
    const cols = source.length;
    const weights = Array.from({ length: ids.length + 1 }, (_, r) => flat.slice(r * cols, (r + 1) * cols));
    return {
      source: text,
      output: this.output(ids),
      sourceTokens: Array.from(source, (id) => this.sourceTokenizer.idToToken(id)),
      outputTokens: [...ids.map((id) => this.targetTokenizer.idToToken(id)), '<eos>'],
      weights,
    };
  }

  /** Translates one text off the JS thread; with `attention: true`, also its attention. */
  translate(text: string, options: TranslateOptions & { attention: true }): Promise<AttentionTranslation>;
  translate(text: string, options?: TranslateOptions): Promise<string>;
  async translate(text: string, options: TranslateOptions = {}): Promise<string | AttentionTranslation> {
    const [out] = await this.translateBatch([checkString('text', text)], options);
    return out;
  }

  /** Translates many texts off the JS thread (sorted by length and batched by the engine); results in input order. */
  translateBatch(texts: string[], options: TranslateOptions & { attention: true }): Promise<AttentionTranslation[]>;
  translateBatch(texts: string[], options?: TranslateOptions): Promise<string[]>;
  async translateBatch(texts: string[], options: TranslateOptions = {}): Promise<string[] | AttentionTranslation[]> {
    const { decode, rest } = decodeOptions(options, ['attention', 'signal']);
    const attention = rest.attention === undefined ? false : checkBoolean('options.attention', rest.attention);
    const signal = checkSignal(rest.signal);
    const sources = this.encodeAll(texts);
    const outputs = await cancellable(signal, (cancel) => this.native.translate(sources, decode, cancel));
    if (attention) return outputs.map((ids, i) => this.withAttention(texts[i], sources[i], ids));
    return outputs.map((ids) => this.output(ids));
  }

  /**
   * The output of `text` token by token as decoding proceeds, off the JS thread: greedy decoding
   * (`beams` 1, the default) runs one decoder step of the engine per token, so the first token
   * comes after the encoder and one step; with `beams` > 1 the search runs whole and its best
   * output (`translate`'s) then comes token by token. Each value is the target tokenizer's text
   * of one token (for character targets they concatenate to `translate`'s output). The stream
   * decodes the model as it was when `stream` was called. Bad options and texts throw here.
   */
  stream(text: string, options: Seq2SeqStreamOptions = {}): AsyncIterableIterator<string> {
    const { decode, rest } = decodeOptions(options, ['signal']);
    const signal = checkSignal(rest.signal);
    const handle = this.native.stream(this.encodeSource('text', text), decode);
    const tokenizer = this.targetTokenizer;
    async function* tokens(): AsyncGenerator<string, void, undefined> {
      for (;;) {
        const id = await cancellable(signal, (cancel) => handle.nextToken(cancel));
        if (id === null) return;
        yield tokenizer.decode([id]);
      }
    }
    return tokens();
  }

  /** {@link Seq2SeqModel.translateBatch} on the calling thread (no `signal`). */
  translateBatchSync(texts: string[], options: TranslateOptions & { attention: true }): AttentionTranslation[];
  translateBatchSync(texts: string[], options?: TranslateOptions): string[];
  translateBatchSync(texts: string[], options: TranslateOptions = {}): string[] | AttentionTranslation[] {
    const { decode, rest } = decodeOptions(options, ['attention']);
    const attention = rest.attention === undefined ? false : checkBoolean('options.attention', rest.attention);
    const sources = this.encodeAll(texts);
    const outputs = this.native.translateSync(sources, decode);
    if (attention) return outputs.map((ids, i) => this.withAttention(texts[i], sources[i], ids));
    return outputs.map((ids) => this.output(ids));
  }

  /** {@link Seq2SeqModel.translate} on the calling thread (no `signal`). */
  translateSync(text: string, options: TranslateOptions & { attention: true }): AttentionTranslation;
  translateSync(text: string, options?: TranslateOptions): string;
  translateSync(text: string, options: TranslateOptions = {}): string | AttentionTranslation {
    return this.translateBatchSync([checkString('text', text)], options)[0];
  }

  private evaluationArgs(data: unknown, options: unknown, allowed: readonly string[]) {
    if (!(data instanceof PairDataset)) throw typeError('ERR_RNNKIT_TYPE', `data: expected a PairDataset, got ${describe(data)}`);
    this.checkTokenizers(data);
    const { decode, rest } = decodeOptions(options, allowed);
    const split = (rest.split ?? (data.size('validation') > 0 ? 'validation' : 'train')) as Split;
    return { decode, split, signal: checkSignal(rest.signal) };
  }

  /**
   * Evaluates on a split of `data` off the JS thread: teacher-forced loss and token accuracy,
   * and the exact match of the outputs decoded with `options` (computed in the engine).
   */
  async evaluate(data: PairDataset, options: Seq2SeqEvaluateOptions = {}): Promise<Seq2SeqEvaluation> {
    const { decode, split, signal } = this.evaluationArgs(data, options, ['split', 'signal']);
    return cancellable(signal, (cancel) => this.native.evaluate(data.native, split, decode, cancel));
  }

  /** {@link Seq2SeqModel.evaluate} on the calling thread (no `signal`). */
  evaluateSync(data: PairDataset, options: Omit<Seq2SeqEvaluateOptions, 'signal'> = {}): Seq2SeqEvaluation {
    const { decode, split } = this.evaluationArgs(data, options, ['split']);
    return this.native.evaluateSync(data.native, split, decode);
  }

  /**
   * Saves the model file (safetensors, docs/FORMAT.md) atomically, off the JS thread; with
   * `checkpoint: true` also the training state, so that `loadModel` + `fit` continue exactly
   * where training stopped.
   */
  async save(path: string, options: Seq2SeqSaveOptions = {}): Promise<void> {
    await this.native.saveAsync(checkString('path', path, true), saveCheckpoint(options));
  }

  /** {@link Seq2SeqModel.save} on the calling thread. */
  saveSync(path: string, options: Seq2SeqSaveOptions = {}): void {
    this.native.save(checkString('path', path, true), saveCheckpoint(options));
  }
}

/** A new sequence-to-sequence model for the two tokenizers; unset sizes take the engine's defaults. */
export function createSeq2Seq(options: Seq2SeqOptions): Seq2SeqModel {
  const o = checkObject('options', options);
  checkOptionKeys('options', o, OPTION_KEYS);
  const { sourceTokenizer, targetTokenizer, ...architecture } = o;
  const source = checkTokenizer('options.sourceTokenizer', sourceTokenizer);
  const target = checkTokenizer('options.targetTokenizer', targetTokenizer);
  const handle = native.NativeSeq2Seq.create({
    ...(architecture as Omit<Seq2SeqOptions, 'sourceTokenizer' | 'targetTokenizer'>),
    sourceVocabSize: source.vocabSize,
    targetVocabSize: target.vocabSize,
    bosId: specialId(target, '<bos>'),
    eosId: specialId(target, '<eos>'),
  });
  handle.setMetadata('source_tokenizer', JSON.stringify(source.toJSON()));
  handle.setMetadata('target_tokenizer', JSON.stringify(target.toJSON()));
  return new Seq2SeqModel(handle, source, target);
}
