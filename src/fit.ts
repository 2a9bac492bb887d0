/**
 * `fit`'s machinery shared by every task: the split of a call's options into what JavaScript
 * handles (signal, progress callback, validation data), the dataset's data order and the engine's
 * training options; progress events shaped for users; the history; abort.
 */

import type { CancelToken, NativeHistory, NativeTrainEvent } from '../index';
import { native } from './native';
import { describe, error, typeError } from './errors';
import { abortError } from './generate';
import type { EarlyStoppingOptions, History, OptimizerOptions, ProgressEvent, ScheduleOptions } from './types';

/** Options of `fit` for every task. */
export interface FitOptions {
  /** Epochs to run in this call (a second call runs that many more). Default: 1 when neither `maxSteps` nor `timeLimit` is set. */
  epochs?: number;
  /** Optimizer steps to take in this call. */
  maxSteps?: number;
  /** Stop after this many seconds. */
  timeLimit?: number;
  /** Optimizer (default Adam, lr 2e-3). */
  optimizer?: OptimizerOptions;
  /** Learning-rate schedule over the model's life-long step counter (default constant). */
  schedule?: ScheduleOptions;
  /** Clip the global gradient norm to this value. */
  clipNorm?: number;
  /** Clip every gradient element to ±this value. */
  clipValue?: number;
  /** Seed of the dropout masks (and, for raw arrays, of the data order). Default: the dataset's seed. */
  seed?: number;
  /** Validate every this many steps (default: at the end of each epoch and of the run). */
  validateEvery?: number;
  /** Steps between progress events (default 10; the run's last step is always reported). */
  logEvery?: number;
  /** Stops training between steps; the promise rejects with an AbortError carrying `.history`. */
  signal?: AbortSignal;
  /** Receives progress events. */
  onProgress?: (event: ProgressEvent) => void;
  /**
   * Save a checkpoint (model + optimizer + RNG + position) to `path` every `every` steps and,
   * with `best: true`, at every validation that improves the monitored metric
   * (`earlyStopping.monitor`, else `valLoss`; needs validation data). With `best` and no `every`
   * the file is always the best model so far; with both, the later of the two writes.
   */
  checkpoint?: { path: string; every?: number; best?: boolean };
  /** Stop when validation stops improving, and (by default) end with the best validation's weights. */
  earlyStopping?: EarlyStoppingOptions;
  /** Skip batches whose loss or gradient is not finite instead of stopping with an error. */
  skipNonFinite?: boolean;
}

/** The keys that set a dataset's data order: given to a dataset, not to `fit` on one. */
export const ORDER_KEYS = ['batchSize', 'seqLen', 'stride', 'tbptt', 'shuffle', 'last', 'padId'] as const;

/** Refuses data-order options in a `fit` on a dataset: the dataset fixes them. */
export function refuseOrderKeys(options: Record<string, unknown>, dataset: string): void {
  for (const key of ORDER_KEYS) {
    if (options[key] !== undefined) {
      const e = typeError('ERR_RNNKIT_CONFIG', `options.${key}: the ${dataset} fixes the data order; set ${key} when building it`) as Error & {
        param?: string;
      };
      e.param = `options.${key}`;
      throw e;
    }
  }
}

/** Splits `fit`'s options into the data-order part, the engine's part and JavaScript's part. */
export function splitFitOptions(options: object): { order: Record<string, unknown>; engine: Record<string, unknown>; validation: unknown } {
  if (options === null || typeof options !== 'object' || Array.isArray(options))
    throw typeError('ERR_RNNKIT_TYPE', `options: expected an object, got ${describe(options)}`);
  const { signal: _signal, onProgress: _onProgress, validation, ...rest } = options as Record<string, unknown>;
  const order: Record<string, unknown> = {};
  for (const key of ORDER_KEYS) {
    if (rest[key] !== undefined) order[key] = rest[key];
    delete rest[key];
  }
  return { order, engine: rest, validation };
}

