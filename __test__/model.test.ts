import { describe, expect, it } from 'vitest';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { TextCorpus, createLanguageModel, fitTokenizer, loadLanguageModel, loadModel, loadModelSync, LanguageModel, type ProgressEvent } from '../src/index';

const root = path.join(__dirname, '..');
const pride = fs.readFileSync(path.join(root, 'data/pride-and-prejudice.txt'), 'utf8');
const slice = pride.slice(0, 60_000);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rnnkit-model-'));

function tinyModel(seed = 1, cell: 'rnn' | 'lstm' | 'gru' = 'lstm'): { model: LanguageModel; corpus: TextCorpus } {
  const corpus = TextCorpus.fromString(slice, { seqLen: 32, batchSize: 16, validation: 0.1, seed: 3 });
  const model = createLanguageModel({ tokenizer: corpus.tokenizer, cell, hiddenSize: 48, embedDim: 16, seed });
  return { model, corpus };
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return (e as { code?: string }).code;
  }
  return undefined;
}

describe('generation from an empty prompt', () => {
  it('feeds <bos> to the zero state when the tokenizer has one', async () => {
    const tokenizer = fitTokenizer(slice, { type: 'char', specials: ['<bos>'] });
    const model = createLanguageModel({ tokenizer, hiddenSize: 16, embedDim: 8, seed: 2 });
    const bos = tokenizer.tokenToId('<bos>')!;
    const session = model.session();
    let logits = session.feed(Int32Array.of(bos));
    const expected: number[] = [];
    for (let i = 0; i < 12; i++) {
      let best = 0;
      for (let j = 1; j < logits.length; j++) if (logits[j] > logits[best]) best = j;
      expected.push(best);
      logits = session.feed(Int32Array.of(best));
    }
    const c = await model.complete('', { maxTokens: 12, greedy: true });
    expect(c.promptTokens).toBe(1);
    expect(c.text).toBe(tokenizer.decode(expected, { skipSpecials: true }));
    // The same for the temperature 0 spelling of greedy.
    expect(await model.generate('', { maxTokens: 12, temperature: 0 })).toBe(c.text);
  });
});

describe('createLanguageModel', () => {
  it('refuses bad options with TypeError/RangeError naming the option', () => {
    const tokenizer = fitTokenizer('abc', { type: 'char' });
    expect(() => createLanguageModel({ tokenizer, hiddenSize: 0 })).toThrow(RangeError);
    expect(() => createLanguageModel({ tokenizer, hiddenSize: 1.5 })).toThrow(/options.hiddenSize.*1\.5/);
    expect(() => createLanguageModel({ tokenizer, cell: 'lstn' as never })).toThrow(/options.cell.*"lstn"/);
    expect(() => createLanguageModel({ tokenizer, cell: 'gru', nonlinearity: 'relu' })).toThrow(TypeError);
    expect(() => createLanguageModel({} as never)).toThrow(/tokenizer or a vocabSize/);
    expect(() => createLanguageModel({ tokenizer, vocabSize: 7 })).toThrow(/disagrees/);
    expect(() => createLanguageModel({ tokenizer, hiddnSize: 8 } as never)).toThrow(/options.hiddnSize: unknown option/);
    expect(codeOf(() => createLanguageModel({ vocabSize: -3 }))).toBe('ERR_RNNKIT_RANGE');
    // Sizes that cannot fit in memory are refused before allocating.
    expect(() => createLanguageModel({ vocabSize: 1 << 20, embedDim: 1 << 16 })).toThrow(RangeError);
  });

  it('counts parameters like PyTorch', () => {
    const m = createLanguageModel({ vocabSize: 11, embedDim: 5, hiddenSize: 7, numLayers: 2, cell: 'lstm' });
    // embed 11·5 + layer0 4·7·(5+7)+2·28 + layer1 4·7·(7+7)+2·28 + head 11·7+11
    expect(m.numParams).toBe(55 + (336 + 56) + (392 + 56) + 88);
  });
});

