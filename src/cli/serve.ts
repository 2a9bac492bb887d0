/**
 * `rnnkit serve`: serves a language model over the OpenAI-compatible HTTP API of `createServer`
 * until SIGINT or SIGTERM, then shuts down gracefully (a second signal quits at once).
 */

import { Command, Option } from 'commander';
import * as path from 'node:path';
import { createServer, SERVER_DEFAULTS, type LogEntry } from '../server';
import { CliError, EXIT_INTERRUPTED, exitingWith, UsageError, type ExitCode } from './exit';
import { makeIo } from './io';
import { openLanguageModel } from './models';
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
  quiet?: boolean;
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

/** `rnnkit serve`: runs until SIGINT/SIGTERM, then shuts down gracefully. */
async function serve(file: string, o: ServeOptions): Promise<number> {
  if (o.defaultMaxTokens > o.maxTokens) throw new UsageError(`--default-max-tokens (${o.defaultMaxTokens}) must be ≤ --max-tokens (${o.maxTokens})`);
  const io = makeIo(!!o.json);
  const model = await openLanguageModel(file, 'serve');
  // Checked here, before the server is built, so that the user reads a line about the file
  // rather than the library's message about its `model` argument.
  if (!model.tokenizer) throw new CliError('serve needs a model with a tokenizer (this one has token ids only)');
  const id = o.modelId ?? path.basename(file).replace(/\.safetensors$/, '');
  const server = createServer(model, {
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
    onLog: (e) => {
      if (o.quiet && (e.level === 'debug' || e.level === 'info')) return;
      process.stderr.write((io.json ? logEntryJSON(e) : formatLogEntry(e)) + '\n');
    },
  });
  const { url } = await server.listen();
  io.result(`serving ${id} at ${url}/v1 (OpenAI-compatible: POST /v1/completions, GET /v1/models, GET /healthz); Ctrl-C to stop`, {
    url,
    baseURL: `${url}/v1`,
    model: id,
  });
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
      'Serve a language model over HTTP: POST /v1/completions (OpenAI-compatible, with server-sent events for "stream": true), GET /v1/models, GET /healthz. Loopback only unless --host says otherwise. SIGINT/SIGTERM shut down gracefully.',
    )
    .argument('<model>', 'model file (.safetensors)')
    .addOption(new Option('--host <host>', 'interface to listen on').default(SERVER_DEFAULTS.host))
    .addOption(intOption('--port <n>', 'TCP port (0: any free port)', 0, 65535).default(SERVER_DEFAULTS.port))
    .addOption(new Option('--model-id <id>', 'model id in /v1/models and responses (default: the file name)'))
    .addOption(intOption('--max-prompt-tokens <n>', 'longest accepted prompt in tokens', 1).default(SERVER_DEFAULTS.maxPromptTokens))
    .addOption(intOption('--max-tokens <n>', 'largest accepted max_tokens', 1).default(SERVER_DEFAULTS.maxTokens))
    .addOption(intOption('--default-max-tokens <n>', 'max_tokens when a request omits it', 1).default(SERVER_DEFAULTS.defaultMaxTokens))
    .addOption(intOption('--max-concurrent <n>', 'generations run at once (batched together)', 1).default(SERVER_DEFAULTS.maxConcurrent))
    .addOption(intOption('--max-queue <n>', 'requests waiting beyond that; more get 429', 0).default(SERVER_DEFAULTS.maxQueue))
    .addOption(intOption('--body-limit <bytes>', 'largest request body', 1).default(SERVER_DEFAULTS.bodyLimit))
    .addOption(intOption('--request-timeout <ms>', 'per-request time limit (0: none)', 0).default(SERVER_DEFAULTS.requestTimeout))
    .addOption(intOption('--shutdown-timeout <ms>', 'how long shutdown waits for live generations', 0).default(SERVER_DEFAULTS.shutdownTimeout))
    .addOption(new Option('--quiet', 'log only warnings and errors'))
    .addOption(jsonOption())
    .action(exitingWith(exit, serve));
}
