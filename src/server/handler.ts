/**
 * The request handler every way of serving shares: {@link createHandler} gives a node:http
 * handler (`rnnkit serve`'s own server, Express, Fastify's raw request/response) and a fetch-style
 * `Request → Response` handler (Next.js route handlers, Hono, Bun, Deno), over one set of routes,
 * limits, metrics and logs.
 *
 * Per request, in order: CORS headers (and the preflight answer), the route (404/405), the
 * shutdown refusal (503), the API key (401), the JSON content type of a POST (415: a
 * cross-origin `text/plain` form post cannot run a generation), the body (413), validation (400),
 * admission (429), generation. Every failure is answered in OpenAI's error shape, a model fault
 * as 500 `server_error`; whatever one request does, no other request sees it.
 *
 * Routes: `POST /v1/chat/completions`, `POST /v1/completions`, `GET /v1/models`,
 * `GET /v1/models/{id}`, `GET /healthz` (liveness: the process answers), `GET /readyz`
 * (readiness: 503 while shutting down or when the queue is full), `GET /metrics` (Prometheus).
 */

import type * as http from 'node:http';
import { randomUUID } from 'node:crypto';
import { checkBoolean, checkInt } from '../errors';
import { ApiKeyCheck } from './auth';
import { ChatTemplate } from './chat-template';
import { parseChat } from './chat';
import { parseCompletions } from './completions';
import { CorsPolicy } from './cors';
import { ApiError, invalid, isClientError, shuttingDown } from './errors';
import { FetchExchange, NodeExchange, type Exchange } from './exchange';
import { execute, Generation, type AbortCause, type Run, type RunStats } from './generation';
import { Admission } from './limits';
import { emitLog, type LogEntry, type LogLevel } from './log';
import { Metrics } from './metrics';
import { servedModel, type CompletionModel, type ServableModel } from './model';
import { resolveOptions, TIMER_MAX, type Resolved, type ServerOptions } from './options';

/** Options of {@link RnnkitHandler.close}. */
export interface CloseOptions {
  /**
   * `true` (default): answer queued requests 503, let live generations finish up to `timeout`
   * ms, then abort the rest. `false`: abort every generation at once.
   */
  graceful?: boolean;
  /** Deadline of a graceful close in ms. Default: the `shutdownTimeout` option. */
  timeout?: number;
}

/** What {@link createHandler} returns. */
export interface RnnkitHandler {
  /** node:http's `(req, res)` handler: `http.createServer(h.node)`, `app.use(h.node)` in Express. */
  readonly node: (req: http.IncomingMessage, res: http.ServerResponse) => void;
  /** The fetch-style handler: `export const POST = (req: Request) => h.fetch(req)`; `client` names the caller's address for limits and logs. */
  readonly fetch: (request: Request, info?: { client?: string }) => Promise<Response>;
  /** Stops accepting generations and settles live ones (see {@link CloseOptions}); resolves when every answer is complete. Idempotent. */
  close(options?: CloseOptions): Promise<void>;
  /** Generations running and requests waiting now. */
  readonly load: { live: number; queued: number };
}

/**
 * What a handler of one `rnnkit serve --workers` process asks of the whole server
 * (`workers.ts`): its slot, whether every worker is ready, every worker's metrics summed.
 */
export interface ClusterView {
  readonly slot: number;
  readonly ready: boolean;
  metrics(): Promise<string>;
}

type Route = (ex: Exchange, tail: string, ctx: Context) => Promise<void>;

/** What the request log line of one request reports. */
interface Context {
  requestId?: string;
  stats?: RunStats;
}

/**
 * Creates the handler for `model` (a `LanguageModel` from `loadModel`/`loadLanguageModel`, or any
 * {@link CompletionModel}); throws a TypeError/RangeError naming a bad option. Options are those
 * of `createServer`; `host`, `port` and the connection limits only matter to `createServer`.
 */
export function createHandler(model: ServableModel, options: ServerOptions = {}): RnnkitHandler {
  const resolved = resolveOptions(options);
  return new Handler(servedModel(model, resolved.modelId), resolved);
}

/** The handler; `createServer` uses it directly to log and shut down with its own sockets. */
export class Handler implements RnnkitHandler {
  readonly admission: Admission;
  readonly metrics: Metrics;
  private readonly generations = new Set<Generation>();
  private readonly inflight = new Set<Promise<void>>();
  private readonly created = Math.floor(Date.now() / 1000);
  private readonly routes: Record<string, Record<string, Route>>;
  private readonly auth: ApiKeyCheck | null;
  private readonly cors: CorsPolicy;
  private readonly template: ChatTemplate;
  private closing: Promise<void> | null = null;
  /** Set in a worker of `rnnkit serve --workers`: readiness and /metrics answer for the whole server. */
  cluster: ClusterView | null = null;