/** Shapes a native progress event into the public {@link ProgressEvent}. */
function progressEvent(raw: NativeTrainEvent, last: ProgressEvent | undefined): ProgressEvent {
  const base: ProgressEvent = last ?? {
    type: 'step',
    step: 0,
    totalSteps: 0,
    epoch: 0,
    epochProgress: 0,
    loss: NaN,
    lr: 0,
    gradNorm: 0,
    tokensPerSecond: 0,
    elapsed: 0,
    eta: 0,
  };
  if (raw.type === 'validation') {
    const valLoss = raw.valLoss!;
    return {
      ...base,
      type: 'validation',
      step: raw.step,
      elapsed: raw.elapsed!,
      valLoss,
      valPerplexity: Math.exp(valLoss),
      valBitsPerToken: valLoss / Math.LN2,
      ...(raw.valAccuracy == null ? {} : { valAccuracy: raw.valAccuracy }),
    };
  }
  if (raw.type === 'checkpoint') return { ...base, type: 'checkpoint', step: raw.step, path: raw.path! };
  if (raw.type === 'checkpointError') return { ...base, type: 'checkpointError', step: raw.step, message: raw.message! };
  return {
    type: 'step',
    step: raw.step,
    totalSteps: raw.totalSteps!,
    epoch: raw.epoch!,
    epochProgress: raw.epochProgress!,
    loss: raw.loss!,
    lr: raw.lr!,
    gradNorm: raw.gradNorm!,
    tokensPerSecond: raw.tokensPerSecond!,
    elapsed: raw.elapsed!,
    eta: raw.eta!,
  };
}

/** Runs a native fit call with progress, abort and history handling shared by every task. */
export async function runFit(
  model: { isTraining: boolean },
  options: FitOptions,
  start: (onEvent: (e: NativeTrainEvent) => void, cancel: CancelToken) => Promise<NativeHistory>,
): Promise<History> {
  const onProgress = options.onProgress;
  if (onProgress !== undefined && typeof onProgress !== 'function')
    throw typeError('ERR_RNNKIT_TYPE', `options.onProgress: expected a function, got ${describe(onProgress)}`);
  const signal = options.signal;
  if (signal !== undefined && !(signal instanceof AbortSignal))
    throw typeError('ERR_RNNKIT_TYPE', `options.signal: expected an AbortSignal, got ${describe(signal)}`);
  if (model.isTraining) throw error('ERR_RNNKIT_BUSY', 'fit: this model is already training; wait for the running fit() to settle or abort it');
  if (signal?.aborted) throw abortError();
  const cancel = new native.CancelToken();
  const onAbort = () => cancel.cancel();
  signal?.addEventListener('abort', onAbort, { once: true });
  let last: ProgressEvent | undefined;
  const onEvent = (raw: NativeTrainEvent) => {
    const event = progressEvent(raw, last);
    if (event.type === 'step') last = event;
    // A throwing handler must not kill the training thread's event delivery.
    try {
      onProgress?.(event);
    } catch (e) {
      process.emitWarning(`rnnkit: onProgress threw: ${e instanceof Error ? e.message : String(e)}`);
    }
  };
  try {
    const history = (await start(onEvent, cancel)) as History;
    // Progress events and the promise travel separately from the training thread: let queued
    // events land first, so 'done' is the last thing a handler sees.
    await new Promise((resolve) => setImmediate(resolve));
    if (last) {
      // The run succeeded: a throwing handler must not turn it into a rejection.
      try {
        onProgress?.({ ...last, type: 'done', eta: 0 });
      } catch (e) {
        process.emitWarning(`rnnkit: onProgress threw: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    if (history.stopReason === 'aborted') {
      const e = abortError() as Error & { history?: History };
      e.message = 'training was aborted; the model keeps the weights of the last completed step';
      e.history = history;
      throw e;
    }
    return history;
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}
