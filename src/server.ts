/**
 * rnnkit's HTTP server (`rnnkit serve`): an OpenAI-compatible text-completion API over the
 * library's own {@link LanguageModel} or any {@link CompletionModel}, so that existing clients (the official `openai` npm package, curl,
 * anything that speaks `POST /v1/completions`) work unchanged.
 *
 * Routes: `POST /v1/completions` (JSON or, with `"stream": true`, server-sent events),
 * `GET /v1/models`, `GET /v1/models/{id}`, `GET /healthz`. Errors use OpenAI's shape
 * `{ error: { message, type, param, code } }`.
 *
 * Built on Node's own `http` module: streaming needs raw writes with back-pressure, the body
 * limit and the shutdown sequence need direct control of the request stream and the sockets, and
 * with three routes a framework would add a dependency without removing code.
 *
 * Concurrency: up to `maxConcurrent` generations are handed to the model at once (the model's
 * scheduler batches them), up to `maxQueue` more wait in arrival order, and anything beyond is
 * answered 429 with `Retry-After`. Nothing here serialises requests.
 *
 * Aborts: every generation gets an `AbortSignal` (`GenerateOptions.signal`) that fires when the
 * client disconnects, when `requestTimeout` elapses, or when shutdown gives up on it. A timeout
 * is answered 504 (`type: "timeout_error"`, `code: "request_timeout"`); a shutdown abort 503
 * (`code: "server_shutting_down"`). When a stream has already started, the error is sent as one
 * last event `data: {"error": {...}}` and the stream ends without `data: [DONE]` (the `openai`
 * client raises it as an `APIError`). Stream headers are sent with the first piece, so anything
 * that fails before any text exists (an option the model rejects, a timeout while queued) still
 * gets a proper status code.
 */

import * as http from 'node:http';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import type { Completion, GenerateOptions } from './types';
import type { LanguageModel } from './model';
import { checkBoolean, checkInt, checkNumber, checkString, describe, rangeError, typeError } from './errors';
import { checkOptionKeys } from './option-keys';

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
}

/**
 * A model {@link createServer} serves: a {@link CompletionModel}, or a {@link LanguageModel}
 * with a tokenizer, served under {@link ServerOptions.modelId} (default {@link DEFAULT_MODEL_ID}).
 */
export type ServableModel = CompletionModel | LanguageModel;

/** The model id served when neither the model nor {@link ServerOptions.modelId} names one. */
export const DEFAULT_MODEL_ID = 'rnnkit';

/** What {@link CompletionModel.stream} returns: text pieces, then the final accounting. */
export type CompletionStream = AsyncIterable<string> & { readonly completion: Promise<Completion> };

/** Severity of a {@link LogEntry}. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/** One structured log record passed to {@link ServerOptions.onLog}. */
export interface LogEntry {
  /** Severity. */
  level: LogLevel;
  /** What happened: `'listening'`, `'request'`, `'abort'`, `'error'` or `'shutdown'`. */
  event: 'listening' | 'request' | 'abort' | 'error' | 'shutdown';
  /** Human-readable one-line description. */
  message: string;
  /** The request's id (`cmpl-…` for completions, also sent as the `x-request-id` header). */
  requestId?: string;
  /** Machine-readable details (method, path, status, durationMs, cause, error, …). */
  data?: Record<string, unknown>;
}

/** Limits and settings of {@link createServer}. Every field is optional; see {@link SERVER_DEFAULTS}. */
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
  /** Longest accepted prompt, in model tokens; longer ones get 400 `context_length_exceeded`. Default 4096. */
  maxPromptTokens?: number;
  /** Largest accepted `max_tokens`; larger requests get 400. Default 1024. */
  maxTokens?: number;
  /** `max_tokens` when a request omits it (OpenAI's default is 16). Must be ≤ `maxTokens`. Default 16. */
  defaultMaxTokens?: number;
  /** Generations handed to the model at once. Default 16. */
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
  /** Default deadline in ms for a graceful {@link RnnkitServer.close} to wait for live generations. Default 10 000. */
  shutdownTimeout?: number;
  /** Seconds sent in `Retry-After` with a 429. Default 1. */
  retryAfter?: number;
  /** Receives structured log records (nothing is printed otherwise). Exceptions it throws are ignored. */
  onLog?: (entry: LogEntry) => void;
}