describe('fit', () => {
  it('learns, reports progress, keeps the event loop responsive', async () => {
    const { model, corpus } = tinyModel();
    const before = (await model.evaluate(corpus.validationTokens())).loss;
    const events: string[] = [];
    let ticks = 0;
    let worstGap = 0;
    let last = Date.now();
    const timer = setInterval(() => {
      const now = Date.now();
      worstGap = Math.max(worstGap, now - last);
      last = now;
      ticks++;
    }, 5);
    const history = await model.fit(corpus, {
      maxSteps: 150,
      logEvery: 10,
      validateEvery: 50,
      optimizer: { type: 'adam', lr: 0.01 },
      clipNorm: 1,
      onProgress: (e) => events.push(e.type),
    });
    clearInterval(timer);
    const after = (await model.evaluate(corpus.validationTokens())).loss;
    expect(history.stepsDone).toBe(150);
    expect(history.stopReason).toBe('max_steps');
    expect(after).toBeLessThan(before - 0.5);
    expect(events.filter((t) => t === 'step').length).toBeGreaterThanOrEqual(10);
    expect(events).toContain('validation');
    expect(events[events.length - 1]).toBe('done');
    expect(ticks).toBeGreaterThan(5);
    expect(worstGap).toBeLessThan(250);
    expect(model.stepsTrained).toBe(150);
  });

  it('aborts between steps and leaves a usable model', async () => {
    const { model, corpus } = tinyModel(2);
    const controller = new AbortController();
    const run = model.fit(corpus, {
      epochs: 50,
      signal: controller.signal,
      logEvery: 1,
      onProgress: (e) => {
        if (e.step === 5) controller.abort();
      },
    });
    await expect(run).rejects.toMatchObject({ name: 'AbortError', code: 'ABORT_ERR' });
    const err = await run.catch((e) => e);
    expect(err.history.stepsDone).toBeGreaterThanOrEqual(5);
    expect(err.history.stepsDone).toBeLessThan(50);
    expect(model.isTraining).toBe(false);
    expect(typeof (await model.generate('The ', { maxTokens: 5, seed: 1 }))).toBe('string');
  });

  it('refuses a second fit and generation while training', async () => {
    const { model, corpus } = tinyModel(3);
    const controller = new AbortController();
    const first = model.fit(corpus, { epochs: 100, signal: controller.signal });
    await expect(model.fit(corpus, { maxSteps: 1 })).rejects.toMatchObject({ code: 'ERR_RNNKIT_BUSY' });
    await expect(model.generate('The ', { maxTokens: 3 })).rejects.toMatchObject({ code: 'ERR_RNNKIT_BUSY' });
    expect(() => model.saveSync(path.join(tmp, 'busy.safetensors'))).toThrow(/training/);
    controller.abort();
    await first.catch(() => undefined);
    expect(model.isTraining).toBe(false);
  });

  it('trains several models in one process independently', async () => {
    const a = tinyModel(4, 'gru');
    const b = tinyModel(4, 'gru');
    const c = tinyModel(5, 'rnn');
    await Promise.all([a.model.fit(a.corpus, { maxSteps: 20 }), b.model.fit(b.corpus, { maxSteps: 20 }), c.model.fit(c.corpus, { maxSteps: 20 })]);
    // Same seed, same data, same thread count: bit-identical weights.
    expect(Buffer.from(a.model.getTensor('rnn.weight_hh_l0').buffer).equals(Buffer.from(b.model.getTensor('rnn.weight_hh_l0').buffer))).toBe(true);
  });

  it('stops with an error naming the step when the loss turns non-finite', async () => {
    const { model, corpus } = tinyModel(6, 'rnn');
    // A learning rate this large throws the head weights to ~1e37 after one step: step 2 overflows.
    const run = model.fit(corpus, { maxSteps: 5, optimizer: { type: 'sgd', lr: 1e38 } });
    await expect(run).rejects.toMatchObject({ code: 'ERR_RNNKIT_LOSS_NOT_FINITE', message: expect.stringMatching(/became -?(inf|NaN) at step [1-5];/) });
    // Huge but finite logits still give the right loss (log-softmax without cancellation).
    model.setTensor('head.bias', new Float32Array(model.getTensor('head.bias').length).fill(3e38));
    model.setTensor('head.weight', new Float32Array(model.getTensor('head.weight').length));
    const e = await model.evaluate(corpus.validationTokens());
    expect(e.loss).toBeCloseTo(Math.log(model.tokenizer!.vocabSize), 6);
  });

  it('validates fit options', async () => {
    const { model, corpus } = tinyModel();
    await expect(model.fit(corpus, { batchSize: 0 })).rejects.toThrow(/options.batchSize/);
    await expect(model.fit(corpus, { optimizer: { type: 'adamx' as never } })).rejects.toThrow(/options.optimizer.type/);
    await expect(model.fit(corpus, { optimizer: { lr: Number.NaN } })).rejects.toThrow(RangeError);
    await expect(model.fit(corpus, { epochz: 1 } as never)).rejects.toThrow(/options.epochz: unknown option/);
    await expect(model.fit('', {})).rejects.toMatchObject({ code: 'ERR_RNNKIT_EMPTY' });
    await expect(model.fit(new Int32Array([1, 2, 9999]), { batchSize: 1, seqLen: 1 })).rejects.toThrow(/9999/);
    await expect(model.fit(corpus, { schedule: { type: 'cosine' } })).rejects.toThrow(/tMax/);
  });
});

