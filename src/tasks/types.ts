/**
 * The public option and result types of the sequence tasks: the constructors' options, the
 * options of `fit`, the results of `evaluate` and `predict`, and the row forms the tasks train on.
 */

import type { FitOptions } from '../fit';
import type { FeatureStats, Label } from '../dataset';
import type { Tokenizer } from '../tokenizer';
import type { ArchitectureOptions, Pooling } from '../types';

/** Input side shared by the task constructors: a tokenizer (text) or a feature count (dense). */
export interface SequenceInputOptions {
  /** Tokenizer of the texts (token input). Either this or `inputSize`. */
  tokenizer?: Tokenizer;
  /** Features per step (dense `Float32Array` input `[T, inputSize]` per row). */
  inputSize?: number;
  /** Embedding width for token input. Default 64. */
  embedDim?: number;
  /** Longest sequence accepted, in tokens or steps; longer rows are errors naming the row. Default 1024. */
  maxLength?: number;
  /** Dense input: normalise each feature with the training rows' mean and std (saved with the model). Default true. */
  normalize?: boolean;
  /** Dense input: statistics to use instead of computing them on the first `fit`. */
  featureStats?: FeatureStats;
}

/** Options of {@link createClassifier}. */
export interface ClassifierOptions extends ArchitectureOptions, SequenceInputOptions {
  /** The classes, in class-id order (strings or numbers); any other label is an error. */
  labels: Label[];
  /** Read each sequence in both directions. Default true. */
  bidirectional?: boolean;
  /** How the real steps of a sequence become one vector. Default `'mean'`. */
  pooling?: Pooling;
}

/** Options of {@link createTagger}. */
export interface TaggerOptions extends ArchitectureOptions, SequenceInputOptions {
  /** The tags, in tag-id order. */
  tags: Label[];
  /** Read each sequence in both directions (a tag may depend on what follows). Default true. */
  bidirectional?: boolean;
}

/** Options of {@link createRegressor}. */
export interface RegressorOptions extends ArchitectureOptions, Omit<SequenceInputOptions, 'tokenizer' | 'embedDim'> {
  /** Features per step of the input. */
  inputSize: number;
  /** Values predicted per row (or per step with `perStep`). Default 1. */
  outputSize?: number;
  /** One output per step (many-to-many) instead of one per sequence. Default false. */
  perStep?: boolean;
  /** Many-to-one pooling. Default `'last'`. */
  pooling?: Pooling;
  /** Read each sequence in both directions. Default false (a forecast must not see the future of its window… it has none, but a per-step regressor would). */
  bidirectional?: boolean;
}

/** Class weights: one per class in class-id order, by label, or `'balanced'` (n / (classes · count)). */
export type ClassWeights = number[] | Record<string, number> | 'balanced';

/** Options of `fit` for the sequence tasks. */
export interface SequenceFitOptions<Data = unknown> extends FitOptions {
  /** Held-out rows, in the same form as the training data; a dataset's validation split is used by default. */
  validation?: Data;
  /** Loss weight of each class or tag (classification, tagging). */
  classWeights?: ClassWeights;
  /** Rows per batch (arrays of rows only; a dataset fixes its own). Default 32. */
  batchSize?: number;
  /** Shuffle rows each epoch (arrays of rows only). Default true. */
  shuffle?: boolean;
  /** The last, smaller batch (arrays of rows only). Default `'keep'`. */
  last?: 'keep' | 'drop';
}

/** Precision, recall and F1 of one class. */
export interface ClassMetrics {
  label: Label;
  precision: number;
  recall: number;
  f1: number;
  /** Counted positions whose true class is this one. */
  support: number;
}

/** Options of `evaluate` on a classifier, tagger or regressor. */
export interface EvaluateRowsOptions {
  /** Aborts the evaluation between batches (an AbortError, `code: 'ABORT_ERR'`). */
  signal?: AbortSignal;
}

/** Result of `evaluate` on a classifier or tagger. */
export interface ClassificationEvaluation {
  /** Mean cross-entropy (nats) over counted rows (classifier) or steps (tagger). */
  loss: number;
  accuracy: number;
  /** Counted rows or steps. */
  count: number;
  /** Unweighted mean of the per-class F1. */
  macroF1: number;
  perClass: ClassMetrics[];
  /** `confusion[i][j]`: positions of true class i predicted as class j (class-id order). */
  confusion: number[][];
  labels: Label[];
}

/** Result of `evaluate` on a regressor. */
export interface RegressionEvaluation {
  /** Mean squared error over every predicted value (real steps only for per-step models). */
  loss: number;
  mse: number;
  /** Mean absolute error. */
  mae: number;
  /** Predicted values counted. */
  count: number;
}

/** One classified row. */
export interface ClassPrediction {
  label: Label;
  /** Probability of `label`. */
  probability: number;
  /** Probability of every class, keyed by label. */
  probabilities: Record<string, number>;
}

/** One tagged row. */
export interface TagPrediction {
  /** The text of each token (token input) — empty strings for dense input. */
  tokens: string[];
  tags: Label[];
  /** Probability of each chosen tag. */
  probabilities: number[];
}

/** A labelled row: a text (token models) or a `[T, inputSize]` Float32Array (dense models). */
export interface ClassifyExample {
  text?: string;
  values?: Float32Array;
  label: Label;
}

/** A tagged row: a text whose tokens each get a tag, token ids, or dense steps. */
export interface TagExample {
  text?: string;
  ids?: ArrayLike<number>;
  values?: Float32Array;
  tags: ArrayLike<Label>;
}

/** A regression row: `values` `[T, inputSize]`, `target` `[outputSize]` (or `[T, outputSize]` per step). */
export interface RegressExample {
  values: Float32Array;
  target: number | ArrayLike<number>;
}
