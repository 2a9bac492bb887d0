/**
 * Stream evaluation in lanes (one lane: the stateful protocol; N lanes: N separate evaluations of
 * the lanes' slices, token-weighted) and every evaluation stopped by its AbortSignal.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { afterAll, describe, expect, it } from 'vitest';
import { createClassifier, createLanguageModel, fitTokenizer, LabelledDataset, type EvaluateResult } from '../src/index';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rnnkit-evaluation-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const text = 'the cat sat on the mat; the dog sat on the log, and the bird sang. '.repeat(40);
const tokenizer = fitTokenizer(text, { type: 'char' });

function model(cell: 'rnn' | 'lstm' | 'gru' = 'gru') {
  return createLanguageModel({ tokenizer, cell, hiddenSize: 12, embedDim: 6, numLayers: 2, seed: 4 });
}

/** The lanes of `predictions` predictions as the engine cuts them: the first `predictions % lanes` one longer. */
function laneSpans(predictions: number, lanes: number): [number, number][] {
  const base = Math.floor(predictions / lanes);
  const extra = predictions % lanes;
  return Array.from({ length: lanes }, (_, i) => [i * base + Math.min(i, extra), base + (i < extra ? 1 : 0)]);
}

describe('stream evaluation in lanes', () => {
  it('one lane is the stateful protocol; a short text defaults to it', async () => {
    const m = model();
    const one = await m.evaluate(text, { lanes: 1 });
    expect(one.tokens).toBe(text.length - 1);
    expect(await m.evaluate(text)).toEqual(one);
    expect(m.evaluateSync(text, { lanes: 1 })).toEqual(one);
    // The chunk length does not change the protocol's result.
    expect((await m.evaluate(text, { lanes: 1, chunk: 7 })).loss).toBeCloseTo(one.loss, 6);
  });

  it('N lanes equal N separate evaluations of the lanes, token-weighted', async () => {
    const ids = tokenizer.encode(text);
    for (const cell of ['gru', 'lstm', 'rnn'] as const) {
      const m = model(cell);
      const one = await m.evaluate(ids, { lanes: 1 });
      for (const lanes of [4, 7]) {
        let sum = 0;
        let tokens = 0;
        for (const [start, n] of laneSpans(ids.length - 1, lanes)) {
          const part: EvaluateResult = await m.evaluate(ids.subarray(start, start + n + 1), { lanes: 1 });
          sum += part.loss * part.tokens;
          tokens += part.tokens;
        }
        const e = await m.evaluate(ids, { lanes, chunk: 16 });
        expect(e.tokens).toBe(tokens);
        expect(Math.abs(e.loss - sum / tokens) / e.loss, `${cell}, ${lanes} lanes`).toBeLessThan(1e-6);
        // Each lane starts from the zero state: that is what changes.
        expect(Math.abs(e.loss - one.loss), `${cell}, ${lanes} lanes`).toBeGreaterThan(1e-6);
      }
    }
  });

  it('evaluateFile reads lanes as evaluate does; bad lane counts are RangeErrors naming them', async () => {
    const m = model();
    const p = path.join(tmp, 'text.txt');
    fs.writeFileSync(p, text);
    expect(await m.evaluateFile(p, { lanes: 5, chunkSize: 100 })).toEqual(await m.evaluate(text, { lanes: 5 }));
    await expect(m.evaluate(text, { lanes: 0 })).rejects.toMatchObject({ name: 'RangeError', code: 'ERR_RNNKIT_RANGE', param: 'options.lanes' });
    await expect(m.evaluate(text, { lanes: 1.5 })).rejects.toMatchObject({ code: 'ERR_RNNKIT_RANGE', param: 'options.lanes' });
    await expect(m.evaluate(text, { lanes: 5000 })).rejects.toMatchObject({
      name: 'RangeError',
      code: 'ERR_RNNKIT_RANGE',
      message: expect.stringMatching(/^lanes: expected an integer from 1 to 4096, got 5000/),
    });
    expect(() => m.evaluateSync(text, { signal: AbortSignal.abort() } as object)).toThrow(expect.objectContaining({ code: 'ERR_RNNKIT_UNKNOWN_OPTION' }));
    await expect(m.evaluate(text, { signal: 'stop' as unknown as AbortSignal })).rejects.toMatchObject({ code: 'ERR_RNNKIT_TYPE', param: 'options.signal' });
  });
});

describe('an aborted evaluation', () => {
  it('of a long stream settles promptly with an AbortError', async () => {
    const m = model();
    // 4M tokens at one lane: seconds to tens of seconds; aborted after 100 ms.
    const ids = new Int32Array(4_000_000).map((_, i) => (i * 7919) % tokenizer.vocabSize);
    const started = Date.now();
    await expect(m.evaluate(ids, { lanes: 1, signal: AbortSignal.timeout(100) })).rejects.toMatchObject({ name: 'AbortError', code: 'ABORT_ERR' });
    expect(Date.now() - started).toBeLessThan(3_000);
    await expect(m.evaluate(text, { signal: AbortSignal.abort() })).rejects.toMatchObject({ code: 'ABORT_ERR' });
    // The model is free again: an evaluation after the abort runs to the end.
    expect((await m.evaluate(text)).tokens).toBe(text.length - 1);
  }, 30_000);

  it('of a file settles promptly with an AbortError, reading or evaluating', async () => {
    const m = model();
    const p = path.join(tmp, 'long.txt');
    fs.writeFileSync(p, text.repeat(2000)); // 5.4 MB: seconds at one lane
    for (const after of [5, 100]) {
      const started = Date.now();
      await expect(m.evaluateFile(p, { lanes: 1, chunkSize: 1 << 16, signal: AbortSignal.timeout(after) })).rejects.toMatchObject({ code: 'ABORT_ERR' });
      expect(Date.now() - started).toBeLessThan(3_000);
    }
  }, 30_000);

  it('of a classifier over many rows settles promptly with an AbortError', async () => {
    const rows = Array.from({ length: 40_000 }, (_, i) => ({ text: text.slice(i % 50, (i % 50) + 60), label: i % 2 ? 'odd' : 'even' }));
    const data = LabelledDataset.fromArray(rows, { tokenizerOptions: { type: 'char', specials: ['<pad>'] }, validation: 0, batchSize: 64 });
    const clf = createClassifier({ tokenizer: data.tokenizer, labels: [...data.labels], hiddenSize: 48, embedDim: 8, seed: 1 });
    const started = Date.now();
    await expect(clf.evaluate(data, { signal: AbortSignal.timeout(100) })).rejects.toMatchObject({ name: 'AbortError', code: 'ABORT_ERR' });
    expect(Date.now() - started).toBeLessThan(3_000);
    await expect(clf.evaluate(rows.slice(0, 3), { signal: AbortSignal.abort() })).rejects.toMatchObject({ code: 'ABORT_ERR' });
    expect((await clf.evaluate(rows.slice(0, 100))).count).toBe(100);
  }, 60_000);
});
