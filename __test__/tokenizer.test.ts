import * as fs from 'fs';
import * as path from 'path';
import { describe as suite, expect, it } from 'vitest';
import { compareCodePoints, createTokenizerFitter, fitTokenizer, Tokenizer, tokenizerFromJSON, type TokenizerOptions } from '../src/tokenizer';

const root = path.join(__dirname, '..');
const zh = fs.readFileSync(path.join(root, 'data/zh-classics.txt'), 'utf8');
const pp = fs.readFileSync(path.join(root, 'data/pride-and-prejudice.txt'), 'utf8');

/** The `tokenizer` metadata of a safetensors file: 8-byte LE header length, then JSON. */
function safetensorsTokenizer(file: string): string {
  const buf = fs.readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
  return header.__metadata__.tokenizer;
}

/** Runs `f`, expecting an error with `code` whose message matches `re`. */
function expectCode(f: () => unknown, code: string, re?: RegExp, cls?: new (...a: never[]) => Error): void {
  let caught: unknown;
  try {
    f();
  } catch (e) {
    caught = e;
  }
  expect(caught, 'expected an error').toBeInstanceOf(cls ?? Error);
  expect((caught as { code: string }).code).toBe(code);
  if (re) expect((caught as Error).message).toMatch(re);
}

suite('char tokenizer', () => {
  it('round-trips the Chinese corpus exactly and matches Python sorted(set(text))', () => {
    // sorted(set(text)) and, by default, <unk> after it.
    const t = fitTokenizer(zh, { type: 'char' });
    expect(t.vocabSize).toBe(4434);
    const ids = t.encode(zh);
    expect(ids.length).toBe(96571);
    expect(t.decode(ids)).toBe(zh);
    const fixture = JSON.parse(safetensorsTokenizer(path.join(root, 'fixtures/models/zh_gru.safetensors')));
    expect(t.toJSON().vocab).toEqual([...fixture.vocab, '<unk>']);
  });

  it('reads the minimal form (docs/FORMAT.md) from pp_lstm.safetensors', () => {
    const json = safetensorsTokenizer(path.join(root, 'fixtures/models/pp_lstm.safetensors'));
    const t = tokenizerFromJSON(json);
    expect(t.type).toBe('char');
    expect(t.vocabSize).toBe(75);
    expect(t.idToToken(0)).toBe('\n');
    expect(t.idToToken(1)).toBe(' ');
    expect(t.tokenToId('!')).toBe(2);
    const vocab = JSON.parse(json).vocab as string[];
    const sample = pp.slice(0, 5000);
    const ids = t.encode(sample);
    for (let i = 0; i < 200; i++) expect(vocab[ids[i]]).toBe(sample[i]);
    expect(t.decode(ids)).toBe(sample);
    expect(t.unknown).toBe('error');
    expect(fitTokenizer(pp, { type: 'char', unknown: 'error' }).toJSON().vocab).toEqual(vocab);
  });

  it('treats astral characters (emoji) as one token, sorted by code point', () => {
    const text = 'a😀b\uFFFD𝄞😀';
    const t = fitTokenizer(text, { type: 'char' });
    // UTF-16 order would put 𝄞 (D834 DD1E) before U+FFFD; code-point order puts it after.
    expect(t.toJSON().vocab).toEqual(['a', 'b', '\uFFFD', '𝄞', '😀', '<unk>']);
    expect([...t.encode(text)]).toEqual([0, 4, 1, 2, 3, 4]);
    expect(t.decode(t.encode(text))).toBe(text);
    expect(compareCodePoints('\uFFFD', '𝄞')).toBeLessThan(0);
    expect(compareCodePoints('ab', 'a')).toBeGreaterThan(0);
    expect(compareCodePoints('x', 'x')).toBe(0);
  });

  it('maps unknown characters to <unk> by default, adding it after the other specials', () => {
    const d = fitTokenizer('abc', { type: 'char' });
    expect(d.unknown).toBe('unk');
    expect(d.specials).toEqual({ '<unk>': 3 });
    expect([...d.encode('a😀c')]).toEqual([0, 3, 2]);
    const withPad = fitTokenizer('abc', { type: 'char', specials: ['<pad>'] });
    expect(withPad.specials).toEqual({ '<pad>': 3, '<unk>': 4 });
    // A loaded tokenizer keeps its stored policy: the minimal form has none, so "error".
    const loaded = tokenizerFromJSON(JSON.stringify({ type: 'char', vocab: ['a', 'b'] }));
    expect(loaded.unknown).toBe('error');
    expect(loaded.vocabSize).toBe(2);
    expect(tokenizerFromJSON(JSON.stringify(d.toJSON())).unknown).toBe('unk');
  });

  it('names the unknown character and its position, or maps it to <unk>', () => {
    const t = fitTokenizer('abc', { type: 'char', unknown: 'error' });
    expect(t.specials).toEqual({});
    expectCode(() => t.encode('ab😀c'), 'ERR_RNNKIT_VOCAB', /"😀" \(U\+1F600\) at position 2/, RangeError);
    const u = fitTokenizer('abc', { type: 'char', specials: ['<pad>', '<unk>'] });
    expect(u.unknown).toBe('unk');
    expect([...u.encode('a😀')]).toEqual([0, 4]);
    expect(u.decode([0, 4])).toBe('a<unk>');
    expect(u.decode([0, 4, 3], { skipSpecials: true })).toBe('a');
    const strict = fitTokenizer('abc', { type: 'char', specials: ['<unk>'], unknown: 'error' });
    expectCode(() => strict.encode('z'), 'ERR_RNNKIT_VOCAB', /"z"/);
    expectCode(() => fitTokenizer('abc', { type: 'char', unknown: 'unk' }), 'ERR_RNNKIT_TYPE', /<unk>/);
  });

  it('puts specials after the characters and adds <bos>/<eos> on request', () => {
    const t = fitTokenizer('ba', { type: 'char', specials: ['<bos>', '<eos>'] });
    expect(t.specials).toEqual({ '<bos>': 2, '<eos>': 3, '<unk>': 4 });
    expect([...t.encode('ab', { addBos: true, addEos: true })]).toEqual([2, 0, 1, 3]);
    expect(t.tokenToId('<eos>')).toBe(3);
    expect(t.tokenToId('z')).toBeUndefined();
    const plain = fitTokenizer('ba', { type: 'char', unknown: 'error' });
    expectCode(() => plain.encode('a', { addBos: true }), 'ERR_RNNKIT_VOCAB', /options\.addBos.*<bos>/);
  });

  it('rejects bad arguments', () => {
    const t = fitTokenizer('abc', { type: 'char', unknown: 'error' });
    expectCode(() => t.encode(3 as unknown as string), 'ERR_RNNKIT_TYPE', /text.*3/, TypeError);
    expectCode(() => t.decode([0, 3]), 'ERR_RNNKIT_RANGE', /ids\[1\].*\[0, 2\].*3/, RangeError);
    expectCode(() => t.decode([0, -1]), 'ERR_RNNKIT_RANGE', /ids\[1\]/, RangeError);
    expectCode(() => t.decode([1.5]), 'ERR_RNNKIT_RANGE', /ids\[0\].*1\.5/);
    expectCode(() => t.decode('ab' as unknown as number[]), 'ERR_RNNKIT_TYPE', /ids/, TypeError);
    expectCode(() => t.decode(new Float32Array([0])), 'ERR_RNNKIT_TYPE', /Float32Array/);
    expectCode(() => t.idToToken(3), 'ERR_RNNKIT_RANGE', /id.*3/);
    expectCode(() => t.tokenToId(1 as unknown as string), 'ERR_RNNKIT_TYPE', /token/);
    expectCode(() => t.decode([0], { skipSpecials: 'yes' as unknown as boolean }), 'ERR_RNNKIT_TYPE', /skipSpecials/);
    expectCode(() => fitTokenizer('', { type: 'char' }), 'ERR_RNNKIT_EMPTY', /empty/);
    expectCode(() => fitTokenizer(5 as unknown as string, { type: 'char' }), 'ERR_RNNKIT_TYPE', /text/);
    expectCode(() => fitTokenizer('a', { type: 'chars' } as unknown as { type: 'char' }), 'ERR_RNNKIT_TYPE', /options\.type.*"chars"/);
    expectCode(() => fitTokenizer('a', null as unknown as { type: 'char' }), 'ERR_RNNKIT_TYPE', /options/);
    expectCode(() => fitTokenizer('a', { type: 'char', specials: ['<pad>', '<pad>'] }), 'ERR_RNNKIT_TYPE', /specials\[1\].*duplicate/);
    expectCode(() => fitTokenizer('a', { type: 'char', specials: ['<sep>' as '<pad>'] }), 'ERR_RNNKIT_TYPE', /specials\[0\].*"<sep>"/);
  });

  it('fits the same vocabulary from pieces as from the whole text', () => {
    const pieces = ['a😀', 'b', '', 'ca'];
    const whole = fitTokenizer(pieces.join(''), { type: 'char' });
    expect(fitTokenizer(pieces, { type: 'char' }).toJSON()).toEqual(whole.toJSON());
    const f = createTokenizerFitter({ type: 'char' });
    pieces.forEach((p) => f.push(p));
    expect(f.finish().toJSON()).toEqual(whole.toJSON());
  });

  it('stream encoder names positions across pieces', () => {
    const t = fitTokenizer('ab', { type: 'char', unknown: 'error' });
    const enc = t.streamEncoder();
    expect([...enc.push('ab😀'.slice(0, 2))]).toEqual([0, 1]);
    expectCode(() => enc.push('bz'), 'ERR_RNNKIT_VOCAB', /"z".*position 3/);
  });
});

