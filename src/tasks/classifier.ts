/**
 * Many-to-one classification: {@link Classifier} (labels in and out, class weights, evaluation
 * with label names, decoding of the engine's probabilities) and {@link createClassifier}.
 */

import type { NativeModel, NativeSequenceDataset } from '../../index';
import type { History } from '../types';
import { DenseDataset, LabelledDataset, type Label } from '../dataset';
import { describe, rangeError, typeError } from '../errors';
import { readInput, type Encoded, type InputCodec } from './codec';
import {
  checkDense,
  checkLabelSet,
  checkObject,
  checkSameLabels,
  checkSameTokenizer,
  classificationResult,
  createNative,
  denseBatches,
  resolveClassWeights,
  SequenceModel,
  type RowPrediction,
  type Rows,
} from './sequence-model';
import type {
  ClassificationEvaluation,
  ClassifierOptions,
  ClassifyExample,
  ClassPrediction,
  ClassWeights,
  SequenceFitOptions,
  EvaluateRowsOptions,
} from './types';

/** Many-to-one classification of texts or dense sequences. */
export class Classifier extends SequenceModel {
  readonly task = 'classify' as const;

  /** Trains on a LabelledDataset, a DenseDataset with labels, or rows `{ text | values, label }`; see {@link SequenceModel.fit}. */
  fit(
    data: LabelledDataset | DenseDataset | ClassifyExample[],
    options: SequenceFitOptions<LabelledDataset | DenseDataset | ClassifyExample[]> = {},
  ): Promise<History> {
    return super.fit(data, options);
  }
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
    if (id === undefined)
      throw rangeError(
        'ERR_RNNKIT_RANGE',
        `${where}: label ${describe(label)} is not one of the model's labels (${this.labels.map((l) => JSON.stringify(l)).join(', ')})`,
      );
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
    if (!Array.isArray(data))
      throw typeError(
        'ERR_RNNKIT_TYPE',
        `${name}: expected a LabelledDataset, a DenseDataset or an array of { ${this.codec.dense ? 'values' : 'text'}, label }, got ${describe(data)}`,
      );
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

  /** Loss, accuracy, per-class precision/recall/F1 and the confusion matrix on labelled rows (a dataset: its validation split when it has one), computed by the engine; `options.signal` aborts it between batches (an AbortError). */
  async evaluate(data: LabelledDataset | DenseDataset | ClassifyExample[], options: EvaluateRowsOptions = {}): Promise<ClassificationEvaluation> {
    return classificationResult(await this.evaluation(data, options), this.labels);
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

/**
 * A sequence classifier: tokens → embedding (or dense steps) → (bidirectional) stacked
 * RNN/LSTM/GRU → pooling over each row's real steps → dense → softmax over `labels`.
 */
export function createClassifier(options: ClassifierOptions): Classifier {
  const o = checkObject('options', options);
  const labels = checkLabelSet('options.labels', o.labels);
  const { handle, codec } = createNative('classify', o, { outputSize: labels.length }, readInput(o, true), { labels });
  return new Classifier(handle, codec, labels);
}
