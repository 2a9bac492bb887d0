import { describe, expect, expectTypeOf, it } from 'vitest';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import {
  Classifier,
  LanguageModel,
  Regressor,
  Seq2SeqModel,
  SpeechRecognizer,
  Tagger,
  createClassifier,
  fitTokenizer,
  loadModel,
  type ClassPrediction,
} from '../src/index';

// `loadModel` returns a union discriminated by `task`. Nothing below is cast: `m.generate` and
// `m.predict` type-check only because the `task` comparison narrows the union to one class.

const root = path.join(__dirname, '..');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rnnkit-load-union-'));

describe('loadModel: the task union narrows on `task`', () => {
  it('a language model file narrows to LanguageModel and generates', async () => {
    const expected = JSON.parse(fs.readFileSync(path.join(root, 'fixtures/models/pp_lstm.expected.json'), 'utf8')) as {
      generations: { prompt: string; greedy: string }[];
    };
    const m = await loadModel(path.join(root, 'fixtures/models/pp_lstm.safetensors'));
    expectTypeOf(m).toEqualTypeOf<LanguageModel | Classifier | Tagger | Regressor | SpeechRecognizer | Seq2SeqModel>();
    expect(m).toBeInstanceOf(LanguageModel);
    if (m.task === 'language_model') {
      expectTypeOf(m).toEqualTypeOf<LanguageModel>();
      const { prompt, greedy } = expected.generations[0];
      const text: string = await m.generate(prompt, { maxTokens: 40, greedy: true });
      expect(text).toBe(greedy.slice(0, text.length));
      expect(text.length).toBeGreaterThan(0);
    } else {
      expect.fail(`expected task "language_model", got "${m.task}"`);
    }
  });

  it('a saved classifier narrows to Classifier and predicts', async () => {
    const rows = [
      { text: 'a good film', label: 'pos' },
      { text: 'a great plot', label: 'pos' },
      { text: 'a bad film', label: 'neg' },
      { text: 'an awful plot', label: 'neg' },
    ];
    const tokenizer = fitTokenizer(rows.map((r) => r.text).join('\n'), { type: 'word', specials: ['<pad>', '<unk>'] });
    const clf = createClassifier({ tokenizer, labels: ['neg', 'pos'], cell: 'gru', hiddenSize: 8, embedDim: 4, seed: 1 });
    await clf.fit(rows, { epochs: 1, batchSize: 2 });
    const file = path.join(tmp, 'clf.safetensors');
    await clf.save(file);
    const before = await clf.predict('a good plot');

    const m = await loadModel(file);
    expect(m).toBeInstanceOf(Classifier);
    if (m.task === 'classify') {
      expectTypeOf(m).toEqualTypeOf<Classifier>();
      const one: ClassPrediction = await m.predict('a good plot');
      expect(['neg', 'pos']).toContain(one.label);
      expect(one.label).toBe(before.label);
      expect(one.probability).toBeCloseTo(before.probability, 5);
      expect(one.probabilities.neg + one.probabilities.pos).toBeCloseTo(1, 5);
      const many: ClassPrediction[] = await m.predict(['a bad film', 'a great film']);
      expect(many).toHaveLength(2);
      expect(m.labels).toEqual(['neg', 'pos']);
    } else {
      expect.fail(`expected task "classify", got "${m.task}"`);
    }
  });
});
