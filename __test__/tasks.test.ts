import { describe, expect, it } from 'vitest';
import { TestRandom } from './random';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import {
  Classifier,
  DenseDataset,
  FeatureStats,
  LabelledDataset,
  Regressor,
  TaggedDataset,
  Tagger,
  createClassifier,
  createRegressor,
  createTagger,
  fitTokenizer,
  loadModel,
  loadModelSync,
} from '../src/index';

const root = path.join(__dirname, '..');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rnnkit-tasks-'));

/** The error code thrown by `fn` (sync), or undefined. */
function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return (e as { code?: string }).code;
  }
  return undefined;
}

/** The error thrown by `fn` (sync or async). */
async function errorOf(fn: () => unknown): Promise<Error & { code?: string }> {
  try {
    await fn();
  } catch (e) {
    return e as Error & { code?: string };
  }
  throw new Error('expected an error');
}

// A learnable toy language: a sentence is positive iff it contains "good" or "great".
const rng = new TestRandom(11);
const filler = ['the', 'movie', 'was', 'food', 'plot', 'very', 'quite', 'really', 'and', 'it'];
function toySentence(positive: boolean): string {
  const words = Array.from({ length: 3 + rng.nextInt(5) }, () => filler[rng.nextInt(filler.length)]);
  words.splice(rng.nextInt(words.length + 1), 0, positive ? (rng.nextInt(2) ? 'good' : 'great') : rng.nextInt(2) ? 'bad' : 'awful');
  return words.join(' ');
}
const toy = Array.from({ length: 240 }, (_, i) => ({ text: toySentence(i % 2 === 0), label: i % 2 === 0 ? 'pos' : 'neg' }));
const toyTokenizer = fitTokenizer(toy.map((r) => r.text).join('\n'), { type: 'word', specials: ['<pad>', '<unk>'] });

function toyClassifier(extra: Record<string, unknown> = {}): Classifier {
  return createClassifier({ tokenizer: toyTokenizer, labels: ['neg', 'pos'], cell: 'gru', hiddenSize: 16, embedDim: 8, seed: 1, ...extra });
}

