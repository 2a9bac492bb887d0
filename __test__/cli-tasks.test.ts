/**
 * `rnnkit train --task classify|tag|regress` run as a user runs it (`node dist/cli/index.js` in a
 * child process), then `predict` on the saved models; and the one-line errors of bad data files.
 * Needs the native engine (`npm run build`).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileCli, expectOneLineError, root, runCli } from './cli-harness';

let dir: string;
const rnnkit = (args: string[]) => runCli(dir, args);

const write = (name: string, lines: unknown[]) =>
  fs.writeFileSync(path.join(dir, name), lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n') + '\n');
const SMALL = ['--hidden', '16', '--layers', '1', '--embed', '16', '--batch-size', '16'];

beforeAll(async () => {
  await compileCli();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rnnkit-cli-tasks-'));
  // A slice of the sentiment corpus.
  fs.writeFileSync(
    path.join(dir, 'sentiment.jsonl'),
    fs
      .readFileSync(path.join(root, 'data', 'sentiment.jsonl'), 'utf8')
      .split('\n')
      .slice(0, 200)
      .join('\n') + '\n',
  );
  // Tagging: is the word capitalised? Both row forms.
  const words = ['the', 'Cat', 'sat', 'On', 'a', 'Mat', 'dog', 'Ran'];
  write(
    'tags.jsonl',
    Array.from({ length: 80 }, (_, i) => {
      const toks = Array.from({ length: 4 + (i % 3) }, (_, k) => words[(i * 5 + k * 3) % words.length]);
      const tags = toks.map((t) => (t[0] === t[0].toUpperCase() ? 'U' : 'L'));
      return i % 2 ? { tokens: toks, tags } : { text: toks.join(' '), tags };
    }),
  );
  // Regression: the target is the sum of the first feature over the steps.
  write(
    'dense.jsonl',
    Array.from({ length: 80 }, (_, i) => {
      const values = Array.from({ length: 5 }, (_, t) => [Math.sin(i + t), (t - 2) / 2]);
      return { values, target: values.reduce((s, v) => s + v[0], 0) };
    }),
  );
}, 120_000);

afterAll(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe('train --task', () => {
  it('classify: trains on a slice of sentiment.jsonl, reports metrics, and predict returns its labels', async () => {
    const r = await rnnkit([
      'train',
      'sentiment.jsonl',
      '--task',
      'classify',
      '--tokenizer',
      'word',
      '--labels',
      '0,1',
      '--pooling',
      'max',
      '--class-weights',
      'balanced',
      '--validation',
      '0.25',
      '--epochs',
      '2',
      ...SMALL,
      '--out',
      'clf.safetensors',
      '--json',
    ]);
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({ task: 'classify', model: 'clf.safetensors', checkpoint: false, evaluatedOn: 'validation' });
    expect(out.metrics.count).toBe(50);
    expect(out.metrics.labels).toEqual([0, 1]);
    expect(out.metrics.perClass.map((c: { support: number }) => c.support).reduce((a: number, b: number) => a + b)).toBe(50);
    expect(out.metrics.macroF1).toBeCloseTo((out.metrics.perClass[0].f1 + out.metrics.perClass[1].f1) / 2, 10);
    expect(
      r.stderr
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l))
        .some((e) => e.event === 'progress' && e.type === 'step'),
    ).toBe(true);
    const p = await rnnkit(['predict', 'clf.safetensors', 'A wonderful film.', 'Cold food, rude staff.', '--json']);
    expect(p.status).toBe(0);
    const pred = JSON.parse(p.stdout);
    expect(pred.task).toBe('classify');
    for (const x of pred.predictions) {
      expect([0, 1]).toContain(x.label);
      expect(Object.keys(x.probabilities).sort()).toEqual(['0', '1']);
    }
    const info = JSON.parse((await rnnkit(['info', 'clf.safetensors', '--json'])).stdout);
    expect(info.config).toMatchObject({ task: 'classify', pooling: 'max', bidirectional: true, hidden_size: 16 });
    expect(JSON.parse(info.metadata.labels)).toEqual([0, 1]);
  });

  it('classify: the human output has accuracy, macro F1 and the per-class table', async () => {
    const r = await rnnkit([
      'train',
      'sentiment.jsonl',
      '--task',
      'classify',
      '--tokenizer',
      'word',
      '--min-count',
      '2',
      '--max-steps',
      '3',
      ...SMALL,
      '--no-bidirectional',
      '--out',
      'clf2.safetensors',
    ]);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^validation accuracy \d\.\d{4}, macro F1 \d\.\d{4}/m);
    expect(r.stdout).toMatch(/^label\s+precision\s+recall\s+F1\s+support$/m);
    expect(r.stdout).toMatch(/^0\s+\d\.\d{3}/m);
    const info = JSON.parse((await rnnkit(['info', 'clf2.safetensors', '--json'])).stdout);
    expect(info.config.bidirectional).toBe(false);
  });

  it('classify: reads CSV with --text-column and --label-column', async () => {
    const rows = ['review,mood', ...Array.from({ length: 40 }, (_, i) => (i % 2 ? '"good, very good",pos' : 'bad bad,neg'))];
    fs.writeFileSync(path.join(dir, 'moods.csv'), rows.join('\n') + '\n');
    const r = await rnnkit([
      'train',
      'moods.csv',
      '--task',
      'classify',
      '--text-column',
      'review',
      '--label-column',
      'mood',
      '--tokenizer',
      'word',
      '--epochs',
      '3',
      ...SMALL,
      '--out',
      'csv.safetensors',
      '--json',
    ]);
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout).metrics.labels).toEqual(['neg', 'pos']);
  });

  it('tag: trains on text and token rows, reports token accuracy and per-tag F1, and predict tags each token', async () => {
    const r = await rnnkit([
      'train',
      'tags.jsonl',
      '--task',
      'tag',
      '--tokenizer',
      'word',
      '--no-lowercase',
      '--epochs',
      '2',
      ...SMALL,
      '--out',
      'tagger.safetensors',
      '--json',
    ]);
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({ task: 'tag', evaluatedOn: 'validation' });
    expect(out.metrics.labels).toEqual(['L', 'U']);
    expect(out.metrics.perClass.map((c: { label: string }) => c.label)).toEqual(['L', 'U']);
    const p = JSON.parse((await rnnkit(['predict', 'tagger.safetensors', 'the Cat sat', '--json'])).stdout);
    expect(p.predictions[0].tokens).toEqual(['the', 'Cat', 'sat']);
    expect(p.predictions[0].tags).toHaveLength(3);
  });

  it('regress: trains on dense rows and reports MSE and MAE', async () => {
    const r = await rnnkit([
      'train',
      'dense.jsonl',
      '--task',
      'regress',
      '--epochs',
      '2',
      '--hidden',
      '8',
      '--layers',
      '1',
      '--out',
      'reg.safetensors',
      '--json',
    ]);
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({ task: 'regress', evaluatedOn: 'validation' });
    expect(out.metrics.count).toBe(8);
    expect(out.metrics.mse).toBeGreaterThanOrEqual(out.metrics.mae ** 2 - 1e-9);
    const p = JSON.parse(
      (
        await rnnkit([
          'predict',
          'reg.safetensors',
          JSON.stringify([
            [0.1, 0],
            [0.2, 0.5],
          ]),
          '--json',
        ])
      ).stdout,
    );
    expect(p.predictions[0]).toHaveLength(1);
    const info = JSON.parse((await rnnkit(['info', 'reg.safetensors', '--json'])).stdout);
    expect(info.config).toMatchObject({ task: 'regress', input_size: 2, output_size: 1, per_step: false });
  });

  it('classify: checkpoints, and --resume continues a checkpoint of the same task only', async () => {
    const args = ['train', 'sentiment.jsonl', '--task', 'classify', '--tokenizer', 'word', ...SMALL];
    const first = await rnnkit([
      ...args,
      '--max-steps',
      '4',
      '--checkpoint',
      'clf-ck.safetensors',
      '--checkpoint-every',
      '2',
      '--out',
      'clf-a.safetensors',
      '--json',
    ]);
    expect(first.status).toBe(0);
    expect(fs.existsSync(path.join(dir, 'clf-ck.safetensors'))).toBe(true);
    const r = await rnnkit([
      'train',
      'sentiment.jsonl',
      '--task',
      'classify',
      '--resume',
      'clf-ck.safetensors',
      '--max-steps',
      '2',
      '--out',
      'clf-b.safetensors',
      '--json',
    ]);
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout).steps).toBe(2);
    expectOneLineError(
      await rnnkit(['train', 'tags.jsonl', '--task', 'tag', '--resume', 'clf-ck.safetensors']),
      1,
      /needs a tag model; "clf-ck.safetensors" holds a classify model/,
    );
    expectOneLineError(await rnnkit([...args.slice(0, 4), '--resume', 'clf-ck.safetensors', '--batch-size', '8']), 2, /--batch-size 8 differs from the 16/);
  });

  it('regress --per-step: one target per step', async () => {
    write(
      'steps.jsonl',
      Array.from({ length: 30 }, (_, i) => ({ values: [[i % 3], [1], [2]], target: [i % 3, 1 + (i % 3), 3 + (i % 3)] })),
    );
    const r = await rnnkit([
      'train',
      'steps.jsonl',
      '--task',
      'regress',
      '--per-step',
      '--max-steps',
      '2',
      '--hidden',
      '8',
      '--layers',
      '1',
      '--out',
      'steps.safetensors',
      '--json',
    ]);
    expect(r.status).toBe(0);
    // 3 validation rows × 3 steps.
    expect(JSON.parse(r.stdout).metrics.count).toBe(9);
  });
});

describe('train --task: bad input in one line', () => {
  it('a missing data file', async () => expectOneLineError(await rnnkit(['train', 'nope.jsonl', '--task', 'tag']), 1, /data file "nope.jsonl" does not exist/));

  it('a line that is not JSON, by its number', async () => {
    write('broken.jsonl', [{ text: 'fine', label: 'a' }, '', '{"text": "oops", "label": ']);
    expectOneLineError(await rnnkit(['train', 'broken.jsonl', '--task', 'classify']), 1, /"broken.jsonl" line 3: not valid JSON/);
    write('broken-tags.jsonl', [{ text: 'ab', tags: ['x', 'y'] }, 'nope']);
    expectOneLineError(await rnnkit(['train', 'broken-tags.jsonl', '--task', 'tag']), 1, /"broken-tags.jsonl" line 2: not valid JSON/);
  });

  it('invalid UTF-8, by its byte and line; --lossy reads it', async () => {
    const bad = (name: string, before: string, after: string) => {
      const head = Buffer.from(before);
      fs.writeFileSync(path.join(dir, name), Buffer.concat([head, Buffer.from([0xfe]), Buffer.from(after)]));
      return head.length;
    };
    const cases: [string, string[], number, number][] = [
      ['bad.jsonl', ['--task', 'classify'], bad('bad.jsonl', '{"text": "good", "label": "a"}\n{"text": "b', 'ad", "label": "b"}\n'), 2],
      ['bad.csv', ['--task', 'classify'], bad('bad.csv', 'text,label\ngood,a\nb', 'ad,b\n'), 3],
      ['bad-tags.jsonl', ['--task', 'tag'], bad('bad-tags.jsonl', '{"tokens": ["a", "b"], "tags": ["x", "y"]}\n{"tokens": ["', '"], "tags": ["x"]}\n'), 2],
      ['bad-dense.jsonl', ['--task', 'regress'], bad('bad-dense.jsonl', '{"values": [[1]], "target": 1}\n{"values": [[2]], "target": 2, "note": "', '"}\n'), 2],
    ];
    for (const [name, task, at, line] of cases) {
      const args = ['train', name, ...task, '--hidden', '8', '--batch-size', '2', '--validation', '0', '--max-steps', '1', '--out', `${name}.safetensors`];
      const refused = await rnnkit(args);
      expect(refused.stderr, name).toMatch(/invalid UTF-8/);
      expectOneLineError(refused, 1, new RegExp(`invalid UTF-8 at byte ${at} \\(0xfe\\) of "${name.replace('.', '\\.')}" line ${line}.*--lossy`));
      const r = await rnnkit([...args, '--lossy', '--json']);
      expect(r.status, `${name}: ${r.stderr}`).toBe(0);
    }
  });

  it('a label outside --labels', async () => {
    write('odd-label.jsonl', [
      { text: 'fine', label: 'pos' },
      { text: 'meh', label: 'neutral' },
    ]);
    expectOneLineError(
      await rnnkit(['train', 'odd-label.jsonl', '--task', 'classify', '--labels', 'neg,pos']),
      1,
      /"odd-label.jsonl" line 2: label "neutral" is not in --labels \("neg", "pos"\)/,
    );
    write('odd-tag.jsonl', [
      { text: 'ab', tags: ['x', 'y'] },
      { text: 'cd', tags: ['x', 'z'] },
    ]);
    expectOneLineError(
      await rnnkit(['train', 'odd-tag.jsonl', '--task', 'tag', '--labels', 'x,y']),
      1,
      /"odd-tag.jsonl" line 2: tags\[1\]: label "z" is not in --labels/,
    );
  });

  it('a tag count that does not match the tokens, by its line', async () => {
    write('short-tags.jsonl', [
      { text: 'ab', tags: ['x', 'y'] },
      { text: 'abc', tags: ['x', 'y'] },
    ]);
    expectOneLineError(
      await rnnkit(['train', 'short-tags.jsonl', '--task', 'tag', '--validation', '0', '--max-steps', '1']),
      1,
      /"short-tags.jsonl" line 2: 2 tags for 3 tokens of the char tokenizer/,
    );
    write('multi-token.jsonl', [{ tokens: ['ab', 'c'], tags: ['x', 'y'] }]);
    expectOneLineError(
      await rnnkit(['train', 'multi-token.jsonl', '--task', 'tag', '--validation', '0']),
      1,
      /line 1: tokens\[0\] "ab" is 2 tokens of the char tokenizer/,
    );
  });

  it('dense rows: a non-number, mismatched feature counts', async () => {
    write('null.jsonl', [
      { values: [[1, 2]], target: 1 },
      { values: [[1, null]], target: 1 },
    ]);
    expectOneLineError(await rnnkit(['train', 'null.jsonl', '--task', 'regress']), 1, /"null.jsonl" line 2: values\[0\]\[1\]: null is not a number/);
    write('widths.jsonl', [
      { values: [[1, 2]], target: 1 },
      { values: [[1, 2, 3]], target: 1 },
    ]);
    expectOneLineError(
      await rnnkit(['train', 'widths.jsonl', '--task', 'regress']),
      1,
      /"widths.jsonl" line 2: values: steps of 3 features, but "widths.jsonl" line 1 has 2/,
    );
    write('targets.jsonl', [
      { values: [[1]], target: [1, 2] },
      { values: [[1]], target: 3 },
    ]);
    expectOneLineError(
      await rnnkit(['train', 'targets.jsonl', '--task', 'regress']),
      1,
      /"targets.jsonl" line 2: target: 1 values, expected 2 as "targets.jsonl" line 1/,
    );
    write('long.jsonl', [{ values: [[1], [2], [3]], target: 1 }]);
    expectOneLineError(
      await rnnkit(['train', 'long.jsonl', '--task', 'regress', '--max-length', '2']),
      1,
      /"long.jsonl" line 1: 3 steps, more than --max-length 2/,
    );
  });

  it('options that do not go with the task, and bad values', async () => {
    expectOneLineError(await rnnkit(['train', 'd.jsonl', '--task', 'regress', '--tokenizer', 'word']), 2, /--tokenizer does not apply to --task regress/);
    expectOneLineError(await rnnkit(['train', 'd.jsonl', '--task', 'classify', '--seq-len', '20']), 2, /--seq-len does not apply to --task classify/);
    expectOneLineError(await rnnkit(['train', 'd.txt', '--pooling', 'max']), 2, /--pooling does not apply to --task language-model/);
    expectOneLineError(await rnnkit(['train', 'a.jsonl', 'b.jsonl', '--task', 'tag']), 2, /reads one data file, got 2/);
    expectOneLineError(await rnnkit(['train', 'd.jsonl', '--task', 'regress', '--per-step', '--pooling', 'mean']), 2, /--pooling does not apply to --per-step/);
    expectOneLineError(await rnnkit(['train', 'd.jsonl', '--task', 'classify', '--labels', 'a,,b']), 2, /--labels/);
    expectOneLineError(await rnnkit(['train', 'd.jsonl', '--task', 'sort']), 2, /--task.*classify, tag, regress/);
  });
});