describe('early stopping and best checkpoints', () => {
  // Trained on "abcabc…", validated on its tail "acbacb…": the better the model predicts the
  // training text, the worse it predicts the validation text, so the validation loss rises.
  const text = 'abc'.repeat(300) + 'acb'.repeat(34);
  const corpus = () => TextCorpus.fromString(text, { seqLen: 8, batchSize: 1, validation: 0.1, seed: 1 });

  it('early stopping stops within patience evaluations and restores the best weights', async () => {
    const c = corpus();
    const model = createLanguageModel({ tokenizer: c.tokenizer, cell: 'gru', hiddenSize: 12, embedDim: 6, seed: 2 });
    const ck = path.join(tmp, 'best.safetensors');
    const checkpoints: number[] = [];
    const history = await model.fit(c, {
      maxSteps: 300,
      validateEvery: 1,
      optimizer: { lr: 0.05 },
      earlyStopping: { patience: 3 },
      checkpoint: { path: ck, best: true },
      onProgress: (e) => e.type === 'checkpoint' && checkpoints.push(e.step),
    });
    expect(history.stopReason).toBe('early_stopping');
    expect(history.stepsDone).toBeLessThan(300);
    const bestIndex = history.valSteps.indexOf(history.bestStep!);
    expect(bestIndex).toBeGreaterThanOrEqual(0);
    // Stopped after exactly `patience` validations without improvement.
    expect(history.valSteps.length - 1 - bestIndex).toBe(3);
    const bestLoss = Math.min(...history.valLoss);
    expect(history.bestValLoss).toBe(bestLoss);
    expect(history.valLoss[bestIndex]).toBe(bestLoss);
    expect(history.valLoss.at(-1)!).toBeGreaterThan(bestLoss);
    // Validation here reads one lane in chunks of seqLen: evaluate() the same way.
    const after = await model.evaluate(c.validationTokens(), { chunk: 8 });
    expect(Math.abs(after.loss - bestLoss) / bestLoss).toBeLessThan(1e-9);
    // The best checkpoint was written last at the best step and holds the same weights.
    expect(checkpoints.at(-1)).toBe(history.bestStep);
    const saved = await loadLanguageModel(ck);
    const fromFile = await saved.evaluate(c.validationTokens(), { chunk: 8 });
    expect(Math.abs(fromFile.loss - bestLoss) / bestLoss).toBeLessThan(1e-9);
  });

  it('restoreBest: false keeps the last weights; bad early-stopping options are refused naming them', async () => {
    const c = corpus();
    const model = createLanguageModel({ tokenizer: c.tokenizer, cell: 'gru', hiddenSize: 12, embedDim: 6, seed: 2 });
    const history = await model.fit(c, { maxSteps: 300, validateEvery: 1, optimizer: { lr: 0.05 }, earlyStopping: { patience: 2, restoreBest: false } });
    expect(history.stopReason).toBe('early_stopping');
    const after = await model.evaluate(c.validationTokens(), { chunk: 8 });
    expect(after.loss).toBe(history.valLoss.at(-1));

    const plain = TextCorpus.fromString(text, { seqLen: 8, batchSize: 1, validation: 0 });
    await expect(model.fit(plain, { earlyStopping: {} })).rejects.toMatchObject({
      param: 'options.earlyStopping',
      message: expect.stringMatching(/^options.earlyStopping: needs validation data/),
    });
    await expect(model.fit(plain, { checkpoint: { path: path.join(tmp, 'x.safetensors'), best: true } })).rejects.toThrow(
      /^options.checkpoint.best: needs validation data/,
    );
    await expect(model.fit(c, { earlyStopping: { patience: 0 } })).rejects.toThrow(RangeError);
    await expect(model.fit(c, { earlyStopping: { patience: 0 } })).rejects.toThrow(/options.earlyStopping.patience/);
    await expect(model.fit(c, { earlyStopping: { minDelta: -1 } })).rejects.toThrow(/options.earlyStopping.minDelta/);
    await expect(model.fit(c, { earlyStopping: { monitor: 'loss' as never } })).rejects.toThrow(/options.earlyStopping.monitor/);
    await expect(model.fit(c, { earlyStopping: { patients: 2 } as never })).rejects.toThrow(
      /options.earlyStopping.patients: unknown option; did you mean "patience"/,
    );
    await expect(model.fit(c, { checkpoint: { path: path.join(tmp, 'y.safetensors') } })).rejects.toThrow(/options.checkpoint.every/);
  });
});

