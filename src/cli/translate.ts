/**
 * `rnnkit translate`: a sequence-to-sequence model's outputs for texts given as arguments or one
 * per line of a file, in input order (greedy decoding, or beam search with `--beams`).
 */

import { Command } from 'commander';
import { UsageError, exitingWith, type ExitCode } from './exit';
import { checkWritable, ensureParent, readText } from './files';
import { makeIo } from './io';
import { api, openSeq2Seq } from './models';
import { flagNaming } from './naming';
import { intOption, jsonOption, numOption } from './options';

/** Parsed options of `rnnkit translate`. */
interface TranslateFlags {
  file?: string;
  attention?: string;
  json?: boolean;
  beams?: number;
  maxLength?: number;
  lengthPenalty?: number;
}

/** The texts to translate: the arguments, then the non-blank lines of `--file`. */
function inputs(texts: string[], o: TranslateFlags): string[] {
  const all = [...texts];
  if (o.file !== undefined) {
    for (const line of readText(o.file, '--file').split(/\r?\n/)) if (line.trim() !== '') all.push(line);
  }
  if (all.length === 0) throw new UsageError('give texts to translate as arguments or with --file <path>');
  return all;
}

/** `rnnkit translate`. */
async function translate(file: string, texts: string[], o: TranslateFlags): Promise<number> {
  const io = makeIo(!!o.json);
  const sources = inputs(texts, o);
  const model = await openSeq2Seq(file, 'translate');
  const options = {
    ...(o.beams === undefined ? {} : { beams: o.beams }),
    ...(o.maxLength === undefined ? {} : { maxLength: o.maxLength }),
    ...(o.lengthPenalty === undefined ? {} : { lengthPenalty: o.lengthPenalty }),
  };
  if (o.attention !== undefined) checkWritable(o.attention, '--attention');
  const outputs = await flagNaming(['beams', 'maxLength', 'lengthPenalty'], () => model.translateBatch(sources, options));
  if (o.attention !== undefined) {
    // The map of the first input, from the same decode options.
    const first = await model.translate(sources[0], { ...options, attention: true });
    ensureParent(o.attention);
    const { native } = await import('../native');
    native.writeFileAtomic(o.attention, new TextEncoder().encode(api().attentionSvg(first, { title: `attention: ${sources[0]} → ${first.output}` })));
  }
  if (io.json) {
    // One object a line, in input order.
    process.stdout.write(outputs.map((output, i) => JSON.stringify({ source: sources[i], output }) + '\n').join(''));
  } else {
    process.stdout.write(outputs.map((output) => output + '\n').join(''));
  }
  return 0;
}

/** Declares `rnnkit translate` on `program`. */
export function addTranslateCommand(program: Command, exit: ExitCode): void {
  program
    .command('translate')
    .summary('outputs of a seq2seq model for texts')
    .description(
      [
        'Translate texts with a sequence-to-sequence model (trained with rnnkit train --task seq2seq): the texts given as arguments, then one per non-blank line of --file, batched; one output a line on stdout, in input order.',
        'With --json: one {"source": ..., "output": ...} object a line, in input order.',
        '--attention out.svg draws the attention of the first input as a heat map: source tokens along the top, output tokens down the side.',
      ].join('\n'),
    )
    .argument('<model>', 'model file (.safetensors)')
    .argument('[texts...]', 'texts to translate')
    .option('--file <path>', 'also translate each non-blank line of this UTF-8 file')
    .addOption(intOption('--beams <n>', 'beam search with n hypotheses (default 1: greedy)', 1, 64))
    .addOption(intOption('--max-length <n>', 'most tokens of an output (default 12 × the source tokens + 16)', 1))
    .addOption(numOption('--length-penalty <alpha>', 'beam search length normalisation (GNMT α, default 0.6)', 0))
    .option('--attention <svg>', 'write the attention of the first input to this SVG file')
    .addOption(jsonOption())
    .action(exitingWith(exit, translate));
}
