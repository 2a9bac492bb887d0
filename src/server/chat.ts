/**
 * `POST /v1/chat/completions`: the conversation (`messages`) becomes one prompt through the
 * chat template (`chat-template.ts`), and the model's continuation is the assistant's message.
 * Parameters: the shared ones of `params.ts` (`max_completion_tokens` as a synonym of
 * `max_tokens`), `logprobs` + `top_logprobs` (0–20) in OpenAI's chat shape. Tools, audio and
 * structured outputs are refused unless given their neutral values.
 */

import { checkBoolean, checkInt, checkString, describe } from '../errors';
import type { TokenLogprob } from '../types';
import type { ChatTemplate, TemplateMessage } from './chat-template';
import type { CompletionModel } from './model';
import type { Resolved } from './options';
import { checked, invalid, objectBody } from './errors';
import type { Base, Choice, Format, Run } from './generation';
import { checkKnown, checkModel, checkNeutral, choiceOptions, COMMON_PARAMS, countPrompt, given, parseCommon } from './params';

const PARAMS = new Set([
  ...COMMON_PARAMS,
  'messages',
  'max_completion_tokens',
  'logprobs',
  'top_logprobs',
  'response_format',
  'tools',
  'tool_choice',
  'parallel_tool_calls',
  'functions',
  'function_call',
  'store',
  'metadata',
  'service_tier',
  'modalities',
  'reasoning_effort',
]);

const ROLES = new Set(['system', 'developer', 'user', 'assistant', 'tool']);

/** The most alternatives per token OpenAI's chat API lists. */
const MAX_TOP_LOGPROBS = 20;

/** A message's text: a string, or the text parts of a content array. */
function contentOf(value: unknown, at: string): string {
  if (typeof value === 'string') return value;
  if (value === null || value === undefined) return '';
  if (Array.isArray(value)) {
    return value
      .map((part, i) => {
        const p = part as { type?: unknown; text?: unknown };
        if (p === null || typeof p !== 'object' || p.type !== 'text') {
          throw invalid(`${at}[${i}]`, `${at}[${i}]: only text content parts are supported, got ${describe(p?.type ?? p)}`, 'unsupported_value');
        }
        return checked(`${at}[${i}].text`, () => checkString(`${at}[${i}].text`, p.text));
      })
      .join('');
  }
  throw invalid(at, `${at}: expected a string or an array of content parts, got ${describe(value)}`, 'invalid_type');
}

function parseMessages(value: unknown): TemplateMessage[] {
  if (!Array.isArray(value) || value.length === 0) {
    throw invalid(
      'messages',
      `messages: expected a non-empty array of messages, got ${describe(value)}`,
      Array.isArray(value) ? 'invalid_value' : 'invalid_type',
    );
  }
  return value.map((m, i) => {
    const at = `messages[${i}]`;
    if (m === null || typeof m !== 'object' || Array.isArray(m)) throw invalid(at, `${at}: expected an object, got ${describe(m)}`, 'invalid_type');
    const msg = m as Record<string, unknown>;
    const role = checked(`${at}.role`, () => checkString(`${at}.role`, msg.role));
    if (!ROLES.has(role)) throw invalid(`${at}.role`, `${at}.role: expected one of ${[...ROLES].join(', ')}, got ${JSON.stringify(role)}`);
    if (msg.tool_calls != null) throw invalid(`${at}.tool_calls`, `${at}.tool_calls: tool calls are not supported`, 'unsupported_parameter');
    const out: TemplateMessage = { role, content: contentOf(msg.content, `${at}.content`) };
    if (msg.name != null) out.name = checked(`${at}.name`, () => checkString(`${at}.name`, msg.name));
    return out;
  });
}

