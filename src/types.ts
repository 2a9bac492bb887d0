/**
 * Public option and result types of rnnkit. Every field is documented here once; the classes in
 * `model.ts`, `generate.ts` and the CLI/server use these types. Options are validated once, in
 * the engine: an unknown key is a TypeError with code `ERR_RNNKIT_UNKNOWN_OPTION` (with a
 * did-you-mean), and every engine error names the offending option in `err.param`.
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
  /** Random seed of the initial weights. Default 0. (Dropout masks: `fit`'s `seed`.) */
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

/** Learning-rate schedule, evaluated per optimizer step of the model's life-long step counter (so it continues across `fit` calls and resumed checkpoints). */
export interface ScheduleOptions {
  /** Default `'constant'`. */
  type?: 'constant' | 'step' | 'exponential' | 'cosine';
  /** Linear warm-up over this many steps (step s < W runs at lr·(s+1)/W), then the schedule from its start. Default 0. */
  warmupSteps?: number;
  /** `'step'`: multiply by `gamma` every `stepSize` steps. */
  stepSize?: number;
  /** `'step'`/`'exponential'` factor. */
  gamma?: number;
  /** `'cosine'`: period in steps; after it the rate stays at `etaMin`. Default: the end of this `fit` call's `maxSteps` (required without `maxSteps`). */
  tMax?: number;
  /** `'cosine'`: final learning rate. Default 0. */
  etaMin?: number;
}

/** One progress event of `fit`. */
export interface ProgressEvent {
  /**
   * `'step'` every `logEvery` optimizer steps (and always for the call's last step), `'validation'` after an evaluation, `'checkpoint'` after a save,
   * `'checkpointError'` when a checkpoint could not be written (training goes on; `message` says why), `'done'` last.
   */
  type: 'step' | 'validation' | 'checkpoint' | 'checkpointError' | 'done';
  /** The model's step counter: optimizer steps over its life, this call's included. */
  step: number;
  /** The step counter at which this call is planned to end (an estimate when `timeLimit` ends it). */
  totalSteps: number;
  /** Current epoch of the data (0-based, counted over the model's life), fractional progress in `epochProgress`. */
  epoch: number;
  /** Fraction of the current epoch done, 0..1. */
  epochProgress: number;
  /** Mean training loss (nats per counted position) over the steps since the last step event. */
  loss: number;
  /** Learning rate of the last step. */
  lr: number;
  /** Global gradient norm before clipping, last step. */
  gradNorm: number;
  /** Training tokens (counted positions) per second since the start of this call. */
  tokensPerSecond: number;
  /** Seconds since the start of this call. */
  elapsed: number;
  /** Estimated seconds remaining in this call. */
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
  /** Why the checkpoint was not written (naming the path), on `'checkpointError'` events. */
  message?: string;
}

/** What `fit` returns: every step of this call. */
export interface History {
  /** The step number (model's life-long counter) of every step of this call, one entry per step. */
  steps: number[];
  /** Training loss of each of those steps (NaN for a non-finite batch skipped under `skipNonFinite`). */
  loss: number[];
  /** Step numbers of the validation points. */
  valSteps: number[];
  /** Validation loss at those steps. */
  valLoss: number[];
  /** Optimizer steps done in this call. */
  stepsDone: number;
  /** Counted training positions processed in this call. */
  tokens: number;
  /** Wall time of this call in seconds. */
  elapsed: number;
  /** Why the run ended: `'early_stopping'` when `earlyStopping.patience` validations in a row did not improve the monitored metric. */
  stopReason: 'completed' | 'time_limit' | 'max_steps' | 'aborted' | 'early_stopping';
  /** With `earlyStopping` or `checkpoint.best`: the step of the best validation (absent before any). */
  bestStep?: number;
  /** The validation loss at `bestStep`. */
  bestValLoss?: number;
  /** The validation accuracy at `bestStep`, when `earlyStopping.monitor` is `'valAccuracy'`. */
  bestValAccuracy?: number;
}

/**
 * Early stopping: after every validation (at epoch ends, or every `validateEvery` steps) the
 * monitored metric is compared with the best so far; after `patience` validations without an
 * improvement the run stops and resolves with `stopReason: 'early_stopping'`. Needs validation
 * data (a dataset's validation split, or `options.validation`).
 */
export interface EarlyStoppingOptions {
  /** `'valLoss'` (default; an improvement is lower by more than `minDelta`) or `'valAccuracy'` (higher by more than `minDelta`; class heads only). */
  monitor?: 'valLoss' | 'valAccuracy';
  /** Validations without improvement before the run stops (integer >= 1, default 3). */
  patience?: number;
  /** Margin an improvement must beat the best value by (>= 0, default 0). */
  minDelta?: number;
  /** Put back the weights of the best validation when the run ends (not when it is aborted). Default true; the engine keeps one copy of the parameters for it. */
  restoreBest?: boolean;
}

/**
 * Options of `generate`, `stream`, `complete` and `generateBatch`, validated natively (an unknown
 * key is a TypeError `ERR_RNNKIT_UNKNOWN_OPTION`, `err.param` names the option). The sampling
 * fields are also `GenerationSession`'s `SamplerOptions`.
 */