describe('checkpoint failures', () => {
  it('reports a checkpoint that cannot be written and trains on; the model can still be saved', async () => {
    const { model, corpus } = tinyModel(6, 'gru');
    // Every write fails: the checkpoint's directory is a file.
    const blocker = path.join(tmp, 'not-a-dir');
    fs.writeFileSync(blocker, 'in the way');
    const events: ProgressEvent[] = [];
    const history = await model.fit(corpus, {
      maxSteps: 4,
      checkpoint: { path: path.join(blocker, 'ck.safetensors'), every: 2 },
      onProgress: (e) => void events.push(e),
    });
    expect(history.stepsDone).toBe(4);
    const failed = events.filter((e) => e.type === 'checkpointError');
    expect(failed.map((e) => e.step)).toEqual([2, 4]);
    expect(failed[0].message).toMatch(/writing ".*not-a-dir.*ck\.safetensors"/);
    expect(events.some((e) => e.type === 'checkpoint')).toBe(false);
    const out = path.join(tmp, 'after-failed-checkpoints.safetensors');
    await model.save(out);
    expect((await loadLanguageModel(out)).numParams).toBe(model.numParams);
  });
});

describe('files', () => {
  it('tells a PyTorch torch.save file and a text file from a safetensors one', async () => {
    const pt = path.join(tmp, 'model.pt');
    fs.writeFileSync(pt, Buffer.concat([Buffer.from('PK\x03\x04', 'latin1'), Buffer.alloc(60), Buffer.from('archive/data.pkl')]));
    await expect(loadModel(pt)).rejects.toMatchObject({
      code: 'ERR_RNNKIT_FORMAT',
      message: expect.stringMatching(
        /model\.pt.*this is a PyTorch torch\.save file, not safetensors; save the state_dict with safetensors\.torch\.save_file\(model\.state_dict\(\), 'model\.safetensors'\)/,
      ),
    });
    const txt = path.join(tmp, 'notes.txt');
    fs.writeFileSync(txt, 'these are some notes, not a model\n');
    await expect(loadModel(txt)).rejects.toMatchObject({ code: 'ERR_RNNKIT_FORMAT', message: expect.stringMatching(/notes\.txt.*not a safetensors file/) });
  });

  it('save/load round-trips the weights, tokenizer and greedy text', async () => {
    const { model, corpus } = tinyModel(7);
    await model.fit(corpus, { maxSteps: 30 });
    const file = path.join(tmp, 'm.safetensors');
    await model.save(file, { metadata: { note: 'hello' } });
    const loaded = await loadLanguageModel(file);
    expect(loaded.tokenizer?.toJSON()).toEqual(model.tokenizer?.toJSON());
    expect(loaded.metadata.note).toBe('hello');
    expect(Array.from(loaded.getTensor('rnn.weight_ih_l0'))).toEqual(Array.from(model.getTensor('rnn.weight_ih_l0')));
    const opts = { maxTokens: 40, greedy: true } as const;
    expect(await loaded.generate('Elizabeth ', opts)).toBe(await model.generate('Elizabeth ', opts));
    // No temp file is left beside it.
    expect(fs.readdirSync(tmp).filter((f) => f.startsWith('m.safetensors') && f !== 'm.safetensors')).toEqual([]);
  });

  it('resumes from a checkpoint bit-identically', async () => {
    const opts = { seed: 9, optimizer: { type: 'adam' as const, lr: 5e-3 } };
    const straight = tinyModel(8).model;
    const { corpus } = tinyModel(8);
    await straight.fit(corpus, { ...opts, maxSteps: 24 });

    const first = tinyModel(8).model;
    await first.fit(corpus, { ...opts, maxSteps: 10 });
    const ckpt = path.join(tmp, 'ckpt.safetensors');
    first.saveSync(ckpt, { checkpoint: true });
    const resumed = (await loadModel(ckpt)) as LanguageModel;
    expect(resumed.stepsTrained).toBe(10);
    await resumed.fit(corpus, { ...opts, maxSteps: 14 });
    for (const { name } of straight.tensors()) {
      expect(Buffer.from(resumed.getTensor(name).buffer).equals(Buffer.from(straight.getTensor(name).buffer)), name).toBe(true);
    }
  });

  it('refuses missing, truncated and foreign files with clear errors', async () => {
    await expect(loadModel(path.join(tmp, 'nope.safetensors'))).rejects.toMatchObject({ code: 'ERR_RNNKIT_IO' });
    const good = fs.readFileSync(path.join(root, 'fixtures/models/pp_lstm.safetensors'));
    const truncated = path.join(tmp, 'truncated.safetensors');
    fs.writeFileSync(truncated, good.subarray(0, 5000));
    await expect(loadModel(truncated)).rejects.toMatchObject({ code: 'ERR_RNNKIT_FORMAT' });
    const foreign = path.join(tmp, 'foreign.safetensors');
    fs.writeFileSync(foreign, 'this is not a model file at all');
    expect(() => loadModelSync(foreign)).toThrow(/foreign\.safetensors/);
    await expect(loadModel(42 as never)).rejects.toThrow(TypeError);
  });
});

describe('PyTorch model fixtures', () => {
  for (const name of ['pp_lstm', 'zh_gru']) {
    it(`${name}: greedy continuations and held-out cross-entropy match PyTorch`, async () => {
      const model = await loadLanguageModel(path.join(root, `fixtures/models/${name}.safetensors`));
      const expected = JSON.parse(fs.readFileSync(path.join(root, `fixtures/models/${name}.expected.json`), 'utf8'));
      for (const g of expected.generations) {
        expect(await model.generate(g.prompt, { maxTokens: 200, greedy: true })).toBe(g.greedy);
      }
      const held = fs.readFileSync(path.join(root, `fixtures/models/${name}.held.txt`), 'utf8');
      const e = await model.evaluate(held);
      expect(Math.abs(e.loss - expected.eval_mean_ce_nats)).toBeLessThan(1e-4);
      expect(e.bitsPerToken).toBeCloseTo(e.loss / Math.LN2, 10);
    });
  }
});
