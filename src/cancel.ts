/**
 * Native work stopped by an AbortSignal: the engine checks a `CancelToken` between its batches
 * (evaluation) or steps (beam search), and the promise rejects with an AbortError.
 */

import type { CancelToken } from '../index';
import { native } from './native';
import { describe, error, typeError } from './errors';

/** `signal` checked: an AbortSignal or undefined. */
export function checkSignal(name: string, signal: unknown): AbortSignal | undefined {
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw typeError('ERR_RNNKIT_TYPE', `${name}: expected an AbortSignal, got ${describe(signal)}`);
  return signal;
}

/** The AbortError (`code: 'ABORT_ERR'`) of `what` (`"evaluation"`). */
export function abortedError(what: string): Error {
  const e = error('ABORT_ERR', `${what} was aborted`);
  e.name = 'AbortError';
  return e;
}

/**
 * Runs `start` with a CancelToken that `signal` cancels; rejects with {@link abortedError} when
 * the signal aborted (before the call or while it ran), whatever the native call settled with.
 */
export async function withSignal<T>(signal: AbortSignal | undefined, what: string, start: (cancel: CancelToken) => Promise<T>): Promise<T> {
  if (signal?.aborted) throw abortedError(what);
  const cancel = new native.CancelToken();
  const onAbort = () => cancel.cancel();
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    return await start(cancel);
  } catch (e) {
    if (signal?.aborted) throw abortedError(what);
    throw e;
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}
