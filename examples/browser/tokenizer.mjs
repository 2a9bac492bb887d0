// The char tokenizer of an exported rnnkit model, read from the ONNX file's metadata in the
// browser. The file is a protobuf `ModelProto`; its `metadata_props` (field 14, repeated
// `StringStringEntryProto { key = 1; value = 2; }`, onnx.proto) hold the tokenizer JSON under
// `tokenizer` and the model config under `config` (docs/FORMAT.md, "ONNX export"). The bytes are
// walked with protobufjs's minimal Reader (loaded as `globalThis.protobuf` by index.html), which
// skips every other field (the weights) without decoding them.

/** `metadata_props` of an ONNX model as a plain object. */
export function onnxMetadata(bytes) {
  const { Reader } = globalThis.protobuf;
  const r = Reader.create(bytes);
  const meta = {};
  while (r.pos < r.len) {
    const tag = r.uint32();
    if (tag >>> 3 !== 14 || (tag & 7) !== 2) {
      r.skipType(tag & 7);
      continue;
    }
    const end = r.uint32() + r.pos;
    let key = '';
    let value = '';
    while (r.pos < end) {
      const t = r.uint32();
      if (t >>> 3 === 1) key = r.string();
      else if (t >>> 3 === 2) value = r.string();
      else r.skipType(t & 7);
    }
    meta[key] = value;
  }
  return meta;
}

/**
 * A char tokenizer from its JSON form (src/tokenizer.ts): one token per Unicode code point,
 * `vocab[id]` the text of id. Unknown characters map to `<unk>` when the policy says so, and
 * otherwise throw naming the character and its position, as rnnkit's own tokenizer does.
 */
export function charTokenizer(json) {
  if (json.type !== 'char') throw new Error(`tokenizer: this example handles char tokenizers, got type ${JSON.stringify(json.type)}`);
  const specials = json.specials ?? {};
  const specialIds = new Set(Object.values(specials));
  const unknown = json.unknown ?? (specials['<unk>'] !== undefined ? 'unk' : 'error');
  const byChar = new Map();
  json.vocab.forEach((t, id) => specialIds.has(id) || byChar.set(t, id));
  return {
    vocabSize: json.vocab.length,
    specials,
    encode(text) {
      return [...text].map((ch, pos) => {
        const id = byChar.get(ch) ?? (unknown === 'unk' ? specials['<unk>'] : undefined);
        if (id === undefined) throw new Error(`tokenizer: unknown character ${JSON.stringify(ch)} at position ${pos}`);
        return id;
      });
    },
    decode(ids) {
      return ids.map((id) => (specialIds.has(id) ? '' : json.vocab[id])).join('');
    },
  };
}
