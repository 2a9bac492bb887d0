/**
 * `rnnkit serve --workers N`: N server processes behind one port (node:cluster), each with its
 * own model, generation pool, state cache and engine threads, supervised by a primary process
 * that serves nothing itself.
 *
 * - Connections: the primary accepts them and hands them to the workers in turn (node:cluster's
 *   round-robin); a kept-alive connection stays with its worker.
 * - `/metrics` on any worker answers for the whole server: the worker asks the primary, which
 *   collects every worker's registry and sums them (prom-client's `AggregatorRegistry`: counters,
 *   gauges and histogram buckets add up), so one scrape is the whole server.
 * - `/readyz` is 200 only while every worker is listening (503 `starting` otherwise, e.g. while
 *   a crashed worker's replacement loads the model).
 * - A worker that exits without being asked is logged and replaced; it never takes the server
 *   down. A worker that fails before it ever listened (a bad model file, a port in use) fails
 *   the start: the primary stops the others and reports the worker's error.
 * - SIGTERM/SIGINT to the primary (or the whole process group, as Ctrl-C sends it): every
 *   worker closes gracefully (new requests 503, live generations finish up to the shutdown
 *   timeout), then the primary exits.
 * - The prompt state cache is per worker: a request reuses a prefix only if the worker it
 *   reaches read it before, so with N workers a shared system prompt is read up to N times
 *   (once per worker) before every worker holds it.
 */

import cluster, { type Worker } from 'node:cluster';
import { AggregatorRegistry, type Registry } from 'prom-client';

/** Set in a worker's environment: its slot, 1…N (stable across restarts, for the logs). */
export const WORKER_ENV = 'RNNKIT_SERVE_WORKER';

/** The slot of this process when it is a serve worker, else `undefined`. */
export function workerSlot(): number | undefined {
  const v = process.env[WORKER_ENV];
  return cluster.isWorker && v !== undefined && /^[1-9][0-9]*$/.test(v) ? Number(v) : undefined;
}

/** Messages between the primary and its workers. */
type Message =
  | { type: 'rnnkit:listening'; url: string }
  | { type: 'rnnkit:failed'; message: string }
  | { type: 'rnnkit:metrics'; id: number; text?: string; error?: string }
  | { type: 'rnnkit:ready'; all: boolean }
  | { type: 'rnnkit:shutdown' };

function isMessage(m: unknown): m is Message {
  return typeof m === 'object' && m !== null && typeof (m as { type?: unknown }).type === 'string' && (m as { type: string }).type.startsWith('rnnkit:');
}

/** Receives the primary's log records (level, text, data). */
export type SupervisorLog = (level: 'info' | 'warn' | 'error', message: string, data: Record<string, unknown>) => void;

/** The primary's handle on its workers. */
export interface Supervisor {
  /** Resolves with the server's URL once every worker listens; rejects with the error of a worker that failed to start. */
  readonly started: Promise<string>;
  /** Asks every worker to close gracefully; resolves when all have exited (after `deadline` ms, the rest are killed). */
  close(deadline: number): Promise<void>;
  /** Kills every worker at once. */
  kill(): void;
}

/** A worker that exits within this many ms of starting is restarted after {@link RESTART_DELAY_MS}, not at once (a crash loop). */
const QUICK_EXIT_MS = 10_000;
const RESTART_DELAY_MS = 1_000;

/**
 * Forks `count` workers running this program again (same arguments) with {@link WORKER_ENV}
 * set and `env` added, and supervises them.
 */