export interface GenerateOptions {
  /** Maximum tokens to produce, an integer in [0, 1 000 000]. Default 200. */
  maxTokens?: number;
  /** Softmax temperature, finite and ≥ 0; 0 means greedy (argmax). Default 1. */
  temperature?: number;
  /** Keep only the k most likely tokens (0 = off). Default 0. */
  topK?: number;
  /** Nucleus sampling: keep the smallest set of most likely tokens whose probability reaches p, in (0, 1]. Default 1 (off). */
  topP?: number;
  /** Penalise tokens already in the context (CTRL-style), > 0; 1 = off. Default 1. */
  repetitionPenalty?: number;
  /** OpenAI's presence penalty, in [-2, 2]: subtracted once from the logit of every token in the context (prompt and generated). Default 0. */
  presencePenalty?: number;
  /** OpenAI's frequency penalty, in [-2, 2]: subtracted from a token's logit once per occurrence in the context. Default 0. */
  frequencyPenalty?: number;
  /**
   * Report each generated token's log-probability (under the model's own distribution, before
   * penalties, temperature and filters) with this many most likely alternatives, in [0, 20]
   * (`Completion.logprobs`). Default: none. Not with beam search.
   */
  logprobs?: number;
  /** Generation ends before the first occurrence of any of these (non-empty) strings. */
  stop?: string | string[];
  /** Seed of the sampler, an integer in [0, 2^53 − 1]; the same seed gives the same text. Default: random. */
  seed?: number;
  /** Argmax decoding (ignores temperature/topK/topP). Default false. */
  greedy?: boolean;
  /** Beam search with this many beams, in [1, 256] (1 = greedy decoding); unset = sampling. Not with streaming. */
  beams?: number;
  /**
   * Beam search: GNMT's length-penalty exponent α (Wu et al. 2016), finite. A finished hypothesis
   * of `len` generated tokens (stop token included) scores `logprob / ((5 + len) / 6)^α`; 0 ranks
   * by raw log-probability, α > 0 favours longer hypotheses. Default 1.
   */
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
  /** Each generated token's log-probability, when `GenerateOptions.logprobs` was given. */
  logprobs?: TokenLogprob[];
}

/** One generated token's log-probability and its most likely alternatives. */
export interface TokenLogprob {
  /** Token id. */
  id: number;
  /** The token's text alone. */
  token: string;
  /** Natural log of its probability under the model. */
  logprob: number;
  /** The most likely tokens at that position (as many as `GenerateOptions.logprobs`), most likely first. */
  top: Array<{ id: number; token: string; logprob: number }>;
}

/** Options of a language model's `evaluate`. */
export interface EvaluateOptions {
  /** Steps per native batch (default 256; does not change the result). */
  chunk?: number;
  /**
   * Contiguous lanes of the stream read together as one batch, each carrying its own state from
   * the zero state at its first token (1: the stateful protocol exactly; more: faster, the lanes'
   * restarts the only difference; at most 4096). Default: the engine's, 1 below 2,097,152 tokens,
   * then one per 1,048,576 tokens, at most 64.
   */
  lanes?: number;
  /** Aborts the evaluation between chunks (an AbortError, `code: 'ABORT_ERR'`). */
  signal?: AbortSignal;
}

/** Options of `evaluateFile`. */
export interface EvaluateFileOptions extends EvaluateOptions {
  /** Bytes read at a time (default 1 MiB). */
  chunkSize?: number;
  /** Replace invalid UTF-8 with U+FFFD instead of refusing the file. */
  lossy?: boolean;
}

/** Result of a language model's `evaluate` (sequence tasks: `ClassificationEvaluation`, `RegressionEvaluation`). */
export interface EvaluateResult {
  /** Mean cross-entropy in nats per predicted token. */
  loss: number;
  /** exp(loss) (token models). */
  perplexity: number;
  /** loss / ln 2 (token models). */
  bitsPerToken: number;
  /** Predicted positions counted. */
  tokens: number;
  /** Next-token accuracy: the fraction of predicted tokens that are the model's most likely token. */
  accuracy?: number;
}

/** Options of {@link LanguageModel.setStateCache}. */
export interface StateCacheOptions {
  /**
   * Bytes the cached states may take (states, logits and keys counted); least recently used
   * states are dropped beyond it. 0 turns the cache off and empties it. Default (before any
   * call): 0.
   */
  maxBytes: number;
}

/**
 * Counts of a language model's prompt state cache ({@link LanguageModel.setStateCache}). A
 * prompt counts as a hit or a miss when it is at least one chunk (64 tokens) long.
 */
export interface StateCacheStats {
  /** States held now. */
  entries: number;
  /** Bytes they take. */
  bytes: number;
  /** The bound on `bytes`; 0 = off. */
  maxBytes: number;
  /** Prompts that restored a cached state. */
  hits: number;
  /** Prompts that found none. */
  misses: number;
  /** Prompt tokens not read again thanks to hits. */
  reusedTokens: number;
  /** States dropped to stay within `maxBytes`. */
  evictions: number;
}
