/**
 * Streamed corpora: files read in bounded chunks (cut at character boundaries), encoded chunk by
 * chunk into the engine's compact ids; the same windows and batches as the in-memory path;
 * invalid UTF-8 refused with the file and the byte offset unless `lossy`.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLanguageModel, fitTokenizer, LabelledDataset, readJSONLRecords, TextCorpus, type TextCorpusOptions } from '../src/index';
import { native } from '../src/native';

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rnnkit-streamed-'));
});
afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** Writes `content` to a new file in the temporary directory. */
function file(name: string, content: string | Buffer): string {
  const p = path.join(tmp, name);
  fs.writeFileSync(p, content);
  return p;
}

/** Every batch of both splits over two epochs. */
function allBatches(c: TextCorpus): unknown[] {
  const out: unknown[] = [];
  for (const split of ['train', 'validation'] as const) for (const epoch of [0, 1]) for (const b of c.batches(split, epoch)) out.push({ split, epoch, ...b });
  return out;
}

/** Runs `f`, expecting an error of class `cls` with `code` whose message matches `re`. */
async function expectCode(f: () => unknown, cls: ErrorConstructor, code: string, re: RegExp): Promise<Error> {
  let caught: unknown;
  try {
    await f();
  } catch (e) {
    caught = e;
  }
  expect(caught, 'expected an error').toBeInstanceOf(cls);
  expect((caught as { code: string }).code).toBe(code);
  expect((caught as Error).message).toMatch(re);
  return caught as Error;
}

// 2-, 3- and 4-byte characters at every offset against 4- and 5-byte chunks.
const mixed = 'añb€c😀d\nçé🙂 ünïcödé wörds, 中文字符 and more text.\n'.repeat(12);

describe('streamed TextCorpus', () => {
  it('gives the same batches as the in-memory path with tiny chunks splitting characters', async () => {
    const p = file('mixed.txt', mixed);
    const variants: Omit<TextCorpusOptions, 'tokenizer'>[] = [
      { seqLen: 7, batchSize: 3, validation: 0.2, seed: 5 },
      { seqLen: 5, batchSize: 4, stride: 3, last: 'keep', shuffle: false },
      { seqLen: 6, batchSize: 3, tbptt: true, validation: 0.1 },
      { seqLen: 4, batchSize: 5, last: 'pad', tokenizerOptions: { type: 'char', specials: ['<pad>'] } },
      { seqLen: 4, batchSize: 2, tokenizerOptions: { type: 'word', specials: ['<unk>'] }, validation: 0.25 },
      { seqLen: 6, batchSize: 2, tokenizerOptions: { type: 'byte' } },
    ];
    for (const options of variants) {
      const inMemory = TextCorpus.fromString(mixed, options);
      for (const chunkSize of [4, 5, 1 << 20]) {
        const streamed = await TextCorpus.fromFile(p, { ...options, chunkSize });
        expect(streamed.tokenizer.toJSON()).toEqual(inMemory.tokenizer.toJSON());
        expect(streamed.numTokens('train')).toBe(inMemory.numTokens('train'));
        expect(streamed.numTokens('validation')).toBe(inMemory.numTokens('validation'));
        expect(allBatches(streamed)).toEqual(allBatches(inMemory));
      }
    }
  });

  it('joins several files with a blank line, as one text', async () => {
    const a = file('a.txt', 'first file ñ\n');
    const b = file('b.txt', 'second 😀 file');
    const options = { seqLen: 4, batchSize: 2, seed: 1 };
    const streamed = await TextCorpus.fromFiles([a, b], { ...options, chunkSize: 4 });
    const joined = TextCorpus.fromString('first file ñ\n\n\nsecond 😀 file', options);
    expect(streamed.tokenizer.toJSON()).toEqual(joined.tokenizer.toJSON());
    expect(allBatches(streamed)).toEqual(allBatches(joined));
    await expectCode(() => TextCorpus.fromFiles([], options), TypeError, 'ERR_RNNKIT_TYPE', /^paths: expected a non-empty array/);
    await expectCode(() => TextCorpus.fromFiles([a, path.join(tmp, 'none.txt')], options), Error, 'ERR_RNNKIT_IO', /^paths\[1\]: .*none\.txt/);
  });

  it('stores ids in the narrowest width the vocabulary allows', () => {
    const chars = TextCorpus.fromString(mixed, { seqLen: 4, batchSize: 2 });
    expect(chars.bytesPerToken).toBe(1);
    const words = Array.from({ length: 400 }, (_, i) => `w${i}`).join(' ');
    const wide = TextCorpus.fromString(words, { seqLen: 4, batchSize: 2, tokenizerOptions: { type: 'word' } });
    expect(wide.tokenizer.vocabSize).toBeGreaterThan(256);
    expect(wide.bytesPerToken).toBe(2);
    expect(Array.from(wide.trainTokens())).toEqual(Array.from(wide.tokenizer.encode(words)));
  });

  it("refuses ids outside the buffer's vocabulary, naming their position in the whole stream", () => {
    const buffer = new native.NativeTokenBuffer(10);
    buffer.push(new Int32Array([1, 2, 3]));
    let caught: (Error & { code?: string }) | undefined;
    try {
      buffer.push(new Int32Array([4, 12]));
    } catch (e) {
      caught = e as Error;
    }
    expect(caught).toBeInstanceOf(RangeError);
    expect(caught?.code).toBe('ERR_RNNKIT_RANGE');
    expect(caught?.message).toMatch(/^tokens: id 12 at position 4 is outside the vocabulary \[0, 10\)/);
    expect(buffer.length).toBe(3);
  });

  it('evaluates a file streamed exactly as the text in memory', async () => {
    const p = file('eval.txt', mixed);
    const tokenizer = fitTokenizer(mixed, { type: 'char' });
    const model = createLanguageModel({ tokenizer, hiddenSize: 8, embedDim: 4, seed: 3 });
    const whole = await model.evaluate(mixed, { chunk: 17 });
    for (const chunkSize of [4, 7, 1 << 20]) expect(await model.evaluateFile(p, { chunk: 17, chunkSize })).toEqual(whole);
    await expectCode(() => model.evaluateFile(p, { chunkSize: 4, bogus: 1 } as object), TypeError, 'ERR_RNNKIT_UNKNOWN_OPTION', /bogus/);
    await expectCode(() => model.evaluateFile(file('one.txt', 'a')), RangeError, 'ERR_RNNKIT_EMPTY', /^path: .*one\.txt.* 1 tokens/);
  });
});

