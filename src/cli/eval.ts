/**
 * `rnnkit eval`: a language model's loss, perplexity and bits per token on a text file, under the
 * stateful protocol (one stream, the state carried), long texts in contiguous lanes read as one
 * batch (`--lanes`), SIGINT/SIGTERM stopping it between chunks; a seq2seq model's exact match,
 * token accuracy and loss on a file of pairs; a speech model's word and character error rates on
 * a manifest of WAV files.
 */

import * as fs from 'node:fs';
import { Command, Option } from 'commander';
import type { EvaluateFileOptions } from '../types';
import { CliError, EXIT_INTERRUPTED, EXIT_TERMINATED, exitingWith, type ExitCode } from './exit';
import { checkReadable } from './files';
import { makeIo } from './io';
import { api, loadOptions, openLanguageModel, openSeq2Seq, openTaskModel, precisionOption } from './models';
import type { SpeechRecognizer } from '../index';
import { flagNaming, naming, renaming } from './naming';
import { intOption, jsonOption } from './options';

/** Parsed options of `rnnkit eval`. */
interface EvalFlags {
  json?: boolean;
  chunk?: number;
  lanes?: number;
  lossy?: boolean;
  sourceColumn?: string;
  targetColumn?: string;
  groupColumn?: string;
  beams?: number;
  precision?: string;
}

/** `rnnkit eval` of a seq2seq model on a file of pairs (every pair evaluated). */
async function evaluatePairs(file: string, pairFile: string, o: EvalFlags): Promise<number> {
  const io = makeIo(!!o.json);
  const model = await openSeq2Seq(file, 'eval');
  checkReadable(pairFile, 'pair file');
  const where = `pair file ${JSON.stringify(pairFile)}`;
  const rows = await naming('rows', where, () =>
    flagNaming(['sourceColumn', 'targetColumn', 'groupColumn'], () =>
      api().readPairs(pairFile, { sourceColumn: o.sourceColumn, targetColumn: o.targetColumn, groupColumn: o.groupColumn }),
    ),
  );
  const tokenizers = { sourceTokenizer: model.sourceTokenizer, targetTokenizer: model.targetTokenizer };
  const decode = o.beams === undefined ? {} : { beams: o.beams };
  const evaluate = async (pairs: typeof rows) =>
    model.evaluate(await naming('rows', where, async () => api().PairDataset.fromArray(pairs, tokenizers)), { split: 'train', ...decode });
  const r = await evaluate(rows);
  // Each group (e.g. each direction of a task) evaluated by the engine on its own pairs, in order of first appearance.
  const groups: Record<string, Awaited<ReturnType<typeof evaluate>>> = {};
  if (o.groupColumn !== undefined) {
    const names = [...new Set(rows.map((row) => row.group!))];
    for (const name of names) groups[name] = await evaluate(rows.filter((row) => row.group === name));
  }
  const human = [
    `pairs           ${r.pairs.toLocaleString('en-US')} (${o.beams === undefined || o.beams === 1 ? 'greedy' : `beam ${o.beams}`})`,
    `exact match     ${(100 * r.exactMatch).toFixed(2)} %`,
    `token accuracy  ${(100 * r.tokenAccuracy).toFixed(2)} % (teacher-forced, ${r.tokens.toLocaleString('en-US')} target tokens)`,
    `loss            ${r.loss.toFixed(4)} nats/token`,
    ...Object.entries(groups).map(
      ([name, g]) =>
        `${o.groupColumn} ${JSON.stringify(name)}: exact match ${(100 * g.exactMatch).toFixed(2)} %, token accuracy ${(100 * g.tokenAccuracy).toFixed(2)} %, loss ${g.loss.toFixed(4)} (${g.pairs.toLocaleString('en-US')} pairs)`,
    ),
  ].join('\n');
  io.result(human, { model: file, data: pairFile, ...r, ...(o.groupColumn === undefined ? {} : { groups }) });
  return 0;
}

