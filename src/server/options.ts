/**
 * The settings of {@link createServer} and {@link createHandler}: every limit, timeout and
 * security option with its documented default, checked once.
 */

import { checkInt, checkString, describe, rangeError, typeError } from '../errors';
import { checkOptionKeys } from '../option-keys';
import type { LogEntry } from './log';

/** Limits and settings of the server. Every field is optional; see {@link SERVER_DEFAULTS}. */
export interface ServerOptions {
  /**
   * Model id shown in /v1/models and responses, and the only `model` a request may name.
   * Default: the model's own `id` ({@link CompletionModel}), else {@link DEFAULT_MODEL_ID}.
   */
  modelId?: string;
  /** Interface to listen on. Default `'127.0.0.1'` (loopback only). */
  host?: string;
  /** TCP port; 0 picks a free ephemeral port. Default 8080. */
  port?: number;
  /**
   * API key: when set, every `/v1` request must send `Authorization: Bearer <key>` (compared in
   * constant time); others get 401 `invalid_api_key`. `/healthz`, `/readyz` and `/metrics` stay
   * open for orchestrators. Default: none (`rnnkit serve` reads `RNNKIT_API_KEY`).
   */
  apiKey?: string;
  /**
   * Origins allowed to call the API from a browser (CORS, preflight answered): a list of exact
   * origins (`'https://app.example'`) or `['*']` for any. Default `[]` (no cross-origin access).
   */
  cors?: string[];
  /** Jinja chat template (Hugging Face conventions) for /v1/chat/completions; overrides the model's stored one. */
  chatTemplate?: string;
  /** Longest accepted prompt, in model tokens; longer ones get 400 `context_length_exceeded`. Default 4096. */
  maxPromptTokens?: number;
  /** Largest accepted `max_tokens`; larger requests get 400. Default 1024. */
  maxTokens?: number;
  /** `max_tokens` when a request omits it (OpenAI's default is 16). Must be ≤ `maxTokens`. Default 16. */
  defaultMaxTokens?: number;
  /** Largest accepted `n` × number of prompts (choices of one request). Default 16. */
  maxChoices?: number;
  /** Requests generating at once (the model's scheduler batches them). Default 16. */
  maxConcurrent?: number;
  /** Requests waiting for a generation slot; when full, new ones get 429 with `Retry-After`. Default 64. */
  maxQueue?: number;
  /** Largest accepted request body in bytes; larger ones get 413. Default 1 MiB. */
  bodyLimit?: number;
  /**
   * Milliseconds from admission (after the body is read and validated; queue wait included) until
   * the generation is aborted: 504 for plain requests, an error event for started streams.
   * 0 disables the timeout. Default 300 000 (5 minutes).
   */
  requestTimeout?: number;
  /**
   * Milliseconds a connection may take from opening (or from its previous response) to send a
   * request's complete headers; slower ones (slowloris, idle sockets) are closed. Default 10 000.
   */
  headersTimeout?: number;
  /** Milliseconds a client may take to send a whole request (headers and body). Default 30 000. */
  bodyTimeout?: number;
  /** Milliseconds an idle kept-alive connection stays open between requests. Default 5 000. */
  keepAliveTimeout?: number;
  /** Open connections in all; more are refused at once. Default 1024. */
  maxConnections?: number;
  /** Open connections from one client address; more are refused at once. Default 64. */
  maxConnectionsPerClient?: number;
  /** Default deadline in ms for a graceful close to wait for live generations. Default 10 000. */
  shutdownTimeout?: number;
  /** Seconds sent in `Retry-After` with a 429. Default 1. */
  retryAfter?: number;
  /**
   * MiB of recurrent states the model keeps after prompt prefixes (64-token boundaries), so a
   * request sharing a long prefix with an earlier one (a system prompt, a conversation's earlier
   * turns) skips reading it; least recently used states go first. 0 turns the cache off. Applied
   * to a `LanguageModel` (see `LanguageModel.setStateCache`); other models ignore it. Default 128.
   */
  stateCacheMb?: number;
  /**
   * Prompt tokens the model reads per call into the engine while other generations are producing
   * tokens (chunked prefill): a 2,000-token prompt joining 64 streams is read 128 tokens per call
   * between their steps instead of stalling them for all of it. A multiple of 64; 0 reads each
   * prompt whole. Applied to a `LanguageModel` (see `LanguageModel.setPrefillChunk`); other
   * models ignore it. Default 128.
   */
  prefillChunk?: number;
  /** Receives structured log records, one `'request'` record per request (nothing is printed otherwise). Exceptions it throws are ignored. */
  onLog?: (entry: LogEntry) => void;
}

/** The options without a default value. */
type Unset = 'onLog' | 'modelId' | 'apiKey' | 'chatTemplate';

