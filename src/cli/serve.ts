/**
 * `rnnkit serve`: serves a language model over the OpenAI-compatible HTTP API of `createServer`
 * until SIGINT or SIGTERM, then shuts down gracefully (a second signal quits at once). The API
 * key comes from `--api-key` or the `RNNKIT_API_KEY` environment variable; binding beyond
 * loopback without one warns. `--workers N` runs N such servers behind one port, supervised by
 * this process (`src/server/workers.ts`).
 */

import { Command, Option } from 'commander';
import * as os from 'node:os';
import * as path from 'node:path';
import { SERVER_DEFAULTS, type LogEntry } from '../server';
import { serverAndHandler } from '../server/server';
import { superviseWorkers, workerSlot, WorkerLink } from '../server/workers';
import { readText } from './files';
import { CliError, EXIT_INTERRUPTED, exitingWith, UsageError, type ExitCode } from './exit';
import { makeIo } from './io';
import { loadOptions, openLanguageModel, precisionOption } from './models';
import { setThreads } from '../native';
import { intOption, jsonOption } from './options';

/** Parsed options of `rnnkit serve`. */
interface ServeOptions {
  json?: boolean;
  precision?: string;
  host: string;
  port: number;
  modelId?: string;
  maxPromptTokens: number;
  maxTokens: number;
  defaultMaxTokens: number;
  maxConcurrent: number;
  maxQueue: number;
  bodyLimit: number;
  requestTimeout: number;
  shutdownTimeout: number;
  headersTimeout: number;
  bodyTimeout: number;
  keepAliveTimeout: number;
  maxConnections: number;
  maxConnectionsPerClient: number;
  maxChoices: number;
  stateCacheMb: number;
  prefillChunk: number;
  workers: number;
  threads?: number;
  apiKey?: string;
  cors?: string[];
  chatTemplate?: string;
  quiet?: boolean;
}

/** Whether `host` only accepts connections from this machine. */
function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}

/** One log record of the server as a line for people. */
function formatLogEntry(e: LogEntry): string {
  return `${new Date().toISOString()} ${e.level.padEnd(5)} ${e.message}`;
}

/** One log record of the server as a JSON line (errors in `data` become their messages). */
function logEntryJSON(e: LogEntry): string {
  const data = e.data && Object.fromEntries(Object.entries(e.data).map(([k, v]) => [k, v instanceof Error ? v.message : v]));
  return JSON.stringify({ ...e, data });
}

/**
 * Compute threads of the engine of one server process (each worker's under `--workers`):
 * `--threads`, else `RNNKIT_THREADS`, else the cores split between the workers less one for each
 * worker's JavaScript thread: max(1, ⌊cores / workers⌋ − 1) (one worker: one fewer than the
 * cores). The JavaScript thread that decodes and writes the streams needs a core of its own:
 * with every core computing, a batched step waits for its slowest thread whenever JavaScript
 * (or the clients, on the same machine) takes that thread's core, and on 2 cores 64 streams
 * measured faster with one compute thread (bench/RESULTS.md).
 */
function servingThreads(o: ServeOptions): number {
  if (o.threads !== undefined) return o.threads;
  if (process.env.RNNKIT_THREADS) return 0; // the engine reads it
  return Math.max(1, Math.floor(os.availableParallelism() / o.workers) - 1);
}

/** Warns when the server listens beyond loopback without an API key. */
function warnOpen(o: ServeOptions, apiKey: string | undefined, io: ReturnType<typeof makeIo>): void {
  if (!isLoopback(o.host) && apiKey === undefined) {
    io.log(`warning: listening on ${o.host} without an API key: anyone who can reach this address can use the model (set --api-key or RNNKIT_API_KEY)`);
  }
}

