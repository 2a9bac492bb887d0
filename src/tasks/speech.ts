/**
 * Speech recognition: {@link SpeechRecognizer} and {@link createSpeechRecognizer}. Feature frames
 * (`[T, featureSize]` per utterance) → optional frame stacking (k frames joined, stride k) →
 * stacked bidirectional LSTM/GRU → per-frame scores over the alphabet and the CTC blank, trained
 * with the CTC loss. Transcripts are decoded by the engine (greedy, prefix beam search, a
 * lexicon of allowed words); evaluation reports the engine's word and character error rates.
 * The alphabet and frame stacking are the file's `config` (docs/FORMAT.md).
 */

import type { LogMelOptions, NativeModel, NativeSequenceDataset, SpecAugmentOptions } from '../../index';
import { native } from '../native';
import { Model } from '../model';
import { refuseOrderKeys, runFit, splitFitOptions } from '../fit';
import { AudioDataset, SpeechDataset, type Utterance } from '../dataset';
import { checkInt, checkString, describe, error, rangeError, typeError } from '../errors';
import { checkOptionKeys } from '../option-keys';
import { checkSignal, withSignal } from '../cancel';
import type { ArchitectureOptions, History } from '../types';
import type { FitOptions } from '../fit';
import { checkObject } from './sequence-model';

/**
 * The features a speech model reads: `{ size }` for feature frames you compute yourself
 * (`transcribeFrames`), or log-mel options (`LogMelOptions`: `nMels`, `sampleRate`, `windowMs`,
 * `hopMs`, `normalise`, ...; `{}` for the defaults) for a model that reads audio: the
 * configuration is stored with the model and the engine computes the features of WAV files and
 * samples (`transcribe`, `AudioDataset`).
 */
export type SpeechFeatureOptions = { size: number } | LogMelOptions;

/** Options of {@link createSpeechRecognizer}. */
export interface SpeechRecognizerOptions extends ArchitectureOptions {
  /** The frames the model reads. */
  features: SpeechFeatureOptions;
  /** The output characters in class order after the CTC blank, e.g. `'0123456789 '` (the space separates words). */
  alphabet: string;
  /** Read each utterance in both directions. Default true. */
  bidirectional?: boolean;
  /** Join this many consecutive frames into one recurrent step (stride the same), shortening the recurrence k-fold. Default 1. */
  frameStacking?: number;
}

/** `fit` options of a speech model. */
export interface SpeechFitOptions extends FitOptions {
  /** Held-out utterances (a dataset's validation split is used by default). */
  validation?: SpeechDataset | Utterance[];
  /** Utterances per batch (arrays only; a dataset fixes its own). Default 32. */
  batchSize?: number;
  /** Shuffle utterances each epoch (arrays only). Default true. */
  shuffle?: boolean;
  /** The last, smaller batch (arrays only). Default `'keep'`. */
  last?: 'keep' | 'drop';
  /**
   * SpecAugment (time and frequency masks over each training utterance's features, drawn anew at
   * every step from the seeded training generator; never on validation): `{}` for the defaults
   * (2 masks of up to 8 bands, 2 of up to 20 frames, at most 0.2 of an utterance each). Default off.
   */
  specAugment?: SpecAugmentOptions;
}

/** How {@link SpeechRecognizer.transcribe} decodes. */
export interface TranscribeOptions {
  /** The rate (Hz) of Float32Array samples given to `transcribe`. Default: the model's feature rate. */
  sampleRate?: number;
  /** Prefix beam search keeping this many prefixes per frame (1–1024). Default: greedy decoding. */
  beamWidth?: number;
  /** Allowed words (characters of the alphabet, no spaces): every transcript is a sequence of them. Needs `beamWidth`. */
  lexicon?: string[];
  /** Aborts between batches (an AbortError, `code: 'ABORT_ERR'`). Async only. */
  signal?: AbortSignal;
}

/** Result of {@link SpeechRecognizer.evaluate}, computed by the engine on greedy transcripts. */
export interface SpeechEvaluation {
  /** Mean CTC loss (each utterance's loss over its transcript length, averaged: PyTorch's `mean`). */
  loss: number;
  /** Word error rate: word edits (substitutions, insertions, deletions) over reference words, summed over the utterances. */
  wer: number;
  /** Character error rate: character edits over reference characters. */
  cer: number;
  /** Utterances counted. */
  count: number;
}