/** `rnnkit eval` of a speech model on a manifest (or folder) of transcribed WAV files, every utterance. */
async function evaluateSpeech(file: string, manifest: string, o: EvalFlags): Promise<number> {
  const io = makeIo(!!o.json);
  const model = await openTaskModel<SpeechRecognizer>(file, 'speech', 'eval');
  if (!model.features) throw new CliError(`${JSON.stringify(file)} reads feature frames, not audio; eval needs a model made with audio features`);
  checkReadable(manifest, 'manifest');
  const data = await naming('source', `manifest ${JSON.stringify(manifest)}`, () =>
    api().AudioDataset.load(manifest, { features: model.features!, alphabet: model.alphabet }),
  );
  const r = await model.evaluate(data);
  const human = [
    `utterances             ${r.count.toLocaleString('en-US')} (greedy)`,
    `word error rate        ${(100 * r.wer).toFixed(2)} %`,
    `character error rate   ${(100 * r.cer).toFixed(2)} %`,
    `CTC loss               ${r.loss.toFixed(4)} nats/character`,
  ].join('\n');
  io.result(human, { model: file, data: manifest, ...r });
  return 0;
}

/** The task of the model in `file`; an unreadable header is left to the loader to report. */
function fileTask(file: string): string | null {
  try {
    return api().modelFileTask(file);
  } catch {
    return null;
  }
}

/** `rnnkit eval`: Ctrl-C or SIGTERM stop a language model's evaluation between chunks (exit 130 or 143, no result). */
async function evaluate(file: string, textFile: string, o: EvalFlags): Promise<number> {
  checkReadable(file, 'model file');
  const task = fileTask(file);
  if (task === 'seq2seq' || task === 'speech') {
    if (o.lanes !== undefined || o.chunk !== undefined || o.lossy || o.precision !== undefined)
      throw new CliError('--lanes, --chunk, --lossy and --precision go with language models');
  }
  if (task === 'speech') {
    if (o.sourceColumn !== undefined || o.targetColumn !== undefined || o.groupColumn !== undefined || o.beams !== undefined)
      throw new CliError('--source-column, --target-column, --group-column and --beams go with seq2seq models');
    return evaluateSpeech(file, textFile, o);
  }
  if (task === 'seq2seq') return evaluatePairs(file, textFile, o);
  if (o.sourceColumn !== undefined || o.targetColumn !== undefined || o.groupColumn !== undefined || o.beams !== undefined)
    throw new CliError('--source-column, --target-column, --group-column and --beams go with seq2seq models');
  const io = makeIo(!!o.json);
  const model = await openLanguageModel(file, 'eval', loadOptions(o.precision));
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
    .summary('loss, perplexity and bits per token of a text; exact match of a seq2seq model on pairs; error rates of a speech model')
    .description(
      [
        'Evaluate a language model on a text file under the stateful protocol (one stream, state carried): mean cross-entropy, perplexity, bits per token. Long texts are read as several contiguous lanes at once (--lanes). Ctrl-C or SIGTERM stops it (exit 130 or 143, no result).',
        'A seq2seq model is evaluated on a JSONL (or CSV) file of pairs: the exact match of its decoded outputs (greedy, or --beams), the teacher-forced token accuracy and loss.',
        'A speech model is evaluated on a JSONL manifest of {"audio": "a.wav", "text": "..."} (or a folder of a.wav + a.txt pairs): the word and character error rates of its greedy transcripts and the CTC loss.',
      ].join('\n'),
    )
    .argument('<model>', 'model file (.safetensors)')
    .argument('<text-file>', 'UTF-8 text file (language model), JSONL/CSV file of pairs (seq2seq), or manifest or folder of WAV files (speech)')
    .addOption(intOption('--chunk <n>', 'tokens per native call (the state is carried between chunks)', 1))
    .addOption(
      intOption(
        '--lanes <n>',
        'contiguous lanes read together, each from the zero state at its start (1: the stateful protocol exactly; default: 1 below 2,097,152 tokens, then one per 1,048,576 tokens, at most 64)',
        1,
      ),
    )
    .addOption(new Option('--lossy', 'read invalid UTF-8 as U+FFFD instead of refusing the file'))
    .addOption(precisionOption())
    .addOption(new Option('--source-column <name>', 'seq2seq: field (or CSV column) of the source (default "source")'))
    .addOption(new Option('--target-column <name>', 'seq2seq: field (or CSV column) of the target (default "target")'))
    .addOption(new Option('--group-column <name>', 'seq2seq: also report the figures of each group of pairs with the same text in this field (e.g. task)'))
    .addOption(intOption('--beams <n>', 'seq2seq: beam search with n hypotheses (default 1: greedy)', 1, 64))
    .addOption(jsonOption())
    .action(exitingWith(exit, evaluate));
}