/** The line (and JSON record) `serve` prints once it listens. */
function announce(io: ReturnType<typeof makeIo>, id: string, url: string, apiKey: string | undefined, workers: number): void {
  io.result(
    `serving ${id} at ${url}/v1 (OpenAI-compatible: POST /v1/chat/completions, POST /v1/completions, GET /v1/models; GET /healthz, /readyz, /metrics)${apiKey ? ', API key required' : ''}${workers > 1 ? `; ${workers} workers` : ''}; Ctrl-C to stop`,
    { url, baseURL: `${url}/v1`, model: id, ...(workers > 1 ? { workers } : {}) },
  );
}

/** Resolves with the first SIGINT or SIGTERM (or `other`, when it resolves first). */
function firstSignal(other?: Promise<void>): Promise<NodeJS.Signals | 'request'> {
  return new Promise((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
    void other?.then(() => resolve('request'));
  });
}

/** The model id served: `--model-id`, else the file's name. */
function modelId(file: string, o: ServeOptions): string {
  return o.modelId ?? path.basename(file).replace(/\.safetensors$/, '');
}

/**
 * The supervising process of `--workers N`: forks the workers (this program again, same
 * arguments), prints the URL once all listen, and on SIGINT/SIGTERM closes them gracefully.
 */
async function supervise(file: string, o: ServeOptions): Promise<number> {
  const io = makeIo(!!o.json);
  const apiKey = o.apiKey ?? (process.env.RNNKIT_API_KEY || undefined);
  warnOpen(o, apiKey, io);
  const log = (level: LogEntry['level'], message: string, data: Record<string, unknown>): void => {
    if (o.quiet && level === 'info') return;
    const e: LogEntry = { level, event: 'worker', message, data };
    process.stderr.write((io.json ? logEntryJSON(e) : formatLogEntry(e)) + '\n');
  };
  const workers = superviseWorkers(o.workers, {}, log);
  const signalled = firstSignal();
  const first = await Promise.race([workers.started, signalled]);
  if (first === 'SIGINT' || first === 'SIGTERM') {
    workers.kill();
    return EXIT_INTERRUPTED;
  }
  announce(io, modelId(file, o), first, apiKey, o.workers);
  const signal = await signalled;
  io.log(
    `${signal}: shutting down ${o.workers} workers (live generations get up to ${o.shutdownTimeout} ms; ${signal === 'SIGINT' ? 'Ctrl-C' : 'SIGTERM'} again to quit at once)`,
  );
  const force = (): void => {
    workers.kill();
    process.exit(EXIT_INTERRUPTED);
  };
  process.once('SIGINT', force);
  process.once('SIGTERM', force);
  // Workers close within the shutdown timeout; past it (and a margin to close their sockets) they are killed.
  await workers.close(o.shutdownTimeout + 5_000);
  process.off('SIGINT', force);
  process.off('SIGTERM', force);
  return 0;
}

/** `rnnkit serve`: runs until SIGINT/SIGTERM, then shuts down gracefully. */
async function serve(file: string, o: ServeOptions): Promise<number> {
  if (o.defaultMaxTokens > o.maxTokens) throw new UsageError(`--default-max-tokens (${o.defaultMaxTokens}) must be ≤ --max-tokens (${o.maxTokens})`);
  const slot = workerSlot();
  if (o.workers > 1 && slot === undefined) return supervise(file, o);
  // A worker answers the primary's metrics requests from the start, and reports a failure to start.
  const link = slot === undefined ? null : new WorkerLink(slot);
  try {
    return await serveOne(file, o, link);
  } catch (e) {
    await link?.failed(e instanceof Error ? e.message : String(e));
    throw e;
  } finally {
    // The channel to the primary would keep a worker's process alive.
    if (link && process.connected) process.disconnect();
  }
}