/** Options of {@link SpeechRecognizer.evaluate}. */
export interface EvaluateSpeechOptions {
  /** Aborts between batches (an AbortError). */
  signal?: AbortSignal;
}

/** A speech recognizer over feature frames, trained with CTC. */
export class SpeechRecognizer extends Model {
  readonly task = 'speech' as const;

  /** @internal Use {@link createSpeechRecognizer} or `loadModel`. */
  constructor(handle: NativeModel) {
    super(handle);
  }

  /** The output characters, in class order after the blank (class 0). */
  get alphabet(): string {
    return (this.config.alphabet as string[]).join('');
  }

  /** Values per frame. */
  get featureSize(): number {
    return this.config.input_size as number;
  }

  /** The stored feature configuration of a model that reads audio (docs/FORMAT.md), else null. */
  get features(): Record<string, unknown> | null {
    const f = this.native.metadataValue('audio_features');
    return f === undefined || f === null ? null : (f as Record<string, unknown>);
  }

  /** Frames joined into one recurrent step. */
  get frameStacking(): number {
    return (this.config.frame_stacking as number | undefined) ?? 1;
  }

  /** The native row set of `data`: a dataset (checked against the model) or utterances packed with the model's alphabet. */
  private dataset(name: string, data: unknown, order: Record<string, unknown>): NativeSequenceDataset {
    if (data instanceof SpeechDataset) {
      if (data instanceof AudioDataset && JSON.stringify(data.features) !== JSON.stringify(this.features))
        throw typeError(
          'ERR_RNNKIT_CONFIG',
          `${name}: the dataset's features were computed with another configuration than the model's; load it with options.features: model.features`,
        );
      if (data.alphabet !== this.alphabet)
        throw typeError(
          'ERR_RNNKIT_CONFIG',
          `${name}: the dataset's alphabet ${JSON.stringify(data.alphabet)} is not the model's ${JSON.stringify(this.alphabet)}; build it with options.alphabet: model.alphabet`,
        );
      if (data.featureSize !== this.featureSize)
        throw rangeError('ERR_RNNKIT_SHAPE', `${name}: the dataset has ${data.featureSize} features per frame, the model reads ${this.featureSize}`);
      return data.native;
    }
    if (!Array.isArray(data)) throw typeError('ERR_RNNKIT_TYPE', `${name}: expected a SpeechDataset or an array of { frames, text }, got ${describe(data)}`);
    return SpeechDataset.fromUtterances(data as Utterance[], { alphabet: this.alphabet, featureSize: this.featureSize, ...order }).native;
  }

  /**
   * Trains off the JS thread with the CTC loss (progress events, abort, checkpoints, early
   * stopping on the validation loss, best weights), on a {@link SpeechDataset} in its own data
   * order or on utterances `{ frames, text }`. Resolves with the history.
   */
  async fit(data: SpeechDataset | Utterance[], options: SpeechFitOptions = {}): Promise<History> {
    const { order, engine, validation } = splitFitOptions(options);
    for (const k of ['seqLen', 'stride', 'tbptt', 'padId']) {
      if (order[k] !== undefined) throw typeError('ERR_RNNKIT_CONFIG', `options.${k}: speech models train on whole utterances; there are no windows to set`);
    }
    if (data instanceof SpeechDataset) refuseOrderKeys(options as Record<string, unknown>, 'dataset');
    const seed = engine.seed === undefined ? {} : { seed: engine.seed };
    const train = this.dataset('data', data, { ...order, ...seed });
    const valid = validation === undefined ? null : this.dataset('options.validation', validation, {});
    return runFit(this.native, options, (onEvent, cancel) => this.native.fitSequences(train, valid, engine, onEvent, cancel));
  }

  /** The engine's CTC loss and word/character error rates of greedy transcripts of `data` (a dataset: its validation split when it has one). */
  async evaluate(data: SpeechDataset | Utterance[], options: EvaluateSpeechOptions = {}): Promise<SpeechEvaluation> {
    checkOptionKeys('options', checkObject('options', options), ['signal']);
    const signal = checkSignal('options.signal', options.signal);
    const ds = this.dataset('data', data, { shuffle: false });
    const split = ds.size('validation') > 0 ? 'validation' : 'train';
    const e = await withSignal(signal, 'evaluation', (cancel) => this.native.evaluateDataset(ds, split, cancel));
    return { loss: e.loss, wer: e.wer!, cer: e.cer!, count: e.count };
  }