suite('word tokenizer', () => {
  const corpus = 'The cat sat. The dog sat! A cat, a dog; the END. Don’t stop (ever).';

  it('lower-cases, splits punctuation, orders by frequency with code-point ties', () => {
    const t = fitTokenizer(corpus, { type: 'word', specials: ['<pad>', '<unk>'] });
    const vocab = t.toJSON().vocab!;
    // . and the ×3 (tie: '.' < 't'); a, cat, dog, sat ×2; the rest once, in code-point order.
    expect(vocab.slice(0, 6)).toEqual(['.', 'the', 'a', 'cat', 'dog', 'sat']);
    expect(vocab.slice(6, 9)).toEqual(['!', '(', ')']);
    expect(vocab).toContain('don’t');
    expect(vocab.slice(-2)).toEqual(['<pad>', '<unk>']);
    expect(t.decode(t.encode('The cat sat (ever).'))).toBe('the cat sat (ever).');
    expect(t.decode(t.encode('the bird sat'))).toBe('the <unk> sat');
  });

  it('drops punctuation or keeps it attached, and keeps case on request', () => {
    const drop = fitTokenizer(corpus, { type: 'word', punctuation: 'drop', lowercase: false });
    expect(drop.toJSON().vocab).not.toContain('.');
    expect(drop.toJSON().vocab).toContain('The');
    expect(drop.decode(drop.encode('The cat, sat.'))).toBe('The cat sat');
    const keep = fitTokenizer(corpus, { type: 'word', punctuation: 'keep' });
    expect(keep.toJSON().vocab).toContain('sat.');
    expect(keep.toJSON().vocab).toContain('(ever).');
  });

  it('applies minCount and maxVocabSize', () => {
    const t = fitTokenizer(corpus, { type: 'word', minCount: 2, specials: ['<unk>'] });
    expect(t.toJSON().vocab).toEqual(['.', 'the', 'a', 'cat', 'dog', 'sat', '<unk>']);
    const m = fitTokenizer(corpus, { type: 'word', maxVocabSize: 4, specials: ['<unk>'] });
    expect(m.vocabSize).toBe(4);
    expect(m.toJSON().vocab).toEqual(['.', 'the', 'a', '<unk>']);
    expectCode(() => fitTokenizer(corpus, { type: 'word', minCount: 0 }), 'ERR_RNNKIT_RANGE', /minCount.*0/, RangeError);
    expectCode(() => fitTokenizer(corpus, { type: 'word', minCount: 1.5 }), 'ERR_RNNKIT_RANGE', /minCount.*1\.5/);
    expectCode(() => fitTokenizer(corpus, { type: 'word', maxVocabSize: '9' as unknown as number }), 'ERR_RNNKIT_TYPE', /maxVocabSize/, TypeError);
    expectCode(() => fitTokenizer(corpus, { type: 'word', minCount: 10 }), 'ERR_RNNKIT_EMPTY', /minCount = 10/);
    expectCode(() => fitTokenizer('  ', { type: 'word' }), 'ERR_RNNKIT_EMPTY');
  });

  it('names an unknown word and its code-point position', () => {
    const t = fitTokenizer('a b 😀', { type: 'word' });
    expectCode(() => t.encode('😀 a zebra'), 'ERR_RNNKIT_VOCAB', /word "zebra" at position 4/);
  });

  it('streams: encoder holds back partial words, decoder pieces join to decode', () => {
    const t = fitTokenizer(corpus, { type: 'word', specials: ['<unk>'] });
    const enc = t.streamEncoder();
    const pieces = ['The c', 'at s', 'at. The', ' dog', ''];
    const ids = [...pieces.flatMap((p) => [...enc.push(p)]), ...enc.end()];
    expect(ids).toEqual([...t.encode(pieces.join(''))]);
    const dec = t.streamDecoder();
    const text = ids.map((i) => dec.push([i])).join('') + dec.end();
    expect(text).toBe(t.decode(ids));
    expect(text).toBe('the cat sat. the dog');
    const f = createTokenizerFitter({ type: 'word' });
    pieces.forEach((p) => f.push(p));
    expect(f.finish().toJSON()).toEqual(fitTokenizer(pieces.join(''), { type: 'word' }).toJSON());
  });
});

