/** `rnnkit info`: what a model file holds (task, architecture, tokenizer, metadata) and the engine. */

import { Command } from 'commander';
import * as fs from 'node:fs';
import type { Model } from '../index';
import type { Tokenizer } from '../tokenizer';
import { exitingWith, type ExitCode } from './exit';
import { makeIo } from './io';
import { api, openModel } from './models';
import { jsonOption } from './options';

/** A byte count for people. */
function formatBytes(n: number): string {
  return n < 1024 ? `${n} B` : n < 1 << 20 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / (1 << 20)).toFixed(1)} MiB`;
}

/** `rnnkit info`. */
async function info(file: string, o: { json?: boolean }): Promise<number> {
  const io = makeIo(!!o.json);
  const model = await openModel(file);
  const engine = api().engineInfo();
  const size = fs.statSync(file).size;
  const task = model.config.task;
  const tok = (model as Model & { tokenizer?: Tokenizer | null }).tokenizer ?? null;
  const tokenizer = tok ? { type: tok.type, vocabSize: tok.vocabSize, specials: { ...tok.specials } } : null;
  const data = { file, bytes: size, task, numParams: model.numParams, config: model.config, tokenizer, metadata: model.metadata, engine };
  const meta = Object.entries(model.metadata);
  const width = Math.max(12, ...[...Object.keys(model.config), ...meta.map(([k]) => k)].map((k) => k.length + 2)) + 2;
  const pad = (k: string) => k.padEnd(width);
  const lines = [
    `${pad('file')}${file} (${formatBytes(size)})`,
    `${pad('task')}${task}`,
    `${pad('parameters')}${model.numParams.toLocaleString('en-US')}`,
    'config',
  ];
  for (const [k, v] of Object.entries(model.config)) lines.push(`${pad('  ' + k)}${typeof v === 'object' ? JSON.stringify(v) : String(v)}`);
  lines.push(
    `${pad('tokenizer')}${tokenizer ? `${tokenizer.type}, vocabulary ${tokenizer.vocabSize}${Object.keys(tokenizer.specials).length ? `, specials ${Object.keys(tokenizer.specials).join(' ')}` : ''}` : 'none (token ids only)'}`,
  );
  if (meta.length) {
    lines.push('metadata');
    for (const [k, v] of meta) lines.push(`${pad('  ' + k)}${v.length > 200 ? v.slice(0, 200) + '…' : v}`);
  }
  lines.push(`${pad('engine')}rnnkit native ${engine.version}, SIMD ${engine.simd.length ? engine.simd.join(' ') : 'none'}, ${engine.threads} threads`);
  io.result(lines.join('\n'), data);
  return 0;
}

/** Declares `rnnkit info` on `program`. */
export function addInfoCommand(program: Command, exit: ExitCode): void {
  program
    .command('info')
    .summary('architecture, parameters, tokenizer, training metadata')
    .description('Describe a model file (architecture, parameter count, tokenizer, training metadata) and the native engine (SIMD, threads).')
    .argument('<model>', 'model file (.safetensors)')
    .addOption(jsonOption())
    .action(exitingWith(exit, info));
}
