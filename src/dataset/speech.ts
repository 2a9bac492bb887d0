/**
 * Transcribed speech as feature frames: one `[T, featureSize]` Float32Array per utterance and its
 * transcript. Transcripts are encoded with the alphabet by the engine (`encodeTranscripts`: a
 * character outside it is an error naming the utterance); split, shuffled and batched by the
 * engine like every row dataset, so `batches()` is what a speech model's `fit` trains on.
 */

import type { SequenceData } from '../../index';
import { native } from '../native';
import { checkInt, checkString, describe, rangeError, typeError } from '../errors';
import { checkObject, RowDataset, type BatchingOptions, type Split } from './common';

/** One utterance: its feature frames `[T, featureSize]` row-major and what was said. */
export interface Utterance {
  frames: Float32Array;
  text: string;
}

/** Options of {@link SpeechDataset.fromUtterances}. */
export interface SpeechDatasetOptions extends BatchingOptions {
  /** The output characters of the model that trains on it (the model's `alphabet`). */
  alphabet: string;
  /** Values per frame (the model's `featureSize`). */
  featureSize: number;
}

/** A batch of utterances, padded to its longest. */
export interface SpeechBatch {
  /** `[batchSize, frames, featureSize]`; padded frames are 0. */
  frames: Float32Array;
  /** Real frames of each utterance. */
  lengths: Int32Array;
  batchSize: number;
  /** Frames of the longest utterance of the batch. */
  maxFrames: number;
  featureSize: number;
  /** The transcripts, in row order. */
  texts: string[];
}

/** Utterances with transcripts (feature frames), split and batched by the engine. */
export class SpeechDataset extends RowDataset<SpeechBatch> {
  /** The output characters transcripts are encoded with. */
  readonly alphabet: string;
  /** Values per frame. */
  readonly featureSize: number;
  /** Frames of each utterance, in the order given. */
  private readonly frameCounts: Int32Array;

  protected constructor(utterances: Utterance[], name: string, options: SpeechDatasetOptions) {
    const o = checkObject('options', options);
    const alphabet = checkString('options.alphabet', o.alphabet, true);
    const F = checkInt('options.featureSize', o.featureSize, 1);
    if (utterances.length === 0) throw rangeError('ERR_RNNKIT_EMPTY', `${name}: no utterances`);
    const texts: string[] = [];
    const frames = utterances.map((u, i) => {
      const row = checkObject(`${name}[${i}]`, u);
      texts.push(checkString(`${name}[${i}].text`, row.text));
      const f = row.frames;
      if (!(f instanceof Float32Array)) throw typeError('ERR_RNNKIT_TYPE', `${name}[${i}].frames: expected a Float32Array, got ${describe(f)}`);
      if (f.length === 0 || f.length % F !== 0)
        throw rangeError('ERR_RNNKIT_SHAPE', `${name}[${i}].frames: length ${f.length} is not a positive multiple of options.featureSize = ${F}`);
      return f;
    });
    let encoded;
    try {
      encoded = native.encodeTranscripts(alphabet, texts);
    } catch (e) {
      // The engine names `transcripts[i]`; the caller knows it as the utterance's text.
      const err = e as Error & { param?: string };
      const m = /^transcripts\[(\d+)\]/.exec(err.message);
      if (m) {
        err.message = err.message.replace(m[0], `${name}[${m[1]}].text`);
        err.param = `${name}[${m[1]}].text`;
      }
      throw err;
    }
    const T = Math.max(...frames.map((f) => f.length / F));
    const values = new Float32Array(frames.length * T * F);
    frames.forEach((f, i) => values.set(f, i * T * F));
    const data: SequenceData = {
      values,
      lengths: Int32Array.from(frames, (f) => f.length / F),
      rows: frames.length,
      steps: T,
      transcripts: encoded.labels,
      transcriptLengths: encoded.lengths,
    };
    super(
      data,
      { validation: (o.validation as number | undefined) ?? 0, stratify: false, inputSize: F, outputSize: 0, perStep: false },
      { batchSize: 32, ...o },
    );
    this.alphabet = alphabet;
    this.featureSize = F;
    this.frameCounts = data.lengths;
  }

  /** Feature frames in the utterances of a split (what a speech model's defaults are sized by). */
  frames(split: Split = 'train'): number {
    let total = 0;
    for (const i of this.rowIndices(split)) total += this.frameCounts[i];
    return total;
  }

  /** A dataset of utterances `{ frames, text }`; errors name them as `utterances[i]`. */
  static fromUtterances(utterances: Utterance[], options: SpeechDatasetOptions): SpeechDataset {
    if (!Array.isArray(utterances)) throw typeError('ERR_RNNKIT_TYPE', `utterances: expected an array of { frames, text }, got ${describe(utterances)}`);
    return new SpeechDataset(utterances, 'utterances', options);
  }

  protected makeBatch(b: SequenceData): SpeechBatch {
    const S = b.rows === 0 ? 0 : b.transcripts!.length / b.rows;
    const texts = Array.from({ length: b.rows }, (_, r) =>
      Array.from(b.transcripts!.subarray(r * S, r * S + b.transcriptLengths![r]), (k) => [...this.alphabet][k - 1]).join(''),
    );
    return { frames: b.values!, lengths: b.lengths, batchSize: b.rows, maxFrames: b.steps, featureSize: this.featureSize, texts };
  }
}
