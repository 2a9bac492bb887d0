/**
 * `rnnkit export`: a model file as an ONNX model (ONNX's own RNN/LSTM/GRU operators, opset 14),
 * for onnxruntime in browsers, inference servers and other languages. The graph and its inputs
 * and outputs are those of `model.exportOnnx` (docs/FORMAT.md, "ONNX export").
 */

import { Command, Option } from 'commander';
import { exitingWith, type ExitCode } from './exit';
import { ensureParent } from './files';
import { makeIo } from './io';
import { openModel } from './models';
import { jsonOption } from './options';

/** `rnnkit export`. */
async function exportModel(file: string, o: { format: string; out: string; json?: boolean }): Promise<number> {
  const io = makeIo(!!o.json);
  const model = await openModel(file);
  ensureParent(o.out);
  const r = await model.exportOnnx(o.out);
  const sig = (ts: { name: string; type: string; shape: (number | string)[] }[]) => ts.map((t) => `${t.name} ${t.type} [${t.shape.join(', ')}]`).join(', ');
  const human = [
    `wrote ${r.path} (${r.bytes.toLocaleString('en-US')} bytes, ONNX opset ${r.opset})`,
    `inputs   ${sig(r.inputs)}`,
    `outputs  ${sig(r.outputs)}`,
  ].join('\n');
  io.result(human, { model: file, format: o.format, ...r });
  return 0;
}

/** Declares `rnnkit export` on `program`. */
export function addExportCommand(program: Command, exit: ExitCode): void {
  program
    .command('export')
    .summary('write a model as ONNX (onnxruntime, browsers, inference servers)')
    .description(
      'Export a model file to ONNX with the ONNX RNN/LSTM/GRU operators (opset 14, dynamic batch and time). ' +
        'Language models: inputs tokens [batch, time] int64, h0 (and c0 for LSTM) [layers, batch, hidden]; outputs logits [batch, time, vocab], hn (and cn): ' +
        'feed hn/cn back as h0/c0 to generate one token at a time. Classifiers, taggers, regressors: inputs tokens (or features) and lengths [batch]; ' +
        'output probabilities or values. The file is written atomically.',
    )
    .argument('<model>', 'model file (.safetensors)')
    .addOption(new Option('--format <format>', 'output format').choices(['onnx']).default('onnx'))
    .requiredOption('--out <file>', 'the ONNX file to write (.onnx)')
    .addOption(jsonOption())
    .action(exitingWith(exit, exportModel));
}
