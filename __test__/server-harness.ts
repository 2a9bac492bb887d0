/**
 * Helpers for server tests that do not depend on which `CompletionModel` is served: start a
 * server on an ephemeral loopback port, post JSON, read an SSE stream, wait for a condition, and
 * run a bounded concurrent streaming load. A test with the real native model reuses them by
 * passing that model to `startServer`.
 */
import { createServer, type LogEntry, type RnnkitServer, type ServableModel, type ServerOptions } from '../src/server';

/** A started server, its base URL and the log records it emitted. */
export interface Started {
  server: RnnkitServer;
  url: string;
  logs: LogEntry[];
}

/** Starts a server for `model` on 127.0.0.1 with an ephemeral port; logs are collected, not printed. */
export async function startServer(model: ServableModel, options: ServerOptions = {}): Promise<Started> {
  const logs: LogEntry[] = [];
  const server = createServer(model, { port: 0, ...options, onLog: (entry) => logs.push(entry) });
  const { url } = await server.listen();
  return { server, url, logs };
}

/** A JSON response: status, headers and parsed body. */
export interface JsonResponse {
  status: number;
  headers: Headers;
  body: any;
}

/** Sends `body` (an object, or a raw string sent as is) and parses the JSON answer. */
export async function request(url: string, path: string, init: { method?: string; body?: unknown; signal?: AbortSignal } = {}): Promise<JsonResponse> {
  const method = init.method ?? (init.body === undefined ? 'GET' : 'POST');
  const body = init.body === undefined ? undefined : typeof init.body === 'string' ? init.body : JSON.stringify(init.body);
  const res = await fetch(url + path, { method, body, headers: body === undefined ? {} : { 'content-type': 'application/json' }, signal: init.signal });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text === '' ? null : JSON.parse(text) };
}

/** What a streaming completion delivered. */
export interface StreamResult {
  status: number;
  headers: Headers;
  /** Parsed `data:` payloads before `[DONE]` (chunks, or an `{ error }` event). */
  events: any[];
  /** Whether `data: [DONE]` arrived. */
  done: boolean;
  /** Concatenated `choices[0].text` of all chunks. */
  text: string;
}

/** Splits an SSE body into its `data:` payloads. */
export function sseData(raw: string): string[] {
  return raw
    .split('\n\n')
    .filter((event) => event.trim() !== '')
    .map((event) => {
      const lines = event.split('\n').filter((l) => l.startsWith('data:'));
      return lines.map((l) => l.slice(5).replace(/^ /, '')).join('\n');
    });
}

/** Posts a streaming completion and reads the whole SSE answer. */
export async function stream(url: string, body: Record<string, unknown>): Promise<StreamResult> {
  const res = await fetch(`${url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ...body, stream: true }),
  });
  const raw = await res.text();
  if (!(res.headers.get('content-type') ?? '').startsWith('text/event-stream')) {
    return { status: res.status, headers: res.headers, events: [JSON.parse(raw)], done: false, text: '' };
  }
  const data = sseData(raw);
  const done = data.at(-1) === '[DONE]';
  const events = (done ? data.slice(0, -1) : data).map((d) => JSON.parse(d));
  const text = events.map((e) => e.choices?.[0]?.text ?? '').join('');
  return { status: res.status, headers: res.headers, events, done, text };
}

/** Polls `predicate` every 5 ms until it holds; fails after `timeoutMs`. */
export async function until(what: string, predicate: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Result of {@link runStreams}. */
export interface LoadResult {
  results: StreamResult[];
  /** Wall time in seconds. */
  seconds: number;
  /** Completion tokens summed over all streams (from `usage`). */
  tokens: number;
}

/**
 * Runs `bodies` as streaming completions (with usage), at most `concurrency` at a time, and
 * returns every result in input order.
 */
export async function runStreams(url: string, bodies: Array<Record<string, unknown>>, concurrency: number): Promise<LoadResult> {
  const results: StreamResult[] = new Array(bodies.length);
  let next = 0;
  const started = performance.now();
  const worker = async (): Promise<void> => {
    while (next < bodies.length) {
      const i = next++;
      results[i] = await stream(url, { ...bodies[i], stream_options: { include_usage: true } });
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, bodies.length) }, worker));
  const seconds = (performance.now() - started) / 1000;
  const tokens = results.reduce((sum, r) => sum + (r.events.at(-1)?.usage?.completion_tokens ?? 0), 0);
  return { results, seconds, tokens };
}