describe('Classifier', () => {
  it('learns a toy sentiment rule; evaluate and predict agree with each other', async () => {
    const model = toyClassifier();
    const before = await model.evaluate(toy);
    const events: string[] = [];
    const history = await model.fit(toy, { epochs: 8, batchSize: 16, optimizer: { lr: 0.01 }, onProgress: (e) => events.push(e.type) });
    expect(history.stepsDone).toBe(8 * 15);
    expect(events).toContain('step');
    expect(events.at(-1)).toBe('done');
    const after = await model.evaluate(toy);
    expect(after.loss).toBeLessThan(before.loss / 2);
    expect(after.accuracy).toBeGreaterThan(0.95);
    expect(after.confusion.flat().reduce((a, b) => a + b, 0)).toBe(toy.length);
    expect(after.perClass.map((m) => m.label)).toEqual(['neg', 'pos']);
    const preds = await model.predict(toy.map((r) => r.text));
    expect(preds).toHaveLength(toy.length);
    const correct = preds.filter((p, i) => p.label === toy[i].label).length;
    expect(correct / toy.length).toBeCloseTo(after.accuracy);
    for (const p of preds.slice(0, 5)) {
      expect(p.probabilities.neg + p.probabilities.pos).toBeCloseTo(1, 5);
      expect(p.probability).toBe(Math.max(p.probabilities.neg, p.probabilities.pos));
    }
    const one = await model.predict('it was really good');
    expect(one.label).toBe('pos');
    expect(model.predictSync('the plot was awful').label).toBe('neg');
    // Unknown words read as <unk> rather than failing.
    expect(['neg', 'pos']).toContain(model.predictSync('zebra good').label);
  });

  it('trains from a LabelledDataset and evaluates on its validation split', async () => {
    const ds = LabelledDataset.fromArray(toy, { batchSize: 16, validation: 0.25, seed: 2, tokenizer: toyTokenizer });
    const model = toyClassifier({ pooling: 'max', cell: 'lstm' });
    const validEvents: number[] = [];
    await model.fit(ds, { epochs: 6, optimizer: { lr: 0.01 }, onProgress: (e) => e.type === 'validation' && validEvents.push(e.valAccuracy!) });
    expect(validEvents.length).toBeGreaterThan(0);
    const r = await model.evaluate(ds);
    expect(r.count).toBe(ds.size('validation'));
    expect(r.accuracy).toBeGreaterThan(0.9);
  });

  it('passes class weights to the loss: a zero weight makes a class unlearnt', async () => {
    // 80 % "pos": unweighted training predicts pos for most rows; weight 0 for pos means only the
    // neg rows push the weights, so nearly every row ends up neg.
    const rows = toy.map((r, i) => ({ text: i % 5 === 0 ? 'the movie' : r.text, label: i % 5 === 0 ? 'neg' : 'pos' }));
    const model = toyClassifier();
    await model.fit(rows, { epochs: 3, batchSize: 16, optimizer: { lr: 0.01 }, classWeights: { pos: 0 } });
    const preds = await model.predict(rows.map((r) => r.text));
    // Words only seen in pos rows keep their random embeddings, so a few rows may still flip.
    expect(preds.filter((p) => p.label === 'neg').length).toBeGreaterThan(0.9 * rows.length);
    const plain = toyClassifier();
    await plain.fit(rows, { epochs: 3, batchSize: 16, optimizer: { lr: 0.01 } });
    expect((await plain.predict(rows.map((r) => r.text))).filter((p) => p.label === 'pos').length).toBeGreaterThan(rows.length / 2);
  });

  it('classifies dense sequences with normalisation statistics from the training rows', async () => {
    const r = new TestRandom(5);
    const rows = Array.from({ length: 200 }, (_, i) => {
      const up = i % 2 === 0;
      const T = 4 + r.nextInt(6);
      // Feature 0 trends up or down around 100 (far from 0, so normalisation matters); feature 1 is noise.
      const values = Float32Array.from({ length: T * 2 }, (_, k) =>
        k % 2 === 0 ? 100 + (up ? 1 : -1) * Math.floor(k / 2) + r.nextFloat() : 50 * r.nextFloat(),
      );
      return { values, label: up ? 1 : 0 };
    });
    const model = createClassifier({ inputSize: 2, labels: [0, 1], hiddenSize: 16, seed: 3 });
    expect(model.featureStats).toBeNull();
    await model.fit(rows, { epochs: 6, batchSize: 20, optimizer: { lr: 0.01 } });
    expect(model.featureStats!.mean[0]).toBeGreaterThan(95);
    expect(JSON.parse(model.metadata.feature_stats).mean).toHaveLength(2);
    const e = await model.evaluate(rows);
    expect(e.accuracy).toBeGreaterThan(0.9);
    expect((await model.predict(rows[0].values)).label).toBe(1);
  });

  it('saves and loads with its labels and tokenizer; predictions are unchanged', async () => {
    const model = toyClassifier({ labels: ['neg', 'pos'] });
    await model.fit(toy.slice(0, 64), { epochs: 1, batchSize: 16 });
    const file = path.join(tmp, 'clf.safetensors');
    await model.save(file);
    const loaded = await loadModel(file);
    expect(loaded).toBeInstanceOf(Classifier);
    const c = loaded as Classifier;
    expect(c.labels).toEqual(['neg', 'pos']);
    expect(c.config).toMatchObject({ task: 'classify', pooling: 'max', per_step: false, bidirectional: true, output_size: 2 });
    expect(c.tokenizer!.toJSON()).toEqual(toyTokenizer.toJSON());
    expect(c.maxLength).toBe(1024);
    const texts = toy.slice(0, 10).map((r) => r.text);
    expect(await c.predict(texts)).toEqual(await model.predict(texts));
  });
});

