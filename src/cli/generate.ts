/**
 * `rnnkit generate`: continues a prompt with a language model (sampling, greedy or beam search),
 * printed whole or, with `--stream`, as it is produced; Ctrl-C stops generating and exits 130.
 */

import { Command, Option } from 'commander';
import type { GenerateOptions } from '../types';
import { EXIT_INTERRUPTED, exitingWith, UsageError, type ExitCode } from './exit';
import { makeIo } from './io';
import { loadOptions, openLanguageModel, precisionOption } from './models';
import { naming } from './naming';
import { intOption, jsonOption, numOption } from './options';
import { collect, SEED } from './parsers';

/** Parsed options of `rnnkit generate`. */
interface GenerateCliOptions {
  json?: boolean;
  prompt: string;
  maxTokens: number;
  temperature?: number;
  topK?: number;
  topP?: number;
  repetitionPenalty?: number;
  stop?: string[];
  seed?: number;
  greedy?: boolean;
  beams?: number;
  lengthPenalty?: number;
  stream?: boolean;
  echo: boolean;
  precision?: string;
}

/** `rnnkit generate`. */
async function generate(file: string, o: GenerateCliOptions): Promise<number> {
  if (o.stream && o.beams !== undefined && o.beams > 1) throw new UsageError('--beams cannot be used with --stream (beam search returns whole sequences)');
  if (o.greedy && (o.temperature !== undefined || o.topK !== undefined || o.topP !== undefined))
    throw new UsageError('--greedy ignores --temperature, --top-k and --top-p; give one or the other');
  const io = makeIo(!!o.json);
  const model = await openLanguageModel(file, 'generate', loadOptions(o.precision));
  const controller = new AbortController();
  const onSigint = () => controller.abort();
  process.once('SIGINT', onSigint);
  const options: GenerateOptions = { maxTokens: o.maxTokens, signal: controller.signal };
  if (o.temperature !== undefined) options.temperature = o.temperature;
  if (o.topK !== undefined) options.topK = o.topK;
  if (o.topP !== undefined) options.topP = o.topP;
  if (o.repetitionPenalty !== undefined) options.repetitionPenalty = o.repetitionPenalty;
  if (o.stop) options.stop = o.stop;
  if (o.seed !== undefined) options.seed = o.seed;
  if (o.greedy) options.greedy = true;
  if (o.beams !== undefined) options.beams = o.beams;
  if (o.lengthPenalty !== undefined) options.lengthPenalty = o.lengthPenalty;
  try {
    return await naming('text', '--prompt', async () => {
      if (o.stream) {
        const s = model.stream(o.prompt, options);
        if (!io.json && o.echo) process.stdout.write(o.prompt);
        for await (const piece of s) process.stdout.write(io.json ? JSON.stringify({ text: piece }) + '\n' : piece);
        const c = await s.completion;
        if (io.json) process.stdout.write(JSON.stringify({ done: true, ...c }) + '\n');
        else process.stdout.write('\n');
        return c.finishReason === 'abort' ? EXIT_INTERRUPTED : 0;
      }
      const c = await model.complete(o.prompt, options);
      io.result((o.echo ? o.prompt : '') + c.text, { prompt: o.prompt, ...c });
      return 0;
    });
  } catch (e) {
    if ((e as { code?: string }).code === 'ABORT_ERR' && controller.signal.aborted) return EXIT_INTERRUPTED;
    throw e;
  } finally {
    process.off('SIGINT', onSigint);
  }
}

/** Declares `rnnkit generate` on `program`. */
export function addGenerateCommand(program: Command, exit: ExitCode): void {
  program
    .command('generate')
    .summary('generate text from a language model')
    .description('Generate text from a language model file, after a prompt.')
    .argument('<model>', 'model file (.safetensors)')
    .addOption(new Option('--prompt <text>', 'text to continue').default(''))
    .addOption(intOption('--max-tokens <n>', 'tokens to generate', 1).default(200))
    .addOption(numOption('--temperature <t>', 'softmax temperature (default 1; 0: greedy)', 0))
    .addOption(intOption('--top-k <k>', 'sample from the k most likely tokens (0: off)', 0))
    .addOption(numOption('--top-p <p>', 'nucleus sampling: smallest set with probability ≥ p', 0, 1, true))
    .addOption(numOption('--repetition-penalty <r>', 'penalise tokens already in the context (1: off)', 0, Infinity, true))
    .addOption(new Option('--stop <text>', 'stop before this text (repeatable)').argParser(collect))
    .addOption(new Option('--seed <n>', 'sampler seed (same seed, same text)').argParser(SEED))
    .addOption(new Option('--greedy', 'argmax decoding'))
    .addOption(intOption('--beams <n>', 'beam search with n beams', 1))
    .addOption(numOption('--length-penalty <a>', 'beam search length normalisation exponent (default 1)', 0))
    .addOption(new Option('--stream', 'print text as it is produced (--json: one JSON line per piece)'))
    .addOption(new Option('--no-echo', 'do not print the prompt before the generated text'))
    .addOption(precisionOption())
    .addOption(jsonOption())
    .action(exitingWith(exit, generate));
}