  constructor(
    readonly model: CompletionModel,
    readonly options: Resolved,
  ) {
    this.admission = new Admission(options.maxConcurrent, options.maxQueue);
    model.setStateCache?.({ maxBytes: options.stateCacheMb * 1024 * 1024 });
    model.setPrefillChunk?.(options.prefillChunk);
    const cacheStats = model.stateCacheStats?.bind(model);
    this.metrics = new Metrics({ queued: () => this.admission.queued, live: () => this.admission.live, stateCache: cacheStats });
    this.auth = options.apiKey === undefined ? null : new ApiKeyCheck(options.apiKey);
    this.cors = new CorsPolicy(options.cors);
    this.template =
      options.chatTemplate !== undefined
        ? new ChatTemplate(options.chatTemplate, 'options.chatTemplate')
        : new ChatTemplate(model.chatTemplate, 'model.metadata.chat_template');
    this.routes = {
      '/v1/chat/completions': { POST: (ex, _t, ctx) => this.generate(ex, ctx, (body) => parseChat(body, this.model, this.options, this.template)) },
      '/v1/completions': { POST: (ex, _t, ctx) => this.generate(ex, ctx, (body) => parseCompletions(body, this.model, this.options)) },
      '/v1/models': { GET: async (ex) => this.json(ex, 200, { object: 'list', data: [this.modelObject()] }) },
      '/v1/models/': { GET: async (ex, tail) => this.modelById(ex, tail) },
      '/healthz': { GET: async (ex) => this.json(ex, 200, { status: 'ok', model: this.model.id, ...this.capacity() }) },
      '/readyz': { GET: async (ex) => this.ready(ex) },
      '/metrics': {
        GET: async (ex) => {
          const { contentType, text } = this.cluster
            ? { contentType: this.metrics.registry.contentType, text: await this.cluster.metrics() }
            : await this.metrics.render();
          ex.send(200, { 'content-type': contentType }, text);
        },
      },
    };
    this.node = this.node.bind(this);
    this.fetch = this.fetch.bind(this);
  }

  get load(): { live: number; queued: number } {
    return { live: this.admission.live, queued: this.admission.queued };
  }

  node(req: http.IncomingMessage, res: http.ServerResponse): void {
    this.track(new NodeExchange(req, res), (e) => {
      // `serve` answers every error itself; this only keeps a bug from crashing the process.
      this.log('error', 'error', `unhandled error: ${e instanceof Error ? e.message : String(e)}`, undefined, { error: e });
      res.destroy();
    });
  }

  async fetch(request: Request, info: { client?: string } = {}): Promise<Response> {
    const ex = new FetchExchange(request, info.client);
    this.track(ex, (e) => {
      this.log('error', 'error', `unhandled error: ${e instanceof Error ? e.message : String(e)}`, undefined, { error: e });
      ex.send(
        500,
        { 'content-type': 'application/json' },
        JSON.stringify(new ApiError(500, 'internal server error', 'server_error', null, 'internal_error').body),
      );
    });
    return ex.response;
  }

  private track(ex: Exchange, onBug: (e: unknown) => void): void {
    const handling = this.serve(ex).catch(onBug);
    this.inflight.add(handling);
    void handling.finally(() => this.inflight.delete(handling));
  }

  close(options: CloseOptions = {}): Promise<void> {
    const graceful = options.graceful === undefined ? true : checkBoolean('close: options.graceful', options.graceful);
    const timeout = options.timeout === undefined ? this.options.shutdownTimeout : checkInt('close: options.timeout', options.timeout, 0, TIMER_MAX);
    this.closing ??= this.shutdown(graceful, timeout);
    return this.closing;
  }

  private async shutdown(graceful: boolean, timeout: number): Promise<void> {
    for (const g of this.generations) if (!graceful || !g.live) g.abort('shutdown');
    if (graceful) {
      await settleWithin(Promise.all([...this.generations].map((g) => g.done)), timeout);
      for (const g of this.generations) g.abort('shutdown');
    }
    await Promise.all([...this.generations].map((g) => g.done));
  }

  /** Waits for every request being handled (after {@link close}). */
  async drained(): Promise<void> {
    await Promise.all([...this.inflight]);
  }