describe('Tagger', () => {
  // Tag every character: vowel or not; learnable from the character alone.
  const text = fs.readFileSync(path.join(root, 'data/pride-and-prejudice.txt'), 'utf8').slice(0, 8000).toLowerCase();
  const tokenizer = fitTokenizer(text, { type: 'char', specials: ['<pad>'] });
  const rows = Array.from({ length: 100 }, (_, i) => {
    const s = text.slice(i * 80, i * 80 + 40 + (i % 40));
    return { text: s, tags: Array.from(s, (c) => ('aeiou'.includes(c) ? 'V' : '-')) };
  });

  it('learns per-step tags; reports token accuracy, per-tag F1 and tag sequences', async () => {
    const model = createTagger({ tokenizer, tags: ['-', 'V'], hiddenSize: 16, embedDim: 8, seed: 4 });
    expect(model.config).toMatchObject({ task: 'tag', bidirectional: true });
    await model.fit(rows, { epochs: 8, batchSize: 10, optimizer: { lr: 0.02 } });
    const r = await model.evaluate(rows);
    expect(r.count).toBe(rows.reduce((a, x) => a + x.text.length, 0));
    expect(r.accuracy).toBeGreaterThan(0.97);
    expect(r.perClass[1].f1).toBeGreaterThan(0.95);
    const p = await model.predict(['banana split', 'xyz']);
    expect(p[0].tokens.join('')).toBe('banana split');
    expect(p[0].tags).toHaveLength(12);
    expect(p[0].probabilities).toHaveLength(12);
    expect(p[0].tags.join('')).toBe('-V-V-V----V-');
    expect(p[1].tags).toHaveLength(3);
  });

  it('trains from a TaggedDataset of ids; saves and loads with its tags', async () => {
    const ds = TaggedDataset.fromArray(
      rows.map((r) => ({ ids: tokenizer.encode(r.text), tags: r.tags })),
      { batchSize: 10, vocabSize: tokenizer.vocabSize, padId: tokenizer.specials['<pad>']!, tags: ['-', 'V'], validation: 0.2 },
    );
    const model = createTagger({ tokenizer, tags: ['-', 'V'], hiddenSize: 16, embedDim: 8, seed: 4, cell: 'lstm' });
    await model.fit(ds, { epochs: 2 });
    const r = await model.evaluate(ds);
    expect(r.count).toBeGreaterThan(0);
    const file = path.join(tmp, 'tagger.safetensors');
    model.saveSync(file);
    const loaded = loadModelSync(file) as Tagger;
    expect(loaded).toBeInstanceOf(Tagger);
    expect(loaded.tags).toEqual(['-', 'V']);
    expect(loaded.predictSync('pride and prejudice')).toEqual(model.predictSync('pride and prejudice'));
  });
});

