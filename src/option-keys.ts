/**
 * Unknown keys of the option objects TypeScript handles itself (tokenizer, server, save
 * options) are refused by the engine's own rule, so every option object of the library refuses
 * them alike: code ERR_RNNKIT_UNKNOWN_OPTION, a did-you-mean, `err.param`.
 */

import { native } from './native';

/** Refuses keys of `options` not in `known` (keys whose value is `undefined` count as absent). */
export function checkOptionKeys(param: string, options: object, known: readonly string[]): void {
  const keys = Object.keys(options).filter((k) => (options as Record<string, unknown>)[k] !== undefined);
  native.checkOptionKeys(param, keys, [...known]);
}
