/**
 * One request and its answer, independent of the HTTP stack: the handler (`handler.ts`) speaks
 * to an {@link Exchange}, and two adapters provide it — {@link NodeExchange} over node:http's
 * request/response (the listening server, Express, Fastify's raw objects) and
 * {@link FetchExchange} over a WHATWG `Request` whose answer becomes a `Response` (Next.js
 * route handlers, Hono, Bun, Deno). Streams keep back-pressure in both: `write` returns a
 * promise when the client is not reading.
 */

import type * as http from 'node:http';
import { once } from 'node:events';
import { ApiError } from './errors';

/** A request and its answer, as the handler uses them. */
export interface Exchange {
  readonly method: string;
  /** Path without the query string. */
  readonly path: string;
  /** Client address (connection limits, logs). */
  readonly client: string;
  /** A request header (lower-case name), joined when repeated. */
  header(name: string): string | undefined;
  /** The body, at most `limit` bytes (413 beyond). */
  body(limit: number): Promise<Buffer>;
  /** Sets a header of the answer before it starts. */
  setHeader(name: string, value: string): void;
  getHeader(name: string): string | undefined;
  /** Whether the answer has started (status and headers sent). */
  readonly started: boolean;
  /** Status of the answer once started. */
  readonly status: number;
  /** Whether nothing more can be written (answered or the client gone). */
  readonly closed: boolean;
  /** A whole answer. */
  send(status: number, headers: Record<string, string>, body: string): void;
  /** Starts a streamed answer. */
  start(status: number, headers: Record<string, string>): void;
  /** Writes part of a streamed answer; a promise when the client must catch up first. */
  write(chunk: string): Promise<void> | undefined;
  /** Ends a streamed answer. */
  end(chunk?: string): void;
  /** Calls `listener` once if the client goes away before the answer is complete; returns the detach function. */
  onAbandon(listener: () => void): () => void;
  /** Settles when the answer is complete or the client gone. */
  readonly done: Promise<void>;
}

/** An {@link Exchange} over node:http's `IncomingMessage`/`ServerResponse`. */
export class NodeExchange implements Exchange {
  readonly method: string;
  readonly path: string;
  readonly client: string;
  readonly done: Promise<void>;

  constructor(
    readonly req: http.IncomingMessage,
    readonly res: http.ServerResponse,
  ) {
    this.method = req.method ?? 'GET';
    this.path = (req.url ?? '/').split('?', 1)[0];
    this.client = req.socket.remoteAddress ?? 'unknown';
    this.done = new Promise((resolve) => res.once('close', () => resolve()));
  }

  header(name: string): string | undefined {
    const v = this.req.headers[name];
    return Array.isArray(v) ? v.join(', ') : v;
  }

  body(limit: number): Promise<Buffer> {
    return readBody(this.req, limit);
  }

  setHeader(name: string, value: string): void {
    if (!this.res.headersSent) this.res.setHeader(name, value);
  }

  getHeader(name: string): string | undefined {
    const v = this.res.getHeader(name);
    return v === undefined ? undefined : String(v);
  }

  get started(): boolean {
    return this.res.headersSent;
  }

  get status(): number {
    return this.res.statusCode;
  }

  get closed(): boolean {
    return this.res.destroyed || this.res.writableEnded;
  }

  send(status: number, headers: Record<string, string>, body: string): void {
    if (this.closed) return;
    this.res.writeHead(status, { ...headers, 'content-length': Buffer.byteLength(body) });
    this.res.end(body);
  }

  start(status: number, headers: Record<string, string>): void {
    this.res.writeHead(status, headers);
  }

  write(chunk: string): Promise<void> | undefined {
    if (this.closed) return undefined;
    if (this.res.write(chunk)) return undefined;
    return once(this.res, 'drain').then(() => undefined);
  }

  end(chunk?: string): void {
    if (!this.closed) this.res.end(chunk);
  }