  /** Checks the decoding options (`sampleRate` only for samples, `signal` only async). */
  private decodeOptions(options: unknown, keys: string[]): Record<string, unknown> {
    const o = checkObject('options', options);
    checkOptionKeys('options', o, keys);
    const { signal: _signal, sampleRate: _rate, ...opts } = o;
    if (opts.lexicon !== undefined) {
      if (!Array.isArray(opts.lexicon)) throw typeError('ERR_RNNKIT_TYPE', `options.lexicon: expected an array of words, got ${describe(opts.lexicon)}`);
      opts.lexicon.forEach((w, i) => checkString(`options.lexicon[${i}]`, w));
    }
    if (opts.beamWidth !== undefined) checkInt('options.beamWidth', opts.beamWidth, 1, 1024);
    return opts;
  }

  /** One item or an array of items of `kind`, checked. */
  private listOf<T>(name: string, value: unknown, is: (v: unknown) => v is T, what: string): { list: T[]; single: boolean } {
    const single = is(value);
    const list = single ? [value] : value;
    if (!Array.isArray(list) || list.length === 0)
      throw typeError('ERR_RNNKIT_TYPE', `${name}: expected ${what} or a non-empty array of them, got ${describe(value)}`);
    list.forEach((f, i) => {
      if (!is(f)) throw typeError('ERR_RNNKIT_TYPE', `${name}[${i}]: expected ${what}, got ${describe(f)}`);
    });
    return { list: list as T[], single };
  }

  private busy(): void {
    if (this.isTraining) throw error('ERR_RNNKIT_BUSY', 'this model is training; wait for fit() to settle or abort it');
  }

  /** The audio of `transcribe`: WAV bytes or samples (and their rate), checked. */
  private sound(input: unknown, options: Record<string, unknown>): { wavs?: Uint8Array[]; samples?: Float32Array[]; rate: number; single: boolean } {
    const features = this.features;
    if (!features)
      throw typeError('ERR_RNNKIT_CONFIG', 'model: this speech model reads feature frames (it was made with features: { size }); use transcribeFrames');
    const rate = options.sampleRate === undefined ? (features.sample_rate as number) : checkInt('options.sampleRate', options.sampleRate, 1, 0xffffffff);
    const first = Array.isArray(input) ? input[0] : input;
    if (first instanceof Uint8Array) {
      const { list, single } = this.listOf('audio', input, (v): v is Uint8Array => v instanceof Uint8Array, 'the bytes of a WAV file (Uint8Array or Buffer)');
      if (options.sampleRate !== undefined)
        throw typeError('ERR_RNNKIT_CONFIG', 'options.sampleRate: a WAV file states its own rate; sampleRate is for Float32Array samples');
      return { wavs: list, rate, single };
    }
    const { list, single } = this.listOf(
      'audio',
      input,
      (v): v is Float32Array => v instanceof Float32Array,
      'WAV bytes (Uint8Array) or mono samples (Float32Array)',
    );
    return { samples: list, rate, single };
  }

  /**
   * Transcribes audio off the JS thread: the bytes of WAV files (`Uint8Array`/`Buffer`), or mono
   * samples (`Float32Array`, at `options.sampleRate`, default the model's feature rate), one or an
   * array. The engine decodes, resamples and computes the model's stored features; greedy by
   * default, prefix beam search with `beamWidth`, restricted to `lexicon`'s words when given.
   */
  async transcribe(audio: Uint8Array | Float32Array, options?: TranscribeOptions): Promise<string>;
  async transcribe(audio: Uint8Array[] | Float32Array[], options?: TranscribeOptions): Promise<string[]>;
  async transcribe(audio: unknown, options: TranscribeOptions = {}): Promise<string | string[]> {
    const opts = this.decodeOptions(options, ['beamWidth', 'lexicon', 'signal', 'sampleRate']);
    const signal = checkSignal('options.signal', options.signal);
    const s = this.sound(audio, options as Record<string, unknown>);
    this.busy();
    const out = await withSignal(signal, 'transcription', (cancel) =>
      s.wavs ? this.native.transcribeWav(s.wavs, opts, cancel) : this.native.transcribeSamples(s.samples!, s.rate, opts, cancel),
    );
    return s.single ? out[0] : out;
  }

