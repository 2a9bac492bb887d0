/**
 * What a user configures is what the engine does: `fit` counts per call, trains in the dataset's
 * batches (the very batches `dataset.batches()` shows), reports every step, and options are
 * checked once, natively, with unknown keys refused.
 */
import { describe, expect, expectTypeOf, it } from 'vitest';
import * as fs from 'fs';
import * as path from 'path';
import * as rnnkit from '../src/index';
import {
  DenseDataset,
  LabelledDataset,
  TaggedDataset,
  TextCorpus,
  createClassifier,
  createLanguageModel,
  createRegressor,
  createTagger,
  fitTokenizer,
  type Model,
  type ProgressEvent,
} from '../src/index';
import type { SequenceData } from '../index';
import { TestRandom } from './random';

const root = path.join(__dirname, '..');
const text = fs.readFileSync(path.join(root, 'data/pride-and-prejudice.txt'), 'utf8').slice(0, 20_000);
const reviews = fs
  .readFileSync(path.join(root, 'data/sentiment.jsonl'), 'utf8')
  .split('\n')
  .filter((l) => l.trim() !== '')
  .slice(0, 120)
  .map((l) => JSON.parse(l) as { text: string; label: string | number });

/** A learning rate too small to move any f32 weight: the model stays as it was, step after step. */
const FROZEN = { optimizer: { type: 'sgd' as const, lr: 1e-30 } };

/** Mean loss the engine computes on one batch (no gradient, no update). */
async function batchLoss(model: Model, data: SequenceData): Promise<number> {
  return (await model.native.evaluateSequences(data, 1 << 20)).loss;
}

function denseRows(n: number, steps: number, features: number, seed: number): Float32Array {
  const r = new TestRandom(seed);
  return Float32Array.from({ length: n * steps * features }, () => r.nextFloat() - 0.5);
}

describe('fit does what it was told', () => {
  it('epochs count per call: a second fit({ epochs: 2 }) trains two more epochs', async () => {
    const corpus = TextCorpus.fromString(text, { seqLen: 32, batchSize: 16 });
    const model = createLanguageModel({ tokenizer: corpus.tokenizer, hiddenSize: 16, embedDim: 8 });
    const per = corpus.numBatches();
    const first = await model.fit(corpus, { epochs: 2 });
    const second = await model.fit(corpus, { epochs: 2 });
    expect([first.stepsDone, second.stepsDone]).toEqual([2 * per, 2 * per]);
    expect(second.stopReason).toBe('completed');
    expect(model.stepsTrained).toBe(4 * per);
    // maxSteps counts per call too; the step counter (which schedules read) keeps the model's life.
    const third = await model.fit(corpus, { maxSteps: 3 });
    expect(third.steps).toEqual([4 * per + 1, 4 * per + 2, 4 * per + 3]);
    expect(third.stopReason).toBe('max_steps');
  });

  it("fit trains in the dataset's batch size", async () => {
    const X = denseRows(10, 32, 5, 1);
    const ds = DenseDataset.fromArray(X, [10, 32, 5], { inputSize: 5, batchSize: 4, labels: [0, 1, 0, 1, 0, 1, 0, 1, 0, 1] });
    expect(ds.numBatches('train')).toBe(3);
    const clf = createClassifier({ inputSize: 5, labels: [0, 1], hiddenSize: 8, normalize: false });
    expect((await clf.fit(ds, { epochs: 2 })).stepsDone).toBe(6);

    const labelled = LabelledDataset.fromArray(reviews, { batchSize: 7, validation: 0.2, seed: 3 });
    const textClf = createClassifier({ tokenizer: labelled.tokenizer, labels: [...labelled.labels], hiddenSize: 8 });
    expect((await textClf.fit(labelled, { epochs: 1 })).stepsDone).toBe(labelled.numBatches('train'));
    expect(labelled.numBatches('train')).toBe(Math.ceil(labelled.size('train') / 7));

    const corpus = TextCorpus.fromString(text, { seqLen: 64, batchSize: 20, last: 'drop' });
    const lm = createLanguageModel({ tokenizer: corpus.tokenizer, hiddenSize: 8, embedDim: 8 });
    expect(corpus.numBatches()).toBe(Math.floor(corpus.numWindows() / 20));
    expect((await lm.fit(corpus, { epochs: 1 })).stepsDone).toBe(corpus.numBatches());
  });

  it('the last steps are reported: every step in the history, the final one in the events', async () => {
    const corpus = TextCorpus.fromString(text, { seqLen: 16, batchSize: 8 });
    const model = createLanguageModel({ tokenizer: corpus.tokenizer, hiddenSize: 8, embedDim: 8 });
    const events: ProgressEvent[] = [];
    const h = await model.fit(corpus, { maxSteps: 25, logEvery: 10, onProgress: (e) => events.push(e) });
    expect(h.stepsDone).toBe(25);
    expect(h.steps).toEqual(Array.from({ length: 25 }, (_, i) => i + 1));
    expect(h.loss.length).toBe(25);
    expect(events.filter((e) => e.type === 'step').map((e) => e.step)).toEqual([10, 20, 25]);
    expect(events.at(-1)).toMatchObject({ type: 'done', step: 25 });
  });

  it('a data-order option given to fit on a dataset is refused, naming where it belongs', async () => {
    const corpus = TextCorpus.fromString(text, { seqLen: 16, batchSize: 8 });
    const model = createLanguageModel({ tokenizer: corpus.tokenizer, hiddenSize: 8, embedDim: 8 });
    await expect(model.fit(corpus, { batchSize: 4 } as never)).rejects.toMatchObject({ code: 'ERR_RNNKIT_CONFIG', param: 'options.batchSize' });
  });
});