/** Default values of every numeric and string {@link ServerOptions} field. */
export const SERVER_DEFAULTS: Readonly<Required<Omit<ServerOptions, 'onLog' | 'modelId'>>> = Object.freeze({
  host: '127.0.0.1',
  port: 8080,
  maxPromptTokens: 4096,
  maxTokens: 1024,
  defaultMaxTokens: 16,
  maxConcurrent: 16,
  maxQueue: 64,
  bodyLimit: 1024 * 1024,
  requestTimeout: 300_000,
  shutdownTimeout: 10_000,
  retryAfter: 1,
});

/** Options of {@link RnnkitServer.close}. */
export interface CloseOptions {
  /**
   * `true` (default): stop accepting, answer queued requests 503, let live generations finish up
   * to `timeout` ms, then abort the rest. `false`: abort every generation at once.
   */
  graceful?: boolean;
  /** Deadline of a graceful close in ms. Default: the server's `shutdownTimeout`. */
  timeout?: number;
}

/** A server made by {@link createServer}. */
export interface RnnkitServer {
  /** Starts listening; resolves with the base URL (e.g. `http://127.0.0.1:8080`; the API is under `/v1`). */
  listen(): Promise<{ url: string }>;
  /** Stops the server (see {@link CloseOptions}); resolves when every connection is closed. Idempotent. */
  close(options?: CloseOptions): Promise<void>;
  /** The bound address while listening, otherwise `null`. */
  readonly address: AddressInfo | null;
}

/**
 * Creates (but does not start) a server for `model` (`createServer(await loadLanguageModel(path))`
 * works as it is); throws a TypeError/RangeError naming any bad option.
 */
export function createServer(model: ServableModel, options: ServerOptions = {}): RnnkitServer {
  const resolved = resolveOptions(options);
  return new Server(servedModel(model, resolved.modelId), resolved);
}

type Resolved = Required<Omit<ServerOptions, 'onLog' | 'modelId'>> & Pick<ServerOptions, 'onLog' | 'modelId'>;

const TIMER_MAX = 2 ** 31 - 1;

