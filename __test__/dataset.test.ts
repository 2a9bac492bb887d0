import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { afterAll, beforeAll, describe as suite, expect, it } from 'vitest';
import { DenseDataset, FeatureStats, IGNORE_INDEX, LabelledDataset, parseCSV, TaggedDataset, TextCorpus } from '../src/dataset';
import { fitTokenizer } from '../src/tokenizer';

const root = path.join(__dirname, '..');
const zh = fs.readFileSync(path.join(root, 'data/zh-classics.txt'), 'utf8');
let tmp: string;

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rnnkit-dataset-'));
});
afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** Whether two Int32Arrays hold the same ids (fast for millions of ids). */
function sameIds(a: Int32Array, b: Int32Array): boolean {
  return a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

/** Runs `f` (sync or async), expecting an error with `code` whose message matches `re`. */
async function expectCode(f: () => unknown, code: string, re?: RegExp): Promise<void> {
  let caught: unknown;
  try {
    await f();
  } catch (e) {
    caught = e;
  }
  expect(caught, 'expected an error').toBeInstanceOf(Error);
  expect((caught as { code: string }).code).toBe(code);
  if (re) expect((caught as Error).message).toMatch(re);
}

suite('TextCorpus', () => {
  const text = 'hello world, this is a small corpus for windows.\n'.repeat(20);

  it('cuts windows of seqLen + 1 with a stride; targets are inputs shifted by one', () => {
    const c = TextCorpus.fromString(text, { seqLen: 8, stride: 5, batchSize: 4, shuffle: false });
    const tokens = c.trainTokens();
    expect(tokens.length).toBe(text.length);
    const [seqLen, numWindows] = [c.seqLen, c.numWindows()];
    expect(seqLen).toBe(8);
    expect(numWindows).toBe(Math.floor((tokens.length - 9) / 5) + 1);
    expect(c.numBatches()).toBe(Math.floor(numWindows / 4));
    let k = 0;
    for (const batch of c.batches()) {
      expect(batch.batchSize).toBe(4);
      expect(batch.inputs.length).toBe(32);
      for (let r = 0; r < 4; r++, k++) {
        const start = k * 5;
        expect([...batch.inputs.subarray(r * 8, r * 8 + 8)]).toEqual([...tokens.subarray(start, start + 8)]);
        expect([...batch.targets.subarray(r * 8, r * 8 + 8)]).toEqual([...tokens.subarray(start + 1, start + 9)]);
      }
    }
    expect(k).toBe(c.numBatches() * 4);
    expect(c.tokenizer.decode(tokens)).toBe(text);
  });

  it('shuffles windows deterministically per seed and epoch, covering each window once', () => {
    const opts = { seqLen: 10, batchSize: 3, seed: 9 };
    const a = TextCorpus.fromString(text, opts);
    const b = TextCorpus.fromString(text, opts);
    expect([...a.windowOrder('train', 2)]).toEqual([...b.windowOrder('train', 2)]);
    expect([...a.windowOrder('train', 0)]).not.toEqual([...a.windowOrder('train', 1)]);
    expect([...a.windowOrder()].sort((x, y) => x - y)).toEqual([...Array(a.numWindows()).keys()]);
    const other = TextCorpus.fromString(text, { ...opts, seed: 10 });
    expect([...other.windowOrder()]).not.toEqual([...a.windowOrder()]);
    const batchesA = [...a.batches('train', 3)].map((x) => [...x.inputs]);
    const batchesB = [...b.batches('train', 3)].map((x) => [...x.inputs]);
    expect(batchesA).toEqual(batchesB);
    // Batch rows follow windowOrder.
    const order = a.windowOrder('train', 3);
    const first = [...a.batches('train', 3)][0];
    expect([...first.inputs.subarray(10, 20)]).toEqual([...a.trainTokens().subarray(order[1] * 10, order[1] * 10 + 10)]);
  });

  it('splits off the tail as validation, or takes explicit validation text', () => {
    const c = TextCorpus.fromString(text, { seqLen: 10, batchSize: 2, validation: 0.25 });
    const n = text.length;
    expect(c.validationTokens().length).toBe(Math.floor(n * 0.25));
    expect(c.trainTokens().length + c.validationTokens().length).toBe(n);
    expect(c.tokenizer.decode(c.validationTokens())).toBe(text.slice(n - Math.floor(n * 0.25)));
    expect([...c.windowOrder('validation', 4)]).toEqual([...Array(c.numWindows('validation')).keys()]);
    const e = TextCorpus.fromString(text, { seqLen: 10, batchSize: 2, validation: { text: 'zebra hello world' } });
    expect(e.tokenizer.decode(e.validationTokens())).toBe('zebra hello world');
    expect(e.trainTokens().length).toBe(n);
    expect(e.numBatches('validation')).toBe(0);
  });

  it('pads the last batch with the pad id and ignored targets', () => {
    const c = TextCorpus.fromString('abcdefghijklmnopqrstuvwxy', {
      seqLen: 4,
      batchSize: 4,
      last: 'pad',
      shuffle: false,
      tokenizerOptions: { type: 'char', specials: ['<pad>'] },
    });
    expect(c.numWindows()).toBe(6);
    expect(c.numBatches()).toBe(2);
    const [, second] = [...c.batches()];
    expect(second.rows).toBe(2);
    const pad = c.tokenizer.specials['<pad>']!;
    expect([...second.inputs.subarray(8)]).toEqual(new Array(8).fill(pad));
    expect([...second.targets.subarray(8)]).toEqual(new Array(8).fill(IGNORE_INDEX));
    expect(c.tokenizer.decode(second.inputs.subarray(4, 8))).toBe('uvwx');
  });

  it('rejects bad options and too-short corpora', async () => {
    await expectCode(() => TextCorpus.fromString('', { seqLen: 4, batchSize: 1 }), 'ERR_RNNKIT_EMPTY', /text/);
    await expectCode(() => TextCorpus.fromString(7 as unknown as string, { seqLen: 4, batchSize: 1 }), 'ERR_RNNKIT_TYPE', /text.*7/);
    await expectCode(() => TextCorpus.fromString('abc', { seqLen: 4, batchSize: 1 }), 'ERR_RNNKIT_EMPTY', /3 tokens.*seqLen \+ 1 = 5/);
    await expectCode(() => TextCorpus.fromString(text, { seqLen: 2.5, batchSize: 1 }), 'ERR_RNNKIT_RANGE', /options\.seqLen.*2\.5/);
    await expectCode(() => TextCorpus.fromString(text, { seqLen: 4, batchSize: 0 }), 'ERR_RNNKIT_RANGE', /options\.batchSize.*0/);
    await expectCode(() => TextCorpus.fromString(text, { seqLen: 4, batchSize: 1, stride: -1 }), 'ERR_RNNKIT_RANGE', /options\.stride/);
    await expectCode(() => TextCorpus.fromString(text, { seqLen: 4, batchSize: 1, validation: 1 }), 'ERR_RNNKIT_RANGE', /options\.validation/);
    await expectCode(() => TextCorpus.fromString(text, { seqLen: 4, batchSize: 10000 }), 'ERR_RNNKIT_EMPTY', /batchSize/);
    await expectCode(() => TextCorpus.fromString(text, { seqLen: 4, batchSize: 3, last: 'pad' }), 'ERR_RNNKIT_CONFIG', /padId/);
    await expectCode(() => TextCorpus.fromString(text, { seqLen: 4, batchSize: 3, last: 'fill' as 'pad' }), 'ERR_RNNKIT_TYPE', /options\.last/);
    await expectCode(() => TextCorpus.fromString(text, { seqLen: 4, batchSize: 3, tokenizer: {} as never }), 'ERR_RNNKIT_TYPE', /options\.tokenizer/);
    await expectCode(
      () => TextCorpus.fromString(text, { seqLen: 4, batchSize: 1, validation: { text: 'abc' } }),
      'ERR_RNNKIT_EMPTY',
      /validation text has 3 tokens/,
    );
    const t = fitTokenizer('abc', { type: 'char', unknown: 'error' });
    await expectCode(() => TextCorpus.fromString('abcabcxabc', { seqLen: 2, batchSize: 1, tokenizer: t }), 'ERR_RNNKIT_VOCAB', /^text: .*"x".*position 6/);
    const c = TextCorpus.fromString(text, { seqLen: 4, batchSize: 2 });
    await expectCode(() => c.batches('test' as 'train').next(), 'ERR_RNNKIT_TYPE', /split.*"test"/);
    await expectCode(() => c.batches('train', -1).next(), 'ERR_RNNKIT_RANGE', /epoch/);
  });

  it('streams a file larger than the chunk size with the same ids as the in-memory path', async () => {
    // ~2.9 MB of text with Chinese (3-byte) and emoji (4-byte) characters across 4 KiB chunks.
    const body = (zh + '🙂 emoji 😀\n').repeat(10);
    const file = path.join(tmp, 'big.txt');
    fs.writeFileSync(file, body);
    expect(fs.statSync(file).size).toBeGreaterThan(2_000_000);
    const opts = { seqLen: 64, batchSize: 16, validation: 0.1, seed: 3 };
    const fromFile = await TextCorpus.fromFile(file, { ...opts, chunkSize: 4096 });
    const fromString = TextCorpus.fromString(body, opts);
    expect(fromFile.tokenizer.toJSON()).toEqual(fromString.tokenizer.toJSON());
    expect(fromFile.trainTokens().length).toBeGreaterThan(800_000);
    expect(sameIds(fromFile.trainTokens(), fromString.trainTokens())).toBe(true);
    expect(sameIds(fromFile.validationTokens(), fromString.validationTokens())).toBe(true);
    expect(fromFile.tokenizer.decode(fromFile.trainTokens()) + fromFile.tokenizer.decode(fromFile.validationTokens())).toBe(body);
    expect(fromFile.batches().next().value).toEqual(fromString.batches().next().value);
    // A given word tokenizer streams across chunks too.
    const words = fitTokenizer(body.slice(0, 200_000), { type: 'word', specials: ['<unk>'] });
    const w1 = await TextCorpus.fromFile(file, { seqLen: 16, batchSize: 4, tokenizer: words, chunkSize: 1000 });
    expect(sameIds(w1.trainTokens(), words.encode(body))).toBe(true);
    expect(sameIds(w1.trainTokens(), fromFile.trainTokens())).toBe(false);
  });

  it('reads an explicit validation file and reports file errors', async () => {
    const train = path.join(tmp, 'train.txt');
    const valid = path.join(tmp, 'valid.txt');
    fs.writeFileSync(train, text);
    fs.writeFileSync(valid, 'hello windows, hello corpus!');
    const c = await TextCorpus.fromFile(train, { seqLen: 8, batchSize: 2, validation: { file: valid }, chunkSize: 16 });
    expect(c.tokenizer.decode(c.validationTokens())).toBe('hello windows, hello corpus!');
    expect(c.tokenizer.tokenToId('!')).toBeDefined();
    await expectCode(() => TextCorpus.fromFile(path.join(tmp, 'missing.txt'), { seqLen: 8, batchSize: 2 }), 'ERR_RNNKIT_IO', /path.*missing\.txt/);
    await expectCode(() => TextCorpus.fromFile(tmp, { seqLen: 8, batchSize: 2 }), 'ERR_RNNKIT_IO', /not a file/);
    const empty = path.join(tmp, 'empty.txt');
    fs.writeFileSync(empty, '');
    await expectCode(() => TextCorpus.fromFile(empty, { seqLen: 8, batchSize: 2 }), 'ERR_RNNKIT_EMPTY', /empty/);
    await expectCode(() => TextCorpus.fromFile(train, { seqLen: 8, batchSize: 2, chunkSize: 1 }), 'ERR_RNNKIT_RANGE', /chunkSize/);
    const t = fitTokenizer('helo wrd', { type: 'char', unknown: 'error' });
    await expectCode(
      () => TextCorpus.fromFile(train, { seqLen: 8, batchSize: 2, tokenizer: t, chunkSize: 8 }),
      'ERR_RNNKIT_VOCAB',
      /train\.txt.*"," .*position 11/,
    );
  });
});

suite('parseCSV', () => {
  it('handles quotes, doubled quotes, delimiters and newlines in fields, CRLF and blank lines', () => {
    const csv = 'text,label\r\n"Hello, ""world""",pos\r\n\r\nplain,neg\n"two\nlines",pos\nlast,neg';
    expect(parseCSV(csv)).toEqual([
      { fields: ['text', 'label'], line: 1 },
      { fields: ['Hello, "world"', 'pos'], line: 2 },
      { fields: ['plain', 'neg'], line: 4 },
      { fields: ['two\nlines', 'pos'], line: 5 },
      { fields: ['last', 'neg'], line: 7 },
    ]);
    expect(parseCSV('a;b\n"";x\n', ';')).toEqual([
      { fields: ['a', 'b'], line: 1 },
      { fields: ['', 'x'], line: 2 },
    ]);
  });

  it('names the line of malformed input', async () => {
    await expectCode(() => parseCSV('a,b\n"open,x\n'), 'ERR_RNNKIT_FORMAT', /line 2: unterminated/);
    await expectCode(() => parseCSV('a,b\nx"y,z'), 'ERR_RNNKIT_FORMAT', /line 2: a quote inside/);
    await expectCode(() => parseCSV('a,b\n"x"y,z'), 'ERR_RNNKIT_FORMAT', /line 2: text after/);
    await expectCode(() => parseCSV('a', '"'), 'ERR_RNNKIT_RANGE', /delimiter/);
  });
});

suite('LabelledDataset', () => {
  const rows = [
    { text: 'good film', label: 'pos' },
    { text: 'bad film', label: 'neg' },
    { text: 'great acting, good plot', label: 'pos' },
    { text: 'awful', label: 'neg' },
    { text: 'fine', label: 'neutral' },
  ];

  it('infers labels, pads to the batch max length with lengths', () => {
    const d = LabelledDataset.fromArray(rows, { batchSize: 2, shuffle: false });
    expect(d.labels).toEqual(['neg', 'neutral', 'pos']);
    expect(d.numBatches()).toBe(3);
    const [b0, , b2] = [...d.batches()];
    expect(b0.seqLen).toBe(2);
    expect([...b0.lengths]).toEqual([2, 2]);
    expect([...b0.labels]).toEqual([2, 0]);
    expect(b2.batchSize).toBe(1);
    const b1 = [...d.batches()][1];
    expect(b1.seqLen).toBe(5);
    expect([...b1.lengths]).toEqual([5, 1]);
    expect([...b1.inputs.subarray(6)]).toEqual([d.padId, d.padId, d.padId, d.padId]);
    expect(d.tokenizer.decode(b1.inputs.subarray(0, 5))).toBe('great acting, good plot');
    const dropped = LabelledDataset.fromArray(rows, { batchSize: 2, last: 'drop' });
    expect(dropped.numBatches()).toBe(2);
  });

  it('checks declared labels, empty texts and lengths, naming the row', async () => {
    await expectCode(() => LabelledDataset.fromArray(rows, { batchSize: 2, labels: ['pos', 'neg'] }), 'ERR_RNNKIT_RANGE', /rows\[4\].*"neutral"/);
    await expectCode(() => LabelledDataset.fromArray([...rows, { text: '', label: 'pos' }], { batchSize: 2 }), 'ERR_RNNKIT_EMPTY', /rows\[5\]: empty text/);
    await expectCode(() => LabelledDataset.fromArray([...rows, { text: 'x', label: 1 }], { batchSize: 2 }), 'ERR_RNNKIT_TYPE', /rows\[5\].*number/);
    await expectCode(() => LabelledDataset.fromArray([{ text: 3 as unknown as string, label: 'a' }], { batchSize: 2 }), 'ERR_RNNKIT_TYPE', /rows\[0\]: text/);
    await expectCode(() => LabelledDataset.fromArray(rows, { batchSize: 2, maxLength: 3 }), 'ERR_RNNKIT_RANGE', /rows\[2\]: 5 tokens.*maxLength = 3/);
    await expectCode(() => LabelledDataset.fromArray([], { batchSize: 2 }), 'ERR_RNNKIT_EMPTY', /no rows/);
    await expectCode(() => LabelledDataset.fromArray('x' as never, { batchSize: 2 }), 'ERR_RNNKIT_TYPE', /rows/);
    await expectCode(() => LabelledDataset.fromArray(rows, { batchSize: 2, labels: ['pos', 'pos'] }), 'ERR_RNNKIT_TYPE', /labels\[1\].*duplicate/);
    const strict = fitTokenizer('good bad film', { type: 'word', specials: ['<pad>'] });
    await expectCode(() => LabelledDataset.fromArray(rows, { batchSize: 2, tokenizer: strict }), 'ERR_RNNKIT_VOCAB', /rows\[2\].*"great"/);
    const noPad = fitTokenizer('good bad film great acting plot awful fine ,', { type: 'word' });
    await expectCode(() => LabelledDataset.fromArray(rows, { batchSize: 2, tokenizer: noPad }), 'ERR_RNNKIT_CONFIG', /padId/);
    const punct = [...rows, { text: '!!!', label: 'pos' }];
    await expectCode(
      () => LabelledDataset.fromArray(punct, { batchSize: 2, tokenizerOptions: { type: 'word', punctuation: 'drop', specials: ['<pad>'] } }),
      'ERR_RNNKIT_EMPTY',
      /rows\[5\].*no tokens/,
    );
    const cut = LabelledDataset.fromArray(rows, { batchSize: 2, maxLength: 3, onTooLong: 'truncate' });
    expect(cut.rowTokens(2).length).toBe(3);
    expect(cut.rowLabel(2)).toBe(2);
  });

  it('splits with a seed: plain and stratified, and fits the tokenizer on training rows only', () => {
    const many = Array.from({ length: 100 }, (_, i) => ({ text: `row number w${i}`, label: i < 80 ? 'a' : 'b' }));
    const s = LabelledDataset.fromArray(many, { batchSize: 8, validation: 0.2, stratify: true, seed: 5 });
    const v = s.rowIndices('validation');
    expect(v.length).toBe(20);
    expect([...v].filter((i) => i >= 80).length).toBe(4);
    expect([...LabelledDataset.fromArray(many, { batchSize: 8, validation: 0.2, stratify: true, seed: 5 }).rowIndices('validation')]).toEqual([...v]);
    expect([...LabelledDataset.fromArray(many, { batchSize: 8, validation: 0.2, stratify: true, seed: 6 }).rowIndices('validation')]).not.toEqual([...v]);
    const p = LabelledDataset.fromArray(many, { batchSize: 8, validation: 0.2, seed: 5 });
    expect(p.size('validation')).toBe(20);
    expect(p.size('train')).toBe(80);
    // A word of a validation row is unknown to the tokenizer fitted on training rows.
    const held = p.rowIndices('validation')[0];
    expect(p.tokenizer.tokenToId(`w${held}`)).toBeUndefined();
    expect(p.rowTokens(held)[2]).toBe(p.tokenizer.specials['<unk>']);
    // Epoch shuffles are deterministic.
    const e1 = [...p.batches('train', 1)].map((b) => [...b.labels, ...b.inputs]);
    const e1b = [...LabelledDataset.fromArray(many, { batchSize: 8, validation: 0.2, seed: 5 }).batches('train', 1)].map((b) => [...b.labels, ...b.inputs]);
    expect(e1).toEqual(e1b);
    expect(e1).not.toEqual([...p.batches('train', 2)].map((b) => [...b.labels, ...b.inputs]));
  });

  it('reads JSONL (the bundled sentiment data) and CSV files', async () => {
    const d = await LabelledDataset.fromJSONL(path.join(root, 'data/sentiment.jsonl'), { batchSize: 32, validation: 0.1, stratify: true, labels: [0, 1] });
    expect(d.labels).toEqual([0, 1]);
    expect(d.size('train') + d.size('validation')).toBe(2382);
    const b = d.batches().next().value!;
    expect(b.inputs.length).toBe(32 * b.seqLen);
    expect(Math.max(...b.lengths)).toBe(b.seqLen);

    const bad = path.join(tmp, 'bad.jsonl');
    fs.writeFileSync(bad, '{"text": "ok", "label": 1}\n\n{"text": "oops", "label": 1\n');
    await expectCode(() => LabelledDataset.fromJSONL(bad, { batchSize: 2 }), 'ERR_RNNKIT_FORMAT', /bad\.jsonl" line 3: not valid JSON/);
    fs.writeFileSync(bad, '{"text": "ok", "label": 1}\n{"text": "no label"}\n');
    await expectCode(() => LabelledDataset.fromJSONL(bad, { batchSize: 2 }), 'ERR_RNNKIT_FORMAT', /line 2: no "label"/);
    fs.writeFileSync(bad, '{"text": "ok", "label": 1}\n{"text": "x", "label": 7}\n');
    await expectCode(() => LabelledDataset.fromJSONL(bad, { batchSize: 2, labels: [0, 1] }), 'ERR_RNNKIT_RANGE', /line 2: label 7/);

    const csv = path.join(tmp, 'rows.csv');
    fs.writeFileSync(csv, 'id,review,stars\n1,"Great, really great",1\n2,Bad,0\n3,"So ""meh""",0\n');
    const c = await LabelledDataset.fromCSV(csv, { batchSize: 2, textColumn: 'review', labelColumn: 'stars', labels: [0, 1], shuffle: false });
    expect(c.labels).toEqual([0, 1]);
    expect(c.rowLabel(0)).toBe(1);
    expect(c.tokenizer.decode(c.rowTokens(2))).toBe('so " meh "');
    const inferred = await LabelledDataset.fromCSV(csv, { batchSize: 2, textColumn: 'review', labelColumn: 'stars' });
    expect(inferred.labels).toEqual(['0', '1']);
    await expectCode(() => LabelledDataset.fromCSV(csv, { batchSize: 2 }), 'ERR_RNNKIT_FORMAT', /options\.textColumn.*"text"/);
    fs.writeFileSync(csv, 'text,label\nfine,a\nshort\n');
    await expectCode(() => LabelledDataset.fromCSV(csv, { batchSize: 2 }), 'ERR_RNNKIT_FORMAT', /rows\.csv.*line 3: 1 fields/);
    fs.writeFileSync(csv, 'text,label\n"open,a\n');
    await expectCode(() => LabelledDataset.fromCSV(csv, { batchSize: 2 }), 'ERR_RNNKIT_FORMAT', /rows\.csv.*line 2: unterminated/);
    await expectCode(() => LabelledDataset.fromCSV(path.join(tmp, 'nope.csv'), { batchSize: 2 }), 'ERR_RNNKIT_IO', /nope\.csv/);
  });
});

suite('TaggedDataset', () => {
  const rows = [
    { ids: [1, 2, 3], tags: ['B', 'I', 'O'] },
    { ids: [4], tags: ['O'] },
    { ids: new Int32Array([5, 6]), tags: ['B', 'O'] },
  ];

  it('pads ids with the pad id and tags with the ignore index', () => {
    const d = TaggedDataset.fromArray(rows, { vocabSize: 10, padId: 0, batchSize: 3, shuffle: false });
    expect(d.tags).toEqual(['B', 'I', 'O']);
    const [b] = [...d.batches()];
    expect(b.seqLen).toBe(3);
    expect([...b.lengths]).toEqual([3, 1, 2]);
    expect([...b.inputs]).toEqual([1, 2, 3, 4, 0, 0, 5, 6, 0]);
    expect([...b.tags]).toEqual([0, 1, 2, 2, IGNORE_INDEX, IGNORE_INDEX, 0, 2, IGNORE_INDEX]);
  });

  it('names the row of bad input', async () => {
    const opts = { vocabSize: 10, padId: 0, batchSize: 2 };
    await expectCode(() => TaggedDataset.fromArray([{ ids: [1, 2], tags: ['O'] }], opts), 'ERR_RNNKIT_SHAPE', /rows\[0\]: 2 ids but 1 tags/);
    await expectCode(() => TaggedDataset.fromArray([rows[0], { ids: [1, 10], tags: ['O', 'O'] }], opts), 'ERR_RNNKIT_RANGE', /rows\[1\]\.ids\[1\].*10/);
    await expectCode(() => TaggedDataset.fromArray([rows[0], { ids: [], tags: [] }], opts), 'ERR_RNNKIT_EMPTY', /rows\[1\]: no tokens/);
    await expectCode(() => TaggedDataset.fromArray(rows, { ...opts, tags: ['B', 'O'] }), 'ERR_RNNKIT_RANGE', /rows\[0\]\.tags\[1\].*"I"/);
    await expectCode(() => TaggedDataset.fromArray(rows, { ...opts, maxLength: 2 }), 'ERR_RNNKIT_RANGE', /rows\[0\]: 3 tokens/);
    await expectCode(() => TaggedDataset.fromArray(rows, { ...opts, padId: 10 }), 'ERR_RNNKIT_RANGE', /options\.padId.*10/);
    await expectCode(() => TaggedDataset.fromArray(rows, { ...opts, vocabSize: 0 }), 'ERR_RNNKIT_RANGE', /options\.vocabSize/);
    await expectCode(() => TaggedDataset.fromArray([{ ids: 'ab' as never, tags: [] }], opts), 'ERR_RNNKIT_TYPE', /rows\[0\]\.ids/);
    const cut = TaggedDataset.fromArray(rows, { ...opts, maxLength: 2, onTooLong: 'truncate', shuffle: false });
    expect([...cut.batches()][0].seqLen).toBe(2);
  });
});

suite('DenseDataset', () => {
  const row = (T: number, I: number, base: number) => Float32Array.from({ length: T * I }, (_, k) => base + k);

  it('pads rows, keeps labels and targets, normalises with training statistics', () => {
    const rows = [row(3, 2, 0), row(1, 2, 10), row(2, 2, 20), row(4, 2, 30)];
    const targets = rows.map((r) => r.map((v) => v * 2));
    const d = DenseDataset.fromRows(rows, { inputSize: 2, batchSize: 2, targets, outputSize: 2, shuffle: false });
    const [b0, b1] = [...d.batches()];
    const [l0] = [...DenseDataset.fromRows(rows, { inputSize: 2, batchSize: 2, labels: [0, 1, 1, 0], shuffle: false }).batches()];
    expect(b0.seqLen).toBe(3);
    expect([...b0.lengths]).toEqual([3, 1]);
    expect([...b0.inputs]).toEqual([0, 1, 2, 3, 4, 5, 10, 11, 0, 0, 0, 0]);
    expect([...l0.labels!]).toEqual([0, 1]);
    expect([...b0.targets!]).toEqual([0, 2, 4, 6, 8, 10, 20, 22, 0, 0, 0, 0]);
    expect(b1.seqLen).toBe(4);
    // Stats over all 10 steps (no validation): feature 0 values.
    const f0 = [0, 2, 4, 10, 20, 22, 30, 32, 34, 36];
    const mean = f0.reduce((a, b) => a + b) / f0.length;
    const std = Math.sqrt(f0.reduce((a, b) => a + (b - mean) ** 2, 0) / f0.length);
    expect(d.stats.mean[0]).toBeCloseTo(mean, 4);
    expect(d.stats.std[0]).toBeCloseTo(std, 4);
    const n = DenseDataset.fromRows(rows, { inputSize: 2, batchSize: 2, normalize: true, shuffle: false });
    expect(n.batches().next().value!.inputs[0]).toBeCloseTo((0 - mean) / std, 5);
    const back = FeatureStats.fromJSON(JSON.parse(JSON.stringify(d.stats)));
    expect(back.apply(new Float32Array([mean, 0]))[0]).toBeCloseTo(0, 5);
    expect(FeatureStats.compute([new Float32Array([5, 5, 5, 5])], 2).std).toEqual(new Float32Array([1, 1]));
  });

  it('computes statistics on the training split only, from a [B,T,I] array', () => {
    const data = Float32Array.from({ length: 10 * 3 * 1 }, (_, k) => Math.floor(k / 3));
    const d = DenseDataset.fromArray(data, [10, 3, 1], { inputSize: 1, batchSize: 4, validation: 0.3, seed: 11 });
    const train = [...d.rowIndices('train')];
    expect(train.length).toBe(7);
    expect(d.stats.mean[0]).toBeCloseTo(train.reduce((a, b) => a + b, 0) / 7, 5);
  });

  it('names row, step and feature of non-finite values, and the row of shape errors', async () => {
    const bad = row(3, 2, 0);
    bad[5] = NaN;
    await expectCode(
      () => DenseDataset.fromRows([row(2, 2, 0), bad], { inputSize: 2, batchSize: 1 }),
      'ERR_RNNKIT_NON_FINITE',
      /rows\[1\]: NaN at step 2, feature 1/,
    );
    const inf = new Float32Array(6);
    inf[2] = Infinity;
    await expectCode(
      () => DenseDataset.fromArray(inf, [2, 1, 3], { inputSize: 3, batchSize: 1 }),
      'ERR_RNNKIT_NON_FINITE',
      /row 0: Infinity at step 0, feature 2/,
    );
    await expectCode(
      () => DenseDataset.fromRows([row(2, 2, 0), row(1, 3, 0)], { inputSize: 2, batchSize: 1 }),
      'ERR_RNNKIT_SHAPE',
      /rows\[1\]: length 3.*inputSize = 2/,
    );
    await expectCode(
      () => DenseDataset.fromRows([row(2, 2, 0), [1, 2] as never], { inputSize: 2, batchSize: 1 }),
      'ERR_RNNKIT_TYPE',
      /rows\[1\].*Float32Array/,
    );
    await expectCode(() => DenseDataset.fromRows([new Float32Array(0)], { inputSize: 2, batchSize: 1 }), 'ERR_RNNKIT_EMPTY', /rows\[0\]: no steps/);
    await expectCode(() => DenseDataset.fromArray(new Float32Array(5), [2, 1, 3], { inputSize: 3, batchSize: 1 }), 'ERR_RNNKIT_SHAPE', /data: length 5/);
    await expectCode(() => DenseDataset.fromArray(new Float32Array(6), [2, 1, 3], { inputSize: 2, batchSize: 1 }), 'ERR_RNNKIT_SHAPE', /dims\[2\]/);
    await expectCode(
      () => DenseDataset.fromRows([row(2, 2, 0)], { inputSize: 2, batchSize: 1, labels: [0, 1] }),
      'ERR_RNNKIT_SHAPE',
      /options\.labels: 2 labels for 1 rows/,
    );
    await expectCode(() => DenseDataset.fromRows([row(2, 2, 0)], { inputSize: 2, batchSize: 1, labels: [-1] }), 'ERR_RNNKIT_RANGE', /options\.labels\[0\]/);
    await expectCode(
      () => DenseDataset.fromRows([row(2, 2, 0)], { inputSize: 2, batchSize: 1, targets: [row(3, 1, 0)], outputSize: 1 }),
      'ERR_RNNKIT_SHAPE',
      /options\.targets\[0\]: 3 steps but rows\[0\] has 2/,
    );
    await expectCode(() => DenseDataset.fromRows([row(2, 2, 0)], { inputSize: 1.5, batchSize: 1 }), 'ERR_RNNKIT_RANGE', /options\.inputSize/);
    await expectCode(() => new FeatureStats(new Float32Array([0]), new Float32Array([0])), 'ERR_RNNKIT_RANGE', /std\[0\]/);
    await expectCode(() => new FeatureStats(new Float32Array([0]), new Float32Array([1, 1])), 'ERR_RNNKIT_SHAPE', /std/);
  });
});