describe('the batches fit consumes are dataset.batches()', () => {
  // Trained with a frozen learning rate, so each step's loss is the loss of the batch it read:
  // equal to the engine's loss of `batches()[k]` only if they are the same rows in the same order.
  for (const seed of [0, 7]) {
    it(`TextCorpus windows, shuffled, two epochs (seed ${seed})`, async () => {
      const corpus = TextCorpus.fromString(text, { seqLen: 24, batchSize: 10, seed, validation: 0.1, last: 'pad', padId: 0 });
      const model = createLanguageModel({ tokenizer: corpus.tokenizer, hiddenSize: 8, embedDim: 8, seed: 1 });
      const h = await model.fit(corpus, { epochs: 2, ...FROZEN });
      const expected: number[] = [];
      for (const epoch of [0, 1]) {
        for (const b of corpus.batches('train', epoch)) {
          expected.push(
            await batchLoss(model, {
              tokens: b.inputs,
              lengths: new Int32Array(b.batchSize).fill(b.seqLen),
              rows: b.batchSize,
              steps: b.seqLen,
              tags: b.targets,
            }),
          );
        }
      }
      expect(h.loss.length).toBe(expected.length);
      h.loss.forEach((l, k) => expect(l).toBeCloseTo(expected[k], 6));
      // Another epoch's order is another permutation: the comparison can tell them apart.
      expect(expected.slice(0, corpus.numBatches())).not.toEqual(expected.slice(corpus.numBatches()));
    });

    it(`TextCorpus tbptt lanes: each epoch starts from the dataset's first batch (seed ${seed})`, async () => {
      // Lanes carry state from batch to batch, so only an epoch's first batch (zero state) can
      // be checked alone; the lanes themselves are TrainData::batch, as for windows.
      const corpus = TextCorpus.fromString(text, { seqLen: 16, batchSize: 4, seed, tbptt: true });
      const model = createLanguageModel({ tokenizer: corpus.tokenizer, hiddenSize: 8, embedDim: 8, seed: 1 });
      const per = corpus.numBatches();
      const h = await model.fit(corpus, { epochs: 2, ...FROZEN });
      const [b] = [...corpus.batches('train', 1)];
      const first = await batchLoss(model, {
        tokens: b.inputs,
        lengths: new Int32Array(b.batchSize).fill(b.seqLen),
        rows: b.batchSize,
        steps: b.seqLen,
        tags: b.targets,
      });
      expect(h.loss.length).toBe(2 * per);
      expect(h.loss[0]).toBeCloseTo(first, 6);
      expect(h.loss[per]).toBeCloseTo(first, 6);
      expect(h.loss[1]).not.toBeCloseTo(first, 3);
    });

    it(`LabelledDataset rows, stratified split (seed ${seed})`, async () => {
      const ds = LabelledDataset.fromArray(reviews, { batchSize: 16, validation: 0.25, stratify: true, seed });
      const model = createClassifier({ tokenizer: ds.tokenizer, labels: [...ds.labels], hiddenSize: 8, seed: 2 });
      const h = await model.fit(ds, { epochs: 2, ...FROZEN });
      const expected: number[] = [];
      for (const epoch of [0, 1])
        for (const b of ds.batches('train', epoch))
          expected.push(await batchLoss(model, { tokens: b.inputs, lengths: b.lengths, rows: b.batchSize, steps: b.seqLen, labels: b.labels }));
      h.loss.forEach((l, k) => expect(l).toBeCloseTo(expected[k], 6));
      expect(h.loss.length).toBe(expected.length);
    });

    it(`TaggedDataset rows (seed ${seed})`, async () => {
      const r = new TestRandom(seed + 11);
      const rows = Array.from({ length: 40 }, () => {
        const n = 3 + r.nextInt(6);
        const ids = Array.from({ length: n }, () => 1 + r.nextInt(9));
        return { ids, tags: ids.map((i) => (i % 2 === 0 ? 'even' : 'odd')) };
      });
      const ds = TaggedDataset.fromArray(rows, { vocabSize: 10, padId: 0, batchSize: 6, seed, last: 'drop' });
      const tokenizer = fitTokenizer('0123456789', { type: 'char', unknown: 'error' });
      const model = createTagger({ tokenizer, tags: [...ds.tags], hiddenSize: 8, seed: 3 });
      const h = await model.fit(ds, { epochs: 2, ...FROZEN });
      const expected: number[] = [];
      for (const epoch of [0, 1])
        for (const b of ds.batches('train', epoch))
          expected.push(await batchLoss(model, { tokens: b.inputs, lengths: b.lengths, rows: b.batchSize, steps: b.seqLen, tags: b.tags }));
      expect(h.loss.length).toBe(2 * Math.floor(40 / 6));
      h.loss.forEach((l, k) => expect(l).toBeCloseTo(expected[k], 6));
    });

    it(`DenseDataset rows with per-step targets (seed ${seed})`, async () => {
      const x = Array.from({ length: 30 }, (_, i) => denseRows(1, 2 + (i % 5), 3, seed * 100 + i));
      const y = x.map((row) => Float32Array.from({ length: row.length / 3 }, (_, t) => row[t * 3] + row[t * 3 + 1]));
      const ds = DenseDataset.fromRows(x, { inputSize: 3, targets: y, outputSize: 1, batchSize: 8, validation: 0.2, seed, normalize: true });
      const model = createRegressor({ inputSize: 3, perStep: true, hiddenSize: 8, seed: 4 });
      const h = await model.fit(ds, { epochs: 2, ...FROZEN });
      const expected: number[] = [];
      for (const epoch of [0, 1])
        for (const b of ds.batches('train', epoch))
          expected.push(await batchLoss(model, { values: b.inputs, lengths: b.lengths, rows: b.batchSize, steps: b.seqLen, targets: b.targets }));
      h.loss.forEach((l, k) => expect(l).toBeCloseTo(expected[k], 6));
      expect(h.loss.length).toBe(expected.length);
    });
  }
});

