// ONNX export checked by running the exported graphs in onnxruntime (onnxruntime-web's
// WebAssembly backend, which runs in Node from its npm package) against rnnkit's own outputs:
// every cell, stacked and bidirectional layers, the skip term, each task head and pooling, the
// PyTorch-trained fixture models (greedy continuations of 200 tokens, one token per call with the
// state fed back), and the written file.
import { describe, expect, it, beforeAll } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-web';
import { onnx } from 'onnx-proto';
import {
  createClassifier,
  createLanguageModel,
  createRegressor,
  createTagger,
  fitTokenizer,
  loadModel,
  type LanguageModel,
  type Model,
  type OnnxGraph,
} from '../src';

beforeAll(() => {
  ort.env.wasm.numThreads = 1;
});

/** Max abs difference over two arrays (lengths must agree). */
function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function argmax(a: ArrayLike<number>, lo = 0, n = a.length): number {
  let best = lo;
  for (let i = lo; i < lo + n; i++) if (a[i] > a[best]) best = i;
  return best - lo;
}

const session = (g: OnnxGraph) => ort.InferenceSession.create(g.bytes);
const ids = (rows: number[][]) =>
  new ort.Tensor(
    'int64',
    BigInt64Array.from(rows.flat(), (v) => BigInt(v)),
    [rows.length, rows[0].length],
  );
const zeros = (dims: number[]) => new ort.Tensor('float32', new Float32Array(dims.reduce((a, b) => a * b, 1)), dims);

/** The initial states of a language model's graph: zeros [L·D, batch, H] for h0 (and c0). */
function zeroStates(m: Model, batch: number): Record<string, ort.Tensor> {
  const c = m.config;
  const dims = [c.num_layers, batch, c.hidden_size];
  return c.cell === 'lstm' ? { h0: zeros(dims), c0: zeros(dims) } : { h0: zeros(dims) };
}

/** The final states of a run as the next run's initial states: outputs hn (cn) → inputs h0 (c0). */
function carried(m: Model, out: ort.InferenceSession.ReturnType): Record<string, ort.Tensor> {
  return m.config.cell === 'lstm' ? { h0: out.hn, c0: out.cn } : { h0: out.hn };
}

/** Feeds `rows` [B, T] to rnnkit one step at a time: the logits of every step, [B, T, V]. */
function rnnkitLogits(m: LanguageModel, rows: number[][]): Float32Array {
  const B = rows.length;
  const T = rows[0].length;
  const V = m.config.output_size as number;
  const s = m.session({ rows: B });
  const out = new Float32Array(B * T * V);
  for (let t = 0; t < T; t++) {
    const y = s.feed(Int32Array.from(rows, (r) => r[t]));
    for (let b = 0; b < B; b++) out.set(y.subarray(b * V, (b + 1) * V), (b * T + t) * V);
  }
  return out;
}

/** The ONNX graph's logits of `rows`, run in two chunks with the state of the first fed into the second. */
async function onnxLogits(m: LanguageModel, rows: number[][]): Promise<Float32Array> {
  const s = await session(m.toOnnx());
  const cut = Math.floor(rows[0].length / 2);
  const a = await s.run({ tokens: ids(rows.map((r) => r.slice(0, cut))), ...zeroStates(m, rows.length) });
  const b = await s.run({ tokens: ids(rows.map((r) => r.slice(cut))), ...carried(m, a) });
  // Stitch [B, cut, V] and [B, T − cut, V] back into [B, T, V].
  const B = rows.length;
  const T = rows[0].length;
  const V = m.config.output_size as number;
  const out = new Float32Array(B * T * V);
  const la = a.logits.data as Float32Array;
  const lb = b.logits.data as Float32Array;
  for (let r = 0; r < B; r++) {
    out.set(la.subarray(r * cut * V, (r + 1) * cut * V), r * T * V);
    out.set(lb.subarray(r * (T - cut) * V, (r + 1) * (T - cut) * V), (r * T + cut) * V);
  }
  return out;
}

/** Greedy continuation through the graph, one token per call with the state fed back. */
async function onnxGreedy(m: LanguageModel, prompt: string, n: number): Promise<string> {
  const tok = m.tokenizer!;
  const s = await session(m.toOnnx());
  const V = m.config.output_size as number;
  let out = await s.run({ tokens: ids([[...tok.encode(prompt)]]), ...zeroStates(m, 1) });
  const produced: number[] = [];
  for (let i = 0; i < n; i++) {
    const logits = out.logits.data as Float32Array;
    const next = argmax(logits, logits.length - V, V);
    produced.push(next);
    out = await s.run({ tokens: ids([[next]]), ...carried(m, out) });
  }
  return tok.decode(produced);
}

