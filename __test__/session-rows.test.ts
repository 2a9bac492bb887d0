import { describe, expect, it } from 'vitest';
import { createLanguageModel } from '../src/index';

const V = 11;

function model() {
  return createLanguageModel({ vocabSize: V, cell: 'lstm', hiddenSize: 24, embedDim: 8, numLayers: 2, seed: 5 });
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return (e as { code?: string }).code;
  }
  return undefined;
}

describe('GenerationSession with rows', () => {
  it('reads [rows, steps] ids and gives each row the logits a one-row session gives it', () => {
    const m = model();
    const rows = 3;
    const steps = 4;
    const ids = Int32Array.from({ length: rows * steps }, (_, i) => (i * 7 + 3) % V);
    const batched = m.session({ rows });
    expect(batched.rows).toBe(rows);
    const logits = batched.feed(ids);
    expect(logits.length).toBe(rows * V);
    for (let r = 0; r < rows; r++) {
      const single = m.session().feed(ids.slice(r * steps, (r + 1) * steps));
      expect(single.length).toBe(V);
      for (let v = 0; v < V; v++) expect(logits[r * V + v]).toBeCloseTo(single[v], 5);
    }
    // State is carried per row: a second step continues each stream.
    const next = Int32Array.from([1, 2, 3]);
    const after = batched.feed(next);
    for (let r = 0; r < rows; r++) {
      const s = m.session();
      s.feed(ids.slice(r * steps, (r + 1) * steps));
      const single = s.feed(next.slice(r, r + 1));
      for (let v = 0; v < V; v++) expect(after[r * V + v]).toBeCloseTo(single[v], 5);
    }
  });

  it('samples one token per row with nextBatch', () => {
    const s = model().session({ rows: 2 });
    s.feed(Int32Array.from([1, 2]));
    const out = s.nextBatch({ temperature: 0 });
    expect(out).toBeInstanceOf(Int32Array);
    expect(out.length).toBe(2);
    for (const id of out) expect(id >= 0 && id < V).toBe(true);
  });

  it('refuses input that does not split into rows, text, next() and bad rows', () => {
    const m = model();
    const s = m.session({ rows: 2 });
    expect(codeOf(() => s.feed(Int32Array.from([1, 2, 3])))).toBe('ERR_RNNKIT_SHAPE');
    expect(codeOf(() => s.feed('ab'))).toBe('ERR_RNNKIT_TYPE');
    expect(codeOf(() => s.next())).toBe('ERR_RNNKIT_TYPE');
    expect(codeOf(() => m.session({ rows: 0 }))).toBe('ERR_RNNKIT_RANGE');
    expect(codeOf(() => m.session({ rows: 1.5 }))).toBe('ERR_RNNKIT_RANGE');
    expect(codeOf(() => m.session({ rowz: 2 } as never))).toBe('ERR_RNNKIT_UNKNOWN_OPTION');
  });

  it('keeps the one-row default', () => {
    const s = model().session();
    expect(s.rows).toBe(1);
    expect(s.feed(Int32Array.from([4])).length).toBe(V);
  });
});