  /** {@link SpeechRecognizer.transcribe} on the calling thread. */
  transcribeSync(audio: Uint8Array | Float32Array, options?: Omit<TranscribeOptions, 'signal'>): string;
  transcribeSync(audio: Uint8Array[] | Float32Array[], options?: Omit<TranscribeOptions, 'signal'>): string[];
  transcribeSync(audio: unknown, options: Omit<TranscribeOptions, 'signal'> = {}): string | string[] {
    const opts = this.decodeOptions(options, ['beamWidth', 'lexicon', 'sampleRate']);
    const s = this.sound(audio, options as Record<string, unknown>);
    const out = s.wavs ? this.native.transcribeWavSync(s.wavs, opts) : this.native.transcribeSamplesSync(s.samples!, s.rate, opts);
    return s.single ? out[0] : out;
  }

  /** Transcribes feature frames (`[T, featureSize]` per utterance) off the JS thread; options as {@link SpeechRecognizer.transcribe} (no `sampleRate`). */
  async transcribeFrames(frames: Float32Array, options?: Omit<TranscribeOptions, 'sampleRate'>): Promise<string>;
  async transcribeFrames(frames: Float32Array[], options?: Omit<TranscribeOptions, 'sampleRate'>): Promise<string[]>;
  async transcribeFrames(frames: unknown, options: Omit<TranscribeOptions, 'sampleRate'> = {}): Promise<string | string[]> {
    const opts = this.decodeOptions(options, ['beamWidth', 'lexicon', 'signal']);
    const signal = checkSignal('options.signal', options.signal);
    const { list, single } = this.listOf('frames', frames, (v): v is Float32Array => v instanceof Float32Array, `a Float32Array [T, ${this.featureSize}]`);
    this.busy();
    const out = await withSignal(signal, 'transcription', (cancel) => this.native.transcribe(list, opts, cancel));
    return single ? out[0] : out;
  }

  /** {@link SpeechRecognizer.transcribeFrames} on the calling thread. */
  transcribeFramesSync(frames: Float32Array, options?: Omit<TranscribeOptions, 'signal' | 'sampleRate'>): string;
  transcribeFramesSync(frames: Float32Array[], options?: Omit<TranscribeOptions, 'signal' | 'sampleRate'>): string[];
  transcribeFramesSync(frames: unknown, options: Omit<TranscribeOptions, 'signal' | 'sampleRate'> = {}): string | string[] {
    const opts = this.decodeOptions(options, ['beamWidth', 'lexicon']);
    const { list, single } = this.listOf('frames', frames, (v): v is Float32Array => v instanceof Float32Array, `a Float32Array [T, ${this.featureSize}]`);
    const out = this.native.transcribeSync(list, opts);
    return single ? out[0] : out;
  }
}

/** A speech recognizer of feature frames with an output alphabet, trained with CTC. */
export function createSpeechRecognizer(options: SpeechRecognizerOptions): SpeechRecognizer {
  const o = checkObject('options', options);
  checkOptionKeys('options', o, [
    'features',
    'alphabet',
    'cell',
    'nonlinearity',
    'hiddenSize',
    'numLayers',
    'dropout',
    'seed',
    'init',
    'bidirectional',
    'frameStacking',
  ]);
  const features = checkObject('options.features', o.features);
  const { features: _features, ...arch } = o;
  if (features.size !== undefined) {
    checkOptionKeys('options.features', features, ['size']);
    const inputSize = checkInt('options.features.size', features.size, 1);
    return new SpeechRecognizer(native.NativeModel.create('speech', { ...arch, inputSize }));
  }
  // Log-mel features: the engine fills the defaults and validates; the model stores the result.
  let config: Record<string, unknown>;
  try {
    config = native.resolveFeatureConfig(features as LogMelOptions);
  } catch (e) {
    const err = e as Error & { param?: string };
    if (err.param?.startsWith('options.')) {
      err.message = err.message.replace(err.param, `options.features.${err.param.slice(8)}`);
      err.param = `options.features.${err.param.slice(8)}`;
    }
    throw err;
  }
  const handle = native.NativeModel.create('speech', { ...arch, inputSize: config.n_mels as number });
  handle.setMetadataValue('audio_features', config);
  return new SpeechRecognizer(handle);
}
