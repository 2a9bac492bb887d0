/**
 * The model API as the commands reach it: loaded on first use, and model files opened with
 * one-line errors when the file is missing or holds the wrong kind of model.
 */

import { checkReadable } from './files';
import { CliError } from './exit';
import type { LanguageModel, Model, Seq2SeqModel } from '../index';

/**
 * The model API, loaded on first use: `--help` and argument errors never load the native
 * engine, and a missing engine binary is reported like any other error.
 */
export function api(): typeof import('../index') {
  return require('../index') as typeof import('../index');
}

/** Loads a model file (any task) after checking the file exists. */
export async function openModel(file: string): Promise<Model> {
  checkReadable(file, 'model file');
  const model = await api().loadModel(file);
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
export async function openTaskModel<M extends Model>(file: string, task: ModelTask, command: string): Promise<M> {
  const model = await openModel(file);
  if (model.config.task !== task)
    throw new CliError(`${command} needs a ${task === 'language_model' ? 'language' : task} model; ${JSON.stringify(file)} holds a ${model.config.task} model`);
  return model as M;
}

/** Loads a model file that must hold a language model (`generate`, `eval`, `serve`). */
export function openLanguageModel(file: string, command: string): Promise<LanguageModel> {
  return openTaskModel<LanguageModel>(file, 'language_model', command);
}
