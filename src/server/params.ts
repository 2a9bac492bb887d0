/**
 * The request parameters `/v1/completions` and `/v1/chat/completions` share, checked and mapped
 * to the library's {@link GenerateOptions}: token budget, sampling (`temperature`, `top_p`,
 * rnnkit's `top_k` and `repetition_penalty`), OpenAI's `presence_penalty`/`frequency_penalty`
 * (applied by the engine's sampler), `stop`, `seed`, `n`, `stream` and `stream_options`.
 * Values are range-checked here only as far as OpenAI's API defines them; the engine checks
 * every option again when generation starts (one truth), and its refusals are 400s too.
 */

import { checkBoolean, checkInt, checkNumber, checkString, describe, rangeError } from '../errors';
import type { GenerateOptions } from '../types';
import type { CompletionModel } from './model';
import type { Resolved } from './options';
import { ApiError, checked, invalid, isClientError } from './errors';

/** Parameters both endpoints accept. */
export const COMMON_PARAMS = [
  'model',
  'max_tokens',
  'temperature',
  'top_p',
  'top_k',
  'repetition_penalty',
  'presence_penalty',
  'frequency_penalty',
  'stop',
  'seed',
  'stream',
  'stream_options',
  'n',
  'user',
  'logit_bias',
];

/** What both endpoints take from a request. */
export interface CommonRequest {
  /** Generation options of choice 0 (choice i gets `seed + i` when a seed is given). */
  options: GenerateOptions;
  n: number;
  stream: boolean;
  includeUsage: boolean;
}

/** Refuses keys outside `allowed` as OpenAI does (`Unrecognized request argument supplied`). */
export function checkKnown(body: Record<string, unknown>, allowed: ReadonlySet<string>): void {
  for (const key of Object.keys(body)) {
    if (!allowed.has(key)) throw invalid(key, `Unrecognized request argument supplied: ${key}`, 'unknown_parameter');
  }
}

/** Whether a parameter is present (OpenAI treats `null` as absent). */
export function given(b: Record<string, unknown>, key: string): boolean {
  return b[key] !== undefined && b[key] !== null;
}

function positive(name: string, value: unknown, max: number): number {
  const x = checkNumber(name, value, -Infinity, max);
  if (x <= 0) throw rangeError('ERR_RNNKIT_RANGE', `${name}: expected a number in (0, ${max}], got ${describe(x)}`);
  return x;
}

function parseStop(value: unknown): string[] {
  const list = Array.isArray(value) ? value : [value];
  if (list.length > 4) throw invalid('stop', `stop: at most 4 stop sequences are allowed, got ${list.length}`);
  return list.map((s, i) => checked('stop', () => checkString(Array.isArray(value) ? `stop[${i}]` : 'stop', s, true)));
}

/** Refuses a parameter this server does not implement unless it carries its neutral value. */
export function checkNeutral(b: Record<string, unknown>, name: string, ok: (v: unknown) => boolean, allowed: string): void {
  const v = b[name];
  if (v != null && !ok(v)) throw invalid(name, `${name}: not supported by this server (allowed: ${allowed}), got ${describe(v)}`, 'unsupported_parameter');
}

/** The model a request names must be the one served (404 `model_not_found` otherwise). */
export function checkModel(b: Record<string, unknown>, model: CompletionModel): void {
  if (!given(b, 'model')) return;
  const name = checked('model', () => checkString('model', b.model));
  if (name !== model.id) {
    throw new ApiError(
      404,
      `The model ${JSON.stringify(name)} does not exist; this server serves ${JSON.stringify(model.id)}`,
      'invalid_request_error',
      'model',
      'model_not_found',
    );
  }
}

/** Parses the shared parameters; `maxTokensKey` names the budget the request gave (`max_tokens` or `max_completion_tokens`). */
export function parseCommon(b: Record<string, unknown>, limits: Resolved, maxTokensKey = 'max_tokens'): CommonRequest {
  const options: GenerateOptions = {
    maxTokens: given(b, maxTokensKey) ? checked(maxTokensKey, () => checkInt(maxTokensKey, b[maxTokensKey], 1, limits.maxTokens)) : limits.defaultMaxTokens,
  };
  if (given(b, 'temperature')) {
    const t = checked('temperature', () => checkNumber('temperature', b.temperature, 0, 2));
    if (t === 0) options.greedy = true;
    else options.temperature = t;
  }
  if (given(b, 'top_p')) options.topP = checked('top_p', () => positive('top_p', b.top_p, 1));
  if (given(b, 'top_k')) options.topK = checked('top_k', () => checkInt('top_k', b.top_k, 0));
  if (given(b, 'repetition_penalty')) {
    options.repetitionPenalty = checked('repetition_penalty', () => positive('repetition_penalty', b.repetition_penalty, Infinity));
  }
  if (given(b, 'presence_penalty')) options.presencePenalty = checked('presence_penalty', () => checkNumber('presence_penalty', b.presence_penalty, -2, 2));
  if (given(b, 'frequency_penalty'))
    options.frequencyPenalty = checked('frequency_penalty', () => checkNumber('frequency_penalty', b.frequency_penalty, -2, 2));
  if (given(b, 'stop')) {
    const stop = parseStop(b.stop);
    if (stop.length > 0) options.stop = stop;
  }
  if (given(b, 'seed')) options.seed = checked('seed', () => checkInt('seed', b.seed, 0));
  const n = given(b, 'n') ? checked('n', () => checkInt('n', b.n, 1, limits.maxChoices)) : 1;
  const stream = given(b, 'stream') ? checked('stream', () => checkBoolean('stream', b.stream)) : false;
  let includeUsage = false;
  if (given(b, 'stream_options')) {
    if (!stream) throw invalid('stream_options', 'stream_options: only allowed when stream is true');
    const so = b.stream_options;
    if (typeof so !== 'object' || Array.isArray(so)) throw invalid('stream_options', `stream_options: expected an object, got ${describe(so)}`, 'invalid_type');
    const usage = (so as Record<string, unknown>).include_usage;
    if (usage != null) includeUsage = checked('stream_options', () => checkBoolean('stream_options.include_usage', usage));
  }
  if (given(b, 'user')) checked('user', () => checkString('user', b.user));
  checkNeutral(b, 'logit_bias', (v) => typeof v === 'object' && !Array.isArray(v) && Object.keys(v as object).length === 0, 'null or {}');
  return { options, n, stream, includeUsage };
}

/** Counts a prompt's tokens and enforces `maxPromptTokens`; a prompt the model cannot read is a 400. */
export function countPrompt(model: CompletionModel, prompt: string, limits: Resolved, param: string): number {
  let tokens: number;
  try {
    tokens = model.countTokens(prompt);
  } catch (e) {
    if (isClientError(e)) throw invalid(param, `${param}: ${e.message}`);
    throw e;
  }
  if (tokens > limits.maxPromptTokens) {
    throw invalid(param, `${param}: ${tokens} tokens exceeds the server's limit of ${limits.maxPromptTokens} tokens`, 'context_length_exceeded');
  }
  return tokens;
}

/** Options of choice `i` of `n`: its own seed (`seed + i`) when a seed was given, so choices differ but repeat. */
export function choiceOptions(options: GenerateOptions, i: number): GenerateOptions {
  return options.seed === undefined || i === 0 ? options : { ...options, seed: (options.seed + i) % Number.MAX_SAFE_INTEGER };
}
