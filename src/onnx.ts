/**
 * ONNX export: a model as an ONNX graph built from ONNX's own `RNN`/`LSTM`/`GRU` operators, for
 * onnxruntime (browsers with onnxruntime-web, inference servers, other languages).
 *
 * The protobuf messages come from the `onnx-proto` package (onnx.proto compiled for protobufjs);
 * this file only lays out the graph and converts the weights. Conversions (docs/FORMAT.md has the
 * table): PyTorch's LSTM gate blocks `i,f,g,o` become ONNX's `i,o,f,c`, GRU's `r,z,n` become
 * `z,r,h` with `linear_before_reset = 1` (PyTorch's GRU applies the reset gate after the
 * recurrent product, as that mode does), and the two bias vectors of a direction are stored as
 * one row `[Wb, Rb]`. The ONNX operators are time-major, so the graph transposes once at each
 * end; weights are laid out once here, at export.
 *
 * Graph signature (opset {@link ONNX_OPSET}, batch and time dynamic):
 * - language model: `tokens` int64 [batch, time], `h0` float [L·D, batch, H] (and `c0` for LSTM)
 *   → `logits` [batch, time, V], `hn` (and `cn`) shaped as `h0`/`c0`. Feeding `hn`/`cn` back as
 *   `h0`/`c0` carries the state across calls, so generation runs one token at a time.
 * - sequence tasks: `tokens` int64 [batch, time] (or `features` float [batch, time, I]) and
 *   `lengths` int64 [batch] (real steps per row, ≥ 1; padded steps are ignored as rnnkit ignores
 *   them), from the zero state → `probabilities` [batch, C] (classify), [batch, time, C] (tag),
 *   `values` [batch, C] or [batch, time, C] (regress).
 */

import { onnx } from 'onnx-proto';
import { rangeError, typeError } from './errors';

/** The ONNX operator set the export targets (its `RNN`/`LSTM`/`GRU`, `Softmax` on one axis). */
export const ONNX_OPSET = 14;
/** The ONNX IR version of opset 14. */
const IR_VERSION = 7;
/** Protobuf messages cannot exceed 2 GiB; bigger models need ONNX external data. */
const MAX_BYTES = 2 ** 31 - 1;

/** What the exporter reads from a model: its config, its tensors, what its inputs mean. */
export interface OnnxSource {
  /** The `config` of docs/FORMAT.md (snake_case keys). */
  config: Record<string, unknown>;
  /** A parameter by its `state_dict` name, row-major. */
  tensor(name: string): Float32Array;
  /** Dense input normalised by the model: `(x − mean) / std` per feature; null otherwise. */
  stats: { mean: Float32Array; std: Float32Array } | null;
  /** `metadata_props` of the ONNX model (tokenizer, labels, tags, config as JSON texts). */
  metadata: Record<string, string>;
}

/** An input or output of the exported graph. */
export interface OnnxTensorInfo {
  name: string;
  type: 'int64' | 'float32';
  /** Sizes; `"batch"` and `"time"` are dynamic. */
  shape: (number | string)[];
}

/** The exported graph: its bytes, operator set, inputs and outputs in order. */
export interface OnnxGraph {
  bytes: Uint8Array;
  opset: number;
  inputs: OnnxTensorInfo[];
  outputs: OnnxTensorInfo[];
}

/** Gate blocks of PyTorch's order, listed in ONNX's order (docs/FORMAT.md). */
const GATE_ORDER: Record<string, number[]> = {
  rnn: [0],
  lstm: [0, 3, 1, 2], // i,f,g,o → i,o,f,c
  gru: [1, 0, 2], // r,z,n → z,r,h
};

const FLOAT = onnx.TensorProto.DataType.FLOAT;
const INT64 = onnx.TensorProto.DataType.INT64;
const A = onnx.AttributeProto.AttributeType;

type Attr = number | string | number[] | string[];

/** Accumulates nodes and initializers with fresh names. */
class GraphBuilder {
  readonly nodes: onnx.INodeProto[] = [];
  readonly initializers: onnx.ITensorProto[] = [];
  private n = 0;
  bytes = 0;

  fresh(hint: string): string {
    return `${hint}_${this.n++}`;
  }