describe('invalid UTF-8 in a corpus', () => {
  const options = { seqLen: 2, batchSize: 1 };
  const cases: [string, Buffer, number][] = [
    ['a stray continuation byte', Buffer.from([0x61, 0x62, 0x80, 0x63, 0x64]), 2],
    ['a byte that is never UTF-8', Buffer.concat([Buffer.from('héllo wörld '), Buffer.from([0xff]), Buffer.from(' more')]), 14],
    ['an overlong form', Buffer.concat([Buffer.from('abcdefgh'), Buffer.from([0xc0, 0xaf]), Buffer.from('ij')]), 8],
    ['a surrogate', Buffer.concat([Buffer.from('abcdefg'), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('xyz')]), 7],
    ['a character cut by the end of the file', Buffer.concat([Buffer.from('abcdef€'), Buffer.from([0xe2, 0x82])]), 9],
    ['a 4-byte lead followed by text', Buffer.concat([Buffer.from('abcdefghij'), Buffer.from([0xf0, 0x41, 0x42, 0x43])]), 10],
  ];

  it('is a TypeError naming the file and the byte offset, at any chunk size', async () => {
    for (const [what, bytes, offset] of cases) {
      const p = file(`bad-${offset}.txt`, bytes);
      for (const chunkSize of [4, 5, 1 << 20]) {
        const e = await expectCode(
          () => TextCorpus.fromFile(p, { ...options, chunkSize }),
          TypeError,
          'ERR_RNNKIT_ENCODING',
          new RegExp(`^path: invalid UTF-8 at byte ${offset} \\(0x[0-9a-f]{2}\\) of ".*bad-${offset}\\.txt"; .*lossy`),
        );
        expect((e as Error & { offset?: number }).offset, what).toBe(offset);
      }
    }
    const good = file('good.txt', 'abcdefgh');
    const bad = file('bad-valid.txt', cases[0][1]);
    await expectCode(
      () => TextCorpus.fromFile(good, { ...options, validation: { file: bad } }),
      TypeError,
      'ERR_RNNKIT_ENCODING',
      /^options\.validation\.file: invalid UTF-8 at byte 2/,
    );
    const model = createLanguageModel({ tokenizer: fitTokenizer('abcd', { type: 'char' }), hiddenSize: 4, embedDim: 2 });
    await expectCode(() => model.evaluateFile(bad), TypeError, 'ERR_RNNKIT_ENCODING', /^path: invalid UTF-8 at byte 2/);
  });

  it('becomes U+FFFD with lossy: true, as decoding the whole file does', async () => {
    for (const [, bytes, offset] of cases) {
      const p = file(`lossy-${offset}.txt`, bytes);
      const expected = TextCorpus.fromString(new TextDecoder().decode(bytes), options);
      expect(expected.tokenizer.tokenToId('\uFFFD')).toBeDefined();
      for (const chunkSize of [4, 5, 1 << 20]) {
        const c = await TextCorpus.fromFile(p, { ...options, chunkSize, lossy: true });
        expect(c.tokenizer.toJSON()).toEqual(expected.tokenizer.toJSON());
        expect(Array.from(c.trainTokens())).toEqual(Array.from(expected.trainTokens()));
      }
    }
    await expectCode(
      () => TextCorpus.fromFile(file('x.txt', 'abcdef'), { ...options, lossy: 1 as unknown as boolean }),
      TypeError,
      'ERR_RNNKIT_TYPE',
      /options\.lossy/,
    );
  });
});

