/**
 * The defaults chosen from the data: `recommendOptions` (the engine's table) and `rnnkit train`
 * without tuning flags, which must use exactly those, say so, and let every flag win.
 * Needs the native engine (`npm run build`).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileCli, root, runCli } from './cli-harness';
import { loadModel, profileTexts, recommendOptions, recommendSeq2SeqOptions } from '../src/index';

const sentimentLines = fs
  .readFileSync(path.join(root, 'data', 'sentiment.jsonl'), 'utf8')
  .trim()
  .split('\n');
const sentimentTexts = sentimentLines.map((l) => (JSON.parse(l) as { text: string }).text);
const chineseLines = fs
  .readFileSync(path.join(root, 'data', 'zh-classics.txt'), 'utf8')
  .split('\n')
  .filter((l) => l.trim().length > 0);

describe('recommendOptions', () => {
  it('English reviews get lower-cased words; Chinese lines get characters', () => {
    const en = recommendOptions('classify', sentimentTexts);
    expect(en).toMatchObject({ tokenizer: 'word', lowercase: true, minCount: 2, cell: 'gru', hiddenSize: 64, bidirectional: true, pooling: 'max' });
    expect(en.monitor).toBe('valAccuracy');
    expect(en.reasons[0]).toMatch(/^word tokenizer/);
    const zh = recommendOptions('classify', chineseLines);
    expect(zh.tokenizer).toBe('char');
    expect(zh.reasons[0]).toMatch(/not space-separated words/);
  });

  it('more data gets a wider model and fewer epochs; language models read forwards with a GRU, the state carried', () => {
    const small = recommendOptions('tag', { rows: 1000, chars: 100_000, distinctChars: 60, words: 0, distinctWords: 0, repeatedWordOccurrences: 0 });
    const large = recommendOptions('tag', { rows: 100_000, chars: 50_000_000, distinctChars: 60, words: 0, distinctWords: 0, repeatedWordOccurrences: 0 });
    expect(large.hiddenSize).toBeGreaterThan(small.hiddenSize);
    expect(large.numLayers).toBe(2);
    expect(large.epochs).toBeLessThan(small.epochs);
    const lm = recommendOptions('language_model', { rows: 1, chars: 600_000, distinctChars: 80, words: 0, distinctWords: 0, repeatedWordOccurrences: 0 });
    expect(lm).toMatchObject({ tokenizer: 'char', cell: 'gru', bidirectional: false, tbptt: true, monitor: 'valLoss', seqLen: 100, epochs: 6 });
    expect(recommendOptions('classify', { rows: 100, chars: 600_000, distinctChars: 80, words: 0, distinctWords: 0, repeatedWordOccurrences: 0 }).tbptt).toBe(
      false,
    );
  });

  it('profiles texts: characters as code points, words lower-cased without punctuation', () => {
    expect(profileTexts(['The cat, the CAT!', '猫'])).toEqual({
      rows: 2,
      chars: 18,
      distinctChars: 12,
      words: 5,
      distinctWords: 3,
      repeatedWordOccurrences: 4,
      // Whitespace runs, case and punctuation kept, digits and ideographs one each.
      pieces: 5,
      distinctPieces: 5,
      repeatedPieceOccurrences: 0,
    });
    expect(profileTexts(['3737 一万一'])).toMatchObject({ pieces: 7, distinctPieces: 4, repeatedPieceOccurrences: 6 });
  });

  it('refuses a bad task, an unknown profile key and a negative count, naming them', () => {
    expect(() => recommendOptions('translate' as never, sentimentTexts)).toThrow(/task: expected/);
    const profile = { rows: 1, chars: 1, distinctChars: 1, words: 1, distinctWords: 1, repeatedWordOccurrences: 0 };
    expect(() => recommendOptions('classify', { ...profile, row: 1 } as never)).toThrow(expect.objectContaining({ code: 'ERR_RNNKIT_UNKNOWN_OPTION' }));
    expect(() => recommendOptions('classify', { ...profile, chars: -1 })).toThrow(expect.objectContaining({ name: 'RangeError', param: 'profile.chars' }));
    expect(() => profileTexts(['a', 3 as never])).toThrow(/texts\[1\]: expected a string/);
  });
});

describe('recommendSeq2SeqOptions', () => {
  const numbers = fs
    .readFileSync(path.join(root, 'data', 'numbers-train.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { source: string; target: string });

  it('numbers get the pieces tokenizer on both sides, a GRU 128 and 16 epochs with a cosine decay', () => {
    const rec = recommendSeq2SeqOptions(
      numbers.map((p) => p.source),
      numbers.map((p) => p.target),
    );
    const pieces = { type: 'word', splitDigits: true, splitCjk: true, lowercase: false, punctuation: 'keep' };
    expect(rec).toMatchObject({ sourceTokenizer: pieces, targetTokenizer: pieces, cell: 'gru', hiddenSize: 128, numLayers: 1, bidirectional: true });
    expect(rec).toMatchObject({ attention: 'general', batchSize: 64, epochs: 16, learningRate: 3e-3, schedule: 'cosine', monitor: 'valLoss' });
    expect(rec.reasons).toHaveLength(4);
    expect(rec.reasons[0]).toMatch(/^source: word tokenizer with every digit and ideograph/);
  });

  it('open text gets characters; bad profiles are refused naming the side', () => {
    const rec = recommendSeq2SeqOptions(sentimentTexts, sentimentTexts);
    expect([rec.sourceTokenizer.type, rec.targetTokenizer.type]).toEqual(['char', 'char']);
    expect(rec.reasons[1]).toMatch(/^target: character tokenizer/);
    const profile = profileTexts(['a b']);
    expect(() => recommendSeq2SeqOptions(profile, { ...profile, pieces: -1 })).toThrow(expect.objectContaining({ name: 'RangeError', param: 'target.pieces' }));
  });
});

describe('rnnkit train without tuning flags', () => {
  let dir: string;
  const rnnkit = (args: string[]) => runCli(dir, args);

  beforeAll(async () => {
    await compileCli();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rnnkit-defaults-'));
    fs.writeFileSync(path.join(dir, 'sentiment.jsonl'), sentimentLines.slice(0, 300).join('\n') + '\n');
  }, 120_000);

  afterAll(() => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('classify: picks the recommended tokenizer, model and training, says so, and stops early on validation accuracy', async () => {
    const r = await rnnkit(['train', 'sentiment.jsonl', '--task', 'classify', '--out', 'd.safetensors', '--json']);
    expect(r.status, r.stderr).toBe(0);
    const log = r.stderr
      .split('\n')
      .filter((l) => l.startsWith('{"event":"log"'))
      .map((l) => (JSON.parse(l) as { message: string }).message)
      .join('\n');
    expect(log).toMatch(/defaults for this data \(flags override them\):\n {2}- word tokenizer/);
    expect(log).toMatch(/GRU 64 × 1, both directions/);
    const result = JSON.parse(r.stdout) as { stopReason: string; history: { epochs: number; bestStep?: number } };
    const rec = recommendOptions(
      'classify',
      sentimentLines.slice(0, 300).map((l) => (JSON.parse(l) as { text: string }).text),
    );
    expect(['early_stopping', 'completed']).toContain(result.stopReason);
    expect(result.history.bestStep).toBeGreaterThan(0);
    const info = JSON.parse((await rnnkit(['info', 'd.safetensors', '--json'])).stdout) as {
      config: Record<string, unknown>;
      tokenizer: { type: string };
    };
    expect(info.config).toMatchObject({ cell: rec.cell, hidden_size: rec.hiddenSize, num_layers: rec.numLayers, bidirectional: true, pooling: 'max' });
    expect(info.tokenizer.type).toBe('word');
  }, 120_000);

  it('language model: a GRU that carries its state across windows, unless --stride asks for windows or the text is short', async () => {
    const text = 'It is a truth universally acknowledged, that a single man in possession of a good fortune. '.repeat(200);
    fs.writeFileSync(path.join(dir, 'novel.txt'), text);
    const windowing = async (extra: string[]) => {
      const r = await rnnkit([
        'train',
        'novel.txt',
        '--hidden',
        '8',
        '--max-steps',
        '2',
        '--seq-len',
        '20',
        '--batch-size',
        '4',
        ...extra,
        '--out',
        'lm.safetensors',
        '--json',
      ]);
      expect(r.status, r.stderr).toBe(0);
      const m = await loadModel(path.join(dir, 'lm.safetensors'));
      return { cell: m.config.cell, windowing: JSON.parse(m.metadata.rnnkit_cli_windowing) as { tbptt: boolean; stride?: number } };
    };
    expect(await windowing([])).toMatchObject({ cell: 'gru', windowing: { tbptt: true } });
    expect(await windowing(['--stride', '10'])).toMatchObject({ windowing: { tbptt: false, stride: 10 } });
    fs.writeFileSync(path.join(dir, 'novel.txt'), text.slice(0, 5_000));
    expect(await windowing([])).toMatchObject({ cell: 'gru', windowing: { tbptt: false } });
  }, 120_000);

  it('a given flag wins, and a given limit runs exactly that much without early stopping', async () => {
    const r = await rnnkit([
      'train',
      'sentiment.jsonl',
      '--task',
      'classify',
      '--tokenizer',
      'char',
      '--hidden',
      '16',
      '--epochs',
      '1',
      '--out',
      'e.safetensors',
      '--json',
    ]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).not.toMatch(/word tokenizer/);
    const result = JSON.parse(r.stdout) as { stopReason: string; history: { epochs: number; bestStep?: number } };
    expect(result.stopReason).toBe('completed');
    expect(result.history.bestStep).toBeUndefined();
    const info = JSON.parse((await rnnkit(['info', 'e.safetensors', '--json'])).stdout) as { config: Record<string, unknown>; tokenizer: { type: string } };
    expect(info.config).toMatchObject({ hidden_size: 16, cell: 'gru' });
    expect(info.tokenizer.type).toBe('char');
  }, 120_000);
});