/** One server process: `serve` itself, or one worker of `--workers`. */
async function serveOne(file: string, o: ServeOptions, link: WorkerLink | null): Promise<number> {
  setThreads(servingThreads(o));
  const io = makeIo(!!o.json);
  const model = await openLanguageModel(file, 'serve', loadOptions(o.precision));
  // Checked here, before the server is built, so that the user reads a line about the file
  // rather than the library's message about its `model` argument.
  if (!model.tokenizer) throw new CliError('serve needs a model with a tokenizer (this one has token ids only)');
  const id = modelId(file, o);
  const apiKey = o.apiKey ?? (process.env.RNNKIT_API_KEY || undefined);
  const chatTemplate = o.chatTemplate === undefined ? undefined : readText(o.chatTemplate, 'chat template');
  if (!link) warnOpen(o, apiKey, io);
  const { server, handler } = serverAndHandler(model, {
    apiKey,
    chatTemplate,
    cors: o.cors ?? [],
    headersTimeout: o.headersTimeout,
    bodyTimeout: o.bodyTimeout,
    keepAliveTimeout: o.keepAliveTimeout,
    maxConnections: o.maxConnections,
    maxConnectionsPerClient: o.maxConnectionsPerClient,
    maxChoices: o.maxChoices,
    modelId: id,
    host: o.host,
    port: o.port,
    maxPromptTokens: o.maxPromptTokens,
    maxTokens: o.maxTokens,
    defaultMaxTokens: o.defaultMaxTokens,
    maxConcurrent: o.maxConcurrent,
    maxQueue: o.maxQueue,
    bodyLimit: o.bodyLimit,
    requestTimeout: o.requestTimeout,
    shutdownTimeout: o.shutdownTimeout,
    stateCacheMb: o.stateCacheMb,
    prefillChunk: o.prefillChunk,
    onLog: (e) => {
      if (o.quiet && (e.level === 'debug' || e.level === 'info')) return;
      // A worker's records name it.
      const entry = link ? { ...e, message: `[worker ${link.slot}] ${e.message}`, data: { ...e.data, worker: link.slot } } : e;
      process.stderr.write((io.json ? logEntryJSON(entry) : formatLogEntry(entry)) + '\n');
    },
  });
  let shutdownRequested: Promise<void> | undefined;
  if (link) {
    handler.cluster = link;
    link.collect(handler.metrics.registries);
    shutdownRequested = new Promise((resolve) => link.onShutdownRequest(resolve));
  }
  const signalled = firstSignal(shutdownRequested);
  const { url } = await server.listen();
  if (link) link.listening(url);
  else announce(io, id, url, apiKey, 1);
  const signal = await signalled;
  if (!link)
    io.log(
      `${signal}: shutting down (live generations get up to ${o.shutdownTimeout} ms; ${signal === 'SIGINT' ? 'Ctrl-C' : 'SIGTERM'} again to quit at once)`,
    );
  const force = () => process.exit(EXIT_INTERRUPTED);
  process.once('SIGINT', force);
  process.once('SIGTERM', force);
  await server.close({ graceful: true });
  process.off('SIGINT', force);
  process.off('SIGTERM', force);
  return 0;
}