describe('options are checked once, natively', () => {
  it('unknown fit keys are refused with a did-you-mean and err.param', async () => {
    const corpus = TextCorpus.fromString(text, { seqLen: 16, batchSize: 8 });
    const model = createLanguageModel({ tokenizer: corpus.tokenizer, hiddenSize: 8, embedDim: 8 });
    const e = await model.fit(corpus, { maxStep: 3 } as never).then(
      () => undefined,
      (err: Error & { code?: string; param?: string }) => err,
    );
    expect(e).toBeInstanceOf(TypeError);
    expect(e).toMatchObject({ code: 'ERR_RNNKIT_UNKNOWN_OPTION', param: 'options.maxStep' });
    expect(e!.message).toMatch(/did you mean "maxSteps"/);
    expect(() => TextCorpus.fromString(text, { seqLen: 16, batchSize: 8, shufle: false } as never)).toThrow(
      /options.shufle: unknown option; did you mean "shuffle"/,
    );
    await expect(model.fit(corpus, { optimizer: { type: 'adam', betas: [0.9, 0.999], lr: -1 } })).rejects.toMatchObject({ param: 'options.optimizer.lr' });
  });

  it('only the documented API is exported', () => {
    for (const internal of [
      'checkInt',
      'checkNumber',
      'checkString',
      'checkBoolean',
      'checkChoice',
      'describe',
      'typeError',
      'rangeError',
      'SeededRandom',
      'splitRows',
      'splitRowIndices',
      'classificationMetrics',
      'compareCodePoints',
      'registerModelClass',
      'trainOptionsJSON',
      'runFit',
    ]) {
      expect(rnnkit, internal).not.toHaveProperty(internal);
    }
  });
});