/** Checks a chat request and renders its prompt; throws 400s naming the parameter. */
export function parseChat(body: unknown, model: CompletionModel, limits: Resolved, template: ChatTemplate): Run {
  const b = objectBody(body);
  checkKnown(b, PARAMS);
  checkModel(b, model);
  if (b.messages === undefined) throw invalid('messages', 'messages: required', 'missing_required_parameter');
  const messages = parseMessages(b.messages);
  if (given(b, 'max_tokens') && given(b, 'max_completion_tokens')) {
    throw invalid('max_completion_tokens', 'max_completion_tokens: give either max_tokens or max_completion_tokens, not both');
  }
  const common = parseCommon(b, limits, given(b, 'max_completion_tokens') ? 'max_completion_tokens' : 'max_tokens');
  const logprobs = given(b, 'logprobs') ? checked('logprobs', () => checkBoolean('logprobs', b.logprobs)) : false;
  if (given(b, 'top_logprobs')) {
    if (!logprobs) throw invalid('top_logprobs', 'top_logprobs: requires logprobs to be true');
    common.options.logprobs = checked('top_logprobs', () => checkInt('top_logprobs', b.top_logprobs, 0, MAX_TOP_LOGPROBS));
  } else if (logprobs) common.options.logprobs = 0;
  checkNeutral(b, 'response_format', (v) => (v as { type?: unknown })?.type === 'text', '{"type": "text"}');
  checkNeutral(b, 'tools', (v) => Array.isArray(v) && v.length === 0, '[]');
  checkNeutral(b, 'functions', (v) => Array.isArray(v) && v.length === 0, '[]');
  checkNeutral(b, 'tool_choice', (v) => v === 'none', '"none"');
  checkNeutral(b, 'function_call', (v) => v === 'none', '"none"');
  checkNeutral(b, 'modalities', (v) => Array.isArray(v) && v.every((m) => m === 'text'), '["text"]');
  checkNeutral(b, 'store', (v) => v === false, 'false');
  // Accepted and without effect here: parallel_tool_calls, metadata, service_tier, reasoning_effort.
  let prompt: string;
  try {
    prompt = template.render(messages);
  } catch (e) {
    throw invalid('messages', `messages: the chat template refused them: ${(e as Error).message}`);
  }
  if (template.stops.length > 0) common.options.stop = [...(common.options.stop ?? []), ...template.stops];
  const promptTokens = countPrompt(model, prompt, limits, 'messages');
  const choices: Choice[] = Array.from({ length: common.n }, (_, j) => ({
    index: j,
    promptIndex: 0,
    prompt,
    promptTokens,
    options: choiceOptions(common.options, j),
    prefix: '',
  }));
  return { choices, stream: common.stream, includeUsage: common.includeUsage, format: CHAT_FORMAT };
}

/** OpenAI's chat log-probabilities of `entries`. */
function chatLogprobs(choice: Choice, entries: TokenLogprob[] | undefined): object | null {
  if (choice.options.logprobs === undefined) return null;
  const bytes = (t: string) => [...Buffer.from(t, 'utf8')];
  return {
    content: (entries ?? []).map((e) => ({
      token: e.token,
      logprob: e.logprob,
      bytes: bytes(e.token),
      top_logprobs: e.top.map((t) => ({ token: t.token, logprob: t.logprob, bytes: bytes(t.token) })),
    })),
    refusal: null,
  };
}

function chunk(base: Base, choices: object[]): object {
  return {
    id: base.id,
    object: 'chat.completion.chunk',
    created: base.created,
    model: base.model,
    system_fingerprint: null,
    choices,
    ...(base.includeUsage ? { usage: null } : {}),
  };
}

const CHAT_FORMAT: Format = {
  idPrefix: 'chatcmpl',
  answer(base, results, usage) {
    return {
      id: base.id,
      object: 'chat.completion',
      created: base.created,
      model: base.model,
      system_fingerprint: null,
      choices: results.map(({ choice, completion, finishReason }) => ({
        index: choice.index,
        message: { role: 'assistant', content: completion.text, refusal: null },
        logprobs: chatLogprobs(choice, completion.logprobs),
        finish_reason: finishReason,
      })),
      usage,
    };
  },
  opening: (base, choice) => [chunk(base, [{ index: choice.index, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }])],
  piece: (base, choice, text, logprobs) =>
    chunk(base, [{ index: choice.index, delta: { content: text }, logprobs: chatLogprobs(choice, logprobs), finish_reason: null }]),
  finish: (base, choice, finishReason) => chunk(base, [{ index: choice.index, delta: {}, logprobs: null, finish_reason: finishReason }]),
  usage: (base, usage) => ({
    id: base.id,
    object: 'chat.completion.chunk',
    created: base.created,
    model: base.model,
    system_fingerprint: null,
    choices: [],
    usage,
  }),
};
