/**
 * Many-to-many tagging: {@link Tagger} (one tag per token or dense step, class weights,
 * evaluation with tag names, decoding of the engine's per-step probabilities) and
 * {@link createTagger}.
 */

import type { NativeModel, NativeSequenceDataset } from '../../index';
import type { History } from '../types';
import { DenseDataset, TaggedDataset, type Label } from '../dataset';
import { describe, rangeError, typeError } from '../errors';
import { readInput, type Encoded, type InputCodec } from './codec';
import {
  checkLabelSet,
  checkObject,
  checkSameLabels,
  classificationResult,
  createNative,
  resolveClassWeights,
  SequenceModel,
  type RowPrediction,
  type Rows,
} from './sequence-model';
import type { ClassificationEvaluation, ClassWeights, TagExample, TaggerOptions, TagPrediction, SequenceFitOptions, EvaluateRowsOptions } from './types';

/** Many-to-many tagging: one tag per input token (or dense step). */
export class Tagger extends SequenceModel {
  readonly task = 'tag' as const;

  /** Trains on a TaggedDataset or rows `{ text | ids | values, tags }`; see {@link SequenceModel.fit}. */
  fit(data: TaggedDataset | TagExample[], options: SequenceFitOptions<TaggedDataset | TagExample[]> = {}): Promise<History> {
    return super.fit(data, options);
  }
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
      if (id === undefined)
        throw rangeError(
          'ERR_RNNKIT_RANGE',
          `${where}[${s}]: tag ${describe(t[s])} is not one of the model's tags (${this.tags.map((l) => JSON.stringify(l)).join(', ')})`,
        );
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
          tags.push(
            this.tagIds(
              `${where}.tags`,
              Array.from(own, (id) => data.tags[id]),
              len,
            ),
          );
        }
      }
      return { inputs, tags };
    }
    if (!Array.isArray(data))
      throw typeError(
        'ERR_RNNKIT_TYPE',
        `${name}: expected a TaggedDataset or an array of { ${this.codec.dense ? 'values' : 'text'}, tags }, got ${describe(data)}`,
      );
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
      if (data.vocabSize !== this.codec.tokenizer?.vocabSize)
        throw typeError(
          'ERR_RNNKIT_VOCAB',
          `${name}: the dataset's ids are of a vocabulary of ${data.vocabSize}, the model's tokenizer has ${this.codec.tokenizer?.vocabSize ?? 'none'}`,
        );
      checkSameLabels(name, data.tags, this.tags, 'tags');
      return data.native;
    }
    if (data instanceof DenseDataset) throw typeError('ERR_RNNKIT_CONFIG', `${name}: a tagger trains on a TaggedDataset or an array of rows`);
    return null;
  }

  /** Token accuracy, per-tag precision/recall/F1 and the confusion matrix over every real step (computed by the engine); `options.signal` aborts it between batches (an AbortError). */
  async evaluate(data: TaggedDataset | TagExample[], options: EvaluateRowsOptions = {}): Promise<ClassificationEvaluation> {
    return classificationResult(await this.evaluation(data, options), this.tags);
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

/** A sequence tagger: one softmax over `tags` at every input step (bidirectional by default). */
export function createTagger(options: TaggerOptions): Tagger {
  const o = checkObject('options', options);
  const tags = checkLabelSet('options.tags', o.tags);
  const { handle, codec } = createNative('tag', o, { outputSize: tags.length, perStep: true }, readInput(o, true), { tags });
  return new Tagger(handle, codec, tags);
}