describe('every option object refuses unknown keys alike', () => {
  it('tokenizer, save, evaluate and server options name the key and suggest the right one', async () => {
    const expectUnknown = (fn: () => unknown, param: string, suggestion: string) => {
      let caught: (Error & { code?: string; param?: string }) | undefined;
      try {
        fn();
      } catch (e) {
        caught = e as Error & { code?: string; param?: string };
      }
      expect(caught, param).toBeInstanceOf(TypeError);
      expect(caught).toMatchObject({ code: 'ERR_RNNKIT_UNKNOWN_OPTION', param });
      expect(caught!.message).toContain(`did you mean "${suggestion}"`);
    };
    expectUnknown(() => fitTokenizer('abc', { type: 'word', minCont: 2 } as never), 'options.minCont', 'minCount');
    const model = createLanguageModel({ vocabSize: 5, hiddenSize: 4, embedDim: 2 });
    expectUnknown(() => model.saveSync(path.join(require('os').tmpdir(), 'x.safetensors'), { checkpont: true } as never), 'options.checkpont', 'checkpoint');
    expectUnknown(() => model.evaluateSync(Int32Array.of(1, 2, 3), { chunks: 2 } as never), 'options.chunks', 'chunk');
    expectUnknown(() => createLanguageModel({ vocabSize: 5, hiddenSise: 4 } as never), 'options.hiddenSise', 'hiddenSize');
  });

  it("errors thrown in TypeScript carry err.param as the engine's do", () => {
    expect(() => LabelledDataset.fromArray([{ text: '', label: 'a' }], { batchSize: 1 })).toThrow(expect.objectContaining({ param: 'rows[0]' }));
    expect(() => createClassifier({ inputSize: 3, labels: [] })).toThrow(expect.objectContaining({ param: 'options.labels' }));
  });
});

describe('a typed boundary', () => {
  it('no string parameter of the native binding carries JSON', () => {
    // Every string the binding takes is a name (task, split, key, tensor, option path) or a file
    // path, a user's metadata value, or an error's message (a train event's failed checkpoint, a
    // generation pool's failed sequence): options, configs, events and histories are objects.
    const dts = fs.readFileSync(path.join(root, 'index.d.ts'), 'utf8');
    const params = [...dts.matchAll(/(\w+)\??: string\b/g)].map((m) => m[1]);
    // `embedding`, `rnn`, `head`, `skip`: module names of a PyTorch state_dict (importStateDict).
    const allowed = new Set([
      'task',
      'path',
      'key',
      'value',
      'name',
      'split',
      'param',
      'version',
      'kind',
      'type',
      'stopReason',
      'code',
      'id',
      'stop',
      'message',
      'embedding',
      'rnn',
      'head',
      'skip',
      // A speech model's output characters (a string of them, not JSON).
      'alphabet',
      // engineInfo()'s GEMM and int8 kernel sets: names (avx512, avx2, avx512vnni, portable).
      'gemmKernels',
      'int8Kernels',
      // A weight precision: a name (f32, bf16, int8), checked by the engine.
      'precision',
    ]);
    expect(params.filter((p) => !allowed.has(p))).toEqual([]);
    // No function or parameter named after JSON (`configJson(...)`, `optionsJson: string`).
    expect(dts).not.toMatch(/\b\w*json\w*\??\s*[:(]/i);
  });

  it("sequence models' fit and evaluate take typed data", () => {
    type ClassifierData = Parameters<rnnkit.Classifier['fit']>[0];
    type TaggerData = Parameters<rnnkit.Tagger['evaluate']>[0];
    type RegressorData = Parameters<rnnkit.Regressor['fit']>[0];
    expectTypeOf<ClassifierData>().toEqualTypeOf<rnnkit.LabelledDataset | rnnkit.DenseDataset | rnnkit.ClassifyExample[]>();
    expectTypeOf<TaggerData>().toEqualTypeOf<rnnkit.TaggedDataset | rnnkit.TagExample[]>();
    expectTypeOf<RegressorData>().toEqualTypeOf<rnnkit.DenseDataset | rnnkit.RegressExample[]>();
    expectTypeOf<ClassifierData>().not.toBeUnknown();
  });
});

describe('files and callbacks that used to break a run', () => {
  it('a model file whose tokenizer does not match its vocabulary is refused at load, naming the file', async () => {
    const tokenizer = fitTokenizer('abcdef', { type: 'char', unknown: 'error' });
    const model = createLanguageModel({ tokenizer, hiddenSize: 4, embedDim: 2 });
    const file = path.join(require('os').tmpdir(), `rnnkit-mismatch-${process.pid}.safetensors`);
    model.native.setTokenizer(fitTokenizer('abc', { type: 'char', unknown: 'error' }).toJSON() as unknown as Record<string, unknown>);
    model.saveSync(file);
    await expect(rnnkit.loadModel(file)).rejects.toMatchObject({
      code: 'ERR_RNNKIT_FORMAT',
      message: expect.stringMatching(/tokenizer has 3 tokens but the model's vocabulary has 6/),
    });
    expect(() => rnnkit.loadModelSync(file)).toThrow(file);
  });

  it('a throwing onProgress does not turn a finished run into a rejection', async () => {
    const corpus = TextCorpus.fromString(text, { seqLen: 16, batchSize: 8 });
    const model = createLanguageModel({ tokenizer: corpus.tokenizer, hiddenSize: 8, embedDim: 8 });
    const h = await model.fit(corpus, {
      maxSteps: 3,
      onProgress: () => {
        throw new Error('handler bug');
      },
    });
    expect(h.stepsDone).toBe(3);
  });
});
