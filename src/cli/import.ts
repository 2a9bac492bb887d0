/**
 * `rnnkit import`: a plain PyTorch `state_dict` (`safetensors.torch.save_file(model.state_dict(),
 * path)`) as an rnnkit model file, the architecture given as docs/FORMAT.md's `config` JSON or
 * taken from a model file like it (`importStateDict`).
 */

import { Command } from 'commander';
import { UsageError, exitingWith, type ExitCode } from './exit';
import { checkReadable, ensureParent, readText } from './files';
import { makeIo } from './io';
import { api } from './models';
import { jsonOption } from './options';

interface ImportCliOptions {
  config?: string;
  like?: string;
  tokenizer?: string;
  embedding?: string;
  rnn?: string;
  head?: string;
  skip?: string;
  out: string;
  json?: boolean;
}

/** Parses a JSON option value into an object, as a usage error when it is not one. */
function jsonObject(flag: string, text: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new UsageError(`${flag}: not JSON (${(e as Error).message})`);
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new UsageError(`${flag}: expected a JSON object`);
  return v as Record<string, unknown>;
}

/** `rnnkit import`. */
async function importModel(file: string, o: ImportCliOptions): Promise<number> {
  const io = makeIo(!!o.json);
  if ((o.config === undefined) === (o.like === undefined)) throw new UsageError('give the architecture with --config <json> or --like <model> (exactly one)');
  checkReadable(file, 'state_dict file');
  const rnnkit = api();
  const config = o.config === undefined ? undefined : jsonObject('--config', o.config);
  if (o.like !== undefined) checkReadable(o.like, 'model file');
  let tokenizer;
  if (o.tokenizer !== undefined) {
    checkReadable(o.tokenizer, 'tokenizer file');
    tokenizer = rnnkit.tokenizerFromJSON(readText(o.tokenizer, 'tokenizer file'));
  }
  const names = Object.fromEntries((['embedding', 'rnn', 'head', 'skip'] as const).filter((k) => o[k] !== undefined).map((k) => [k, o[k]!]));
  const model = rnnkit.importStateDict(file, {
    ...(config ? { config } : { like: o.like }),
    ...(tokenizer ? { tokenizer } : {}),
    names,
  });
  ensureParent(o.out);
  await model.save(o.out);
  const human = `wrote ${o.out}: ${model.config.task} (${model.config.cell}), ${model.numParams.toLocaleString('en-US')} parameters from ${file}`;
  io.result(human, { stateDict: file, out: o.out, task: model.config.task, numParams: model.numParams, config: model.config });
  return 0;
}

/** Declares `rnnkit import` on `program`. */
export function addImportCommand(program: Command, exit: ExitCode): void {
  program
    .command('import')
    .summary('a PyTorch state_dict (safetensors) as an rnnkit model')
    .description(
      'Turn a plain PyTorch state_dict saved with safetensors.torch.save_file (nn.RNN/nn.LSTM/nn.GRU, nn.Embedding, nn.Linear) into an rnnkit model file. ' +
        'The architecture comes from --config (the config JSON of docs/FORMAT.md) or --like (an rnnkit model file: config, tokenizer, labels). ' +
        'Module names are inferred from the tensor shapes; --embedding/--rnn/--head/--skip name them when the shapes do not tell.',
    )
    .argument('<state-dict>', 'PyTorch state_dict (.safetensors)')
    .option('--config <json>', 'architecture, e.g. \'{"cell":"lstm","vocab_size":75,"embed_dim":32,"hidden_size":128,"num_layers":2}\'')
    .option('--like <model>', 'take config, tokenizer and metadata from this rnnkit model file')
    .option('--tokenizer <file>', 'tokenizer JSON (docs/TOKENIZERS.md) of a token-input model')
    .option('--embedding <module>', 'name of the nn.Embedding module')
    .option('--rnn <module>', 'name of the nn.RNN/nn.LSTM/nn.GRU module')
    .option('--head <module>', 'name of the output nn.Linear module')
    .option('--skip <module>', 'name of the skip-term nn.Linear module (config skip: true)')
    .requiredOption('--out <file>', 'the rnnkit model file to write (.safetensors)')
    .addOption(jsonOption())
    .action(exitingWith(exit, importModel));
}