describe('Regressor', () => {
  const r = new TestRandom(9);
  // Many-to-one: the target is the mean of the window plus 1000 (needs the head bias and the inputs).
  const rows = Array.from({ length: 160 }, () => {
    const T = 3 + r.nextInt(6);
    const values = Float32Array.from({ length: T }, () => 10 * r.nextFloat());
    return { values, target: values.reduce((a, b) => a + b, 0) / T / 10 };
  });

  it('refuses early stopping on valAccuracy (a regressor has no accuracy); stops early on valLoss', async () => {
    const model = createRegressor({ inputSize: 1, hiddenSize: 8, seed: 2, pooling: 'mean' });
    const validation = rows.slice(0, 10);
    await expect(model.fit(rows, { validation, earlyStopping: { monitor: 'valAccuracy' } })).rejects.toThrow(
      /^options.earlyStopping.monitor: "valAccuracy" needs a class head/,
    );
    const history = await model.fit(rows, { validation, epochs: 2, batchSize: 16, earlyStopping: { patience: 1, minDelta: 1e9 } });
    // No validation can beat the first by 1e9: the second one stops the run.
    expect(history).toMatchObject({ stopReason: 'early_stopping', bestStep: history.valSteps[0], bestValLoss: history.valLoss[0] });
    expect(history.valSteps).toHaveLength(2);
  });

  it('learns a many-to-one target; MSE falls; predict gives [outputSize] per row', async () => {
    const model = createRegressor({ inputSize: 1, hiddenSize: 16, seed: 2, pooling: 'mean' });
    const before = await model.evaluate(rows);
    await model.fit(rows, { epochs: 15, batchSize: 16, optimizer: { lr: 0.01 } });
    const after = await model.evaluate(rows);
    expect(after.mse).toBeLessThan(before.mse / 5);
    expect(after.mae).toBeGreaterThan(0);
    const p = await model.predict([rows[0].values, rows[1].values]);
    expect(p).toHaveLength(2);
    expect(p[0]).toBeInstanceOf(Float32Array);
    expect(p[0]).toHaveLength(1);
    expect(Math.abs(p[0][0] - rows[0].target)).toBeLessThan(0.2);
  });

  it('per-step regression from a DenseDataset; saves and loads the feature statistics', async () => {
    // Target at each step: the running sum of the inputs so far (needs memory).
    const xs = Array.from({ length: 80 }, () => Float32Array.from({ length: 6 * 2 }, () => r.nextFloat() - 0.5 + 3));
    const ys = xs.map((x) => {
      let s = 0;
      return Float32Array.from({ length: 6 }, (_, t) => (s += x[t * 2] - 3));
    });
    const ds = DenseDataset.fromRows(xs, { inputSize: 2, targets: ys, outputSize: 1, batchSize: 16, validation: 0.25, normalize: true });
    const model = createRegressor({ inputSize: 2, perStep: true, hiddenSize: 16, seed: 1 });
    await model.fit(ds, { epochs: 10, optimizer: { lr: 0.01 } });
    const e = await model.evaluate(ds);
    expect(e.count).toBe(ds.size('validation') * 6);
    const p = model.predictSync(xs[0]);
    expect(p).toHaveLength(6);
    const file = path.join(tmp, 'regress.safetensors');
    model.saveSync(file);
    const loaded = (await loadModel(file)) as Regressor;
    expect(loaded).toBeInstanceOf(Regressor);
    expect(loaded.config).toMatchObject({ task: 'regress', per_step: true, input_size: 2, output_size: 1 });
    expect(Array.from(loaded.featureStats!.mean)).toEqual(Array.from(model.featureStats!.mean));
    expect(Array.from(loaded.featureStats!.std)).toEqual(Array.from(model.featureStats!.std));
    expect(loaded.predictSync(xs[0])).toEqual(p);
  });

  it('uses given statistics and keeps them across fits', async () => {
    const stats = new FeatureStats(Float32Array.of(5), Float32Array.of(2));
    const model = createRegressor({ inputSize: 1, featureStats: stats, hiddenSize: 8 });
    await model.fit(rows.slice(0, 32), { epochs: 1 });
    expect(model.featureStats).toBe(stats);
    expect(JSON.parse(model.metadata.feature_stats)).toEqual({ mean: [5], std: [2] });
  });

  it('normalize: false feeds the raw values', async () => {
    const model = createRegressor({ inputSize: 1, normalize: false, hiddenSize: 8 });
    await model.fit(rows.slice(0, 32), { epochs: 1 });
    expect(model.featureStats).toBeNull();
    expect(model.metadata.normalize).toBe('false');
  });
});

describe('training control', () => {
  it('aborts through an AbortSignal and refuses a second concurrent call', async () => {
    const model = toyClassifier();
    const ac = new AbortController();
    const running = model.fit(toy, { epochs: 200, batchSize: 4, signal: ac.signal, onProgress: (e) => e.step >= 20 && ac.abort() });
    expect(model.isTraining).toBe(true);
    expect((await errorOf(() => model.fit(toy))).code).toBe('ERR_RNNKIT_BUSY');
    expect((await errorOf(() => model.predict('good'))).code).toBe('ERR_RNNKIT_BUSY');
    const e = (await errorOf(() => running)) as Error & { code?: string; history?: { stopReason: string } };
    expect(e.code).toBe('ABORT_ERR');
    expect(e.history!.stopReason).toBe('aborted');
    expect(model.isTraining).toBe(false);
    expect(model.predictSync('good').label).toMatch(/pos|neg/);
  });
});