  /** Emits one log record. */
  log(level: LogLevel, event: LogEntry['event'], message: string, requestId?: string, data?: Record<string, unknown>): void {
    emitLog(this.options.onLog, { level, event, message, requestId, data });
  }

  private async serve(ex: Exchange): Promise<void> {
    const started = performance.now();
    const ctx: Context = {};
    let route = 'unknown';
    try {
      for (const [k, v] of Object.entries(this.cors.headers(ex.header('origin')))) ex.setHeader(k, v);
      if (ex.method === 'OPTIONS') {
        route = 'preflight';
        return this.preflight(ex);
      }
      const found = this.route(ex.method, ex.path);
      route = found.name;
      if (this.closing) {
        ex.setHeader('connection', 'close');
        if (ex.path === '/healthz' || ex.path === '/readyz') return this.json(ex, 503, { status: 'shutting_down', model: this.model.id, ...this.capacity() });
        throw shuttingDown();
      }
      if (this.auth && ex.path.startsWith('/v1/')) this.auth.check(ex.header('authorization'));
      await found.handler(ex, found.tail, ctx);
    } catch (e) {
      this.fail(ex, e, ctx.requestId);
    } finally {
      await ex.done;
      const status = ex.started ? ex.status : 499;
      const seconds = (performance.now() - started) / 1000;
      this.metrics.requests.inc({ route, status: String(status) });
      this.metrics.requestDuration.observe({ route }, seconds);
      const s = ctx.stats;
      if (s) {
        this.metrics.promptTokens.inc(s.promptTokens);
        this.metrics.completionTokens.inc(s.completionTokens);
        if (s.ttftMs !== undefined) this.metrics.timeToFirstToken.observe(s.ttftMs / 1000);
        for (const gap of s.gaps) this.metrics.interTokenLatency.observe(gap);
      }
      this.log(status >= 500 ? 'warn' : 'info', 'request', `${ex.method} ${ex.path} ${status}`, ctx.requestId, {
        method: ex.method,
        path: ex.path,
        status,
        durationMs: Math.round(seconds * 1000),
        client: ex.client,
        ...(s
          ? { promptTokens: s.promptTokens, completionTokens: s.completionTokens, ...(s.ttftMs === undefined ? {} : { ttftMs: Math.round(s.ttftMs) }) }
          : {}),
      });
    }
  }

  private preflight(ex: Exchange): void {
    const headers = this.cors.preflight(ex.header('origin'), ex.header('access-control-request-headers'));
    if (headers === null) {
      throw new ApiError(
        403,
        `cross-origin requests from ${JSON.stringify(ex.header('origin') ?? null)} are not allowed by this server`,
        'invalid_request_error',
        null,
        'cors_origin_not_allowed',
      );
    }
    ex.send(204, headers, '');
  }

  private route(method: string, path: string): { handler: Route; tail: string; name: string } {
    const prefix = path.startsWith('/v1/models/') && path.length > '/v1/models/'.length ? '/v1/models/' : path;
    const methods = this.routes[prefix];
    if (!methods) throw new ApiError(404, `Invalid URL (${method} ${path})`, 'invalid_request_error', null, 'not_found');
    const handler = methods[method === 'HEAD' ? 'GET' : method];
    if (!handler) {
      const allow = Object.keys(methods)
        .flatMap((m) => (m === 'GET' ? ['GET', 'HEAD'] : [m]))
        .concat('OPTIONS')
        .join(', ');
      throw new ApiError(405, `Method ${method} is not allowed on ${path}; allowed: ${allow}`, 'invalid_request_error', null, 'method_not_allowed', { allow });
    }
    return { handler, tail: path.slice(prefix.length), name: prefix === '/v1/models/' ? '/v1/models/{id}' : prefix };
  }

  /** Answers an error: as JSON when nothing was sent yet, as a last SSE event when a stream has started. */
  private fail(ex: Exchange, e: unknown, requestId: string | undefined): void {
    let error: ApiError;
    if (e instanceof ApiError) error = e;
    else if ((e as { code?: unknown } | null)?.code === 'ERR_RNNKIT_GENERATION') {
      // The model failed (non-finite logits, a token its tokenizer lacks): not the client's fault.
      this.log('error', 'error', `model fault: ${(e as Error).message}`, requestId, { error: e });
      error = new ApiError(
        500,
        `the model failed while generating${requestId ? ` (request ${requestId})` : ''}: ${(e as Error).message}`,
        'server_error',
        null,
        'model_error',
      );
    } else if (isClientError(e)) error = invalid((e as { param?: string }).param ?? null, e.message);
    else {
      this.log('error', 'error', `internal error: ${e instanceof Error ? e.message : String(e)}`, requestId, { error: e });
      error = new ApiError(500, `internal server error${requestId ? ` (request ${requestId})` : ''}`, 'server_error', null, 'internal_error');
    }
    if (ex.closed) return;
    if (ex.started) {
      ex.end(`data: ${JSON.stringify(error.body)}\n\n`);
      return;
    }
    this.json(ex, error.status, error.body, error.headers);
  }

