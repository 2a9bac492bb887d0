/**
 * `createServer`: the handler of `handler.ts` on its own node:http server, with the connection
 * limits of `limits.ts`, `listen` and a graceful `close` (stop accepting, let live generations
 * finish up to a deadline, close every socket).
 */

import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Handler, type CloseOptions } from './handler';
import { checkingInterval, guardConnections } from './limits';
import { servedModel, type ServableModel } from './model';
import { resolveOptions, type ServerOptions } from './options';

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
 * Creates (but does not start) a server for `model`: the library's own `LanguageModel`
 * (`createServer(await loadModel(path))`) or any {@link CompletionModel}; throws a
 * TypeError/RangeError naming any bad option.
 */
export function createServer(model: ServableModel, options: ServerOptions = {}): RnnkitServer {
  return serverAndHandler(model, options).server;
}

/** {@link createServer} with its handler (which a `--workers` process joins to the cluster). */
export function serverAndHandler(model: ServableModel, options: ServerOptions): { server: RnnkitServer; handler: Handler } {
  const resolved = resolveOptions(options);
  const handler = new Handler(servedModel(model, resolved.modelId), resolved);
  return { server: new Server(handler), handler };
}

class Server implements RnnkitServer {
  private readonly http: http.Server;
  private closing: Promise<void> | null = null;

  constructor(private readonly handler: Handler) {
    const o = handler.options;
    this.http = http.createServer({ connectionsCheckingInterval: checkingInterval(o) }, handler.node);
    guardConnections(this.http, o, (reason, client) =>
      handler.log('warn', 'refused', `connection from ${client} closed: ${reason}`, undefined, { reason, client }),
    );
    this.http.on('error', (e) => handler.log('error', 'error', `server error: ${e.message}`, undefined, { error: e }));
  }

  get address(): AddressInfo | null {
    const a = this.http.address();
    return a !== null && typeof a === 'object' ? a : null;
  }

  listen(): Promise<{ url: string }> {
    if (this.closing) return Promise.reject(new Error('listen: the server has been closed'));
    if (this.http.listening) return Promise.reject(new Error('listen: the server is already listening'));
    const { host, port } = this.handler.options;
    return new Promise((resolve, reject) => {
      const onError = (e: Error): void => reject(e);
      this.http.once('error', onError);
      this.http.listen(port, host, () => {
        this.http.off('error', onError);
        const { address, port: bound, family } = this.address as AddressInfo;
        const url = `http://${family === 'IPv6' ? `[${address}]` : address}:${bound}`;
        this.handler.log('info', 'listening', `listening on ${url}`, undefined, { url, model: this.handler.model.id });
        resolve({ url });
      });
    });
  }

  close(options: CloseOptions = {}): Promise<void> {
    // Checked by the handler's close; started once.
    this.closing ??= this.shutdown(options);
    return this.closing;
  }

  private async shutdown(options: CloseOptions): Promise<void> {
    const { live, queued } = this.handler.load;
    const graceful = options.graceful ?? true;
    this.handler.log(
      'info',
      'shutdown',
      `shutting down (${graceful ? `graceful, deadline ${options.timeout ?? this.handler.options.shutdownTimeout} ms` : 'immediate'})`,
      undefined,
      { live, queued },
    );
    const closed = new Promise<void>((resolve) => this.http.close(() => resolve()));
    this.http.closeIdleConnections();
    const settled = this.handler.close(options);
    await settled;
    this.http.closeAllConnections();
    await this.handler.drained();
    await closed;
  }
}
