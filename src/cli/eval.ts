/**
 * `rnnkit eval`: a language model's loss, perplexity and bits per token on a text file, under the
 * stateful protocol (one stream, the state carried).
 */

import { Command } from 'commander';
import { CliError, exitingWith, type ExitCode } from './exit';
import { readText } from './files';
import { makeIo } from './io';
import { openLanguageModel } from './models';
import { naming } from './naming';
import { intOption, jsonOption } from './options';

/** `rnnkit eval`. */
async function evaluate(file: string, textFile: string, o: { json?: boolean; chunk?: number }): Promise<number> {
  const io = makeIo(!!o.json);
  const model = await openLanguageModel(file, 'eval');
  const text = readText(textFile, 'text file');
  if (text.length === 0) throw new CliError(`text file ${JSON.stringify(textFile)} is empty`);
  const r = await naming('text', `text file ${JSON.stringify(textFile)}`, () => model.evaluate(text, o.chunk === undefined ? {} : { chunk: o.chunk }));
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
    .addOption(jsonOption())
    .action(exitingWith(exit, evaluate));
}