/** Default values of every {@link ServerOptions} field that has one. */
export const SERVER_DEFAULTS: Readonly<Required<Omit<ServerOptions, Unset>>> = Object.freeze({
  host: '127.0.0.1',
  port: 8080,
  cors: [] as string[],
  maxPromptTokens: 4096,
  maxTokens: 1024,
  defaultMaxTokens: 16,
  maxChoices: 16,
  maxConcurrent: 16,
  maxQueue: 64,
  bodyLimit: 1024 * 1024,
  requestTimeout: 300_000,
  headersTimeout: 10_000,
  bodyTimeout: 30_000,
  keepAliveTimeout: 5_000,
  maxConnections: 1024,
  maxConnectionsPerClient: 128,
  shutdownTimeout: 10_000,
  retryAfter: 1,
  stateCacheMb: 64,
  prefillChunk: 128,
});

/** Options after {@link resolveOptions}. */
export type Resolved = Required<Omit<ServerOptions, Unset>> & Pick<ServerOptions, Unset>;

/** The longest timer Node accepts. */
export const TIMER_MAX = 2 ** 31 - 1;

/** Checks every option (a TypeError/RangeError naming it) and fills in the defaults. */
export function resolveOptions(options: ServerOptions): Resolved {
  if (options === null || typeof options !== 'object') {
    throw typeError('ERR_RNNKIT_TYPE', `options: expected an object, got ${describe(options)}`);
  }
  checkOptionKeys('options', options, ['onLog', 'modelId', 'apiKey', 'chatTemplate', ...Object.keys(SERVER_DEFAULTS)]);
  const o = { ...SERVER_DEFAULTS, ...stripUndefined(options) };
  const maxTokens = checkInt('options.maxTokens', o.maxTokens, 1);
  if (o.onLog !== undefined && typeof o.onLog !== 'function') {
    throw typeError('ERR_RNNKIT_TYPE', `options.onLog: expected a function, got ${describe(o.onLog)}`);
  }
  if (!Array.isArray(o.cors)) throw typeError('ERR_RNNKIT_TYPE', `options.cors: expected an array of origins, got ${describe(o.cors)}`);
  const cors = o.cors.map((origin, i) => checkString(`options.cors[${i}]`, origin, true));
  const headersTimeout = checkInt('options.headersTimeout', o.headersTimeout, 1, TIMER_MAX);
  return {
    host: checkString('options.host', o.host, true),
    port: checkInt('options.port', o.port, 0, 65535),
    cors,
    maxPromptTokens: checkInt('options.maxPromptTokens', o.maxPromptTokens, 1),
    maxTokens,
    defaultMaxTokens: checkInt('options.defaultMaxTokens', o.defaultMaxTokens, 1, maxTokens),
    maxChoices: checkInt('options.maxChoices', o.maxChoices, 1, 1024),
    maxConcurrent: checkInt('options.maxConcurrent', o.maxConcurrent, 1),
    maxQueue: checkInt('options.maxQueue', o.maxQueue, 0),
    bodyLimit: checkInt('options.bodyLimit', o.bodyLimit, 1),
    requestTimeout: checkInt('options.requestTimeout', o.requestTimeout, 0, TIMER_MAX),
    headersTimeout,
    // Node requires the whole-request limit to be at least the headers limit.
    bodyTimeout: checkInt('options.bodyTimeout', o.bodyTimeout, headersTimeout, TIMER_MAX),
    keepAliveTimeout: checkInt('options.keepAliveTimeout', o.keepAliveTimeout, 1, TIMER_MAX),
    maxConnections: checkInt('options.maxConnections', o.maxConnections, 1),
    maxConnectionsPerClient: checkInt('options.maxConnectionsPerClient', o.maxConnectionsPerClient, 1),
    shutdownTimeout: checkInt('options.shutdownTimeout', o.shutdownTimeout, 0, TIMER_MAX),
    retryAfter: checkInt('options.retryAfter', o.retryAfter, 1),
    stateCacheMb: checkInt('options.stateCacheMb', o.stateCacheMb, 0, 1 << 20),
    prefillChunk: checkPrefillChunk(o.prefillChunk),
    onLog: o.onLog,
    modelId: o.modelId === undefined ? undefined : checkString('options.modelId', o.modelId, true),
    apiKey: o.apiKey === undefined ? undefined : checkString('options.apiKey', o.apiKey, true),
    chatTemplate: o.chatTemplate === undefined ? undefined : checkString('options.chatTemplate', o.chatTemplate, true),
  };
}

/** `prefillChunk`: 0 or a multiple of 64 tokens (the state cache's prompt chunks). */
function checkPrefillChunk(value: unknown): number {
  const n = checkInt('options.prefillChunk', value, 0, 1 << 30);
  if (n % 64 !== 0) throw rangeError('ERR_RNNKIT_RANGE', `options.prefillChunk: expected 0 or a multiple of 64, got ${n}`);
  return n;
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
