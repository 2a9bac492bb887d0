/**
 * Public option and result types of rnnkit. Every field is documented here once; the classes in
 * `model.ts`, `generate.ts` and the CLI/server use these types.
 */

/** The recurrent cell: Elman RNN, LSTM (gates i,f,g,o) or GRU (gates r,z,n), PyTorch semantics. */
export type CellType = 'rnn' | 'lstm' | 'gru';

/** Nonlinearity of the Elman RNN cell. */
export type Nonlinearity = 'tanh' | 'relu';

/** What a model computes. */
export type Task = 'language_model' | 'classify' | 'tag' | 'regress';

/** How a many-to-one model reduces the real steps of a sequence to one vector. */
export type Pooling = 'last' | 'mean' | 'max';

/** Weight initialisation. */
export interface InitOptions {
  /** `'pytorch'` (default: U(-1/√H, 1/√H) like torch.nn), or `'xavier'` (Glorot uniform). */
  scheme?: 'pytorch' | 'xavier';
  /** Orthogonal recurrent weights (per gate block). Default false. */
  orthogonalRecurrent?: boolean;
  /** LSTM forget-gate bias value (bias_ih f block). Default: left as the scheme draws it. */
  forgetBias?: number;
}

/** Architecture shared by every task. */
export interface ArchitectureOptions {
  /** Recurrent cell. Default `'lstm'`. */
  cell?: CellType;
  /** Elman RNN only: `'tanh'` (default) or `'relu'`. */
  nonlinearity?: Nonlinearity;
  /** Hidden units per direction. Default 128. */
  hiddenSize?: number;
  /** Stacked recurrent layers. Default 1. */
  numLayers?: number;
  /** Dropout between recurrent layers, training only. Default 0. */
  dropout?: number;
  /** Random seed for initialisation (and the default training seed). Default 0. */
  seed?: number;
  /** Initialisation scheme. */
  init?: InitOptions;
}

/** Options of a language model (next-token prediction). */
export interface LanguageModelOptions extends ArchitectureOptions {
  /** The tokenizer; its vocabulary size fixes the model's. Either this or `vocabSize`. */
  tokenizer?: import('./tokenizer').Tokenizer;
  /** Vocabulary size when no tokenizer is given. */
  vocabSize?: number;
  /** Embedding width E. Default 64. */
  embedDim?: number;
  /** Add the Elman input-to-output term `W_xo x_t` to the logits. Default false. */
  skip?: boolean;
}

/** Optimizer, with PyTorch's definitions. */
export interface OptimizerOptions {
  /** Default `'adam'`. */
  type?: 'sgd' | 'adam' | 'adamw' | 'rmsprop' | 'adagrad';
  /** Learning rate. Default 2e-3 (adam/adamw/rmsprop), 0.1 (sgd), 0.01 (adagrad). */
  lr?: number;
  /** SGD / RMSprop momentum. */
  momentum?: number;
  /** SGD Nesterov momentum. */
  nesterov?: boolean;
  /** SGD dampening. */
  dampening?: number;
  /** L2 penalty (decoupled for AdamW). */
  weightDecay?: number;
  /** Adam betas. Default [0.9, 0.999]. */
  betas?: [number, number];
  /** Denominator epsilon. */
  eps?: number;
  /** RMSprop smoothing constant. Default 0.99. */
  alpha?: number;
  /** Centered RMSprop. */
  centered?: boolean;
  /** Adagrad learning-rate decay. */
  lrDecay?: number;
}

/** Learning-rate schedule, evaluated per optimizer step. */
export interface ScheduleOptions {
  /** Default `'constant'`. */
  type?: 'constant' | 'step' | 'exponential' | 'cosine';
  /** Linear warm-up from 0 over this many steps, then the schedule. Default 0. */
  warmupSteps?: number;
  /** `'step'`: multiply by `gamma` every `stepSize` steps. */
  stepSize?: number;
  /** `'step'`/`'exponential'` factor. */
  gamma?: number;
  /** `'cosine'`: period in steps (default: the run's total steps). */
  tMax?: number;
  /** `'cosine'`: final learning rate. Default 0. */
  etaMin?: number;
}