/** Declares `rnnkit serve` on `program`. */
export function addServeCommand(program: Command, exit: ExitCode): void {
  program
    .command('serve')
    .summary('serve a language model over an OpenAI-compatible HTTP API')
    .description(
      'Serve a language model over an OpenAI-compatible HTTP API: POST /v1/chat/completions and POST /v1/completions (server-sent events for "stream": true), GET /v1/models; GET /healthz (liveness), /readyz (readiness), /metrics (Prometheus). Loopback only unless --host says otherwise; --api-key (or RNNKIT_API_KEY) requires "Authorization: Bearer KEY" on /v1. One log line per request on stderr (JSON with --json). SIGINT/SIGTERM shut down gracefully.',
    )
    .argument('<model>', 'model file (.safetensors)')
    .addOption(new Option('--host <host>', 'interface to listen on').default(SERVER_DEFAULTS.host))
    .addOption(intOption('--port <n>', 'TCP port (0: any free port)', 0, 65535).default(SERVER_DEFAULTS.port))
    .addOption(precisionOption())
    .addOption(new Option('--model-id <id>', 'model id in /v1/models and responses (default: the file name)'))
    .addOption(new Option('--api-key <key>', 'require "Authorization: Bearer <key>" on /v1 (default: $RNNKIT_API_KEY, else none)'))
    .addOption(new Option('--cors <origins...>', 'origins allowed to call from a browser, e.g. https://app.example, or * for any'))
    .addOption(
      new Option(
        '--chat-template <file>',
        "Jinja chat template for /v1/chat/completions (default: the model's chat_template metadata, else role: content lines)",
      ),
    )
    .addOption(intOption('--max-choices <n>', 'largest n × prompts of one request', 1, 1024).default(SERVER_DEFAULTS.maxChoices))
    .addOption(intOption('--max-prompt-tokens <n>', 'longest accepted prompt in tokens', 1).default(SERVER_DEFAULTS.maxPromptTokens))
    .addOption(intOption('--max-tokens <n>', 'largest accepted max_tokens', 1).default(SERVER_DEFAULTS.maxTokens))
    .addOption(intOption('--default-max-tokens <n>', 'max_tokens when a request omits it', 1).default(SERVER_DEFAULTS.defaultMaxTokens))
    .addOption(intOption('--max-concurrent <n>', 'generations run at once (batched together)', 1).default(SERVER_DEFAULTS.maxConcurrent))
    .addOption(intOption('--max-queue <n>', 'requests waiting beyond that; more get 429', 0).default(SERVER_DEFAULTS.maxQueue))
    .addOption(intOption('--body-limit <bytes>', 'largest request body', 1).default(SERVER_DEFAULTS.bodyLimit))
    .addOption(intOption('--request-timeout <ms>', 'per-request time limit (0: none)', 0).default(SERVER_DEFAULTS.requestTimeout))
    .addOption(intOption('--shutdown-timeout <ms>', 'how long shutdown waits for live generations', 0).default(SERVER_DEFAULTS.shutdownTimeout))
    .addOption(
      intOption('--headers-timeout <ms>', "time a connection has to send a request's headers (slowloris, idle sockets)", 1).default(
        SERVER_DEFAULTS.headersTimeout,
      ),
    )
    .addOption(intOption('--body-timeout <ms>', 'time a client has to send a whole request', 1).default(SERVER_DEFAULTS.bodyTimeout))
    .addOption(intOption('--keep-alive-timeout <ms>', 'idle time of a kept-alive connection', 1).default(SERVER_DEFAULTS.keepAliveTimeout))
    .addOption(intOption('--max-connections <n>', 'open connections in all', 1).default(SERVER_DEFAULTS.maxConnections))
    .addOption(intOption('--max-connections-per-client <n>', 'open connections from one address', 1).default(SERVER_DEFAULTS.maxConnectionsPerClient))
    .addOption(
      intOption('--state-cache-mb <n>', 'MiB of recurrent states kept after prompt prefixes, least recently used dropped first (0: off)', 0, 1 << 20).default(
        SERVER_DEFAULTS.stateCacheMb,
      ),
    )
    .addOption(
      intOption(
        '--prefill-chunk <n>',
        'prompt tokens read per call into the engine while other streams generate, a multiple of 64 (0: whole prompts at once)',
        0,
      ).default(SERVER_DEFAULTS.prefillChunk),
    )
    .addOption(
      intOption(
        '--workers <n>',
        'server processes behind the one port (node:cluster), each with its own model, state cache and engine threads; /metrics and /readyz answer for all',
        1,
        256,
      ).default(1),
    )
    .addOption(
      intOption(
        '--threads <n>',
        'compute threads of the engine (of each worker), 1 to 1024 (default: $RNNKIT_THREADS, else max(1, cores / workers - 1))',
        1,
        1024,
      ),
    )
    .addOption(new Option('--quiet', 'log only warnings and errors'))
    .addOption(jsonOption())
    .action(exitingWith(exit, serve));
}
