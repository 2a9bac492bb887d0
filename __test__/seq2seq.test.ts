import { describe, expect, it } from 'vitest';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { PairDataset, Seq2SeqModel, attentionSvg, createSeq2Seq, fitTokenizer, loadModel, loadModelSync, readPairs, type ProgressEvent } from '../src/index';
import { native } from '../src/native';
import { TestRandom } from './random';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rnnkit-seq2seq-'));

/** Reversal of short strings over "abcd": a task a tiny model learns in a few epochs. */
function reversal(n: number, seed: number): { source: string; target: string }[] {
  const rng = new TestRandom(seed);
  return Array.from({ length: n }, () => {
    const len = 2 + rng.nextInt(4);
    const source = Array.from({ length: len }, () => 'abcd'[rng.nextInt(4)]).join('');
    return { source, target: [...source].reverse().join('').toUpperCase() };
  });
}

const sourceTokenizer = fitTokenizer('abcd', { type: 'char', unknown: 'error' });
const targetTokenizer = fitTokenizer('ABCD', { type: 'char', specials: ['<bos>', '<eos>'], unknown: 'error' });
const small = { sourceTokenizer, targetTokenizer, hiddenSize: 32, embedDim: 16 };

function thrown(fn: () => unknown): Error & { code?: string; param?: string } {
  try {
    fn();
  } catch (e) {
    return e as Error & { code?: string; param?: string };
  }
  throw new Error('expected a throw');
}