  /** A float32 initializer (raw little-endian bytes: every platform rnnkit builds for is little-endian). */
  floats(name: string, dims: number[], values: Float32Array): string {
    this.bytes += values.byteLength;
    if (this.bytes > MAX_BYTES) {
      throw rangeError('ERR_RNNKIT_RANGE', `model: ${this.bytes} bytes of weights exceed the 2 GiB limit of one ONNX protobuf file`);
    }
    const raw = new Uint8Array(values.buffer.slice(values.byteOffset, values.byteOffset + values.byteLength));
    this.initializers.push({ name, dims, dataType: FLOAT, rawData: raw });
    return name;
  }

  ints(name: string, values: number[], dims: number[] = [values.length]): string {
    this.initializers.push({ name, dims, dataType: INT64, int64Data: values });
    return name;
  }

  /** Adds a node; returns its outputs (`outputs` names them, else they are fresh). */
  node(op: string, inputs: string[], attrs: Record<string, Attr> = {}, outputs: string[] | number = 1): string[] {
    const out = typeof outputs === 'number' ? Array.from({ length: outputs }, () => this.fresh(op.toLowerCase())) : outputs;
    const attribute = Object.entries(attrs).map(([name, v]): onnx.IAttributeProto => {
      if (typeof v === 'number') return Number.isInteger(v) ? { name, type: A.INT, i: v } : { name, type: A.FLOAT, f: v };
      if (typeof v === 'string') return { name, type: A.STRING, s: new TextEncoder().encode(v) };
      if (v.every((x) => typeof x === 'number')) return { name, type: A.INTS, ints: v as number[] };
      return { name, type: A.STRINGS, strings: (v as string[]).map((x) => new TextEncoder().encode(x)) };
    });
    this.nodes.push({ opType: op, input: inputs, output: out, name: this.fresh(op), attribute });
    return out;
  }

  one(op: string, inputs: string[], attrs: Record<string, Attr> = {}): string {
    return this.node(op, inputs, attrs)[0];
  }
}

/** Rows of `w` ([G·H, cols]) with its H-row gate blocks put in `order`. */
function reorderGates(w: Float32Array, hidden: number, cols: number, order: number[]): Float32Array {
  const out = new Float32Array(w.length);
  const block = hidden * cols;
  order.forEach((src, dst) => out.set(w.subarray(src * block, (src + 1) * block), dst * block));
  return out;
}