function resolveOptions(options: ServerOptions): Resolved {
  if (options === null || typeof options !== 'object') {
    throw typeError('ERR_RNNKIT_TYPE', `options: expected an object, got ${describe(options)}`);
  }
  checkOptionKeys('options', options, ['onLog', 'modelId', ...Object.keys(SERVER_DEFAULTS)]);
  const o = { ...SERVER_DEFAULTS, ...stripUndefined(options) };
  const maxTokens = checkInt('options.maxTokens', o.maxTokens, 1);
  if (o.onLog !== undefined && typeof o.onLog !== 'function') {
    throw typeError('ERR_RNNKIT_TYPE', `options.onLog: expected a function, got ${describe(o.onLog)}`);
  }
  return {
    host: checkString('options.host', o.host, true),
    port: checkInt('options.port', o.port, 0, 65535),
    maxPromptTokens: checkInt('options.maxPromptTokens', o.maxPromptTokens, 1),
    maxTokens,
    defaultMaxTokens: checkInt('options.defaultMaxTokens', o.defaultMaxTokens, 1, maxTokens),
    maxConcurrent: checkInt('options.maxConcurrent', o.maxConcurrent, 1),
    maxQueue: checkInt('options.maxQueue', o.maxQueue, 0),
    bodyLimit: checkInt('options.bodyLimit', o.bodyLimit, 1),
    requestTimeout: checkInt('options.requestTimeout', o.requestTimeout, 0, TIMER_MAX),
    shutdownTimeout: checkInt('options.shutdownTimeout', o.shutdownTimeout, 0, TIMER_MAX),
    retryAfter: checkInt('options.retryAfter', o.retryAfter, 1),
    onLog: o.onLog,
    modelId: o.modelId === undefined ? undefined : checkString('options.modelId', o.modelId, true),
  };
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/**
 * The model as the server calls it: its methods bound (a LanguageModel's use `this`) and its id
 * settled (`modelId`, else the model's own, else {@link DEFAULT_MODEL_ID}).
 */
function servedModel(model: ServableModel, modelId: string | undefined): CompletionModel {
  if (model === null || typeof model !== 'object') {
    throw typeError('ERR_RNNKIT_TYPE', `model: expected a LanguageModel or a CompletionModel, got ${describe(model)}`);
  }
  const m = model as Partial<CompletionModel> & { tokenizer?: unknown };
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
  return {
    id: modelId ?? own ?? DEFAULT_MODEL_ID,
    countTokens: (text) => model.countTokens(text),
    complete: (prompt, options) => model.complete(prompt, options),
    stream: (prompt, options) => model.stream(prompt, options),
  };
}

// ---------------------------------------------------------------------------------------------
// Errors in OpenAI's shape

/** An error answered as `{ error: { message, type, param, code } }` with an HTTP status. */
class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type: string,
    readonly param: string | null = null,
    readonly code: string | null = null,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }

  get body(): { error: { message: string; type: string; param: string | null; code: string | null } } {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

function invalid(param: string | null, message: string, code = 'invalid_value'): ApiError {
  return new ApiError(400, message, 'invalid_request_error', param, code);
}

/** Model error codes that mean "the request was wrong" (a bad prompt or option), answered 400. */
const CLIENT_ERROR_CODES = new Set(['ERR_RNNKIT_TYPE', 'ERR_RNNKIT_RANGE', 'ERR_RNNKIT_EMPTY', 'ERR_RNNKIT_VOCAB', 'ERR_RNNKIT_NON_FINITE']);

function isClientError(e: unknown): e is Error {
  return e instanceof Error && CLIENT_ERROR_CODES.has((e as { code?: unknown }).code as string);
}

// ---------------------------------------------------------------------------------------------
// Request validation

/** A validated completion request. */
interface CompletionRequest {
  prompt: string;
  promptTokens: number;
  options: GenerateOptions;
  stream: boolean;
  includeUsage: boolean;
}

const COMPLETION_PARAMS = new Set([
  'model',
  'prompt',
  'max_tokens',
  'temperature',
  'top_p',
  'stop',
  'seed',
  'stream',
  'stream_options',
  'n',
  'top_k',
  'repetition_penalty',
  // OpenAI parameters accepted only at their neutral value:
  'echo',
  'logprobs',
  'best_of',
  'suffix',
  'presence_penalty',
  'frequency_penalty',
  'logit_bias',
  'user',
]);

/** Runs an argument check and turns its TypeError/RangeError into a 400 naming `param`. */
function checked<T>(param: string, check: () => T): T {
  try {
    return check();
  } catch (e) {
    throw invalid(param, (e as Error).message, e instanceof TypeError ? 'invalid_type' : 'invalid_value');
  }
}

function parsePrompt(value: unknown): string {
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) {
    if (value.length === 1 && typeof value[0] === 'string') return value[0];
    if (value.length > 0 && value.every((v) => typeof v === 'number' || Array.isArray(v))) {
      throw invalid('prompt', 'prompt: token-id prompts are not supported; send the prompt as text', 'unsupported_value');
    }
    if (value.length !== 1) {
      throw invalid('prompt', `prompt: only one prompt per request is supported, got an array of length ${value.length}`, 'unsupported_value');
    }
  }
  throw invalid('prompt', `prompt: expected a string or an array of one string, got ${describe(Array.isArray(value) ? value[0] : value)}`, 'invalid_type');
}

function parseStop(value: unknown): string[] {
  const list = Array.isArray(value) ? value : [value];
  if (list.length > 4) throw invalid('stop', `stop: at most 4 stop sequences are allowed, got ${list.length}`);
  return list.map((s, i) => checked('stop', () => checkString(Array.isArray(value) ? `stop[${i}]` : 'stop', s, true)));
}

function positive(name: string, value: unknown, max: number): number {
  const x = checkNumber(name, value, -Infinity, max);
  if (x <= 0) throw rangeError('ERR_RNNKIT_RANGE', `${name}: expected a number in (0, ${max}], got ${describe(x)}`);
  return x;
}