describe('invalid UTF-8 in the data files of classify, tag and regress', () => {
  // The bad byte is on line 3, at byte `at` of the file.
  const lines = ['{"text": "fine one", "label": "a"}', '{"text": "fine two", "label": "b"}'];
  const head = Buffer.from(lines.join('\n') + '\n{"text": "bro');
  const at = head.length;
  const jsonl = Buffer.concat([head, Buffer.from([0xff]), Buffer.from('ken", "label": "a"}\r\n{"text": "last", "label": "b"}\n')]);
  const csvHead = Buffer.from('text,label\nfine one,a\r\nbro');
  const csv = Buffer.concat([csvHead, Buffer.from([0xc0, 0xaf]), Buffer.from('ken,a\nlast,b\n')]);

  it('is a TypeError naming the file, the byte offset and the line; lossy: true reads it with U+FFFD', async () => {
    const j = file('bad-rows.jsonl', jsonl);
    const e = (await expectCode(
      () => LabelledDataset.fromJSONL(j, { batchSize: 2 }),
      TypeError,
      'ERR_RNNKIT_ENCODING',
      new RegExp(`^path: invalid UTF-8 at byte ${at} \\(0xff\\) of ".*bad-rows\\.jsonl" line 3; .*lossy`),
    )) as Error & { offset?: number; line?: number };
    expect([e.offset, e.line]).toEqual([at, 3]);
    const lossy = await LabelledDataset.fromJSONL(j, { batchSize: 2, lossy: true, tokenizerOptions: { type: 'char', specials: ['<pad>', '<unk>'] } });
    expect(lossy.size('train') + lossy.size('validation')).toBe(4);
    expect(lossy.tokenizer.tokenToId('\uFFFD')).toBeDefined();

    const c = file('bad-rows.csv', csv);
    await expectCode(
      () => LabelledDataset.fromCSV(c, { batchSize: 2 }),
      TypeError,
      'ERR_RNNKIT_ENCODING',
      new RegExp(`^path: invalid UTF-8 at byte ${csvHead.length} \\(0xc0\\) of ".*bad-rows\\.csv" line 3; `),
    );
    const fromCsv = await LabelledDataset.fromCSV(c, { batchSize: 2, lossy: true, tokenizerOptions: { type: 'char', specials: ['<pad>', '<unk>'] } });
    expect(fromCsv.size('train') + fromCsv.size('validation')).toBe(3);
    await expectCode(() => LabelledDataset.fromCSV(c, { batchSize: 2, lossy: 'yes' as unknown as boolean }), TypeError, 'ERR_RNNKIT_TYPE', /options\.lossy/);
  });

  it('readJSONLRecords names lines as before across LF, CRLF and CR, and pieces of 1 MiB', async () => {
    const big = 'x'.repeat((1 << 20) - 20);
    const p = file('lines.jsonl', `{"a": 1}\r\n\n{"a": 2}\r{"a": 3}\n{"b": "${big}"}\r\n{"a": 4}`);
    const seen: string[] = [];
    for await (const { record, where } of readJSONLRecords(p)) seen.push(`${where.replace(/^.*" /, '')}: ${Object.keys(record)[0]}`);
    expect(seen).toEqual(['line 1: a', 'line 3: a', 'line 4: a', 'line 5: b', 'line 6: a']);
  });
});