  onAbandon(listener: () => void): () => void {
    const onClose = (): void => {
      if (!this.res.writableFinished) listener();
    };
    this.res.on('close', onClose);
    return () => this.res.off('close', onClose);
  }
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
      reject(
        new ApiError(413, `request body exceeds the limit of ${limit} bytes`, 'invalid_request_error', null, 'request_too_large', { connection: 'close' }),
      );
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

/** Headers a `Response` may not be given by hand (the runtime manages the connection). */
const HOP_BY_HOP = new Set(['connection', 'content-length', 'keep-alive', 'transfer-encoding']);

/**
 * An {@link Exchange} over a fetch `Request`; `response` resolves with the `Response` as soon
 * as its status is known (a stream's body then follows). The client leaving is seen through
 * the request's `signal` and the cancelling of the response body.
 */
export class FetchExchange implements Exchange {
  readonly method: string;
  readonly path: string;
  readonly client: string;
  readonly response: Promise<Response>;
  readonly done: Promise<void>;
  private resolveResponse!: (r: Response) => void;
  private finish!: () => void;
  private readonly headers = new Map<string, string>();
  private statusCode = 0;
  private ended = false;
  private abandoned = false;
  private readonly abandonListeners = new Set<() => void>();
  private controller: ReadableStreamDefaultController<Uint8Array> | null = null;
  private pulled: (() => void) | null = null;
  private readonly encoder = new TextEncoder();

  constructor(
    private readonly request: Request,
    client: string | undefined,
  ) {
    this.method = request.method;
    this.path = new URL(request.url).pathname;
    this.client = client ?? 'unknown';
    this.response = new Promise((resolve) => (this.resolveResponse = resolve));
    this.done = new Promise((resolve) => (this.finish = resolve));
    request.signal?.addEventListener('abort', () => this.abandon(), { once: true });
  }

  header(name: string): string | undefined {
    return this.request.headers.get(name) ?? undefined;
  }

  async body(limit: number): Promise<Buffer> {
    const tooLarge = () => new ApiError(413, `request body exceeds the limit of ${limit} bytes`, 'invalid_request_error', null, 'request_too_large');
    if (Number(this.request.headers.get('content-length')) > limit) throw tooLarge();
    if (this.request.body === null) return Buffer.alloc(0);
    const chunks: Buffer[] = [];
    let size = 0;
    const reader = this.request.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > limit) {
        void reader.cancel();
        throw tooLarge();
      }
      chunks.push(Buffer.from(value.buffer, value.byteOffset, value.byteLength));
    }
    return Buffer.concat(chunks, size);
  }

  setHeader(name: string, value: string): void {
    if (!this.started) this.headers.set(name.toLowerCase(), value);
  }

  getHeader(name: string): string | undefined {
    return this.headers.get(name.toLowerCase());
  }

  get started(): boolean {
    return this.statusCode !== 0;
  }

  get status(): number {
    return this.statusCode;
  }

  get closed(): boolean {
    return this.ended || this.abandoned;
  }

  private headerList(extra: Record<string, string>): Headers {
    const h = new Headers();
    for (const [k, v] of [...this.headers, ...Object.entries(extra)]) if (!HOP_BY_HOP.has(k.toLowerCase())) h.set(k, v);
    return h;
  }

  send(status: number, headers: Record<string, string>, body: string): void {
    if (this.started) return;
    this.statusCode = status;
    this.ended = true;
    // 204/304 answers carry no body in the fetch API.
    this.resolveResponse(new Response(status === 204 || status === 304 ? null : body, { status, headers: this.headerList(headers) }));
    this.finish();
  }

  start(status: number, headers: Record<string, string>): void {
    this.statusCode = status;
    const stream = new ReadableStream<Uint8Array>(
      {
        start: (controller) => {
          this.controller = controller;
        },
        pull: () => {
          this.pulled?.();
          this.pulled = null;
        },
        cancel: () => this.abandon(),
      },
      { highWaterMark: 16 },
    );
    this.resolveResponse(new Response(stream, { status, headers: this.headerList(headers) }));
  }

  write(chunk: string): Promise<void> | undefined {
    if (this.closed || !this.controller) return undefined;
    this.controller.enqueue(this.encoder.encode(chunk));
    if ((this.controller.desiredSize ?? 1) > 0) return undefined;
    return new Promise<void>((resolve) => {
      this.pulled = resolve;
      this.abandonListeners.add(resolve);
    });
  }

  end(chunk?: string): void {
    if (this.closed) return;
    if (chunk !== undefined) this.controller?.enqueue(this.encoder.encode(chunk));
    this.ended = true;
    this.controller?.close();
    this.finish();
  }

  onAbandon(listener: () => void): () => void {
    this.abandonListeners.add(listener);
    return () => this.abandonListeners.delete(listener);
  }

  private abandon(): void {
    if (this.ended || this.abandoned) return;
    this.abandoned = true;
    for (const l of [...this.abandonListeners]) l();
    this.finish();
  }
}
