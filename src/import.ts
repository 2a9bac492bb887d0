/**
 * Plain PyTorch `state_dict`s in: a file written by `safetensors.torch.save_file(model.state_dict(),
 * path)` (no rnnkit metadata) becomes an rnnkit model of a given architecture. The engine reads
 * the file and maps the tensors (`rnn_core::import`: module names inferred from the shapes, or
 * given; missing, mis-shaped and unused tensors refused by name); this file gathers the
 * architecture, tokenizer and metadata from the options or from a model file like it.
 */

import { native } from './native';
import { checkString, describe, typeError } from './errors';
import { checkOptionKeys } from './option-keys';
import { loadModelSync, wrap, type AnyModel } from './load';
import type { Tokenizer } from './tokenizer';

/** Module names of the PyTorch model (`'encoder'` for `encoder.weight`); absent ones are inferred from the shapes. */
export interface StateDictNames {
  /** The `nn.Embedding` (token input). */
  embedding?: string;
  /** The `nn.RNN`/`nn.LSTM`/`nn.GRU`; `''` for a recurrent module saved on its own. */
  rnn?: string;
  /** The output `nn.Linear`. */
  head?: string;
  /** The bias-free `nn.Linear` of the skip term (`skip: true`). */
  skip?: string;
}

/** Options of {@link importStateDict}: the architecture from `config` or from a model file `like` it. */
export interface ImportStateDictOptions {
  /** The architecture: docs/FORMAT.md's `config` object (snake_case keys, e.g. `{"cell": "lstm", "vocab_size": 75, ...}`). */
  config?: Record<string, unknown>;
  /** An rnnkit model file whose config, tokenizer and metadata (labels, tags, feature statistics) the import takes. */
  like?: string;
  /** The tokenizer of a token-input model (overrides `like`'s). */
  tokenizer?: Tokenizer;
  /** Module names, where the shapes do not tell them apart. */
  names?: StateDictNames;
  /** Metadata pairs to save with the model (e.g. `labels`: a JSON array of class names). */
  metadata?: Record<string, string>;
}

/** Metadata of a `like` model that describes the last training run, not the architecture: not copied. */
const RUN_KEYS = ['training_steps', 'last_fit'];

/**
 * Reads a plain PyTorch `state_dict` (safetensors) as an rnnkit model of the architecture given
 * by `options.config` or `options.like`; save it with `model.save(path)`. Synchronous (the file
 * is read once).
 */
export function importStateDict(path: string, options: ImportStateDictOptions): AnyModel {
  checkString('path', path, true);
  if (options === null || typeof options !== 'object' || Array.isArray(options))
    throw typeError('ERR_RNNKIT_TYPE', `options: expected an object, got ${describe(options)}`);
  checkOptionKeys('options', options as Record<string, unknown>, ['config', 'like', 'tokenizer', 'names', 'metadata']);
  const { config, like, tokenizer, names = {}, metadata = {} } = options;
  if ((config === undefined) === (like === undefined)) {
    throw typeError('ERR_RNNKIT_CONFIG', 'options: give the architecture as options.config or options.like (exactly one)');
  }
  if (config !== undefined && (config === null || typeof config !== 'object' || Array.isArray(config)))
    throw typeError('ERR_RNNKIT_TYPE', `options.config: expected an object, got ${describe(config)}`);
  if (tokenizer !== undefined && (tokenizer === null || typeof tokenizer !== 'object' || typeof tokenizer.toJSON !== 'function'))
    throw typeError('ERR_RNNKIT_TYPE', `options.tokenizer: expected a Tokenizer, got ${describe(tokenizer)}`);
  if (metadata === null || typeof metadata !== 'object' || Array.isArray(metadata))
    throw typeError('ERR_RNNKIT_TYPE', `options.metadata: expected an object, got ${describe(metadata)}`);
  let arch: Record<string, unknown>;
  let tok: unknown = tokenizer?.toJSON() ?? null;
  const meta: Record<string, string> = {};
  if (like !== undefined) {
    const model = loadModelSync(checkString('options.like', like, true));
    if (model.task === 'seq2seq') throw typeError('ERR_RNNKIT_CONFIG', 'options.like: a seq2seq model file; state dicts are imported into the other tasks');
    arch = model.config;
    tok ??= model.native.tokenizer();
    for (const [k, v] of Object.entries(model.metadata)) if (!RUN_KEYS.includes(k)) meta[k] = v;
  } else arch = config!;
  for (const [k, v] of Object.entries(metadata)) meta[k] = checkString(`options.metadata.${k}`, v);
  // Names are checked natively (unknown keys refused with a did-you-mean).
  const handle = native.NativeModel.importStateDict(path, arch, names);
  if (tok !== null) handle.setTokenizer(tok as Record<string, unknown>);
  for (const [k, v] of Object.entries(meta)) handle.setMetadata(k, v);
  return wrap(handle, path);
}
