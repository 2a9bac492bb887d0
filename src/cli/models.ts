/**
 * The model API as the commands reach it: loaded on first use, and model files opened with
 * one-line errors when the file is missing or holds the wrong kind of model.
 */

import * as fs from 'node:fs';
import * as path from 'node:path';
import { Option } from 'commander';
import { checkReadable } from './files';
import { CliError } from './exit';
import type { LanguageModel, LoadOptions, Model, Seq2SeqModel } from '../index';

/**
 * The model API, loaded on first use: `--help` and argument errors never load the native
 * engine, and a missing engine binary is reported like any other error.
 */
export function api(): typeof import('../index') {
  return require('../index') as typeof import('../index');
}

/** Loads a model file (any task) after checking the file exists. */
export async function openModel(file: string, options: LoadOptions = {}): Promise<Model> {
  checkReadable(file, 'model file');
  const model = await api().loadModel(file, options);
  if (model.task === 'seq2seq') throw new CliError(`${JSON.stringify(file)} holds a seq2seq model; use rnnkit translate or rnnkit eval`);
  return model;
}

/** Loads a model file that must hold a sequence-to-sequence model (`translate`, `eval`). */
export async function openSeq2Seq(file: string, command: string): Promise<Seq2SeqModel> {
  checkReadable(file, 'model file');
  const model = await api().loadModel(file);
  if (model.task !== 'seq2seq') throw new CliError(`${command} needs a seq2seq model; ${JSON.stringify(file)} holds a ${model.config.task} model`);
  return model;
}

/** The task names of model files (`config.task`). */
export type ModelTask = Model['config']['task'];

/** Loads a model file that must hold a model of `task` (e.g. a language model for `generate`). */
export async function openTaskModel<M extends Model>(file: string, task: ModelTask, command: string, options: LoadOptions = {}): Promise<M> {
  const model = await openModel(file, options);
  if (model.config.task !== task)
    throw new CliError(`${command} needs a ${task === 'language_model' ? 'language' : task} model; ${JSON.stringify(file)} holds a ${model.config.task} model`);
  return model as M;
}

/** Loads a model file that must hold a language model (`generate`, `eval`, `serve`). */
export function openLanguageModel(file: string, command: string, options: LoadOptions = {}): Promise<LanguageModel> {
  return openTaskModel<LanguageModel>(file, 'language_model', command, options);
}

/** `--precision <name>`: the precision of a language model's weights for generation (the engine checks the name). */
export function precisionOption(): Option {
  return new Option('--precision <name>', 'weights for generation: f32 (default), bf16 or int8 (docs/API.md: error and speed)');
}

/** Load options from a `--precision` flag. */
export function loadOptions(precision: string | undefined): LoadOptions {
  return precision === undefined ? {} : { precision: precision as LoadOptions['precision'] };
}

/** The folder of the models the package ships (`data/models/<name>.safetensors`). */
function bundledModelDir(): string {
  return path.join(__dirname, '..', '..', 'data', 'models');
}

/** The names of the models the package ships, sorted. */
export function bundledModelNames(): string[] {
  if (!fs.existsSync(bundledModelDir())) return [];
  return fs
    .readdirSync(bundledModelDir())
    .filter((f) => f.endsWith('.safetensors'))
    .map((f) => f.slice(0, -'.safetensors'.length))
    .sort();
}

/** The file of the shipped model `name` (`--model spoken-digits`); an unknown name is an error listing the known ones. */
export function bundledModel(name: string): string {
  const names = bundledModelNames();
  if (!names.includes(name))
    throw new CliError(`--model ${JSON.stringify(name)}: no such shipped model; the package has ${names.length === 0 ? 'none' : names.join(', ')}`);
  return path.join(bundledModelDir(), `${name}.safetensors`);
}