/** Rejects OpenAI parameters this server does not implement unless they carry their neutral value. */
function checkNeutral(body: Record<string, unknown>): void {
  const neutral: Array<[string, (v: unknown) => boolean, string]> = [
    ['echo', (v) => v === false, 'false'],
    ['logprobs', () => false, 'null'],
    ['best_of', (v) => v === 1, '1'],
    ['suffix', (v) => v === '', 'null or ""'],
    ['presence_penalty', (v) => v === 0, '0'],
    ['frequency_penalty', (v) => v === 0, '0'],
    ['logit_bias', (v) => typeof v === 'object' && !Array.isArray(v) && Object.keys(v as object).length === 0, 'null or {}'],
  ];
  for (const [name, ok, allowed] of neutral) {
    const v = body[name];
    if (v != null && !ok(v)) {
      throw invalid(name, `${name}: not supported by this server (allowed: ${allowed}), got ${describe(v)}`, 'unsupported_parameter');
    }
  }
}

function parseCompletionRequest(body: unknown, model: CompletionModel, limits: Resolved): CompletionRequest {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw invalid(null, `request body: expected a JSON object, got ${describe(body)}`, 'invalid_type');
  }
  const b = body as Record<string, unknown>;
  for (const key of Object.keys(b)) {
    if (!COMPLETION_PARAMS.has(key)) throw invalid(key, `Unrecognized request argument supplied: ${key}`, 'unknown_parameter');
  }
  const given = (key: string): boolean => b[key] !== undefined && b[key] !== null;

  if (given('model')) {
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
  if (b.prompt === undefined) throw invalid('prompt', 'prompt: required', 'missing_required_parameter');
  const prompt = parsePrompt(b.prompt);
  if (given('n')) {
    const n = checked('n', () => checkInt('n', b.n, 1));
    if (n !== 1) throw invalid('n', `n: only n=1 is supported, got ${n}`, 'unsupported_value');
  }
  checkNeutral(b);

  const options: GenerateOptions = {
    maxTokens: given('max_tokens') ? checked('max_tokens', () => checkInt('max_tokens', b.max_tokens, 1, limits.maxTokens)) : limits.defaultMaxTokens,
  };
  if (given('temperature')) {
    const t = checked('temperature', () => checkNumber('temperature', b.temperature, 0, 2));
    if (t === 0) options.greedy = true;
    else options.temperature = t;
  }
  if (given('top_p')) options.topP = checked('top_p', () => positive('top_p', b.top_p, 1));
  if (given('top_k')) options.topK = checked('top_k', () => checkInt('top_k', b.top_k, 0));
  if (given('repetition_penalty')) {
    options.repetitionPenalty = checked('repetition_penalty', () => positive('repetition_penalty', b.repetition_penalty, Infinity));
  }
  if (given('stop')) {
    const stop = parseStop(b.stop);
    if (stop.length > 0) options.stop = stop;
  }
  if (given('seed')) options.seed = checked('seed', () => checkInt('seed', b.seed, 0));
  const stream = given('stream') ? checked('stream', () => checkBoolean('stream', b.stream)) : false;
  let includeUsage = false;
  if (given('stream_options')) {
    if (!stream) throw invalid('stream_options', 'stream_options: only allowed when stream is true');
    const so = b.stream_options;
    if (typeof so !== 'object' || Array.isArray(so)) {
      throw invalid('stream_options', `stream_options: expected an object, got ${describe(so)}`, 'invalid_type');
    }
    const usage = (so as Record<string, unknown>).include_usage;
    if (usage != null) includeUsage = checked('stream_options', () => checkBoolean('stream_options.include_usage', usage));
  }
  if (given('user')) checked('user', () => checkString('user', b.user));

  let promptTokens: number;
  try {
    promptTokens = model.countTokens(prompt);
  } catch (e) {
    if (isClientError(e)) throw invalid('prompt', `prompt: ${e.message}`);
    throw e;
  }
  if (promptTokens > limits.maxPromptTokens) {
    throw invalid('prompt', `prompt: ${promptTokens} tokens exceeds the server's limit of ${limits.maxPromptTokens} tokens`, 'context_length_exceeded');
  }
  return { prompt, promptTokens, options, stream, includeUsage };
}