export function superviseWorkers(count: number, env: Record<string, string>, log: SupervisorLog): Supervisor {
  const aggregator = new AggregatorRegistry();
  /** Worker id → its slot, whether it listens, when it started. */
  const slots = new Map<number, { slot: number; listening: boolean; since: number }>();
  let stopping = false;
  let everyoneStarted = false;
  let exited: (() => void) | undefined;
  let resolveStarted!: (url: string) => void;
  let rejectStarted!: (e: Error) => void;
  const started = new Promise<string>((resolve, reject) => {
    resolveStarted = resolve;
    rejectStarted = reject;
  });
  let url: string | undefined;

  const allListening = (): boolean => slots.size === count && [...slots.values()].every((s) => s.listening);
  const broadcast = (m: Message): void => {
    for (const w of Object.values(cluster.workers ?? {})) if (w?.isConnected()) w.send(m);
  };

  const fork = (slot: number): void => {
    const w = cluster.fork({ ...env, [WORKER_ENV]: String(slot) });
    slots.set(w.id, { slot, listening: false, since: Date.now() });
    log('info', `worker ${slot} started (pid ${w.process.pid})`, { worker: slot, pid: w.process.pid });
    w.on('message', (m: unknown) => onMessage(w, m));
  };

  const onMessage = (w: Worker, m: unknown): void => {
    if (!isMessage(m)) return;
    const s = slots.get(w.id);
    if (!s) return;
    switch (m.type) {
      case 'rnnkit:listening':
        s.listening = true;
        url ??= m.url;
        if (allListening()) {
          broadcast({ type: 'rnnkit:ready', all: true });
          if (!everyoneStarted) {
            everyoneStarted = true;
            resolveStarted(url);
          }
        }
        return;
      case 'rnnkit:failed':
        if (!everyoneStarted) {
          stopping = true;
          rejectStarted(new Error(`worker ${s.slot}: ${m.message}`));
          for (const other of Object.values(cluster.workers ?? {})) other?.process.kill('SIGKILL');
        } else {
          log('error', `worker ${s.slot} (pid ${w.process.pid}) failed: ${m.message}`, { worker: s.slot, pid: w.process.pid });
        }
        return;
      case 'rnnkit:metrics':
        aggregator.clusterMetrics().then(
          (text) => w.isConnected() && w.send({ type: 'rnnkit:metrics', id: m.id, text } satisfies Message),
          (e: Error) => w.isConnected() && w.send({ type: 'rnnkit:metrics', id: m.id, error: e.message } satisfies Message),
        );
        return;
      default:
        return;
    }
  };

  cluster.on('exit', (w, code, signal) => {
    const s = slots.get(w.id);
    if (!s) return;
    slots.delete(w.id);
    if (stopping) {
      if (slots.size === 0) exited?.();
      return;
    }
    const how = signal ? `signal ${signal}` : `code ${code}`;
    if (!everyoneStarted) {
      stopping = true;
      rejectStarted(new Error(`worker ${s.slot} exited (${how}) before it listened`));
      for (const other of Object.values(cluster.workers ?? {})) other?.process.kill('SIGKILL');
      if (slots.size === 0) exited?.();
      return;
    }
    broadcast({ type: 'rnnkit:ready', all: false });
    const quick = Date.now() - s.since < QUICK_EXIT_MS;
    log('warn', `worker ${s.slot} (pid ${w.process.pid}) exited (${how}); starting a replacement${quick ? ` in ${RESTART_DELAY_MS} ms` : ''}`, {
      worker: s.slot,
      pid: w.process.pid,
      code,
      signal,
    });
    setTimeout(() => stopping || fork(s.slot), quick ? RESTART_DELAY_MS : 0).unref();
  });

  for (let slot = 1; slot <= count; slot++) fork(slot);

  return {
    started,
    close(deadline: number): Promise<void> {
      stopping = true;
      if (slots.size === 0) return Promise.resolve();
      const done = new Promise<void>((resolve) => (exited = resolve));
      broadcast({ type: 'rnnkit:shutdown' });
      const timer = setTimeout(() => {
        for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGKILL');
      }, deadline);
      return done.finally(() => clearTimeout(timer));
    },
    kill(): void {
      stopping = true;
      for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGKILL');
    },
  };
}

/** A worker's side: what its handler asks of the cluster, and how the primary reaches it. */
export class WorkerLink {
  private allReady = false;
  private nextId = 0;
  private readonly pending = new Map<number, { resolve: (text: string) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  private onShutdown: (() => void) | undefined;

  /**
   * Made first thing in a worker, so that the primary's metrics collection gets an answer (an
   * empty one until {@link WorkerLink.collect}) while the model loads.
   */
  constructor(readonly slot: number) {
    // Answers the primary's collection requests (prom-client's own messages): the default
    // registry (empty here) until the handler's is given.
    new AggregatorRegistry();
    process.on('message', (m: unknown) => {
      if (!isMessage(m)) return;
      if (m.type === 'rnnkit:ready') this.allReady = m.all;
      else if (m.type === 'rnnkit:shutdown') this.onShutdown?.();
      else if (m.type === 'rnnkit:metrics') {
        const p = this.pending.get(m.id);
        if (!p) return;
        this.pending.delete(m.id);
        clearTimeout(p.timer);
        if (m.text !== undefined) p.resolve(m.text);
        else p.reject(new Error(m.error ?? 'metrics collection failed'));
      }
    });
  }

  /** The handler's metrics registries, what this worker reports to the primary from now on. */
  collect(registries: Registry[]): void {
    AggregatorRegistry.setRegistries(registries);
  }

  /** Whether every worker of the server listens. */
  get ready(): boolean {
    return this.allReady;
  }

  /** The whole server's metrics in the Prometheus text format, summed over the workers by the primary. */
  metrics(): Promise<string> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error('the primary process did not answer the metrics request within 10 s'));
      }, 10_000);
      this.pending.set(id, { resolve, reject, timer });
      this.send({ type: 'rnnkit:metrics', id });
    });
  }

  /** Tells the primary this worker listens at `url`. */
  listening(url: string): void {
    this.send({ type: 'rnnkit:listening', url });
  }

  /** Tells the primary this worker could not start; resolves once the message is sent. */
  failed(message: string): Promise<void> {
    return new Promise((resolve) => {
      if (!process.connected || !process.send) resolve();
      else process.send({ type: 'rnnkit:failed', message } satisfies Message, undefined, {}, () => resolve());
    });
  }

  /** Calls `fn` when the primary asks this worker to shut down. */
  onShutdownRequest(fn: () => void): void {
    this.onShutdown = fn;
  }

  private send(m: Message): void {
    if (process.connected) process.send?.(m);
  }
}
