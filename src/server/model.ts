/**
 * What the server needs from a model ({@link CompletionModel}), and how a library
 * {@link LanguageModel} becomes one.
 */

import type { LanguageModel } from '../model';
import type { CompletionStream as LibraryStream } from '../generate';
import type { Completion, GenerateOptions, StateCacheOptions, StateCacheStats } from '../types';
import { checkString, describe, typeError } from '../errors';

/**
 * What the server needs from a model. A {@link LanguageModel} is accepted as it is (see
 * {@link ServableModel}); other models, e.g. the small deterministic fake of the tests,
 * implement this. Continuous batching happens behind this interface, in the model's
 * generation scheduler: the server only keeps many calls in flight at once.
 */
export interface CompletionModel {
  /** Model id shown in /v1/models and responses. */
  readonly id: string;
  /** Token count of a text under the model's tokenizer (prompt limits, usage). */
  countTokens(text: string): number;
  /** One completion. Rejects with an AbortError (name 'AbortError') when options.signal aborts. */
  complete(prompt: string, options: GenerateOptions): Promise<Completion>;
  /** Streams text pieces; `completion` settles with the final accounting when iteration ends. */
  stream(prompt: string, options: GenerateOptions): CompletionStream;
  /** A chat template stored with the model (Jinja, Hugging Face conventions), if any. */
  readonly chatTemplate?: string;
  /** Bounds the model's prompt state cache (a {@link LanguageModel} has one); optional. */
  setStateCache?(options: StateCacheOptions): void;
  /** Counts of the prompt state cache, for /metrics; optional. */
  stateCacheStats?(): StateCacheStats;
  /** Prompt tokens read per step while others generate (a {@link LanguageModel} has it); optional. */
  setPrefillChunk?(tokens: number): void;
}

/**
 * What {@link CompletionModel.stream} returns: text pieces, then the final accounting; a
 * library stream also has `chunks()` (pieces with log-probabilities), which the server prefers.
 */
export type CompletionStream = AsyncIterable<string> & { readonly completion: Promise<Completion>; chunks?: LibraryStream['chunks'] };

/**
 * A model {@link createServer} serves: a {@link CompletionModel}, or a {@link LanguageModel}
 * with a tokenizer, served under `modelId` (default {@link DEFAULT_MODEL_ID}).
 */
export type ServableModel = CompletionModel | LanguageModel;

/** The model id served when neither the model nor the options name one. */
export const DEFAULT_MODEL_ID = 'rnnkit';

/** The metadata key of a model file's chat template (Jinja). */
export const CHAT_TEMPLATE_KEY = 'chat_template';

/**
 * The model as the server calls it: its methods bound (a LanguageModel's use `this`), its id
 * settled (`modelId`, else the model's own, else {@link DEFAULT_MODEL_ID}) and its stored chat
 * template read.
 */
export function servedModel(model: ServableModel, modelId: string | undefined): CompletionModel {
  if (model === null || typeof model !== 'object') {
    throw typeError('ERR_RNNKIT_TYPE', `model: expected a LanguageModel or a CompletionModel, got ${describe(model)}`);
  }
  const m = model as Partial<CompletionModel> & { tokenizer?: unknown; metadata?: Record<string, string> };
  for (const method of ['countTokens', 'complete', 'stream'] as const) {
    if (typeof m[method] !== 'function') {
      throw typeError('ERR_RNNKIT_TYPE', `model.${method}: expected a function, got ${describe(m[method])}`);
    }
  }
  // A LanguageModel built from a vocabulary size alone cannot read the prompts of requests.
  if ('tokenizer' in m && m.tokenizer === null) {
    throw typeError('ERR_RNNKIT_CONFIG', 'model: serving needs a model with a tokenizer (this one reads token ids only)');
  }
  const own = m.id === undefined ? undefined : checkString('model.id', m.id, true);
  const stored = m.chatTemplate ?? m.metadata?.[CHAT_TEMPLATE_KEY];
  const cache =
    typeof m.setStateCache === 'function' && typeof m.stateCacheStats === 'function'
      ? (m as Required<Pick<CompletionModel, 'setStateCache' | 'stateCacheStats'>>)
      : null;
  const prefill = typeof m.setPrefillChunk === 'function' ? (m as Required<Pick<CompletionModel, 'setPrefillChunk'>>) : null;
  return {
    id: modelId ?? own ?? DEFAULT_MODEL_ID,
    countTokens: (text) => model.countTokens(text),
    complete: (prompt, options) => model.complete(prompt, options),
    stream: (prompt, options) => model.stream(prompt, options),
    chatTemplate: stored === undefined ? undefined : checkString(`model.metadata.${CHAT_TEMPLATE_KEY}`, stored, true),
    ...(cache && { setStateCache: (options) => cache.setStateCache(options), stateCacheStats: () => cache.stateCacheStats() }),
    ...(prefill && { setPrefillChunk: (tokens) => prefill.setPrefillChunk(tokens) }),
  };
}
