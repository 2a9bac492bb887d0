/**
 * Limits that keep one client from harming others: admission of generations (at most
 * `maxConcurrent` live, `maxQueue` waiting, 429 beyond), and the connection guard of the
 * listening server — caps on connections overall and per client address, and a deadline for a
 * new connection's first request, so idle sockets and slowloris senders are closed (Node's own
 * `headersTimeout`/`requestTimeout` bound a request once it has begun; `keepAliveTimeout` the
 * idle time between requests).
 */

import type * as http from 'node:http';
import type { Socket } from 'node:net';
import type { Resolved } from './options';

/** At most `maxConcurrent` live generations, at most `maxQueue` waiting, in arrival order. */
export class Admission {
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

/**
 * How often Node checks the request deadlines (its `connectionsCheckingInterval`, 30 s by
 * default, which would let a slowloris sender live that long): a quarter of the headers
 * deadline, at most a second.
 */
export function checkingInterval(o: Resolved): number {
  return Math.max(10, Math.min(1000, Math.floor(o.headersTimeout / 4)));
}

/** Why a connection was refused or closed by the guard. */
export type Refusal = 'max_connections' | 'max_connections_per_client' | 'first_request_timeout';

/**
 * Applies the connection limits to `server`: Node's timeouts set from the options, a cap on open
 * connections overall and per client address (refused at once with a minimal 503 and closed),
 * and a deadline for the first request of a connection that sends nothing.
 */
export function guardConnections(server: http.Server, o: Resolved, onRefuse: (reason: Refusal, client: string) => void): void {
  server.headersTimeout = o.headersTimeout;
  server.requestTimeout = o.bodyTimeout;
  server.keepAliveTimeout = o.keepAliveTimeout;
  const perClient = new Map<string, number>();
  let open = 0;
  const firstRequest = new WeakMap<Socket, NodeJS.Timeout>();
  server.on('connection', (socket: Socket) => {
    const client = socket.remoteAddress ?? 'unknown';
    const mine = perClient.get(client) ?? 0;
    const reason: Refusal | null = open >= o.maxConnections ? 'max_connections' : mine >= o.maxConnectionsPerClient ? 'max_connections_per_client' : null;
    if (reason !== null) {
      onRefuse(reason, client);
      socket.end('HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
      socket.destroySoon();
      return;
    }
    open++;
    perClient.set(client, mine + 1);
    // Node bounds the headers of a request once its first byte arrives; a socket that sends
    // nothing at all is closed here when the same deadline passes.
    const timer = setTimeout(() => {
      onRefuse('first_request_timeout', client);
      socket.destroy();
    }, o.headersTimeout);
    timer.unref();
    firstRequest.set(socket, timer);
    socket.once('close', () => {
      clearTimeout(timer);
      open--;
      const left = (perClient.get(client) ?? 1) - 1;
      if (left === 0) perClient.delete(client);
      else perClient.set(client, left);
    });
  });
  // Any request (even one that is refused later) ends the first-request deadline.
  const clear = (req: http.IncomingMessage): void => clearTimeout(firstRequest.get(req.socket));
  server.prependListener('request', clear);
  server.on('checkContinue', clear);
}
