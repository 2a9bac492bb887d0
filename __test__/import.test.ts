// Plain PyTorch state_dicts in (fixtures/state_dict, made by
// scripts/fixtures/make_state_dict_fixtures.py: models trained in PyTorch under their own module
// names, saved with `safetensors.torch.save_file(model.state_dict())` and nothing else): the
// imported models reproduce PyTorch's outputs, and their ONNX exports reproduce them in
// onnxruntime; bad files and configs are refused naming the tensor; `rnnkit import` and
// `rnnkit export` from the command line.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-web';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { importStateDict, loadModel, tokenizerFromJSON, type Classifier, type LanguageModel } from '../src';
import { compileCli, expectOneLineError, runCli } from './cli-harness';

const LM = 'fixtures/state_dict/lstm_lm';
const CLF = 'fixtures/state_dict/bigru_classifier';
const lmFix = JSON.parse(fs.readFileSync(`${LM}.json`, 'utf8')) as { config: Record<string, unknown>; tokenizer: object; prompt: string; logits: number[] };
const clfFix = JSON.parse(fs.readFileSync(`${CLF}.json`, 'utf8')) as {
  config: Record<string, unknown>;
  tokenizer: object;
  labels: string[];
  rows: string[];
  probabilities: number[];
};

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** rnnkit's logits of every step of `text`, one step per call. */
function stepLogits(m: LanguageModel, text: string): number[] {
  const s = m.session();
  return [...m.tokenizer!.encode(text)].flatMap((id) => [...s.feed(Int32Array.of(id))]);
}

const importLM = () =>
  importStateDict(`${LM}.safetensors`, { config: lmFix.config, tokenizer: tokenizerFromJSON(JSON.stringify(lmFix.tokenizer)) }) as LanguageModel;
const importClassifier = () =>
  importStateDict(`${CLF}.safetensors`, {
    config: clfFix.config,
    tokenizer: tokenizerFromJSON(JSON.stringify(clfFix.tokenizer)),
    metadata: { labels: JSON.stringify(clfFix.labels) },
  }) as Classifier;

describe('importStateDict', () => {
  beforeAll(() => {
    ort.env.wasm.numThreads = 1;
  });

  it("a PyTorch-trained LSTM language model (encoder/lstm/decoder) reproduces PyTorch's logits within 1e-5", () => {
    const m = importLM();
    expect(m.task).toBe('language_model');
    const d = maxDiff(stepLogits(m, lmFix.prompt), lmFix.logits);
    console.log(`import lstm_lm: max abs diff vs PyTorch ${d.toExponential(2)}`);
    expect(d).toBeLessThan(1e-5);
  });

  it("a PyTorch-trained bidirectional GRU classifier (emb/gru/fc) reproduces PyTorch's probabilities within 1e-5", () => {
    const m = importClassifier();
    const got = m.predictSync(clfFix.rows).flatMap((p) => clfFix.labels.map((l) => p.probabilities[l]));
    const d = maxDiff(got, clfFix.probabilities);
    console.log(`import bigru_classifier: max abs diff vs PyTorch ${d.toExponential(2)}`);
    expect(d).toBeLessThan(1e-5);
  });

  it("the imported models' ONNX exports give PyTorch's outputs in onnxruntime within 1e-4", async () => {
    const lm = importLM();
    const tokens = [...lm.tokenizer!.encode(lmFix.prompt)];
    const H = lm.config.hidden_size;
    const z = () => new ort.Tensor('float32', new Float32Array(2 * H), [2, 1, H]);
    const s = await ort.InferenceSession.create(lm.toOnnx().bytes);
    const out = await s.run({ tokens: new ort.Tensor('int64', BigInt64Array.from(tokens, BigInt), [1, tokens.length]), h0: z(), c0: z() });
    const d = maxDiff(out.logits.data as Float32Array, lmFix.logits);
    const clf = importClassifier();
    const rows = clf.tokenizer!.encode(clfFix.rows.join(''));
    const T = clfFix.rows[0].length;
    const c = await (
      await ort.InferenceSession.create(clf.toOnnx().bytes)
    ).run({
      tokens: new ort.Tensor('int64', BigInt64Array.from(rows, BigInt), [clfFix.rows.length, T]),
      lengths: new ort.Tensor(
        'int64',
        BigInt64Array.from(clfFix.rows, () => BigInt(T)),
        [clfFix.rows.length],
      ),
    });
    const dc = maxDiff(c.probabilities.data as Float32Array, clfFix.probabilities);
    console.log(`onnx of imported lstm_lm: ${d.toExponential(2)}, bigru_classifier: ${dc.toExponential(2)} (vs PyTorch)`);
    expect(Math.max(d, dc)).toBeLessThan(1e-4);
  });

  it('names missing and mis-shaped tensors, and refuses unused ones', () => {
    const tok = tokenizerFromJSON(JSON.stringify(lmFix.tokenizer));
    const at = (config: Record<string, unknown>) => () => importStateDict(`${LM}.safetensors`, { config: { ...lmFix.config, ...config }, tokenizer: tok });
    expect(at({ num_layers: 3 })).toThrow(/tensor "lstm\.weight_ih_l2" .*missing/);
    expect(at({ num_layers: 1 })).toThrow(/tensor "lstm\.\w+_l1" .*no place/);
    expect(at({ hidden_size: 31 })).toThrow(/"lstm\.weight_ih_l0".*expected shape \[124, 16\].*got \[128, 16\]/);
    expect(at({ cell: 'gru' })).toThrow(/"lstm\.weight_ih_l0".*expected shape \[96, 16\]/);
    expect(at({ embed_dim: 8 })).toThrow(/"encoder\.weight".*expected shape \[61, 8\].*got \[61, 16\]/);
    expect(() => importStateDict(`${LM}.safetensors`, { config: lmFix.config, names: { rnn: 'gru' } })).toThrow(/"gru\.weight_ih_l0".*missing/);
    expect(() => importStateDict(`${LM}.safetensors`, { config: lmFix.config, names: { decoder: 'x' } as never })).toThrow(
      expect.objectContaining({ code: 'ERR_RNNKIT_UNKNOWN_OPTION' }),
    );
    expect(() => importStateDict(`${LM}.safetensors`, {})).toThrow(/options\.config or options\.like/);
    expect(() => importStateDict('fixtures/state_dict/none.safetensors', { config: lmFix.config })).toThrow(/none\.safetensors/);
  });
});

