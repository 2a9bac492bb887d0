/**
 * Sequence tasks beyond language modelling: classification (many-to-one), tagging (one label per
 * input step) and regression on dense (numeric) sequences. Each is a {@link Model} over the same
 * native network; this module turns texts, labels and float rows into the padded batch-first
 * arrays the engine takes (`SequenceData`), and the engine's logits back into labels.
 *
 * What the weights alone cannot say is kept in the model file's metadata so a loaded model
 * predicts exactly as the trained one did: the label names (`labels`), the tag names (`tags`),
 * the input-normalisation statistics (`feature_stats`), whether to normalise (`normalize`) and
 * the longest accepted sequence (`max_length`). docs/FORMAT.md lists them.
 *
 * One file per concept: `codec.ts` (input encoding), `sequence-model.ts` (the shared base
 * class and checks), `classifier.ts`, `tagger.ts` and `regressor.ts` (one task head each, with
 * its constructor), `speech.ts` (speech recognition over feature frames, CTC) and `types.ts` (the public options and results); this module re-exports them.
 */

export { codecFromFile } from './codec';
export { labelsFromFile, SequenceModel } from './sequence-model';
export { Classifier, createClassifier } from './classifier';
export { Tagger, createTagger } from './tagger';
export { Regressor, createRegressor } from './regressor';
export {
  SpeechRecognizer,
  createSpeechRecognizer,
  type SpeechRecognizerOptions,
  type SpeechFeatureOptions,
  type SpeechFitOptions,
  type TranscribeOptions,
  type SpeechEvaluation,
  type EvaluateSpeechOptions,
} from './speech';
export type {
  SequenceInputOptions,
  ClassifierOptions,
  TaggerOptions,
  RegressorOptions,
  ClassWeights,
  SequenceFitOptions,
  ClassMetrics,
  ClassificationEvaluation,
  RegressionEvaluation,
  EvaluateRowsOptions,
  ClassPrediction,
  TagPrediction,
  ClassifyExample,
  TagExample,
  RegressExample,
} from './types';