describe('bad input', () => {
  const clf = createClassifier({ tokenizer: toyTokenizer, labels: ['neg', 'pos'], hiddenSize: 8, embedDim: 4, maxLength: 6 });
  const dense = createRegressor({ inputSize: 2, hiddenSize: 8 });
  const tagger = createTagger({ tokenizer: toyTokenizer, tags: ['a', 'b'], hiddenSize: 8, embedDim: 4 });

  it('labels outside the declared set name the row and field', async () => {
    const e = await errorOf(() =>
      clf.fit([
        { text: 'good', label: 'pos' },
        { text: 'bad', label: 'meh' },
      ]),
    );
    expect(e.code).toBe('ERR_RNNKIT_RANGE');
    expect(e.message).toMatch(/^data\[1\]\.label: label "meh" is not one of the model's labels \("neg", "pos"\)/);
    const v = await errorOf(() => clf.fit([{ text: 'good', label: 'pos' }], { validation: [{ text: 'bad', label: 7 }] }));
    expect(v.message).toMatch(/^options\.validation\[0\]\.label/);
    const t = await errorOf(() => tagger.fit([{ text: 'good movie', tags: ['a', 'z'] }]));
    expect(t.code).toBe('ERR_RNNKIT_RANGE');
    expect(t.message).toMatch(/^data\[0\]\.tags\[1\]: tag "z"/);
    // A dataset whose label set has a label the model lacks.
    const ds = LabelledDataset.fromArray(
      [
        { text: 'good', label: 'pos' },
        { text: 'bad', label: 'other' },
      ],
      { batchSize: 2, tokenizer: toyTokenizer },
    );
    expect((await errorOf(() => clf.fit(ds))).message).toMatch(/^data: the dataset's labels \("other", "pos"\) are not the model's/);
  });

  it('empty texts, texts with no tokens and too-long sequences name the row', () => {
    expect(codeOf(() => clf.predictSync(['good', '']))).toBe('ERR_RNNKIT_EMPTY');
    expect(() => clf.predictSync(['good', ''])).toThrow(/^inputs\[1\]: empty text/);
    expect(() => clf.predictSync('   ')).toThrow(/^inputs: the text "   " gives no tokens/);
    expect(codeOf(() => clf.predictSync([]))).toBe('ERR_RNNKIT_EMPTY');
    expect(codeOf(() => clf.predictSync('the movie was very very very good'))).toBe('ERR_RNNKIT_RANGE');
    expect(() => clf.predictSync(['good', 'the movie was very very very good'])).toThrow(/^inputs\[1\]: 7 tokens, more than the model's maxLength 6/);
  });

  it('NaN, mismatched feature sizes and wrong targets in dense rows name the row, step and feature', async () => {
    const ok = Float32Array.of(1, 2, 3, 4);
    const nan = await errorOf(() =>
      dense.fit([
        { values: ok, target: 1 },
        { values: Float32Array.of(1, 2, 3, NaN), target: 1 },
      ]),
    );
    expect(nan.code).toBe('ERR_RNNKIT_NON_FINITE');
    expect(nan.message).toBe('data[1].values: NaN at step 1, feature 1');
    const shape = await errorOf(() => dense.fit([{ values: Float32Array.of(1, 2, 3), target: 1 }]));
    expect(shape.code).toBe('ERR_RNNKIT_SHAPE');
    expect(shape.message).toMatch(/^data\[0\]\.values: length 3 is not a multiple of the model's inputSize 2/);
    expect(codeOf(() => dense.predictSync(Float32Array.of(1, Infinity)))).toBe('ERR_RNNKIT_NON_FINITE');
    const target = await errorOf(() => dense.fit([{ values: ok, target: [1, 2] }]));
    expect(target.code).toBe('ERR_RNNKIT_SHAPE');
    expect(target.message).toMatch(/^data\[0\]\.target: 2 values, expected outputSize = 1/);
    expect((await errorOf(() => dense.fit([{ values: ok, target: NaN }]))).code).toBe('ERR_RNNKIT_NON_FINITE');
    expect((await errorOf(() => dense.fit([{ values: [1, 2] as never, target: 1 }]))).code).toBe('ERR_RNNKIT_TYPE');
    const tags = await errorOf(() => tagger.fit([{ text: 'good movie', tags: ['a'] }]));
    expect(tags.code).toBe('ERR_RNNKIT_SHAPE');
    expect(tags.message).toBe('data[0].tags: 1 tags for 2 tokens');
    const long = createRegressor({ inputSize: 1, maxLength: 3, hiddenSize: 4 });
    expect(() => long.predictSync([Float32Array.of(1), Float32Array.of(1, 2, 3, 4)])).toThrow(/^inputs\[1\]: 4 steps, more than the model's maxLength 3/);
  });

  it('text for a dense model, rows for a text model, another tokenizer, normalised datasets', async () => {
    expect(codeOf(() => dense.predictSync('hello' as never))).toBe('ERR_RNNKIT_TYPE');
    expect(codeOf(() => clf.predictSync(Float32Array.of(1)))).toBe('ERR_RNNKIT_TYPE');
    const other = LabelledDataset.fromArray([{ text: 'good', label: 'pos' }], { batchSize: 1 });
    expect((await errorOf(() => clf.fit(other))).code).toBe('ERR_RNNKIT_VOCAB');
    const ds = DenseDataset.fromRows([Float32Array.of(1, 2)], { inputSize: 2, targets: [Float32Array.of(1)], outputSize: 1, batchSize: 1, normalize: false });
    const perStep = createRegressor({ inputSize: 2, perStep: true, hiddenSize: 4 });
    // The model normalises its inputs: the dataset's batches must be normalised too, or they are not what it trains on.
    expect((await errorOf(() => perStep.fit(ds))).message).toMatch(/normalize: true/);
    expect((await errorOf(() => dense.fit(ds))).code).toBe('ERR_RNNKIT_CONFIG');
    expect((await errorOf(() => clf.fit('text' as never))).code).toBe('ERR_RNNKIT_TYPE');
  });

  it('bad options are refused naming the option', async () => {
    expect(() => createClassifier({ tokenizer: toyTokenizer, labels: [] })).toThrow(/options.labels: expected a non-empty array/);
    expect(() => createClassifier({ tokenizer: toyTokenizer, labels: ['a', 'a'] })).toThrow(/options.labels\[1\]: duplicate label "a"/);
    expect(() => createClassifier({ tokenizer: toyTokenizer, labels: ['a'], pooling: 'sum' as never })).toThrow(/options.pooling/);
    expect(() => createClassifier({ tokenizer: toyTokenizer, inputSize: 3, labels: ['a'] })).toThrow(/not both/);
    expect(() => createClassifier({ labels: ['a'] } as never)).toThrow(/give a tokenizer .* or an inputSize/);
    expect(() => createClassifier({ tokenizer: toyTokenizer, labels: ['a'], hiden: 3 } as never)).toThrow(/options.hiden: unknown option/);
    expect(() => createRegressor({ inputSize: 1, perStep: true, pooling: 'max' })).toThrow(/does not pool/);
    expect(() => createRegressor({ inputSize: 0 })).toThrow(RangeError);
    expect(() => createTagger({ tokenizer: toyTokenizer, tags: ['x'], normalize: true })).toThrow(/only for dense input/);
    expect((await errorOf(() => clf.fit([{ text: 'good', label: 'pos' }], { seqLen: 8 } as never))).code).toBe('ERR_RNNKIT_CONFIG');
    expect((await errorOf(() => clf.fit([{ text: 'good', label: 'pos' }], { classWeights: [1] }))).message).toMatch(/1 weights for 2 classes/);
    expect((await errorOf(() => clf.fit([{ text: 'good', label: 'pos' }], { classWeights: { maybe: 2 } }))).message).toMatch(
      /classWeights.maybe: not one of the labels/,
    );
    expect((await errorOf(() => dense.fit([{ values: Float32Array.of(1, 2), target: 1 }], { classWeights: 'balanced' }))).code).toBe('ERR_RNNKIT_CONFIG');
    expect((await errorOf(() => clf.fit([{ text: 'good', label: 'pos' }], { epochs: 0 }))).code).toBe('ERR_RNNKIT_RANGE');
  });
});
