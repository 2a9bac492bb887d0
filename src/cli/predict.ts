/**
 * `rnnkit predict`: runs a classify, tag or regress model on inputs given as arguments or in a
 * file, texts for token models and JSON arrays of numbers for dense ones.
 */

import { Command, Option } from 'commander';
import type { Classifier, Regressor, Tagger } from '../index';
import { CliError, exitingWith, UsageError, type ExitCode } from './exit';
import { readText } from './files';
import { makeIo } from './io';
import { openModel } from './models';
import { jsonOption } from './options';

/**
 * Reads one dense input for a regression (or dense) model: a JSON array of numbers, flat or as
 * rows of `inputSize`; its length must be a multiple of `inputSize`.
 */
export function parseDenseInput(text: string, inputSize: number, where: string): Float32Array {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new CliError(`${where}: a dense model takes a JSON array of numbers, e.g. [[0.1, 0.2], [0.3, 0.4]]`);
  }
  const flat = Array.isArray(value) ? (value as unknown[]).flat() : [value];
  if (flat.length === 0 || flat.some((v) => typeof v !== 'number' || !Number.isFinite(v))) {
    throw new CliError(`${where}: expected a non-empty JSON array of finite numbers`);
  }
  if (flat.length % inputSize !== 0) throw new CliError(`${where}: ${flat.length} numbers are not whole steps of ${inputSize} features`);
  return Float32Array.from(flat as number[]);
}

/** `rnnkit predict`: classifies, tags or regresses each input. */
async function predict(file: string, inputs: string[], o: { json?: boolean; file?: string }): Promise<number> {
  const io = makeIo(!!o.json);
  if (o.file)
    inputs = [
      ...inputs,
      ...readText(o.file, 'input file')
        .split(/\r?\n/)
        .filter((l) => l.trim().length > 0),
    ];
  if (inputs.length === 0) throw new UsageError('give inputs as arguments or --file <path> (one input a line)');
  const model = await openModel(file);
  const task = model.config.task;
  if (task === 'language_model')
    throw new CliError(`predict needs a classify, tag or regress model; ${JSON.stringify(file)} holds a language model (use generate or eval)`);
  const where = (i: number) => (inputs.length === 1 ? 'input' : `input ${i + 1}`);
  if (task === 'regress') {
    const m = model as Regressor;
    const rows = inputs.map((t, i) => parseDenseInput(t, m.inputSize!, where(i)));
    const out = (await m.predict(rows)).map((v) => Array.from(v));
    io.result(out.map((v) => v.map((x) => x.toPrecision(6)).join(' ')).join('\n'), { task, predictions: out });
    return 0;
  }
  const dense = (model as Classifier | Tagger).inputSize !== null;
  const rows = dense ? inputs.map((t, i) => parseDenseInput(t, (model as Classifier).inputSize!, where(i))) : inputs;
  if (task === 'classify') {
    const out = await (model as Classifier).predict(rows);
    io.result(out.map((p, i) => `${String(p.label)}\t${p.probability.toFixed(3)}\t${dense ? where(i) : inputs[i]}`).join('\n'), { task, predictions: out });
    return 0;
  }
  const out = await (model as Tagger).predict(rows);
  io.result(out.map((p) => p.tags.map((t, k) => (dense ? String(t) : `${p.tokens[k]}/${String(t)}`)).join(' ')).join('\n'), { task, predictions: out });
  return 0;
}

/** Declares `rnnkit predict` on `program`. */
export function addPredictCommand(program: Command, exit: ExitCode): void {
  program
    .command('predict')
    .summary('classify, tag or regress inputs with a sequence model')
    .description(
      'Run a classify, tag or regress model on inputs: texts (token models) or JSON arrays of numbers (dense models, e.g. "[[0.1,0.2],[0.3,0.4]]"). Prints label and probability (classify), token/tag pairs (tag) or values (regress), one line per input.',
    )
    .argument('<model>', 'model file (.safetensors)')
    .argument('[input...]', 'inputs (texts or JSON arrays)')
    .addOption(new Option('--file <path>', 'read inputs from a file, one a line'))
    .addOption(jsonOption())
    .action(exitingWith(exit, predict));
}