const rowsOf = (V: number, B: number, T: number, seed: number) =>
  Array.from({ length: B }, (_, b) => Array.from({ length: T }, (_, t) => (seed * 7 + b * 13 + t * 5 + ((b * t) % 3)) % V));

describe('ONNX export of language models', () => {
  const cases: [string, Parameters<typeof createLanguageModel>[0]][] = [
    ['rnn tanh', { cell: 'rnn', nonlinearity: 'tanh' }],
    ['rnn relu', { cell: 'rnn', nonlinearity: 'relu' }],
    ['lstm', { cell: 'lstm' }],
    ['gru', { cell: 'gru' }],
    ['lstm, 3 layers', { cell: 'lstm', numLayers: 3 }],
    ['gru, 2 layers + skip', { cell: 'gru', numLayers: 2, skip: true }],
    ['rnn tanh, 2 layers + skip', { cell: 'rnn', numLayers: 2, skip: true }],
  ];
  for (const [name, arch] of cases) {
    it(`${name}: logits within 1e-4 of rnnkit's, state carried across calls`, async () => {
      const m = createLanguageModel({ vocabSize: 23, embedDim: 6, hiddenSize: 10, seed: 5, ...arch });
      const rows = rowsOf(23, 3, 9, 1);
      const d = maxDiff(await onnxLogits(m, rows), rnnkitLogits(m, rows));
      console.log(`onnx ${name}: max abs diff ${d.toExponential(2)}`);
      expect(d).toBeLessThan(1e-4);
    });
  }

  for (const name of ['pp_lstm', 'zh_gru']) {
    it(`PyTorch-trained ${name}: logits within 1e-4, greedy 200 tokens identical to PyTorch's and rnnkit's`, async () => {
      const m = (await loadModel(`fixtures/models/${name}.safetensors`)) as LanguageModel;
      const expected = JSON.parse(fs.readFileSync(`fixtures/models/${name}.expected.json`, 'utf8')) as { generations: { prompt: string; greedy: string }[] };
      const g = expected.generations[0];
      const prompt = [...m.tokenizer!.encode(g.prompt)];
      const d = maxDiff(await onnxLogits(m, [prompt]), rnnkitLogits(m, [prompt]));
      console.log(`onnx ${name}: max abs diff ${d.toExponential(2)}`);
      expect(d).toBeLessThan(1e-4);
      const text = await onnxGreedy(m, g.prompt, [...g.greedy].length);
      expect(text).toBe(g.greedy);
      expect(text).toBe(await m.generate(g.prompt, { greedy: true, maxTokens: [...g.greedy].length }));
    }, 60_000);
  }

  it('writes a file atomically with its signature, opset and metadata', async () => {
    const tokenizer = fitTokenizer('hello onnx world', { type: 'char' });
    const m = createLanguageModel({ tokenizer, cell: 'lstm', hiddenSize: 8, embedDim: 4, numLayers: 2 });
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rnnkit-onnx-'));
    const file = path.join(dir, 'lm.onnx');
    const r = await m.exportOnnx(file, { metadata: { note: 'x' } });
    expect(r.opset).toBe(14);
    expect(r.inputs.map((i) => i.name)).toEqual(['tokens', 'h0', 'c0']);
    expect(r.outputs.map((o) => o.name)).toEqual(['logits', 'hn', 'cn']);
    expect(r.outputs[1].shape).toEqual([2, 'batch', 8]);
    expect(fs.readdirSync(dir)).toEqual(['lm.onnx']);
    const proto = onnx.ModelProto.decode(fs.readFileSync(file));
    expect(Number(proto.opsetImport[0].version)).toBe(14);
    const meta = Object.fromEntries(proto.metadataProps.map((p) => [p.key, p.value]));
    expect(JSON.parse(meta.tokenizer).type).toBe('char');
    expect(JSON.parse(meta.config).cell).toBe('lstm');
    expect(meta.note).toBe('x');
    expect(new Set(proto.graph!.node!.map((n) => n.opType))).toContain('LSTM');
    expect(() => m.toOnnx({ opset: 13 } as never)).toThrow(/opset/);
    fs.rmSync(dir, { recursive: true });
  });
});

