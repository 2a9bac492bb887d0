/**
 * Datasets: text corpora for language models, labelled sequences (classification), tagged
 * sequences (one tag per step), dense float sequences and transcribed speech features. Splits, shuffles and batches are
 * computed by the engine, so `batches()` shows exactly what `fit` trains on, for a given seed.
 */

export { IGNORE_INDEX, splitRowIndices, type BatchingOptions, type SequenceBatch, type Split } from './common';
export { LabelSet, type Label } from './labels';
export { parseCSV, type CsvRecord } from './csv';
export { readJSONLRecords } from './jsonl';
export { TextCorpus, type TextCorpusOptions, type TextFileOptions, type TokenBatch } from './text-corpus';
export {
  LabelledDataset,
  type LabelledBatch,
  type LabelledCsvOptions,
  type LabelledExample,
  type LabelledJsonlOptions,
  type LabelledOptions,
} from './labelled';
export { TaggedDataset, type TaggedBatch, type TaggedExample, type TaggedOptions } from './tagged';
export { FeatureStats } from './feature-stats';
export { DenseDataset, type DenseBatch, type DenseOptions } from './dense';
export { SpeechDataset, type SpeechBatch, type SpeechDatasetOptions, type Utterance } from './speech';
export { AudioDataset, type AudioDatasetOptions } from './audio';
