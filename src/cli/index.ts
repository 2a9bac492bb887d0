#!/usr/bin/env node
/**
 * The `rnnkit` command line: the program and its entry point. Each command has its module in
 * this folder, named after it: `train` (language models, and classify/tag/regress/seq2seq with `--task`),
 * `generate`, `translate` (seq2seq), `transcribe` (speech), `eval`, `info`, `predict`, `serve`, `export` (ONNX), `import` (PyTorch state_dicts), `demo`. docs/CLI.md describes every command.
 *
 * Conventions, the same for every command:
 * - `--help` describes the command; `--json` prints the result as one JSON object on stdout and
 *   sends everything else (progress, log lines) to stderr.
 * - A bad argument or a bad file prints one line, `rnnkit: error: <message>`, on stderr and exits
 *   non-zero: 2 for usage errors (unknown option, bad number, bad combination), 1 for failures
 *   while running (missing or corrupt file, a model error). `RNNKIT_DEBUG=1` adds the stack trace.
 * - Ctrl-C during `train` stops training through an `AbortSignal`, saves a checkpoint (to
 *   `--checkpoint`, else `--out`) and exits 130; during `demo` it ends training early, the demo
 *   still samples, evaluates and saves, and exits 130. A second Ctrl-C exits at once.
 * - When the reader of stdout goes away (`rnnkit generate --stream | head`), the command ends
 *   quietly with status 0.
 */

import { Command, CommanderError } from 'commander';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { addDemoCommand } from './demo';
import { addEvalCommand } from './eval';
import { addExportCommand } from './export';
import { EXIT_FAILURE, EXIT_USAGE, UsageError, type ExitCode } from './exit';
import { addGenerateCommand } from './generate';
import { addImportCommand } from './import';
import { addInfoCommand } from './info';
import { exitQuietlyOnEpipe } from './io';
import { addPredictCommand } from './predict';
import { addServeCommand } from './serve';
import { addTrainCommand } from './train';
import { addTranscribeCommand } from './transcribe';
import { addTranslateCommand } from './translate';

/** Reads the package version for `--version`. */
function packageVersion(): string {
  try {
    return JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')).version as string;
  } catch {
    return 'unknown';
  }
}

/**
 * Builds the `rnnkit` program. Actions store their exit code in `exit.code`; commander's own
 * usage errors surface as a `CommanderError` (with `exitOverride`).
 */
export function buildProgram(exit: ExitCode): Command {
  const program = new Command();
  program
    .name('rnnkit')
    .description('Recurrent neural networks (RNN, LSTM, GRU) for Node.js with a Rust core.')
    .version(packageVersion(), '-V, --version')
    .exitOverride()
    .showSuggestionAfterError(true)
    .configureOutput({ outputError: (str, write) => write(`rnnkit: ${str.trim().replace(/\s*\n\s*/g, ' ')}\n`) });

  addTrainCommand(program, exit);
  addGenerateCommand(program, exit);
  addTranslateCommand(program, exit);
  addTranscribeCommand(program, exit);
  addEvalCommand(program, exit);
  addInfoCommand(program, exit);
  addPredictCommand(program, exit);
  addServeCommand(program, exit);
  addExportCommand(program, exit);
  addImportCommand(program, exit);
  addDemoCommand(program, exit);
  return program;
}

/** Prints an error as one line (plus the stack with RNNKIT_DEBUG=1). */
function reportError(e: unknown): void {
  const err = e instanceof Error ? e : new Error(String(e));
  process.stderr.write(`rnnkit: error: ${err.message.split('\n')[0]}\n`);
  if (process.env.RNNKIT_DEBUG) process.stderr.write(`${err.stack ?? err.message}\n`);
}

/** Runs the CLI on `argv` (as `process.argv`) and returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  const exit = { code: 0 };
  const program = buildProgram(exit);
  try {
    await program.parseAsync(argv);
    return exit.code;
  } catch (e) {
    // Commander has already printed its message (help, version, or a one-line usage error).
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : EXIT_USAGE;
    reportError(e);
    return e instanceof UsageError ? EXIT_USAGE : EXIT_FAILURE;
  }
}

if (require.main === module) {
  exitQuietlyOnEpipe();
  main(process.argv).then(
    (code) => {
      process.exitCode = code;
    },
    (e) => {
      reportError(e);
      process.exitCode = EXIT_FAILURE;
    },
  );
}
