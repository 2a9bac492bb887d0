/**
 * `rnnkit eval`: a language model's loss, perplexity and bits per token on a text file, under the
 * stateful protocol (one stream, the state carried).
 */

import * as fs from 'node:fs';
import { Command, Option } from 'commander';
import { CliError, exitingWith, type ExitCode } from './exit';
import { checkReadable } from './files';
import { makeIo } from './io';
import { openLanguageModel } from './models';
import { renaming } from './naming';
import { intOption, jsonOption } from './options';

/** `rnnkit eval`. */
async function evaluate(file: string, textFile: string, o: { json?: boolean; chunk?: number; lossy?: boolean }): Promise<number> {
  const io = makeIo(!!o.json);
  const model = await openLanguageModel(file, 'eval');
  checkReadable(textFile, 'text file');
  if (fs.statSync(textFile).size === 0) throw new CliError(`text file ${JSON.stringify(textFile)} is empty`);
  // Streamed: the file is read in chunks and its ids kept compactly, so any size fits in memory.
  const quoted = JSON.stringify(textFile);
  const r = await renaming(
    {
      param: (name) => (name === 'path' ? `text file ${quoted}` : undefined),
      // Encoding errors name the file first (`"held.txt": text: unknown character …`).
      message: (m) => (m.startsWith(`${quoted}: text: `) ? `text file ${quoted}: ${m.slice(quoted.length + 8)}` : m),
    },
    () => model.evaluateFile(textFile, { ...(o.chunk === undefined ? {} : { chunk: o.chunk }), ...(o.lossy ? { lossy: true } : {}) }),
  );
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
      'Evaluate a language model on a text file under the stateful protocol (one stream, state carried): mean cross-entropy, perplexity, bits per token.',
    )
    .argument('<model>', 'model file (.safetensors)')
    .argument('<text-file>', 'UTF-8 text file')
    .addOption(intOption('--chunk <n>', 'tokens per native call (the state is carried between chunks)', 1))
    .addOption(new Option('--lossy', 'read invalid UTF-8 as U+FFFD instead of refusing the file'))
    .addOption(jsonOption())
    .action(exitingWith(exit, evaluate));
}