/** `w` [rows, cols] transposed to [cols, rows] (head weights for `MatMul`). */
function transpose(w: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(w.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = w[r * cols + c];
  return out;
}

function valueInfo(t: OnnxTensorInfo): onnx.IValueInfoProto {
  return {
    name: t.name,
    type: {
      tensorType: {
        elemType: t.type === 'int64' ? INT64 : FLOAT,
        shape: { dim: t.shape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

/** Builds the ONNX model of `src` (see the file comment for its inputs and outputs). */
export function buildOnnx(src: OnnxSource, producerVersion: string): OnnxGraph {
  const c = src.config;
  const task = c.task as string;
  // A speech model's graph would need its frame stacking and CTC decoding, which this exporter
  // does not build: refuse rather than write a graph that computes something else.
  if (task === 'speech')
    throw typeError('ERR_RNNKIT_CONFIG', 'model: speech models do not export to ONNX (their frame stacking and CTC decoding are not in the graph)');
  const cell = c.cell as string;
  const H = c.hidden_size as number;
  const L = c.num_layers as number;
  const D = c.bidirectional ? 2 : 1;
  const C = c.output_size as number;
  const G = GATE_ORDER[cell].length;
  const tokensIn = c.vocab_size !== undefined && c.vocab_size !== null;
  const lm = task === 'language_model';
  const perStep = task === 'tag' || (task === 'regress' && c.per_step === true);
  const lstm = cell === 'lstm';
  const g = new GraphBuilder();
  const inputs: OnnxTensorInfo[] = [];

  // The first layer's input, time-major [T, B, in], and the batch-first embedding (skip term).
  let x: string;
  let embedBF: string | null = null;
  if (tokensIn) {
    const V = c.vocab_size as number;
    const E = c.embed_dim as number;
    inputs.push({ name: 'tokens', type: 'int64', shape: ['batch', 'time'] });
    const table = g.floats('embed.weight', [V, E], src.tensor('embed.weight'));
    // Gather on the transposed ids writes the embedding time-major directly.
    x = g.one('Gather', [table, g.one('Transpose', ['tokens'], { perm: [1, 0] })], { axis: 0 });
    if (c.skip) embedBF = g.one('Gather', [table, 'tokens'], { axis: 0 });
  } else {
    const I = c.input_size as number;
    inputs.push({ name: 'features', type: 'float32', shape: ['batch', 'time', I] });
    let f = 'features';
    if (src.stats) {
      f = g.one('Sub', [f, g.floats('feature_mean', [I], src.stats.mean)]);
      f = g.one('Div', [f, g.floats('feature_std', [I], src.stats.std)]);
    }
    x = g.one('Transpose', [f], { perm: [1, 0, 2] });
  }

  // Real lengths (sequence tasks): the recurrent operators stop each row there, as rnnkit does.
  let lengths32 = '';
  if (!lm) {
    inputs.push({ name: 'lengths', type: 'int64', shape: ['batch'] });
    lengths32 = g.one('Cast', ['lengths'], { to: onnx.TensorProto.DataType.INT32 });
  } else {
    inputs.push({ name: 'h0', type: 'float32', shape: [L * D, 'batch', H] });
    if (lstm) inputs.push({ name: 'c0', type: 'float32', shape: [L * D, 'batch', H] });
  }

  const op = cell === 'rnn' ? 'RNN' : cell === 'lstm' ? 'LSTM' : 'GRU';
  const attrs: Record<string, Attr> = { hidden_size: H, direction: D === 2 ? 'bidirectional' : 'forward' };
  if (cell === 'gru') attrs.linear_before_reset = 1;
  if (cell === 'rnn') attrs.activations = new Array<string>(D).fill(c.nonlinearity === 'relu' ? 'Relu' : 'Tanh');
  const hOut: string[] = [];
  const cOut: string[] = [];
  const flat = g.ints('shape_tb_flat', [0, 0, D * H]);
  for (let l = 0; l < L; l++) {
    const inK = l === 0 ? (tokensIn ? (c.embed_dim as number) : (c.input_size as number)) : D * H;
    const W = new Float32Array(D * G * H * inK);
    const R = new Float32Array(D * G * H * H);
    const B = new Float32Array(D * 2 * G * H);
    for (let d = 0; d < D; d++) {
      const sfx = `_l${l}${d === 1 ? '_reverse' : ''}`;
      const order = GATE_ORDER[cell];
      W.set(reorderGates(src.tensor(`rnn.weight_ih${sfx}`), H, inK, order), d * G * H * inK);
      R.set(reorderGates(src.tensor(`rnn.weight_hh${sfx}`), H, H, order), d * G * H * H);
      B.set(reorderGates(src.tensor(`rnn.bias_ih${sfx}`), H, 1, order), d * 2 * G * H);
      B.set(reorderGates(src.tensor(`rnn.bias_hh${sfx}`), H, 1, order), d * 2 * G * H + G * H);
    }
    const opInputs = [x, g.floats(`W_l${l}`, [D, G * H, inK], W), g.floats(`R_l${l}`, [D, G * H, H], R), g.floats(`B_l${l}`, [D, 2 * G * H], B), lengths32];
    if (lm) {
      // This layer's rows of the stacked state [L·D, B, H] (PyTorch's layer-major order).
      const range = [g.ints(`state_start_l${l}`, [l * D]), g.ints(`state_end_l${l}`, [(l + 1) * D]), g.ints(`state_axis_l${l}`, [0])];
      opInputs.push(g.one('Slice', ['h0', ...range]));
      if (lstm) opInputs.push(g.one('Slice', ['c0', ...range]));
    }
    const outs = g.node(op, opInputs, attrs, lstm ? 3 : 2);
    hOut.push(outs[1]);
    if (lstm) cOut.push(outs[2]);
    // Y [T, D, B, H] → [T, B, D·H], directions side by side as PyTorch concatenates them.
    x = g.one('Reshape', [g.one('Transpose', [outs[0]], { perm: [0, 2, 1, 3] }), flat]);
  }

  const headW = g.floats('head.weight_t', [D * H, C], transpose(src.tensor('head.weight'), C, D * H));
  const headB = g.floats('head.bias', [C], src.tensor('head.bias'));
  const outputs: OnnxTensorInfo[] = [];
  const outName = lm ? 'logits' : task === 'regress' ? 'values' : 'probabilities';
  const softmax = task === 'classify' || task === 'tag';
  let y: string;
  if (lm || perStep) {
    y = g.one('Add', [g.one('MatMul', [g.one('Transpose', [x], { perm: [1, 0, 2] }), headW]), headB]);
    if (embedBF) {
      const V = c.vocab_size as number;
      const E = c.embed_dim as number;
      y = g.one('Add', [y, g.one('MatMul', [embedBF, g.floats('skip.weight_t', [E, V], transpose(src.tensor('skip.weight'), V, E))])]);
    }
    outputs.push({ name: outName, type: 'float32', shape: ['batch', 'time', C] });
  } else {
    y = g.one('Add', [g.one('MatMul', [pool(g, c.pooling as string, x, hOut[L - 1], D * H), headW]), headB]);
    outputs.push({ name: outName, type: 'float32', shape: ['batch', C] });
  }
  g.node(softmax ? 'Softmax' : 'Identity', [y], softmax ? { axis: -1 } : {}, [outName]);
  if (lm) {
    g.node(L === 1 ? 'Identity' : 'Concat', hOut, L === 1 ? {} : { axis: 0 }, ['hn']);
    outputs.push({ name: 'hn', type: 'float32', shape: [L * D, 'batch', H] });
    if (lstm) {
      g.node(L === 1 ? 'Identity' : 'Concat', cOut, L === 1 ? {} : { axis: 0 }, ['cn']);
      outputs.push({ name: 'cn', type: 'float32', shape: [L * D, 'batch', H] });
    }
  }

  const model: onnx.IModelProto = {
    irVersion: IR_VERSION,
    opsetImport: [{ domain: '', version: ONNX_OPSET }],
    producerName: 'rnnkit',
    producerVersion,
    docString: `rnnkit ${task} (${cell}, ${L} layer${L > 1 ? 's' : ''}${D === 2 ? ', bidirectional' : ''}); inputs ${inputs.map((i) => i.name).join(', ')}; outputs ${outputs.map((o) => o.name).join(', ')}`,
    metadataProps: Object.entries(src.metadata).map(([key, value]) => ({ key, value })),
    graph: {
      name: 'rnnkit',
      node: g.nodes,
      initializer: g.initializers,
      input: inputs.map(valueInfo),
      output: outputs.map(valueInfo),
    },
  };
  return { bytes: onnx.ModelProto.encode(onnx.ModelProto.create(model)).finish(), opset: ONNX_OPSET, inputs, outputs };
}

/**
 * Pooling over each row's real steps (docs/FORMAT.md): `last` is the last layer's final state
 * (forward at step L−1, backward at step 0: what the operator's `Y_h` holds under
 * `sequence_lens`); `mean` and `max` mask the padded steps of `y` [T, B, D·H] with `lengths`.
 * Returns [B, D·H].
 */
function pool(g: GraphBuilder, pooling: string, y: string, lastH: string, width: number): string {
  if (pooling === 'last') {
    return g.one('Reshape', [g.one('Transpose', [lastH], { perm: [1, 0, 2] }), g.ints('shape_b_flat', [0, width])]);
  }
  // mask [T, B, 1]: step t of row b is real when t < lengths[b].
  const T = g.one('Gather', [g.one('Shape', [y]), g.ints('index_time', [0], [])], { axis: 0 });
  const steps = g.one('Range', [g.ints('zero', [0], []), T, g.ints('one', [1], [])]);
  const mask = g.one('Less', [g.one('Unsqueeze', [steps, g.ints('axis_1', [1])]), g.one('Unsqueeze', ['lengths', g.ints('axis_0', [0])])]);
  const mask3 = g.one('Unsqueeze', [mask, g.ints('axis_2', [2])]);
  if (pooling === 'mean') {
    const sum = g.one('ReduceSum', [g.one('Mul', [y, g.one('Cast', [mask3], { to: FLOAT })]), g.ints('axis_0_sum', [0])], { keepdims: 0 });
    const n = g.one('Cast', [g.one('Unsqueeze', ['lengths', g.ints('axis_1_len', [1])])], { to: FLOAT });
    return g.one('Div', [sum, n]);
  }
  const minusInf = g.floats('minus_inf', [], new Float32Array([-Infinity]));
  return g.one('ReduceMax', [g.one('Where', [mask3, y, minusInf])], { axes: [0], keepdims: 0 });
}