describe('sequence to sequence', () => {
  let trained: Seq2SeqModel;
  const pairs = reversal(1200, 1);
  const data = PairDataset.fromArray(pairs, { sourceTokenizer, targetTokenizer, batchSize: 32, validation: 0.1, seed: 3 });

  it('trains with progress and validation, and evaluates in the engine', async () => {
    const model = createSeq2Seq({ ...small, attention: 'additive' });
    expect(model.task).toBe('seq2seq');
    expect(model.config).toMatchObject({ task: 'seq2seq', attention: 'additive', hidden_size: 32, bidirectional: true });
    expect(data.size('train') + data.size('validation')).toBe(1200);
    expect(data.size('validation')).toBe(120);
    const before = await model.evaluate(data);
    const events: ProgressEvent[] = [];
    const history = await model.fit(data, { epochs: 8, optimizer: { type: 'adam', lr: 0.01 }, clipNorm: 5, onProgress: (e) => events.push(e) });
    expect(history.stopReason).toBe('completed');
    expect(history.valLoss).toHaveLength(8);
    expect(events.some((e) => e.type === 'validation' && typeof e.valAccuracy === 'number')).toBe(true);
    expect(events.at(-1)?.type).toBe('done');
    const after = await model.evaluate(data);
    expect(after.pairs).toBe(120);
    expect(after.loss).toBeLessThan(before.loss / 3);
    expect(after.tokenAccuracy).toBeGreaterThan(0.95);
    expect(after.exactMatch).toBeGreaterThan(0.85);
    expect(model.evaluateSync(data, { beams: 3 }).exactMatch).toBeGreaterThan(0.8);
    trained = model;
  });

  it('translates one, many (in input order) and with attention; save and load keep it', async () => {
    const texts = ['abcd', 'dd', 'cab', 'bbba'];
    const out = await trained.translateBatch(texts);
    expect(out).toEqual(texts.map((t) => trained.translateSync(t)));
    expect(out.filter((o, i) => o === [...texts[i]].reverse().join('').toUpperCase()).length).toBeGreaterThanOrEqual(3);
    expect(await trained.translate('cab', { beams: 4 })).toBe(trained.translateSync('cab', { beams: 4 }));
    const a = await trained.translate('abcd', { attention: true });
    expect(a.source).toBe('abcd');
    expect(a.sourceTokens).toEqual(['a', 'b', 'c', 'd']);
    expect(a.outputTokens.at(-1)).toBe('<eos>');
    expect(a.weights).toHaveLength(a.outputTokens.length);
    for (const row of a.weights) expect(row.reduce((s, x) => s + x, 0)).toBeCloseTo(1, 5);
    const svg = attentionSvg(a, { title: 'abcd <' });
    expect(svg).toMatch(/^<svg [^]*<\/svg>\n$/);
    expect(svg).toContain('abcd &lt;');
    expect((svg.match(/<title>/g) ?? []).length).toBe(a.weights.length * 4);
    expect(thrown(() => attentionSvg(a, { size: 3 } as never)).code).toBe('ERR_RNNKIT_UNKNOWN_OPTION');
    expect(thrown(() => attentionSvg({ ...a, weights: a.weights.slice(1) })).code).toBe('ERR_RNNKIT_SHAPE');
    const file = path.join(tmp, 'rev.safetensors');
    await trained.save(file);
    const loaded = await loadModel(file);
    expect(loaded.task).toBe('seq2seq');
    if (loaded.task !== 'seq2seq') throw new Error('unreachable');
    expect(await loaded.translateBatch(texts)).toEqual(out);
    const sync = loadModelSync(file);
    expect(sync.task === 'seq2seq' && sync.translateSync('dd')).toBe(out[1]);
    // The language-model loader points to the seq2seq one instead of failing on the task.
    expect(thrown(() => native.NativeModel.load(file)).message).toMatch(/sequence-to-sequence model; read it with/);
  });

  it('streams the output token by token: the tokens of translate, greedy and beam, with abort', async () => {
    for (const text of ['abcd', 'dd', 'cab', 'bbba']) {
      const tokens: string[] = [];
      for await (const t of trained.stream(text)) tokens.push(t);
      expect(tokens.join('')).toBe(await trained.translate(text));
      expect(tokens.length).toBeGreaterThan(0);
      const beamed: string[] = [];
      for await (const t of trained.stream(text, { beams: 3 })) beamed.push(t);
      expect(beamed.join('')).toBe(await trained.translate(text, { beams: 3 }));
    }
    const short: string[] = [];
    for await (const t of trained.stream('abcd', { maxLength: 2 })) short.push(t);
    expect(short).toHaveLength(2);
    const controller = new AbortController();
    const seen: string[] = [];
    const run = async () => {
      for await (const t of trained.stream('abcd', { signal: controller.signal })) {
        seen.push(t);
        controller.abort();
      }
    };
    await expect(run()).rejects.toMatchObject({ code: 'ABORT_ERR' });
    expect(seen).toHaveLength(1);
    expect(thrown(() => trained.stream('ab', { beam: 2 } as never)).code).toBe('ERR_RNNKIT_UNKNOWN_OPTION');
    expect(thrown(() => trained.stream('ab', { beams: 0 })).param).toBe('options.beams');
    expect(thrown(() => trained.stream('')).code).toBe('ERR_RNNKIT_RANGE');
    expect(thrown(() => trained.stream('ab', { signal: 'x' } as never)).param).toBe('options.signal');
  });

  it('aborts, stops early, writes checkpoints', async () => {
    const model = createSeq2Seq(small);
    const controller = new AbortController();
    controller.abort();
    await expect(model.fit(data, { signal: controller.signal })).rejects.toMatchObject({ code: 'ABORT_ERR' });
    const running = new AbortController();
    const aborted = model.fit(data, {
      epochs: 50,
      logEvery: 1,
      signal: running.signal,
      onProgress: (e) => e.type === 'step' && e.step >= 3 && running.abort(),
    });
    await expect(aborted).rejects.toMatchObject({ code: 'ABORT_ERR', history: { stopReason: 'aborted' } });
    expect(model.isTraining).toBe(false);
    const checkpoint = path.join(tmp, 'ck.safetensors');
    const h = await model.fit(data, {
      epochs: 100,
      validateEvery: 4,
      earlyStopping: { patience: 1, minDelta: 1e9 },
      checkpoint: { path: checkpoint, every: 2 },
    });
    expect(h.stopReason).toBe('early_stopping');
    expect(h.valLoss).toHaveLength(2);
    const ck = await loadModel(checkpoint);
    expect(ck.task).toBe('seq2seq');
  });

  it('resumes from a checkpoint to the bits of an uninterrupted run, scheduled sampling included', async () => {
    /** A safetensors file's tensor bytes and its `training` metadata (position, RNG). */
    const parts = (file: string) => {
      const buf = fs.readFileSync(file);
      const n = Number(buf.readBigUInt64LE(0));
      const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) as { __metadata__: Record<string, string> };
      const training = JSON.parse(header.__metadata__.training) as { position: unknown; rng: unknown; optimizer_step: number };
      return { tensors: buf.subarray(8 + n), position: training.position, rng: training.rng, optimizerStep: training.optimizer_step };
    };
    const options = { optimizer: { type: 'adam' as const, lr: 0.01 }, clipNorm: 1, scheduledSampling: 0.3, scheduledSamplingRamp: 5 };
    const straight = createSeq2Seq({ ...small, seed: 4 });
    await straight.fit(data, { ...options, maxSteps: 10 });
    const whole = path.join(tmp, 'straight.safetensors');
    await straight.save(whole, { checkpoint: true });
    const first = createSeq2Seq({ ...small, seed: 4 });
    const ck = path.join(tmp, 'half.safetensors');
    await first.fit(data, { ...options, maxSteps: 4, checkpoint: { path: ck, every: 4 } });
    const resumed = await loadModel(ck);
    if (resumed.task !== 'seq2seq') throw new Error('expected a seq2seq model');
    expect(resumed.stepsTrained).toBe(4);
    await resumed.fit(data, { ...options, maxSteps: 6 });
    const rest = path.join(tmp, 'resumed.safetensors');
    resumed.saveSync(rest, { checkpoint: true });
    const [a, b] = [parts(whole), parts(rest)];
    expect(b.position).toEqual(a.position);
    expect(b.rng).toEqual(a.rng);
    expect(b.optimizerStep).toBe(10);
    expect(Buffer.compare(a.tensors, b.tensors)).toBe(0);
    // Without scheduled sampling the same run learns other weights: the option is not ignored.
    const teacher = createSeq2Seq({ ...small, seed: 4 });
    await teacher.fit(data, { ...options, scheduledSampling: 0, scheduledSamplingRamp: undefined, maxSteps: 10 });
    const plain = path.join(tmp, 'teacher.safetensors');
    await teacher.save(plain, { checkpoint: true });
    expect(Buffer.compare(parts(plain).tensors, a.tensors)).not.toBe(0);
    // A plain save has no training state.
    await straight.save(plain);
    expect(fs.readFileSync(plain).includes('optim.exp_avg')).toBe(false);
    expect(thrown(() => straight.saveSync(plain, { checkpoint: 'yes' } as never)).param).toBe('options.checkpoint');
    expect(thrown(() => straight.saveSync(plain, { checkpont: true } as never)).code).toBe('ERR_RNNKIT_UNKNOWN_OPTION');
  });

  it('checks the scheduled-sampling options', async () => {
    const model = createSeq2Seq(small);
    for (const [options, name, param] of [
      [{ scheduledSampling: 1.5 }, 'RangeError', 'options.scheduledSampling'],
      [{ scheduledSampling: Number.NaN }, 'RangeError', 'options.scheduledSampling'],
      [{ scheduledSampling: 0.5, scheduledSamplingRamp: 0 }, 'RangeError', 'options.scheduledSamplingRamp'],
      [{ scheduledSampling: 0.5, scheduledSamplingRamp: 1.5 }, 'RangeError', 'options.scheduledSamplingRamp'],
      [{ scheduledSamplingRamp: 10 }, 'TypeError', 'options.scheduledSamplingRamp'],
    ] as const) {
      await expect(model.fit(data, { maxSteps: 1, ...options })).rejects.toMatchObject({ name, param });
    }
    await expect(model.fit(data, { maxSteps: 1, scheduledSampling: 1.5 })).rejects.toThrow(/expected a probability in \[0, 1\], got 1.5/);
    expect(model.stepsTrained).toBe(0);
  });

  it('refuses bad input with coded errors naming the parameter', async () => {
    let e = thrown(() => createSeq2Seq({ ...small, hiddenSize: 0 }));
    expect([e.name, e.code, e.param]).toEqual(['RangeError', 'ERR_RNNKIT_RANGE', 'options.hiddenSize']);
    e = thrown(() => createSeq2Seq({ ...small, hiddenSise: 8 } as never));
    expect([e.name, e.code, e.param]).toEqual(['TypeError', 'ERR_RNNKIT_UNKNOWN_OPTION', 'options.hiddenSise']);
    expect(e.message).toMatch(/did you mean "hiddenSize"/);
    e = thrown(() => createSeq2Seq({ ...small, attention: 'luong' as never }));
    expect([e.name, e.param]).toEqual(['TypeError', 'options.attention']);
    e = thrown(() => createSeq2Seq({ ...small, targetTokenizer: sourceTokenizer }));
    expect([e.name, e.code]).toEqual(['TypeError', 'ERR_RNNKIT_CONFIG']);
    e = thrown(() => trained.translateSync('ab', { beams: 0 }));
    expect([e.name, e.code, e.param]).toEqual(['RangeError', 'ERR_RNNKIT_RANGE', 'options.beams']);
    await expect(trained.translate('ab', { beam: 2 } as never)).rejects.toMatchObject({ code: 'ERR_RNNKIT_UNKNOWN_OPTION', param: 'options.beam' });
    await expect(trained.translate('ab', { maxLength: -1 })).rejects.toMatchObject({ name: 'RangeError', param: 'options.maxLength' });
    e = thrown(() => trained.translateSync('abz'));
    expect([e.code, e.message]).toEqual(['ERR_RNNKIT_VOCAB', expect.stringMatching(/texts\[0\]|z/)]);
    e = thrown(() => PairDataset.fromArray(pairs, { sourceTokenizer, targetTokenizer, validation: 1 }));
    expect([e.name, e.param]).toEqual(['RangeError', 'options.validationSplit']);
    e = thrown(() => PairDataset.fromArray(pairs, { sourceTokenizer, targetTokenizer, batchsize: 3 } as never));
    expect([e.code, e.param]).toEqual(['ERR_RNNKIT_UNKNOWN_OPTION', 'options.batchsize']);
    e = thrown(() => PairDataset.fromArray([{ source: '', target: 'A' }], { sourceTokenizer, targetTokenizer }));
    expect(e.message).toMatch(/rows\[0\]: source/);
    const other = PairDataset.fromArray(pairs, { sourceTokenizer: fitTokenizer('abcdx', { type: 'char' }), targetTokenizer });
    await expect(trained.fit(other)).rejects.toMatchObject({ code: 'ERR_RNNKIT_VOCAB' });
    await expect(trained.fit(data, { epochs: 0 })).rejects.toMatchObject({ name: 'RangeError' });
    await expect(trained.fit(data, { epocs: 1 } as never)).rejects.toMatchObject({ code: 'ERR_RNNKIT_UNKNOWN_OPTION' });
  });

  it('reads pairs from JSONL and CSV with configurable columns', async () => {
    const jsonl = path.join(tmp, 'p.jsonl');
    fs.writeFileSync(jsonl, '{"in": "ab", "out": "BA"}\n\n{"in": "c", "out": "C"}\n');
    expect(await readPairs(jsonl, { sourceColumn: 'in', targetColumn: 'out' })).toMatchObject([
      { source: 'ab', target: 'BA' },
      { source: 'c', target: 'C' },
    ]);
    await expect(readPairs(jsonl)).rejects.toMatchObject({ code: 'ERR_RNNKIT_FORMAT', message: expect.stringMatching(/line 1: no "source" field/) });
    const csv = path.join(tmp, 'p.csv');
    fs.writeFileSync(csv, 'x,src,tgt\n1,"ab",BA\n2,dd,DD\n');
    const ds = await PairDataset.fromFile(csv, { sourceTokenizer, targetTokenizer, sourceColumn: 'src', targetColumn: 'tgt' });
    expect(ds.size()).toBe(2);
    expect(ds.batches('train', 0).flat().sort()).toEqual([0, 1]);
    await expect(PairDataset.fromFile(csv, { sourceTokenizer, targetTokenizer })).rejects.toMatchObject({
      param: 'options.sourceColumn',
      message: expect.stringMatching(/no column "source"/),
    });
  });
});
