// Greedy text generation in the browser with onnxruntime-web, from a language model exported by
// `rnnkit export model.safetensors --format onnx --out model.onnx`. The graph's inputs are
// `tokens` int64 [batch, time] then `h0` (and `c0` for an LSTM) float32 [layers, batch, hidden];
// its outputs `logits` float32 [batch, time, vocab] then `hn` (and `cn`) in the same shapes as the
// state inputs. The prompt is fed in one call; after that each call feeds the chosen token with
// the states the previous call returned, so the state carries across calls (docs/FORMAT.md).
import * as ort from './ort/ort.min.mjs';
import { charTokenizer, onnxMetadata } from './tokenizer.mjs';

/** Loads the model at `url`: its onnxruntime session, tokenizer and config (from the metadata). */
export async function loadModel(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`fetch ${url}: HTTP ${response.status}`);
  const bytes = new Uint8Array(await response.arrayBuffer());
  const meta = onnxMetadata(bytes);
  if (!meta.tokenizer || !meta.config) throw new Error(`${url}: no tokenizer/config in the ONNX metadata (not an rnnkit language model export?)`);
  const config = JSON.parse(meta.config);
  if (config.task !== 'language_model') throw new Error(`${url}: a ${config.task} model, not a language model`);
  // One thread: several would need a cross-origin-isolated page (COOP/COEP headers).
  ort.env.wasm.numThreads = 1;
  const session = await ort.InferenceSession.create(bytes);
  return { session, tokenizer: charTokenizer(JSON.parse(meta.tokenizer)), config };
}

/** The index of the largest of the `n` values of `a` from `lo` on, relative to `lo`. */
function argmax(a, lo, n) {
  let best = lo;
  for (let i = lo + 1; i < lo + n; i++) if (a[i] > a[best]) best = i;
  return best - lo;
}

/** The greedy continuation of `prompt`: `maxTokens` tokens, fewer when `<eos>` is produced. */
export async function generate({ session, tokenizer, config }, prompt, maxTokens) {
  const dims = [config.num_layers, 1, config.hidden_size];
  const zeros = () => new ort.Tensor('float32', new Float32Array(dims[0] * dims[2]), dims);
  const tokens = (ids) => new ort.Tensor('int64', BigInt64Array.from(ids, BigInt), [1, ids.length]);
  const lstm = config.cell === 'lstm';
  const eos = tokenizer.specials['<eos>'];
  let ids = tokenizer.encode(prompt);
  if (ids.length === 0) {
    // An empty prompt starts from `<bos>`, as rnnkit's generate does.
    if (tokenizer.specials['<bos>'] === undefined) throw new Error('generate: empty prompt and no <bos> token');
    ids = [tokenizer.specials['<bos>']];
  }
  let out = await session.run({ tokens: tokens(ids), h0: zeros(), ...(lstm ? { c0: zeros() } : {}) });
  const produced = [];
  for (let i = 0; i < maxTokens; i++) {
    const logits = out.logits.data;
    const next = argmax(logits, logits.length - tokenizer.vocabSize, tokenizer.vocabSize);
    produced.push(next);
    if (next === eos || i === maxTokens - 1) break;
    out = await session.run({ tokens: tokens([next]), h0: out.hn, ...(lstm ? { c0: out.cn } : {}) });
  }
  return tokenizer.decode(produced);
}
