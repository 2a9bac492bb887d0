import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { createClassifier, createSeq2Seq, engineInfo, fitTokenizer, loadLanguageModel, loadModel, loadModelSync } from '../src/index';
import { compileCli, expectOneLineError, root, runCli } from './cli-harness';

// Reduced-precision weights for generation, on the language models trained in PyTorch
// (fixtures/models): greedy text and held-out cross-entropy against the f32 model's.

let dir: string;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rnnkit-precision-'));
  await compileCli();
}, 120_000);

afterAll(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

const fixture = (name: string) => path.join(root, 'fixtures/models', `${name}.safetensors`);

/** The largest relative change of held-out cross-entropy each precision may make (docs/API.md). */
const CE_TOLERANCE = { bf16: 0.01, int8: 0.02 } as const;

describe('reduced precision on the PyTorch-trained fixtures', () => {
  for (const name of ['pp_lstm', 'zh_gru']) {
    it(`${name}: cross-entropy within ${CE_TOLERANCE.bf16 * 100} % (bf16) and ${CE_TOLERANCE.int8 * 100} % (int8) of f32; bf16 greedy text identical for 200 tokens`, async () => {
      const expected = JSON.parse(fs.readFileSync(path.join(root, `fixtures/models/${name}.expected.json`), 'utf8'));
      const held = fs.readFileSync(path.join(root, `fixtures/models/${name}.held.txt`), 'utf8');
      const f32 = await loadLanguageModel(fixture(name));
      expect(f32.precision).toBe('f32');
      const reference = (await f32.evaluate(held)).loss;
      await f32.generate(expected.generations[0].prompt, { maxTokens: 1 }); // packs the f32 weights for generation
      for (const precision of ['bf16', 'int8'] as const) {
        const model = await loadLanguageModel(fixture(name), { precision });
        expect(model.precision).toBe(precision);
        const loss = (await model.evaluate(held)).loss;
        expect(loss).not.toBe(reference); // the reduced weights were used
        expect(Math.abs(loss / reference - 1)).toBeLessThan(CE_TOLERANCE[precision]);
        expect(model.native.inferenceBytes()).toBeLessThan(f32.native.inferenceBytes() * (precision === 'bf16' ? 0.51 : 0.5));
        if (precision === 'bf16' || name === 'pp_lstm') {
          // zh_gru's continuations have top-2 margins down to 0.0005 nats: int8 may flip them.
          for (const g of expected.generations) expect(await model.generate(g.prompt, { maxTokens: 200, greedy: true })).toBe(g.greedy);
        }
      }
    }, 60_000);
  }
});

describe('precision: refusals', () => {
  it('refuses an unknown precision, an unknown option key and non-string values, naming them', async () => {
    await expect(loadLanguageModel(fixture('pp_lstm'), { precision: 'fp16' as never })).rejects.toThrow(RangeError);
    await expect(loadLanguageModel(fixture('pp_lstm'), { precision: 'fp16' as never })).rejects.toThrow(/precision.*"f32", "bf16", "int8".*"fp16"/);
    expect(() => loadModelSync(fixture('pp_lstm'), { precison: 'int8' } as never)).toThrow(expect.objectContaining({ code: 'ERR_RNNKIT_UNKNOWN_OPTION' }));
    await expect(loadModel(fixture('pp_lstm'), { precision: 8 as never })).rejects.toThrow(TypeError);
  });

  it('refuses reduced precision for other tasks and for training', async () => {
    const clf = createClassifier({ tokenizer: fitTokenizer('good bad', { type: 'char' }), labels: ['neg', 'pos'], hiddenSize: 8, seed: 1 });
    const file = path.join(dir, 'clf.safetensors');
    await clf.save(file);
    await expect(loadModel(file, { precision: 'int8' })).rejects.toThrow(/reduced precision is for generating with language models.*"classify"/);
    expect((await loadModel(file, { precision: 'f32' })).task).toBe('classify');
    const seq2seq = createSeq2Seq({
      sourceTokenizer: fitTokenizer('abcd', { type: 'char' }),
      targetTokenizer: fitTokenizer('xyz', { type: 'char', specials: ['<bos>', '<eos>'] }),
      hiddenSize: 8,
      embedDim: 4,
    });
    const seq2seqFile = path.join(dir, 'seq2seq.safetensors');
    await seq2seq.save(seq2seqFile);
    expect(() => loadModelSync(seq2seqFile, { precision: 'bf16' })).toThrow(/sequence-to-sequence models decode in f32/);
    expect(loadModelSync(seq2seqFile, { precision: 'f32' }).task).toBe('seq2seq');
    const lm = await loadLanguageModel(fixture('pp_lstm'), { precision: 'int8' });
    await expect(lm.fit('some text to train on, long enough for a window or two', { maxSteps: 1, seqLen: 8, batchSize: 1 })).rejects.toThrow(
      /precision "int8".*training runs in f32/,
    );
  });

  it('reports the int8 kernels in use', () => {
    expect(['avx512vnni', 'avx2', 'portable']).toContain(engineInfo().int8Kernels);
  });
});

describe('rnnkit generate / eval --precision', () => {
  it('generates and evaluates at int8, and refuses an unknown precision in one line', async () => {
    const model = fixture('pp_lstm');
    const g = await runCli(dir, ['generate', model, '--prompt', 'It is a truth', '--max-tokens', '20', '--greedy', '--precision', 'int8', '--json']);
    expect(g.status).toBe(0);
    expect(JSON.parse(g.stdout).text.length).toBeGreaterThan(0);
    const heldFile = path.join(root, 'fixtures/models/pp_lstm.held.txt');
    const e = await runCli(dir, ['eval', model, heldFile, '--precision', 'bf16', '--json']);
    expect(e.status).toBe(0);
    expect(JSON.parse(e.stdout).loss).toBeGreaterThan(1);
    expectOneLineError(await runCli(dir, ['generate', model, '--precision', 'fp16']), 1, /precision.*"fp16"/);
  }, 60_000);
});