  private json(ex: Exchange, status: number, body: unknown, headers: Record<string, string> = {}): void {
    ex.send(status, { ...headers, 'content-type': 'application/json' }, JSON.stringify(body));
  }

  private ready(ex: Exchange): void {
    const full = this.admission.live >= this.options.maxConcurrent && this.admission.queued >= this.options.maxQueue;
    const starting = this.cluster !== null && !this.cluster.ready;
    const status = starting ? 'starting' : full ? 'busy' : 'ready';
    this.json(ex, status === 'ready' ? 200 : 503, { status, model: this.model.id, ...this.capacity() });
  }

  /** Load and limits (of this worker, named by `worker`, under `--workers`). */
  private capacity(): { live: number; queued: number; maxConcurrent: number; maxQueue: number; worker?: number } {
    return { ...this.load, maxConcurrent: this.options.maxConcurrent, maxQueue: this.options.maxQueue, ...(this.cluster && { worker: this.cluster.slot }) };
  }

  private modelObject(): Record<string, unknown> {
    return { id: this.model.id, object: 'model', created: this.created, owned_by: 'rnnkit' };
  }

  private modelById(ex: Exchange, encodedId: string): void {
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
    this.json(ex, 200, this.modelObject());
  }

  private async generate(ex: Exchange, ctx: Context, parse: (body: unknown) => Run): Promise<void> {
    // JSON only: a browser sends a cross-origin POST without a preflight only as a "simple"
    // request (text/plain, form data), which this refuses before reading it.
    const type = (ex.header('content-type') ?? '').split(';', 1)[0].trim().toLowerCase();
    if (type !== 'application/json') {
      ex.setHeader('connection', 'close');
      throw new ApiError(
        415,
        `Content-Type must be application/json, got ${JSON.stringify(ex.header('content-type') ?? null)}`,
        'invalid_request_error',
        null,
        'unsupported_media_type',
      );
    }
    const raw = await ex.body(this.options.bodyLimit);
    let body: unknown;
    try {
      body = JSON.parse(raw.toString('utf8'));
    } catch (e) {
      throw invalid(null, `request body is not valid JSON: ${(e as Error).message}`, 'invalid_json');
    }
    const run = parse(body);
    if (this.closing) throw shuttingDown();

    const g = new Generation(`${run.format.idPrefix}-${randomUUID().replace(/-/g, '')}`, ex);
    ctx.requestId = g.id;
    ex.setHeader('x-request-id', g.id);
    this.generations.add(g);
    void g.done.then(() => this.generations.delete(g));
    const detach = ex.onAbandon(() => g.abort('disconnect'));
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
      this.metrics.batchSize.observe(this.admission.live);
      ctx.stats = { promptTokens: 0, completionTokens: 0, gaps: [] };
      const base = { id: g.id, created: Math.floor(Date.now() / 1000), model: this.model.id, includeUsage: run.includeUsage };
      await execute(this.model, g, run, base, ctx.stats);
    } catch (e) {
      if (g.cause === null) {
        g.stop();
        throw e;
      }
      this.log('info', 'abort', `generation aborted: ${g.cause}`, g.id, { cause: g.cause });
      throw this.abortError(g.cause);
    } finally {
      clearTimeout(timer);
      detach();
      if (admitted) this.admission.release();
    }
  }

  private abortError(cause: AbortCause): ApiError {
    switch (cause) {
      case 'timeout':
        return new ApiError(504, `generation exceeded the request timeout of ${this.options.requestTimeout} ms`, 'timeout_error', null, 'request_timeout');
      case 'shutdown':
        return shuttingDown();
      case 'disconnect':
        return new ApiError(499, 'client closed the request', 'invalid_request_error', null, 'client_closed_request');
    }
  }
}

/** Waits for `promise` or `ms` milliseconds, whichever comes first. */
async function settleWithin(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([promise, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}
