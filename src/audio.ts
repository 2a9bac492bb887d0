/**
 * The audio front-end: WAV bytes to mono samples, rate conversion, log-mel features. All the
 * computing is the engine's (`crates/rnn-core/src/audio/`); this module checks argument types
 * and, for the promise-returning forms, turns every failure into a rejection.
 *
 * @example
 * const wav = await readWav(await fs.promises.readFile('a.wav'));
 * const { data, frames, nMels } = await logMelFeatures(wav.samples, wav.sampleRate, { nMels: 40 });
 */
import type { LogMelFeatures, LogMelOptions, WavAudio } from '../index';
import { describe, typeError } from './errors';
import { native } from './native';

export type { LogMelFeatures, LogMelOptions, WavAudio } from '../index';

function checkBytes(bytes: unknown): Uint8Array {
  if (!(bytes instanceof Uint8Array)) {
    throw typeError('ERR_RNNKIT_TYPE', `bytes: expected a Uint8Array or Buffer, got ${describe(bytes)}`);
  }
  return bytes;
}

function checkSamples(samples: unknown): Float32Array {
  if (!(samples instanceof Float32Array)) {
    throw typeError('ERR_RNNKIT_TYPE', `samples: expected a Float32Array, got ${describe(samples)}`);
  }
  return samples;
}

function checkRate(name: string, rate: unknown): number {
  if (typeof rate !== 'number' || !Number.isInteger(rate) || rate < 0 || rate > 0xffffffff) {
    throw typeError('ERR_RNNKIT_TYPE', `${name}: expected a sample rate in Hz (an integer), got ${describe(rate)}`);
  }
  return rate;
}

/** Runs `start` so that a synchronous throw (a bad argument) becomes a rejection too. */
function rejecting<T>(start: () => Promise<T>): Promise<T> {
  try {
    return start();
  } catch (e) {
    return Promise.reject(e);
  }
}

/**
 * Decodes a WAV file's bytes into mono samples in [-1, 1] (channels averaged): integer PCM of
 * 8, 16, 24 or 32 bits or 32-bit float, plain or `WAVE_FORMAT_EXTENSIBLE`, 1 kHz to 384 kHz.
 * Anything else (not RIFF/WAVE, RF64, A-law, µ-law, ADPCM, MP3, a truncated file) throws an
 * `ERR_RNNKIT_FORMAT` error that says what is wrong.
 */
export function readWavSync(bytes: Uint8Array): WavAudio {
  return native.readWavSync(checkBytes(bytes));
}

/** {@link readWavSync} off the JavaScript thread; the bytes are copied first. */
export function readWav(bytes: Uint8Array): Promise<WavAudio> {
  return rejecting(() => native.readWavAsync(checkBytes(bytes)));
}

/**
 * Resamples mono `samples` from `fromRate` to `toRate` Hz (both 1 kHz to 384 kHz) with an FFT
 * resampler and anti-aliasing filter; the output has `ceil(length · toRate / fromRate)` samples,
 * aligned with the input.
 */
export function resampleAudioSync(samples: Float32Array, fromRate: number, toRate: number): Float32Array {
  return native.resampleAudioSync(checkSamples(samples), checkRate('fromRate', fromRate), checkRate('toRate', toRate));
}

/** {@link resampleAudioSync} off the JavaScript thread. */
export function resampleAudio(samples: Float32Array, fromRate: number, toRate: number): Promise<Float32Array> {
  return rejecting(() => native.resampleAudioAsync(checkSamples(samples), checkRate('fromRate', fromRate), checkRate('toRate', toRate)));
}

/**
 * Log-mel filterbank features of mono `samples` recorded at `sampleRate` (resampled to
 * `options.sampleRate`, 16 kHz by default, first): frames of `windowMs` (25) every `hopMs` (10),
 * `nMels` (40) HTK-mel triangles from `fmin` (20 Hz) to `fmax` (half the rate) over the power
 * spectrum, `ln(max(energy, logFloor))`, then normalised per utterance (default), globally with
 * `mean`/`std`, or not. `data` is row-major `[frames, nMels]`; `config` is the configuration in
 * the JSON form a speech model stores. Audio shorter than one window throws `ERR_RNNKIT_RANGE`.
 */
export function logMelFeaturesSync(samples: Float32Array, sampleRate: number, options: LogMelOptions = {}): LogMelFeatures {
  return native.logMelFeaturesSync(checkSamples(samples), checkRate('sampleRate', sampleRate), options);
}

/** {@link logMelFeaturesSync} off the JavaScript thread. */
export function logMelFeatures(samples: Float32Array, sampleRate: number, options: LogMelOptions = {}): Promise<LogMelFeatures> {
  return rejecting(() => native.logMelFeaturesAsync(checkSamples(samples), checkRate('sampleRate', sampleRate), options));
}

/**
 * The stored form of the log-mel configuration `options` describe (defaults filled in, checked by
 * the engine): what a speech model created with `features: options` keeps as `model.features`,
 * and what `AudioDataset.load` reads audio with.
 *
 * @example
 * const features = featureConfig({ nMels: 40 });
 * const data = await AudioDataset.load('train.jsonl', { features });
 * const model = createSpeechRecognizer({ features: { nMels: 40 }, alphabet: data.alphabet });
 */
export function featureConfig(options: LogMelOptions = {}): Record<string, unknown> {
  return native.resolveFeatureConfig(options);
}