// ---------------------------------------------------------------------------------------------
// Admission: at most maxConcurrent live generations, at most maxQueue waiting

class Admission {
  live = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(
    private readonly maxConcurrent: number,
    private readonly maxQueue: number,
  ) {}

  get queued(): number {
    return this.waiting.length;
  }

  /**
   * `null` when the queue is full; otherwise a promise that resolves once a slot is held (call
   * `release` afterwards) or rejects with `signal.reason` if the signal aborts while waiting.
   */
  acquire(signal: AbortSignal): Promise<void> | null {
    if (this.live < this.maxConcurrent) {
      this.live++;
      return Promise.resolve();
    }
    if (this.waiting.length >= this.maxQueue) return null;
    return new Promise<void>((resolve, reject) => {
      const grant = (): void => {
        signal.removeEventListener('abort', onAbort);
        this.live++;
        resolve();
      };
      const onAbort = (): void => {
        this.waiting.splice(this.waiting.indexOf(grant), 1);
        reject(signal.reason);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(grant);
    });
  }

  release(): void {
    this.live--;
    this.waiting.shift()?.();
  }
}

type AbortCause = 'disconnect' | 'timeout' | 'shutdown';

/** One admitted completion request, from admission until its response is closed. */
class Generation {
  readonly controller = new AbortController();
  cause: AbortCause | null = null;
  live = false;
  /** Settles when the response is flushed or its connection is gone. */
  readonly done: Promise<void>;

  constructor(
    readonly id: string,
    res: http.ServerResponse,
  ) {
    this.done = new Promise((resolve) => res.once('close', () => resolve()));
  }

  abort(cause: AbortCause): void {
    if (this.cause !== null) return;
    this.cause = cause;
    this.controller.abort(new DOMException(`generation aborted: ${cause}`, 'AbortError'));
  }
}

// ---------------------------------------------------------------------------------------------
// The server

const SSE_HEADERS = { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'x-accel-buffering': 'no' };

type Route = (req: http.IncomingMessage, res: http.ServerResponse, tail: string) => Promise<void>;

class Server implements RnnkitServer {
  private readonly http: http.Server;
  private readonly admission: Admission;
  private readonly generations = new Set<Generation>();
  /** Requests being handled, by response. */
  private readonly inflight = new Map<http.ServerResponse, Promise<void>>();
  private readonly created = Math.floor(Date.now() / 1000);
  private closing: Promise<void> | null = null;
  private readonly routes: Record<string, Record<string, Route>>;

  constructor(
    private readonly model: CompletionModel,
    private readonly options: Resolved,
  ) {
    this.admission = new Admission(options.maxConcurrent, options.maxQueue);
    this.routes = {
      '/v1/completions': { POST: (req, res) => this.completions(req, res) },
      '/v1/models': { GET: async (_req, res) => this.models(res) },
      '/v1/models/': { GET: async (_req, res, tail) => this.modelById(res, tail) },
      '/healthz': { GET: async (_req, res) => this.health(res) },
    };
    this.http = http.createServer((req, res) => {
      // `handle` answers every error itself; this only keeps a bug from crashing the process.
      const handling = this.handle(req, res).catch((e: unknown) => {
        this.log('error', 'error', `unhandled error: ${e instanceof Error ? e.message : String(e)}`, undefined, { error: e });
        res.destroy();
      });
      this.inflight.set(res, handling);
      void handling.finally(() => this.inflight.delete(res));
    });
    this.http.on('error', (e) => this.log('error', 'error', `server error: ${e.message}`, undefined, { error: e }));
  }

  get address(): AddressInfo | null {
    const a = this.http.address();
    return a !== null && typeof a === 'object' ? a : null;
  }

  listen(): Promise<{ url: string }> {
    if (this.closing) return Promise.reject(new Error('listen: the server has been closed'));
    if (this.http.listening) return Promise.reject(new Error('listen: the server is already listening'));
    return new Promise((resolve, reject) => {
      const onError = (e: Error): void => reject(e);
      this.http.once('error', onError);
      this.http.listen(this.options.port, this.options.host, () => {
        this.http.off('error', onError);
        const { address, port, family } = this.address as AddressInfo;
        const url = `http://${family === 'IPv6' ? `[${address}]` : address}:${port}`;
        this.log('info', 'listening', `listening on ${url}`, undefined, { url, model: this.model.id });
        resolve({ url });
      });
    });
  }