suite('byte tokenizer', () => {
  it('encodes UTF-8 bytes and decodes them', () => {
    const t = fitTokenizer('', { type: 'byte', specials: ['<bos>', '<eos>'] });
    expect(t.vocabSize).toBe(258);
    const ids = t.encode('né😀', { addBos: true, addEos: true });
    expect([...ids]).toEqual([256, 110, 0xc3, 0xa9, 0xf0, 0x9f, 0x98, 0x80, 257]);
    expect(t.decode(ids)).toBe('<bos>né😀<eos>');
    expect(t.decode(ids, { skipSpecials: true })).toBe('né😀');
    expect(t.idToToken(0x41)).toBe('<0x41>');
    expect(t.tokenToId('<0xC3>')).toBe(0xc3);
    expect(t.tokenToId('<eos>')).toBe(257);
    expect(t.tokenToId('x')).toBeUndefined();
    expect(t.decode(t.encode(zh.slice(0, 3000)))).toBe(zh.slice(0, 3000));
  });

  it('stream decoder never splits a multi-byte character', () => {
    const t = tokenizerFromJSON({ type: 'byte' });
    const ids = t.encode('a😀é');
    const dec = t.streamDecoder();
    const pieces = [...ids].map((i) => dec.push([i]));
    expect(pieces).toEqual(['a', '', '', '', '😀', '', 'é']);
    expect(dec.end()).toBe('');
    const cut = t.streamDecoder();
    expect(cut.push([0xf0, 0x9f])).toBe('');
    expect(cut.end()).toBe('\uFFFD');
    expectCode(() => t.decode([256]), 'ERR_RNNKIT_RANGE', /ids\[0\].*\[0, 255\].*256/);
  });
});

