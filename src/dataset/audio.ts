/**
 * Transcribed audio files as a {@link SpeechDataset}: a JSONL manifest (one
 * `{"audio": "path.wav", "text": "..."}` per line, paths relative to the manifest) or a folder of
 * `a.wav` + `a.txt` pairs, read, decoded and featurised by the engine (`audio/corpus.rs`) with a
 * speech model's feature configuration.
 */

import { native } from '../native';
import { checkString, typeError } from '../errors';
import { checkObject } from './common';
import { SpeechDataset, type SpeechDatasetOptions } from './speech';

/** Options of {@link AudioDataset.load}. */
export interface AudioDatasetOptions extends Omit<SpeechDatasetOptions, 'featureSize' | 'alphabet'> {
  /** The stored feature configuration of the model that trains on it (`model.features`). */
  features: Record<string, unknown>;
  /**
   * The output characters of the model that trains on it (`model.alphabet`). Default: every
   * character the transcripts use, in code-point order (the engine's `transcriptAlphabet`), for
   * a new model made with `alphabet: dataset.alphabet`.
   */
  alphabet?: string;
}

/** Utterances read from WAV files, as the features of a speech model. */
export class AudioDataset extends SpeechDataset {
  /** Each utterance's WAV file, in row order. */
  readonly audio: string[];
  /** The feature configuration the frames were computed with (the stored JSON form). */
  readonly features: Record<string, unknown>;

  private constructor(corpus: { audio: string[]; texts: string[]; frames: Float32Array[] }, options: AudioDatasetOptions, features: Record<string, unknown>) {
    const utterances = corpus.frames.map((frames, i) => ({ frames, text: corpus.texts[i] }));
    const { features: _features, alphabet, ...rest } = options;
    super(utterances, 'utterances', {
      ...rest,
      alphabet: alphabet === undefined ? native.transcriptAlphabet(corpus.texts) : alphabet,
      featureSize: features.n_mels as number,
    });
    this.audio = corpus.audio;
    this.features = features;
  }

  /**
   * Reads `source` (a `.jsonl` manifest or a folder) off the JavaScript thread. A missing or
   * non-WAV file, a line without `audio`/`text`, or a folder WAV without its `.txt` is an error
   * naming it; so is a transcript character outside `options.alphabet`.
   */
  static async load(source: string, options: AudioDatasetOptions): Promise<AudioDataset> {
    checkString('source', source, true);
    const o = checkObject('options', options);
    const features = checkObject('options.features', o.features);
    if (typeof features.n_mels !== 'number')
      throw typeError('ERR_RNNKIT_CONFIG', "options.features: expected a stored feature configuration (a speech model's features)");
    const corpus = await native.loadAudioCorpus(source, features);
    return new AudioDataset(corpus, options, features);
  }
}