  close(options: CloseOptions = {}): Promise<void> {
    const graceful = options.graceful === undefined ? true : checkBoolean('close: options.graceful', options.graceful);
    const timeout = options.timeout === undefined ? this.options.shutdownTimeout : checkInt('close: options.timeout', options.timeout, 0, TIMER_MAX);
    this.closing ??= this.shutdown(graceful, timeout);
    return this.closing;
  }

  private async shutdown(graceful: boolean, timeout: number): Promise<void> {
    this.log('info', 'shutdown', `shutting down (${graceful ? `graceful, deadline ${timeout} ms` : 'immediate'})`, undefined, {
      live: this.admission.live,
      queued: this.admission.queued,
    });
    const closed = new Promise<void>((resolve) => this.http.close(() => resolve()));
    this.http.closeIdleConnections();
    // Answers not yet begun tell their clients not to reuse the connection.
    for (const res of this.inflight.keys()) if (!res.headersSent) res.setHeader('connection', 'close');
    for (const g of this.generations) if (!graceful || !g.live) g.abort('shutdown');
    if (graceful) {
      await settleWithin(Promise.all([...this.generations].map((g) => g.done)), timeout);
      for (const g of this.generations) g.abort('shutdown');
    }
    await Promise.all([...this.generations].map((g) => g.done));
    this.http.closeAllConnections();
    await Promise.all(this.inflight.values());
    await closed;
  }

  private log(level: LogLevel, event: LogEntry['event'], message: string, requestId?: string, data?: Record<string, unknown>): void {
    if (!this.options.onLog) return;
    try {
      this.options.onLog({ level, event, message, requestId, data });
    } catch {
      // A logging hook must not take the server down.
    }
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const started = performance.now();
    const method = req.method ?? 'GET';
    const path = (req.url ?? '/').split('?', 1)[0];
    try {
      const route = this.route(method, path);
      if (this.closing) {
        res.setHeader('connection', 'close');
        if (path === '/healthz') return this.health(res);
        throw new ApiError(503, 'the server is shutting down', 'server_error', null, 'server_shutting_down');
      }
      if (method !== 'POST') req.resume();
      await route.handler(req, res, route.tail);
    } catch (e) {
      this.fail(res, e, res.getHeader('x-request-id') as string | undefined);
    } finally {
      const status = res.headersSent ? res.statusCode : 499;
      this.log(status >= 500 ? 'warn' : 'info', 'request', `${method} ${path} ${status}`, res.getHeader('x-request-id') as string | undefined, {
        method,
        path,
        status,
        durationMs: Math.round(performance.now() - started),
      });
    }
  }

  private route(method: string, path: string): { handler: Route; tail: string } {
    const prefix = path.startsWith('/v1/models/') && path.length > '/v1/models/'.length ? '/v1/models/' : path;
    const methods = this.routes[prefix];
    if (!methods) throw new ApiError(404, `Invalid URL (${method} ${path})`, 'invalid_request_error', null, 'not_found');
    const handler = methods[method === 'HEAD' ? 'GET' : method];
    if (!handler) {
      const allow = Object.keys(methods)
        .flatMap((m) => (m === 'GET' ? ['GET', 'HEAD'] : [m]))
        .join(', ');
      throw new ApiError(405, `Method ${method} is not allowed on ${path}; allowed: ${allow}`, 'invalid_request_error', null, 'method_not_allowed', { allow });
    }
    return { handler, tail: path.slice(prefix.length) };
  }

  /** Answers an error: as JSON when nothing was sent yet, as a last SSE event when a stream has started. */
  private fail(res: http.ServerResponse, e: unknown, requestId: string | undefined): void {
    let error: ApiError;
    if (e instanceof ApiError) error = e;
    else if (isClientError(e)) error = invalid(null, e.message);
    else {
      this.log('error', 'error', `internal error: ${e instanceof Error ? e.message : String(e)}`, requestId, { error: e });
      error = new ApiError(500, `internal server error${requestId ? ` (request ${requestId})` : ''}`, 'server_error', null, 'internal_error');
    }
    if (res.destroyed || res.writableEnded) return;
    if (res.headersSent) {
      res.end(`data: ${JSON.stringify(error.body)}\n\n`);
      return;
    }
    sendJson(res, error.status, error.body, error.headers);
  }