/** One progress event of `fit`. */
export interface ProgressEvent {
  /** `'step'` after optimizer steps, `'validation'` after an evaluation, `'checkpoint'` after a save, `'done'` at the end. */
  type: 'step' | 'validation' | 'checkpoint' | 'done';
  /** Optimizer steps done so far. */
  step: number;
  /** Steps planned (may be an estimate when `timeLimit` ends the run). */
  totalSteps: number;
  /** Current epoch (0-based), fractional progress in `epochProgress`. */
  epoch: number;
  /** Fraction of the current epoch done, 0..1. */
  epochProgress: number;
  /** Mean training loss (nats per counted position) over the steps since the last step event. */
  loss: number;
  /** Learning rate of the last step. */
  lr: number;
  /** Global gradient norm before clipping, last step. */
  gradNorm: number;
  /** Training tokens (counted positions) per second since the start. */
  tokensPerSecond: number;
  /** Seconds since the start. */
  elapsed: number;
  /** Estimated seconds remaining. */
  eta: number;
  /** Validation loss (nats per token), on `'validation'` events. */
  valLoss?: number;
  /** Validation perplexity exp(valLoss). */
  valPerplexity?: number;
  /** Validation bits per token valLoss / ln 2. */
  valBitsPerToken?: number;
  /** Validation accuracy (classification and tagging). */
  valAccuracy?: number;
  /** Path written, on `'checkpoint'` events. */
  path?: string;
}

/** What `fit` returns. */
export interface History {
  /** Step numbers of the loss points. */
  steps: number[];
  /** Training loss at those steps (mean since the previous point). */
  loss: number[];
  /** Step numbers of the validation points. */
  valSteps: number[];
  /** Validation loss at those steps. */
  valLoss: number[];
  /** Optimizer steps done in this call. */
  stepsDone: number;
  /** Counted training positions processed. */
  tokens: number;
  /** Wall time of the run in seconds. */
  elapsed: number;
  /** Why the run ended. */
  stopReason: 'completed' | 'time_limit' | 'max_steps' | 'aborted';
}

/** Options of `generate`, `stream`, `complete` and `generateBatch`. */
export interface GenerateOptions {
  /** Maximum tokens to produce. Default 200. */
  maxTokens?: number;
  /** Softmax temperature (> 0). Default 1. */
  temperature?: number;
  /** Keep only the k most likely tokens (0 = off). Default 0. */
  topK?: number;
  /** Nucleus sampling: keep the smallest set of tokens with probability ≥ p. Default 1 (off). */
  topP?: number;
  /** Penalise tokens already in the context (CTRL-style; 1 = off). Default 1. */
  repetitionPenalty?: number;
  /** Generation ends before the first occurrence of any of these strings. */
  stop?: string | string[];
  /** Seed of the sampler; the same seed gives the same text. Default: random. */
  seed?: number;
  /** Argmax decoding (ignores temperature/topK/topP). Default false. */
  greedy?: boolean;
  /** Beam search with this many beams (1 = greedy decoding); unset = sampling. Not with streaming. */
  beams?: number;
  /** Beam search length normalisation exponent α (score / len^α). Default 1. */
  lengthPenalty?: number;
  /** Cancels generation; the promise rejects with an AbortError. */
  signal?: AbortSignal;
}

/** A finished generation with its accounting. */
export interface Completion {
  /** The generated text (prompt not included; stop string not included). */
  text: string;
  /** `'stop'` when a stop string ended it, `'length'` at `maxTokens`, `'abort'` when cancelled. */
  finishReason: 'stop' | 'length' | 'abort';
  /** Tokens in the prompt. */
  promptTokens: number;
  /** Tokens generated. */
  completionTokens: number;
}

/** Result of `evaluate`. */
export interface EvaluateResult {
  /** Mean cross-entropy in nats per predicted token (or MSE for regression). */
  loss: number;
  /** exp(loss) (token models). */
  perplexity: number;
  /** loss / ln 2 (token models). */
  bitsPerToken: number;
  /** Predicted positions counted. */
  tokens: number;
  /** Accuracy where it applies (classification, tagging). */
  accuracy?: number;
}
