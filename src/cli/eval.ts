/**
 * `rnnkit eval`: a language model's loss, perplexity and bits per token on a text file, under the
 * stateful protocol (one stream, the state carried), long texts in contiguous lanes read as one
 * batch (`--lanes`); SIGINT/SIGTERM stop it between chunks.
 */

import * as fs from 'node:fs';
import { Command, Option } from 'commander';
import type { EvaluateFileOptions } from '../types';
import { CliError, EXIT_INTERRUPTED, EXIT_TERMINATED, exitingWith, type ExitCode } from './exit';
import { checkReadable } from './files';
import { makeIo } from './io';
import { openLanguageModel } from './models';
import { renaming } from './naming';
import { intOption, jsonOption } from './options';

/** `rnnkit eval`'s options. */
interface EvalCliOptions {
  json?: boolean;
  chunk?: number;
  lanes?: number;
  lossy?: boolean;
}

/** `rnnkit eval`: Ctrl-C or SIGTERM stop it between chunks (exit 130 or 143, no result). */
async function evaluate(file: string, textFile: string, o: EvalCliOptions): Promise<number> {
  const io = makeIo(!!o.json);
  const model = await openLanguageModel(file, 'eval');
  checkReadable(textFile, 'text file');
  if (fs.statSync(textFile).size === 0) throw new CliError(`text file ${JSON.stringify(textFile)} is empty`);
  const controller = new AbortController();
  let stoppedBy: NodeJS.Signals | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    stoppedBy ??= signal;
    controller.abort();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  // Streamed: the file is read in chunks and its ids kept compactly, so any size fits in memory.
  const quoted = JSON.stringify(textFile);
  const options: EvaluateFileOptions = { signal: controller.signal };
  if (o.chunk !== undefined) options.chunk = o.chunk;
  if (o.lanes !== undefined) options.lanes = o.lanes;
  if (o.lossy) options.lossy = true;
  const started = Date.now();
  let r;
  try {
    r = await renaming(
      {
        param: (name) => (name === 'path' ? `text file ${quoted}` : name === 'lanes' || name === 'options.lanes' ? '--lanes' : undefined),
        // Encoding errors name the file first (`"held.txt": text: unknown character …`).
        message: (m) => (m.startsWith(`${quoted}: text: `) ? `text file ${quoted}: ${m.slice(quoted.length + 8)}` : m),
      },
      () => model.evaluateFile(textFile, options),
    );
  } catch (e) {
    if ((e as { code?: string }).code === 'ABORT_ERR' && stoppedBy !== undefined) {
      io.log(`${stoppedBy}: evaluation stopped after ${((Date.now() - started) / 1000).toFixed(1)} s; no result`);
      return stoppedBy === 'SIGTERM' ? EXIT_TERMINATED : EXIT_INTERRUPTED;
    }
    throw e;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  const human = [
    `tokens      ${r.tokens.toLocaleString('en-US')}`,
    `loss        ${r.loss.toFixed(4)} nats/token`,
    `perplexity  ${r.perplexity.toFixed(3)}`,
    `bits/token  ${r.bitsPerToken.toFixed(4)}`,
  ].join('\n');
  io.result(human, { model: file, text: textFile, ...r });
  return 0;
}

/** Declares `rnnkit eval` on `program`. */
export function addEvalCommand(program: Command, exit: ExitCode): void {
  program
    .command('eval')
    .summary('loss, perplexity and bits per token of a text')
    .description(
      'Evaluate a language model on a text file under the stateful protocol (one stream, state carried): mean cross-entropy, perplexity, bits per token. Long texts are read as several contiguous lanes at once (--lanes). Ctrl-C or SIGTERM stops it (exit 130 or 143, no result).',
    )
    .argument('<model>', 'model file (.safetensors)')
    .argument('<text-file>', 'UTF-8 text file')
    .addOption(intOption('--chunk <n>', 'tokens per native call (the state is carried between chunks)', 1))
    .addOption(
      intOption(
        '--lanes <n>',
        'contiguous lanes read together, each from the zero state at its start (1: the stateful protocol exactly; default: 1 below 2,097,152 tokens, then one per 1,048,576 tokens, at most 64)',
        1,
      ),
    )
    .addOption(new Option('--lossy', 'read invalid UTF-8 as U+FFFD instead of refusing the file'))
    .addOption(jsonOption())
    .action(exitingWith(exit, evaluate));
}