  private health(res: http.ServerResponse): void {
    sendJson(res, this.closing ? 503 : 200, {
      status: this.closing ? 'shutting_down' : 'ok',
      model: this.model.id,
      live: this.admission.live,
      queued: this.admission.queued,
      maxConcurrent: this.options.maxConcurrent,
      maxQueue: this.options.maxQueue,
    });
  }

  private modelObject(): Record<string, unknown> {
    return { id: this.model.id, object: 'model', created: this.created, owned_by: 'rnnkit' };
  }

  private models(res: http.ServerResponse): void {
    sendJson(res, 200, { object: 'list', data: [this.modelObject()] });
  }

  private modelById(res: http.ServerResponse, encodedId: string): void {
    let id: string;
    try {
      id = decodeURIComponent(encodedId);
    } catch {
      throw invalid(null, `model id: malformed percent-encoding in ${JSON.stringify(encodedId)}`);
    }
    if (id !== this.model.id) {
      throw new ApiError(
        404,
        `The model ${JSON.stringify(id)} does not exist; this server serves ${JSON.stringify(this.model.id)}`,
        'invalid_request_error',
        'model',
        'model_not_found',
      );
    }
    sendJson(res, 200, this.modelObject());
  }

  private async completions(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const raw = await readBody(req, this.options.bodyLimit);
    let body: unknown;
    try {
      body = JSON.parse(raw.toString('utf8'));
    } catch (e) {
      throw invalid(null, `request body is not valid JSON: ${(e as Error).message}`, 'invalid_json');
    }
    const request = parseCompletionRequest(body, this.model, this.options);
    if (this.closing) throw new ApiError(503, 'the server is shutting down', 'server_error', null, 'server_shutting_down');

    const g = new Generation(`cmpl-${randomUUID().replace(/-/g, '')}`, res);
    res.setHeader('x-request-id', g.id);
    this.generations.add(g);
    void g.done.then(() => this.generations.delete(g));
    const onClose = (): void => {
      if (!res.writableFinished) g.abort('disconnect');
    };
    res.on('close', onClose);
    const timer = this.options.requestTimeout > 0 ? setTimeout(() => g.abort('timeout'), this.options.requestTimeout) : undefined;
    let admitted = false;
    try {
      const slot = this.admission.acquire(g.controller.signal);
      if (slot === null) {
        throw new ApiError(
          429,
          `server busy: ${this.admission.live} generations running and ${this.admission.queued} waiting (maxConcurrent ${this.options.maxConcurrent}, maxQueue ${this.options.maxQueue}); retry later`,
          'rate_limit_error',
          null,
          'rate_limit_exceeded',
          { 'retry-after': String(this.options.retryAfter) },
        );
      }
      await slot;
      admitted = true;
      g.live = true;
      const options: GenerateOptions = { ...request.options, signal: g.controller.signal };
      const created = Math.floor(Date.now() / 1000);
      if (request.stream) await this.streamCompletion(res, g, request, options, created);
      else await this.completeOnce(res, g, request, options, created);
    } catch (e) {
      if (g.cause === null) throw e;
      this.log('info', 'abort', `generation aborted: ${g.cause}`, g.id, { cause: g.cause });
      throw this.abortError(g.cause);
    } finally {
      clearTimeout(timer);
      res.off('close', onClose);
      if (admitted) this.admission.release();
    }
  }

  private abortError(cause: AbortCause): ApiError {
    switch (cause) {
      case 'timeout':
        return new ApiError(504, `generation exceeded the request timeout of ${this.options.requestTimeout} ms`, 'timeout_error', null, 'request_timeout');
      case 'shutdown':
        return new ApiError(503, 'the server is shutting down', 'server_error', null, 'server_shutting_down');
      case 'disconnect':
        return new ApiError(499, 'client closed the request', 'invalid_request_error', null, 'client_closed_request');
    }
  }