suite('JSON form', () => {
  const roundTrip = (t: Tokenizer) => {
    const back = tokenizerFromJSON(JSON.stringify(t));
    expect(back.toJSON()).toEqual(t.toJSON());
    return back;
  };

  it('writes the documented rich form and reads it back for all kinds', () => {
    const c = fitTokenizer('ab😀', { type: 'char', specials: ['<pad>', '<unk>'] });
    expect(c.toJSON()).toEqual({ type: 'char', version: 1, vocab: ['a', 'b', '😀', '<pad>', '<unk>'], specials: { '<pad>': 3, '<unk>': 4 }, unknown: 'unk' });
    expect([...roundTrip(c).encode('a?')]).toEqual([0, 4]);
    const w = fitTokenizer('Hi there, hi!', { type: 'word', punctuation: 'drop', specials: ['<unk>'] });
    const w2 = roundTrip(w);
    expect(w2.toJSON().punctuation).toBe('drop');
    expect([...w2.encode('HI you')]).toEqual([...w.encode('hi you')]);
    const b = roundTrip(tokenizerFromJSON({ type: 'byte', specials: { '<eos>': 257, '<pad>': 256 } }));
    expect(b.vocabSize).toBe(258);
    expect(b.decode([104, 256])).toBe('h<pad>');
  });

  it('rejects truncated or invalid JSON naming the problem', () => {
    const bad: [unknown, RegExp][] = [
      ['{"type": "char", "vocab": ["a", "b"', /not valid JSON/],
      ['[1]', /expected an object/],
      ['{"vocab": ["a"]}', /"type"/],
      ['{"type": "bpe", "vocab": ["a"]}', /"type".*"bpe"/],
      ['{"type": "char", "version": 2, "vocab": ["a"]}', /"version".*2/],
      ['{"type": "char"}', /"vocab"/],
      ['{"type": "char", "vocab": []}', /"vocab": is empty/],
      ['{"type": "char", "vocab": ["a", 3]}', /"vocab"\[1\]/],
      ['{"type": "char", "vocab": ["a", "ab"]}', /"vocab"\[1\].*one code point/],
      ['{"type": "char", "vocab": ["a", "a"]}', /"vocab"\[1\].*repeats/],
      ['{"type": "char", "vocab": ["a", "<pad>"]}', /"vocab"\[1\].*special/],
      ['{"type": "char", "vocab": ["a", "<pad>"], "specials": {"<pad>": 0}}', /"<pad>".*vocab\[0\]/],
      ['{"type": "char", "vocab": ["a", "<pad>"], "specials": {"<pad>": 5}}', /"<pad>".*5/],
      ['{"type": "char", "vocab": ["a", "<sep>"], "specials": {"<sep>": 1}}', /unknown special.*"<sep>"/],
      ['{"type": "char", "vocab": ["a"], "unknown": "unk"}', /"unknown".*<unk>/],
      ['{"type": "char", "vocab": ["a"], "lowercase": true}', /"lowercase"/],
      ['{"type": "word", "vocab": ["a b"]}', /"vocab"\[0\].*whitespace/],
      ['{"type": "word", "vocab": ["a"], "punctuation": "strip"}', /"punctuation".*"strip"/],
      ['{"type": "word", "vocab": ["a"], "lowercase": "yes"}', /"lowercase"/],
      ['{"type": "byte", "vocab": ["a"]}', /"vocab".*byte/],
      ['{"type": "byte", "specials": {"<pad>": 257}}', /"<pad>".*\[256, 256\].*257/],
      ['{"type": "byte", "specials": []}', /"specials"/],
    ];
    for (const [json, re] of bad) expectCode(() => tokenizerFromJSON(json as string), 'ERR_RNNKIT_FORMAT', re);
    expectCode(() => tokenizerFromJSON(42 as unknown as string), 'ERR_RNNKIT_TYPE', /json.*42/, TypeError);
  });
});

