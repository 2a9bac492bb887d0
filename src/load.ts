/**
 * Loading model files: the task in the file's config picks the class (and, for `seq2seq`, the
 * loader of that architecture: `modelFileTask` reads the header first), and the result is typed
 * as a union discriminated by `task`, so `if (m.task === 'language_model') m.generate(...)`
 * type-checks without casts.
 */

import type { NativeModel, NativeSeq2Seq } from '../index';
import { native } from './native';
import { checkString, error, typeError } from './errors';
import { checkObject } from './tasks/sequence-model';
import { checkOptionKeys } from './option-keys';
import { LanguageModel } from './model';
import { Classifier, codecFromFile, labelsFromFile, Regressor, SpeechRecognizer, Tagger } from './tasks';
import { tokenizerFromJSON, type TokenizerJSON } from './tokenizer';
import { Seq2SeqModel } from './tasks/seq2seq';

/**
 * The precision of the weights a language model generates with: `'f32'` (the trained values,
 * the default), `'bf16'` (8 significant bits per weight, f32 arithmetic) or `'int8'` (a byte per
 * weight with a scale per output unit, inputs quantized per row, integer products). The file's
 * weights stay f32; evaluation uses the same precision, training refuses a reduced one.
 * docs/API.md gives the measured error and speed.
 */
export type Precision = 'f32' | 'bf16' | 'int8';

/** Options of {@link loadModel}. */
export interface LoadOptions {
  /** The precision of the weights for generation and evaluation (language models). Default `'f32'`. */
  precision?: Precision;
}

/** A model loaded from a file: one of the task classes, told apart by `task`. */
export type AnyModel = LanguageModel | Classifier | Tagger | Regressor | SpeechRecognizer | Seq2SeqModel;

/**
 * @internal Wraps a native model (loaded or imported) in the class of its task. Whatever in the file's metadata is
 * wrong (tokenizer, labels, input codec, task) is refused as `ERR_RNNKIT_FORMAT` naming the file.
 */
export function wrap(handle: NativeModel, path: string): AnyModel {
  try {
    return wrapTask(handle, path);
  } catch (e) {
    throw inFile(path, e);
  }
}

/** An error met reading the metadata of the file at `path`, as a format error naming the file. */
function inFile(path: string, e: unknown): Error {
  const shown = JSON.stringify(path);
  const message = e instanceof Error ? e.message : String(e);
  if (message.startsWith(shown)) return e as Error;
  const wrapped = error('ERR_RNNKIT_FORMAT', `${shown}: ${message}`);
  wrapped.cause = e;
  return wrapped;
}

function wrapTask(handle: NativeModel, path: string): AnyModel {
  const json = handle.tokenizer();
  const tokenizer = json === null ? null : tokenizerFromJSON(json as unknown as TokenizerJSON);
  const config = handle.config() as { task: string; output_size: number; vocab_size?: number };
  // Every id the model can read or write must be a token of its tokenizer, and back: a smaller
  // tokenizer would fail on the first id it lacks, a larger one would feed ids the model lacks.
  if (tokenizer && config.vocab_size !== undefined && tokenizer.vocabSize !== config.vocab_size) {
    throw error(
      'ERR_RNNKIT_FORMAT',
      `${JSON.stringify(path)}: the tokenizer has ${tokenizer.vocabSize} tokens but the model's vocabulary has ${config.vocab_size}; the file is inconsistent`,
    );
  }
  switch (config.task) {
    case 'language_model':
      return new LanguageModel(handle, tokenizer);
    case 'classify':
      return new Classifier(handle, codecFromFile(handle, tokenizer), labelsFromFile(handle, 'labels', config.output_size));
    case 'tag':
      return new Tagger(handle, codecFromFile(handle, tokenizer), labelsFromFile(handle, 'tags', config.output_size));
    case 'regress':
      return new Regressor(handle, codecFromFile(handle, tokenizer));
    case 'speech':
      return new SpeechRecognizer(handle);
    default:
      throw error('ERR_RNNKIT_FORMAT', `model file: task "${config.task}" is not supported by this version of rnnkit`);
  }
}

/** The `task` in the config of the model file at `path`, read from its header alone. */
export function modelFileTask(path: string): string {
  return native.modelFileTask(checkString('path', path, true));
}

/**
 * Loads a model file or checkpoint (rnnkit's safetensors format, docs/FORMAT.md; PyTorch-written
 * files too), off the JS thread, with its weights at `options.precision` for generation.
 */
export async function loadModel(path: string, options: LoadOptions = {}): Promise<AnyModel> {
  checkString('path', path, true);
  const precision = loadPrecision(options);
  if (isSeq2SeqFile(path)) return withPrecision(wrapSeq2Seq(await native.NativeSeq2Seq.loadAsync(path), path), precision);
  return withPrecision(wrap(await native.NativeModel.loadAsync(path), path), precision);
}

/** The checked `precision` of load options (the engine checks its value). */
function loadPrecision(options: LoadOptions): string | undefined {
  checkOptionKeys('options', checkObject('options', options), ['precision']);
  return options.precision === undefined ? undefined : checkString('options.precision', options.precision);
}

/** `model` with its weights set to `precision` (unchanged when none is given). */
function withPrecision<M extends AnyModel>(model: M, precision: string | undefined): M {
  if (precision !== undefined) model.native.setPrecision(precision);
  return model;
}

/**
 * Whether the file at `path` holds a sequence-to-sequence model. A file whose header cannot be
 * read is left to the other loader, which reports what is wrong with it.
 */
function isSeq2SeqFile(path: string): boolean {
  try {
    return native.modelFileTask(path) === 'seq2seq';
  } catch {
    return false;
  }
}

/** A loaded sequence-to-sequence model, its metadata errors as format errors naming the file. */
function wrapSeq2Seq(handle: NativeSeq2Seq, path: string): Seq2SeqModel {
  try {
    return Seq2SeqModel.fromNative(handle, path);
  } catch (e) {
    throw inFile(path, e);
  }
}

/** {@link loadModel} on the calling thread. */
export function loadModelSync(path: string, options: LoadOptions = {}): AnyModel {
  checkString('path', path, true);
  const precision = loadPrecision(options);
  if (isSeq2SeqFile(path)) return withPrecision(wrapSeq2Seq(native.NativeSeq2Seq.load(path), path), precision);
  return withPrecision(wrap(native.NativeModel.load(path), path), precision);
}

/** Loads a language model file; a file of another task is an error. */
export async function loadLanguageModel(path: string, options: LoadOptions = {}): Promise<LanguageModel> {
  const m = await loadModel(path, options);
  if (m.task !== 'language_model') throw typeError('ERR_RNNKIT_CONFIG', `${JSON.stringify(path)}: expected a language model, got task "${m.task}"`);
  return m;
}