describe('rnnkit import and rnnkit export', () => {
  let dir: string;
  const rnnkit = (args: string[]) => runCli(dir, args);
  const abs = (p: string) => path.resolve(p);

  beforeAll(async () => {
    await compileCli();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rnnkit-import-'));
    fs.writeFileSync(path.join(dir, 'tok.json'), JSON.stringify(lmFix.tokenizer));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('imports with --config and --tokenizer, re-imports --like the result, and exports to ONNX', async () => {
    let r = await rnnkit(['import', abs(`${LM}.safetensors`), '--config', JSON.stringify(lmFix.config), '--tokenizer', 'tok.json', '--out', 'lm.safetensors']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/wrote lm\.safetensors: language_model \(lstm\)/);
    const m = (await loadModel(path.join(dir, 'lm.safetensors'))) as LanguageModel;
    expect(maxDiff(stepLogits(m, lmFix.prompt), lmFix.logits)).toBeLessThan(1e-5);
    r = await rnnkit(['import', abs(`${LM}.safetensors`), '--like', 'lm.safetensors', '--out', 'again.safetensors', '--json']);
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout).numParams).toBe(m.numParams);
    r = await rnnkit(['export', 'again.safetensors', '--format', 'onnx', '--out', 'out/lm.onnx', '--json']);
    expect(r.status).toBe(0);
    const info = JSON.parse(r.stdout);
    expect(info.opset).toBe(14);
    expect(info.inputs.map((i: { name: string }) => i.name)).toEqual(['tokens', 'h0', 'c0']);
    expect(fs.statSync(path.join(dir, 'out', 'lm.onnx')).size).toBe(info.bytes);
  });

  it('one-line errors: no architecture, a missing tensor, a missing file, --help', async () => {
    expectOneLineError(await rnnkit(['import', abs(`${LM}.safetensors`), '--out', 'x.safetensors']), 2, /--config <json> or --like <model>/);
    expectOneLineError(
      await rnnkit([
        'import',
        abs(`${LM}.safetensors`),
        '--config',
        JSON.stringify({ ...lmFix.config, num_layers: 3 }),
        '--tokenizer',
        'tok.json',
        '--out',
        'x.safetensors',
      ]),
      1,
      /"lstm\.weight_ih_l2".*missing/,
    );
    expectOneLineError(await rnnkit(['export', 'nope.safetensors', '--out', 'x.onnx']), 1, /model file "nope\.safetensors" does not exist/);
    expect(fs.existsSync(path.join(dir, 'x.safetensors'))).toBe(false);
    const help = await rnnkit(['export', '--help']);
    expect(help.stdout).toMatch(/--format <format>/);
    expect((await rnnkit(['import', '--help'])).stdout).toMatch(/--like <model>/);
  });
});