describe('ONNX export of sequence tasks', () => {
  const tokenizer = fitTokenizer('abcdefghij klmnop', { type: 'char', specials: ['<pad>', '<unk>'] });
  const texts = ['abc', 'hello kid', 'fed', 'jamboree', 'a'];
  /** Token rows padded to the longest, and their lengths. */
  function padded(list: string[]): { rows: number[][]; lengths: number[] } {
    const enc = list.map((t) => [...tokenizer.encode(t)]);
    const T = Math.max(...enc.map((e) => e.length));
    return { rows: enc.map((e) => [...e, ...new Array<number>(T - e.length).fill(0)]), lengths: enc.map((e) => e.length) };
  }
  const lengthsTensor = (l: number[]) =>
    new ort.Tensor(
      'int64',
      BigInt64Array.from(l, (v) => BigInt(v)),
      [l.length],
    );

  for (const [cell, pooling] of [
    ['lstm', 'last'],
    ['gru', 'mean'],
    ['rnn', 'max'],
    ['lstm', 'mean'],
  ] as const) {
    it(`classifier (${cell}, bidirectional, 2 layers, ${pooling} pooling): probabilities within 1e-4`, async () => {
      const m = createClassifier({ tokenizer, labels: ['a', 'b', 'c'], cell, pooling, numLayers: 2, hiddenSize: 7, embedDim: 5, seed: 2 });
      const { rows, lengths } = padded(texts);
      const out = await (await session(m.toOnnx())).run({ tokens: ids(rows), lengths: lengthsTensor(lengths) });
      const got = out.probabilities.data as Float32Array;
      const want = m.predictSync(texts).flatMap((p) => ['a', 'b', 'c'].map((l) => p.probabilities[l]));
      const d = maxDiff(got, want);
      console.log(`onnx classifier ${cell} ${pooling}: max abs diff ${d.toExponential(2)}`);
      expect(d).toBeLessThan(1e-4);
    });
  }

  it('tagger (gru, bidirectional): per-step probabilities within 1e-4 on the real steps', async () => {
    const m = createTagger({ tokenizer, tags: ['-', 'V', 'N'], cell: 'gru', hiddenSize: 9, embedDim: 4, seed: 3 });
    const { rows, lengths } = padded(texts);
    const out = await (await session(m.toOnnx())).run({ tokens: ids(rows), lengths: lengthsTensor(lengths) });
    const p = out.probabilities.data as Float32Array;
    const T = rows[0].length;
    let d = 0;
    m.predictSync(texts).forEach((pred, b) => {
      pred.tags.forEach((tag, t) => {
        const at = (b * T + t) * 3;
        expect(['-', 'V', 'N'][argmax(p, at, 3)]).toBe(tag);
        d = Math.max(d, Math.abs(p[at + ['-', 'V', 'N'].indexOf(tag as string)] - pred.probabilities[t]));
      });
    });
    console.log(`onnx tagger: max abs diff ${d.toExponential(2)}`);
    expect(d).toBeLessThan(1e-4);
  });

  for (const perStep of [false, true]) {
    it(`regressor (dense input, normalised, ${perStep ? 'per step' : 'pooled'}): values within 1e-4`, async () => {
      const m = createRegressor({
        inputSize: 2,
        outputSize: 2,
        perStep,
        ...(perStep ? {} : { pooling: 'mean' as const }),
        cell: 'lstm',
        hiddenSize: 6,
        seed: 4,
      });
      const series = [0, 1, 2, 3].map((k) => Float32Array.from({ length: 2 * (3 + k) }, (_, i) => Math.sin(i * 0.7 + k) * 3 + k));
      const target = (x: Float32Array) => (perStep ? Float32Array.from({ length: x.length }, (_, i) => x[i] * 0.1) : Float32Array.from([x[0], x[1]]));
      await m.fit(
        series.map((values) => ({ values, target: target(values) })),
        { epochs: 1 },
      );
      expect(m.featureStats).not.toBeNull();
      const T = Math.max(...series.map((s) => s.length / 2));
      const flat = new Float32Array(series.length * T * 2);
      series.forEach((s, b) => flat.set(s, b * T * 2));
      const out = await (
        await session(m.toOnnx())
      ).run({
        features: new ort.Tensor('float32', flat, [series.length, T, 2]),
        lengths: lengthsTensor(series.map((s) => s.length / 2)),
      });
      const v = out.values.data as Float32Array;
      let d = 0;
      m.predictSync(series).forEach((want, b) => {
        const lo = perStep ? b * T * 2 : b * 2;
        d = Math.max(d, maxDiff(v.subarray(lo, lo + want.length), want));
      });
      console.log(`onnx regressor ${perStep ? 'per step' : 'pooled'}: max abs diff ${d.toExponential(2)}`);
      expect(d).toBeLessThan(1e-4);
    });
  }
});