suite('word tokenizer: digits and ideographs one token each', () => {
  const texts = ['thirty-seven thousand two hundred one', '37201', '一万一千七百八十七', '〇 and 3亿'];
  const options: TokenizerOptions = { type: 'word', punctuation: 'keep', lowercase: false, splitDigits: true, splitCjk: true, specials: ['<bos>', '<eos>'] };
  const tok = fitTokenizer(texts, options);
  const tokens = (t: Tokenizer, s: string) => [...t.encode(s)].map((id) => t.idToToken(id));

  it('splits digit runs and ideographs, keeps hyphenated words whole, and decodes back without spaces between them', () => {
    expect(tokens(tok, '37201')).toEqual(['3', '7', '2', '0', '1']);
    expect(tokens(tok, 'thirty-seven thousand two hundred one')).toEqual(['thirty-seven', 'thousand', 'two', 'hundred', 'one']);
    expect(tokens(tok, '一万一千七百八十七')).toEqual([...'一万一千七百八十七']);
    expect(tokens(tok, '〇 and 3亿')).toEqual(['〇', 'and', '3', '亿']);
    for (const t of texts) expect(tok.decode(tok.encode(t))).toBe(t);
    // Adjacent digits of two numbers join: the splits trade that for a vocabulary of ten digits.
    expect(tok.decode(tok.encode('3 7'))).toBe('37');
    // The streamed form gives the same ids, wherever the pieces cut the text.
    const enc = tok.streamEncoder();
    const ids = [...enc.push('thirty-seven 37'), ...enc.push('201 一万'), ...enc.end()];
    expect(ids).toEqual([...tok.encode('thirty-seven 37201 一万')]);
  });

  it('keeps the splits in its JSON form (written only when on) and refuses bad values', () => {
    const json = tok.toJSON();
    expect(json).toMatchObject({ splitDigits: true, splitCjk: true, punctuation: 'keep', lowercase: false });
    const back = tokenizerFromJSON(JSON.stringify(json));
    expect([...back.encode('37201')]).toEqual([...tok.encode('37201')]);
    expect(back.decode(back.encode('一万一千'))).toBe('一万一千');
    const plain = fitTokenizer(['one 12'], { type: 'word' });
    expect(plain.toJSON()).not.toHaveProperty('splitDigits');
    expect(tokens(plain, 'one 12')).toEqual(['one', '12']);
    expectCode(() => tokenizerFromJSON({ ...json, splitDigits: 'yes' as unknown as boolean }), 'ERR_RNNKIT_FORMAT', /"splitDigits": expected a boolean/);
    expectCode(() => tokenizerFromJSON({ type: 'char', vocab: ['a'], splitCjk: true }), 'ERR_RNNKIT_FORMAT', /"splitCjk": only a word tokenizer/);
    expectCode(() => fitTokenizer(['a'], { type: 'word', splitDigits: 1 as unknown as boolean }), 'ERR_RNNKIT_TYPE', /options\.splitDigits/);
    expectCode(() => fitTokenizer(['a'], { type: 'char', splitDigits: true } as never), 'ERR_RNNKIT_UNKNOWN_OPTION', /splitDigits/);
  });
});
