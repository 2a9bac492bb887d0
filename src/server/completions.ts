/**
 * `POST /v1/completions`: OpenAI's legacy text completions. A prompt or an array of prompts,
 * `n` choices per prompt (choice index `prompt × n + j`), `echo` (the prompt before the text),
 * `logprobs` (0–5 alternatives per token, OpenAI's legacy `{tokens, token_logprobs,
 * top_logprobs, text_offset}`), the shared parameters of `params.ts`. Token-id prompts,
 * `suffix` and `best_of` other than `n` are refused; so is `echo` with `logprobs` (it would
 * need the prompt's own log-probabilities; OpenAI's current models refuse it too).
 */

import { checkBoolean, checkInt, describe } from '../errors';
import type { Completion, TokenLogprob } from '../types';
import type { CompletionModel } from './model';
import type { Resolved } from './options';
import { checked, invalid, objectBody } from './errors';
import type { Base, Choice, Format, Run, Usage } from './generation';
import { checkKnown, checkModel, checkNeutral, choiceOptions, COMMON_PARAMS, countPrompt, given, parseCommon } from './params';

const PARAMS = new Set([...COMMON_PARAMS, 'prompt', 'echo', 'logprobs', 'best_of', 'suffix']);

/** OpenAI's limit of alternatives in the legacy `logprobs`. */
const MAX_LOGPROBS = 5;

function parsePrompts(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value) && value.length > 0) {
    if (value.every((v) => typeof v === 'string')) return value as string[];
    if (value.every((v) => typeof v === 'number' || Array.isArray(v))) {
      throw invalid('prompt', 'prompt: token-id prompts are not supported; send the prompt as text', 'unsupported_value');
    }
    const bad = value.findIndex((v) => typeof v !== 'string');
    throw invalid('prompt', `prompt[${bad}]: expected a string, got ${describe(value[bad])}`, 'invalid_type');
  }
  throw invalid('prompt', `prompt: expected a string or a non-empty array of strings, got ${describe(value)}`, 'invalid_type');
}

/** Checks a completions request; throws 400s naming the parameter. */
export function parseCompletions(body: unknown, model: CompletionModel, limits: Resolved): Run {
  const b = objectBody(body);
  checkKnown(b, PARAMS);
  checkModel(b, model);
  if (b.prompt === undefined) throw invalid('prompt', 'prompt: required', 'missing_required_parameter');
  const prompts = parsePrompts(b.prompt);
  const common = parseCommon(b, limits);
  if (prompts.length * common.n > limits.maxChoices) {
    throw invalid('n', `n × prompts: ${common.n} × ${prompts.length} choices exceeds the server's limit of ${limits.maxChoices}`);
  }
  checkNeutral(b, 'suffix', (v) => v === '', 'null or ""');
  checkNeutral(b, 'best_of', (v) => v === common.n, `null or n (${common.n})`);
  const echo = given(b, 'echo') ? checked('echo', () => checkBoolean('echo', b.echo)) : false;
  if (given(b, 'logprobs')) {
    common.options.logprobs = checked('logprobs', () => checkInt('logprobs', b.logprobs, 0, MAX_LOGPROBS));
    if (echo) throw invalid('echo', 'echo: not supported together with logprobs', 'unsupported_value');
  }
  const choices: Choice[] = [];
  prompts.forEach((prompt, p) => {
    const promptTokens = countPrompt(model, prompt, limits, prompts.length === 1 ? 'prompt' : `prompt[${p}]`);
    for (let j = 0; j < common.n; j++) {
      choices.push({ index: p * common.n + j, promptIndex: p, prompt, promptTokens, options: choiceOptions(common.options, j), prefix: echo ? prompt : '' });
    }
  });
  return { choices, stream: common.stream, includeUsage: common.includeUsage, format: COMPLETIONS_FORMAT };
}

/** OpenAI's legacy log-probabilities of `entries`, their text starting at `offset`. */
function legacyLogprobs(entries: TokenLogprob[] | undefined, offset: number): object | null {
  if (entries === undefined) return null;
  const text_offset: number[] = [];
  let at = offset;
  for (const e of entries) {
    text_offset.push(at);
    at += e.token.length;
  }
  return {
    tokens: entries.map((e) => e.token),
    token_logprobs: entries.map((e) => e.logprob),
    top_logprobs: entries.map((e) => Object.fromEntries(e.top.map((t) => [t.token, t.logprob]))),
    text_offset,
  };
}

function logprobsOf(choice: Choice, c: Completion | undefined): object | null {
  return choice.options.logprobs === undefined ? null : legacyLogprobs(c?.logprobs ?? [], choice.prefix.length);
}

const COMPLETIONS_FORMAT: Format = {
  idPrefix: 'cmpl',
  answer(base: Base, results, usage: Usage) {
    return {
      id: base.id,
      object: 'text_completion',
      created: base.created,
      model: base.model,
      choices: results.map(({ choice, completion, finishReason }) => ({
        index: choice.index,
        text: choice.prefix + completion.text,
        finish_reason: finishReason,
        logprobs: logprobsOf(choice, completion),
      })),
      usage,
    };
  },
  opening: () => [],
  piece(base, choice, text, logprobs, offset) {
    const lp = choice.options.logprobs === undefined ? null : legacyLogprobs(logprobs ?? [], offset);
    return chunk(base, [{ index: choice.index, text, finish_reason: null, logprobs: lp }]);
  },
  finish(base, choice, finishReason) {
    return chunk(base, [
      { index: choice.index, text: '', finish_reason: finishReason, logprobs: choice.options.logprobs === undefined ? null : legacyLogprobs([], 0) },
    ]);
  },
  usage(base, usage) {
    return { id: base.id, object: 'text_completion', created: base.created, model: base.model, choices: [], usage };
  },
};

function chunk(base: Base, choices: object[]): object {
  return { id: base.id, object: 'text_completion', created: base.created, model: base.model, choices, ...(base.includeUsage ? { usage: null } : {}) };
}