  private async completeOnce(res: http.ServerResponse, g: Generation, request: CompletionRequest, options: GenerateOptions, created: number): Promise<void> {
    const c = await this.model.complete(request.prompt, options);
    sendJson(res, 200, {
      id: g.id,
      object: 'text_completion',
      created,
      model: this.model.id,
      choices: [{ index: 0, text: c.text, finish_reason: finishReason(c, g), logprobs: null }],
      usage: usage(c),
    });
  }

  private async streamCompletion(
    res: http.ServerResponse,
    g: Generation,
    request: CompletionRequest,
    options: GenerateOptions,
    created: number,
  ): Promise<void> {
    const stream = this.model.stream(request.prompt, options);
    // Observed below; this only keeps a rejection that follows a failed iteration from going unhandled.
    stream.completion.catch(() => undefined);
    const base = { id: g.id, object: 'text_completion', created, model: this.model.id };
    const extra = request.includeUsage ? { usage: null } : {};
    const send = async (payload: object): Promise<void> => {
      if (!res.headersSent) res.writeHead(200, SSE_HEADERS);
      if (!res.write(`data: ${JSON.stringify(payload)}\n\n`)) await once(res, 'drain', { signal: g.controller.signal });
    };
    // A token's chunk differs from the next only in its text: the rest of the line is serialised
    // once per stream, and each token costs one string escape.
    const parts = JSON.stringify({ ...base, choices: [{ index: 0, text: '\u0000', finish_reason: null, logprobs: null }], ...extra }).split('"\\u0000"');
    for await (const text of stream) {
      if (parts.length !== 2) {
        // A model id that is itself the placeholder: serialise whole.
        await send({ ...base, choices: [{ index: 0, text, finish_reason: null, logprobs: null }], ...extra });
        continue;
      }
      if (!res.headersSent) res.writeHead(200, SSE_HEADERS);
      if (!res.write(`data: ${parts[0]}${JSON.stringify(text)}${parts[1]}\n\n`)) await once(res, 'drain', { signal: g.controller.signal });
    }
    const c = await stream.completion;
    await send({ ...base, choices: [{ index: 0, text: '', finish_reason: finishReason(c, g), logprobs: null }], ...extra });
    if (request.includeUsage) await send({ ...base, choices: [], usage: usage(c) });
    res.end('data: [DONE]\n\n');
  }
}

/** Maps the model's finish reason to OpenAI's; `'abort'` is only valid when this server aborted it. */
function finishReason(c: Completion, g: Generation): 'stop' | 'length' {
  if (c.finishReason !== 'abort') return c.finishReason;
  throw g.controller.signal.aborted ? g.controller.signal.reason : new Error('the model finished with reason "abort" without being aborted');
}

function usage(c: Completion): { prompt_tokens: number; completion_tokens: number; total_tokens: number } {
  return { prompt_tokens: c.promptTokens, completion_tokens: c.completionTokens, total_tokens: c.promptTokens + c.completionTokens };
}

function sendJson(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.destroyed) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/**
 * Reads a request body of at most `limit` bytes. Over the limit (by `Content-Length` or by
 * counting) it rejects with 413 at once and discards the rest, and the connection is closed
 * after the answer so an unread body cannot be taken for a next request.
 */
function readBody(req: http.IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const tooLarge = (): void => {
      req.resume();
      const error = new ApiError(413, `request body exceeds the limit of ${limit} bytes`, 'invalid_request_error', null, 'request_too_large', {
        connection: 'close',
      });
      reject(error);
    };
    if (Number(req.headers['content-length']) > limit) {
      tooLarge();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    const cleanup = (): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) {
        cleanup();
        tooLarge();
      } else chunks.push(chunk);
    };
    const onEnd = (): void => {
      cleanup();
      resolve(Buffer.concat(chunks, size));
    };
    const onError = (e: Error): void => {
      cleanup();
      reject(e);
    };
    const onClose = (): void => onError(new Error('the client closed the connection before the request body was complete'));
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onClose);
  });
}

/** Waits for `promise` or `ms` milliseconds, whichever comes first. */
async function settleWithin(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([promise, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}
