/**
 * `rnnkit serve`: serves a language model over the OpenAI-compatible HTTP API of `createServer`
 * until SIGINT or SIGTERM, then shuts down gracefully (a second signal quits at once). The API
 * key comes from `--api-key` or the `RNNKIT_API_KEY` environment variable; binding beyond
 * loopback without one warns.
 */

import { Command, Option } from 'commander';
import * as os from 'node:os';
import * as path from 'node:path';
import { createServer, SERVER_DEFAULTS, type LogEntry } from '../server';
import { readText } from './files';
import { CliError, EXIT_INTERRUPTED, exitingWith, UsageError, type ExitCode } from './exit';
import { makeIo } from './io';
import { openLanguageModel } from './models';
import { setThreads } from '../native';
import { intOption, jsonOption } from './options';

/** Parsed options of `rnnkit serve`. */
interface ServeOptions {
  json?: boolean;
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
 * Compute threads of the engine while serving: `--threads`, else `RNNKIT_THREADS`, else one
 * fewer than the cores (at least one). The JavaScript thread that decodes and writes the
 * streams needs a core of its own: with every core computing, a batched step waits for its
 * slowest thread whenever JavaScript (or the clients, on the same machine) takes that thread's
 * core, and on 2 cores 64 streams measured faster with one compute thread (bench/RESULTS.md).
 */
function servingThreads(o: ServeOptions): number {
  if (o.threads !== undefined) return o.threads;
  if (process.env.RNNKIT_THREADS) return 0; // the engine reads it
  return Math.max(1, os.availableParallelism() - 1);
}

/** `rnnkit serve`: runs until SIGINT/SIGTERM, then shuts down gracefully. */
async function serve(file: string, o: ServeOptions): Promise<number> {
  if (o.defaultMaxTokens > o.maxTokens) throw new UsageError(`--default-max-tokens (${o.defaultMaxTokens}) must be ≤ --max-tokens (${o.maxTokens})`);
  setThreads(servingThreads(o));
  const io = makeIo(!!o.json);
  const model = await openLanguageModel(file, 'serve');
  // Checked here, before the server is built, so that the user reads a line about the file
  // rather than the library's message about its `model` argument.
  if (!model.tokenizer) throw new CliError('serve needs a model with a tokenizer (this one has token ids only)');
  const id = o.modelId ?? path.basename(file).replace(/\.safetensors$/, '');
  const apiKey = o.apiKey ?? (process.env.RNNKIT_API_KEY || undefined);
  const chatTemplate = o.chatTemplate === undefined ? undefined : readText(o.chatTemplate, 'chat template');
  if (!isLoopback(o.host) && apiKey === undefined) {
    io.log(`warning: listening on ${o.host} without an API key: anyone who can reach this address can use the model (set --api-key or RNNKIT_API_KEY)`);
  }
  const server = createServer(model, {
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
    onLog: (e) => {
      if (o.quiet && (e.level === 'debug' || e.level === 'info')) return;
      process.stderr.write((io.json ? logEntryJSON(e) : formatLogEntry(e)) + '\n');
    },
  });
  const { url } = await server.listen();
  io.result(
    `serving ${id} at ${url}/v1 (OpenAI-compatible: POST /v1/chat/completions, POST /v1/completions, GET /v1/models; GET /healthz, /readyz, /metrics)${apiKey ? ', API key required' : ''}; Ctrl-C to stop`,
    {
      url,
      baseURL: `${url}/v1`,
      model: id,
    },
  );
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
  });
  io.log(`${signal}: shutting down (live generations get up to ${o.shutdownTimeout} ms; ${signal === 'SIGINT' ? 'Ctrl-C' : 'SIGTERM'} again to quit at once)`);
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
    .addOption(intOption('--threads <n>', 'compute threads of the engine, 1 to 1024 (default: $RNNKIT_THREADS, else one fewer than the cores)', 1, 1024))
    .addOption(new Option('--quiet', 'log only warnings and errors'))
    .addOption(jsonOption())
    .action(exitingWith(exit, serve));
}
