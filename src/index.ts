/**
 * rnnkit: recurrent neural networks (Elman RNN, LSTM, GRU) for Node.js with a Rust core.
 *
 * ```ts
 * import { TextCorpus, createLanguageModel } from 'rnnkit';
 * const corpus = TextCorpus.fromString(text, { seqLen: 64, batchSize: 32, validation: 0.1 });
 * const model = createLanguageModel({ tokenizer: corpus.tokenizer, cell: 'lstm', hiddenSize: 256 });
 * await model.fit(corpus, { epochs: 1, onProgress: (e) => console.log(e.step, e.loss) });
 * console.log(await model.generate('It is a truth', { temperature: 0.8 }));
 * await model.save('model.safetensors');
 * ```
 */
export { engineInfo, setThreads } from './native';
export type { EngineInfo } from './native';
export * from './types';
export type { RnnkitErrorCode } from './errors';
export {
  SPECIAL_TOKENS,
  tokenizerFromJSON,
  createTokenizerFitter,
  fitTokenizer,
  type TokenizerType,
  type SpecialToken,
  type UnknownPolicy,
  type PunctuationMode,
  type SpecialIds,
  type TokenizerJSON,
  type EncodeOptions,
  type DecodeOptions,
  type StreamEncoder,
  type StreamDecoder,
  type Tokenizer,
  type CharTokenizerOptions,
  type WordTokenizerOptions,
  type ByteTokenizerOptions,
  type TokenizerOptions,
  type TokenizerFitter,
} from './tokenizer';
export {
  IGNORE_INDEX,
  TextCorpus,
  LabelledDataset,
  TaggedDataset,
  DenseDataset,
  SpeechDataset,
  AudioDataset,
  FeatureStats,
  parseCSV,
  readJSONLRecords,
  type BatchingOptions,
  type SequenceBatch,
  type Split,
  type Label,
  type CsvRecord,
  type TextCorpusOptions,
  type TextFileOptions,
  type TokenBatch,
  type LabelledBatch,
  type LabelledCsvOptions,
  type LabelledExample,
  type LabelledJsonlOptions,
  type LabelledOptions,
  type SpeechBatch,
  type SpeechDatasetOptions,
  type AudioDatasetOptions,
  type Utterance,
  type TaggedBatch,
  type TaggedExample,
  type TaggedOptions,
  type DenseBatch,
  type DenseOptions,
} from './dataset';
export {
  Model,
  LanguageModel,
  GenerationSession,
  createLanguageModel,
  type LanguageModelFitOptions,
  type ModelConfigJSON,
  type ExportOnnxOptions,
  type OnnxExport,
  type TrainStepOptions,
} from './model';
export type { FitOptions } from './fit';
export {
  profileTexts,
  recommendOptions,
  recommendSeq2SeqOptions,
  recommendSpeechOptions,
  type DataProfile,
  type Recommendation,
  type Seq2SeqRecommendation,
  type SpeechRecommendation,
  type TokenizerRecommendation,
  type DefaultsTask,
} from './defaults';
export { loadModel, loadModelSync, loadLanguageModel, modelFileTask, type AnyModel, type LoadOptions, type Precision } from './load';
export {
  readWav,
  readWavSync,
  resampleAudio,
  resampleAudioSync,
  logMelFeatures,
  logMelFeaturesSync,
  featureConfig,
  type WavAudio,
  type LogMelOptions,
  type LogMelFeatures,
} from './audio';
export { attentionSvg, type AttentionSvgOptions } from './attention-map';
export { PairDataset, readPairs, type PairExample, type PairOptions, type PairColumns, type PairFileOptions, type ReadPairsOptions } from './dataset/pairs';
export {
  Seq2SeqModel,
  createSeq2Seq,
  type Seq2SeqOptions,
  type Seq2SeqConfigJSON,
  type Seq2SeqFitOptions,
  type Seq2SeqSaveOptions,
  type Seq2SeqStreamOptions,
  type Seq2SeqDecodeOptions,
  type TranslateOptions,
  type AttentionTranslation,
  type Seq2SeqEvaluateOptions,
  type Seq2SeqEvaluation,
} from './tasks/seq2seq';
export { importStateDict, type ImportStateDictOptions, type StateDictNames } from './import';
export { ONNX_OPSET, type OnnxGraph, type OnnxTensorInfo } from './onnx';
export { StopFilter, type CompletionStream, type StreamChunk } from './generate';
export {
  createServer,
  createHandler,
  DEFAULT_MODEL_ID,
  DEFAULT_CHAT_TEMPLATE,
  SERVER_DEFAULTS,
  type CompletionModel,
  type ServableModel,
  type ServerOptions,
  type RnnkitServer,
  type RnnkitHandler,
  type CloseOptions,
  type LogEntry,
} from './server';
export type { SamplerOptions } from './session';
export {
  SequenceModel,
  Classifier,
  Tagger,
  Regressor,
  createClassifier,
  createTagger,
  createRegressor,
  type ClassifierOptions,
  type TaggerOptions,
  type RegressorOptions,
  type SequenceInputOptions,
  type SequenceFitOptions,
  type ClassWeights,
  type ClassMetrics,
  type ClassificationEvaluation,
  type RegressionEvaluation,
  type EvaluateRowsOptions,
  type ClassPrediction,
  type TagPrediction,
  type ClassifyExample,
  type TagExample,
  type RegressExample,
  SpeechRecognizer,
  createSpeechRecognizer,
  type SpeechRecognizerOptions,
  type SpeechFeatureOptions,
  type SpeechFitOptions,
  type TranscribeOptions,
  type SpeechEvaluation,
  type EvaluateSpeechOptions,
} from './tasks';
