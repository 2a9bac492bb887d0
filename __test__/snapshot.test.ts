/**
 * Saving while training: `await model.save()` from a progress callback writes the weights of the
 * step that finishes next (and with `checkpoint: true` a state `fit` resumes from), while
 * `saveSync` and metadata changes stay refused until `fit` settles.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { TextCorpus, createClassifier, createLanguageModel, LabelledDataset, loadLanguageModel, loadModel, type Classifier } from '../src/index';

const root = path.join(__dirname, '..');
const text = fs.readFileSync(path.join(root, 'data/pride-and-prejudice.txt'), 'utf8').slice(0, 40_000);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rnnkit-snapshot-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function tiny() {
  const corpus = TextCorpus.fromString(text, { seqLen: 32, batchSize: 16, validation: 0.1, seed: 3 });
  const model = createLanguageModel({ tokenizer: corpus.tokenizer, hiddenSize: 32, embedDim: 16, seed: 1 });
  return { corpus, model };
}

describe('save while fit runs', () => {
  it('a snapshot from onProgress holds the weights of a step inside the run, and a checkpoint snapshot resumes', async () => {
    const { corpus, model } = tiny();
    const plain = path.join(tmp, 'plain.safetensors');
    const ck = path.join(tmp, 'ck.safetensors');
    const controller = new AbortController();
    const saves: Promise<unknown>[] = [];
    let refusedSync: unknown;
    let refusedMetadata: unknown;
    // The run has no end of its own: it stops when the snapshots are on disk, so they are
    // taken while it trains.
    const run = model.fit(corpus, {
      maxSteps: 1_000_000,
      logEvery: 1,
      signal: controller.signal,
      onProgress: (e) => {
        if (e.type !== 'step' || e.step !== 10) return;
        const both = Promise.all([model.save(plain), model.save(ck, { checkpoint: true })]);
        saves.push(both.finally(() => controller.abort()));
        try {
          model.saveSync(path.join(tmp, 'sync.safetensors'));
        } catch (err) {
          refusedSync = err;
        }
        saves.push(model.save(path.join(tmp, 'meta.safetensors'), { metadata: { note: 'x' } }).catch((err: unknown) => void (refusedMetadata = err)));
      },
    });
    await expect(run).rejects.toMatchObject({ name: 'AbortError' });
    await Promise.all(saves);
    expect(refusedSync).toMatchObject({ code: 'ERR_RNNKIT_BUSY' });
    expect(refusedMetadata).toMatchObject({ code: 'ERR_RNNKIT_BUSY' });
    expect(fs.existsSync(path.join(tmp, 'meta.safetensors'))).toBe(false);

    const snapshot = await loadLanguageModel(plain);
    expect(await snapshot.generate('It is', { maxTokens: 5, temperature: 0 })).toEqual(expect.any(String));
    const resumed = await loadLanguageModel(ck);
    // Written between two steps after the progress event of step 10, before the run stopped.
    expect(resumed.stepsTrained).toBeGreaterThanOrEqual(10);
    expect(resumed.stepsTrained).toBeLessThanOrEqual(model.stepsTrained);
    const sameStep = resumed.stepsTrained === model.stepsTrained;
    expect(resumed.getTensor('rnn.weight_hh_l0').every((v, i) => v === model.getTensor('rnn.weight_hh_l0')[i])).toBe(sameStep);
    expect(snapshot.getTensor('rnn.weight_hh_l0')).toEqual(resumed.getTensor('rnn.weight_hh_l0'));
    const again = await resumed.fit(corpus, { maxSteps: 2 });
    expect(again.stepsDone).toBe(2);
  });

  it('a snapshot asked for as the run ends is still written, from the returned model', async () => {
    const { corpus, model } = tiny();
    const file = path.join(tmp, 'late.safetensors');
    let save: Promise<void> | undefined;
    const history = await model.fit(corpus, {
      maxSteps: 3,
      logEvery: 1,
      onProgress: (e) => {
        if (e.type === 'done') save = model.save(file);
      },
    });
    expect(history.stepsDone).toBe(3);
    await save;
    expect((await loadModel(file)).numParams).toBe(model.numParams);
  });

  it('a snapshot to a path that cannot be written rejects with the engine error; training goes on', async () => {
    const rows = Array.from({ length: 64 }, (_, i) => ({ text: i % 2 ? 'good fine great' : 'bad awful poor', label: i % 2 }));
    const data = LabelledDataset.fromArray(rows, { batchSize: 8, tokenizerOptions: { type: 'word', specials: ['<pad>', '<unk>'] } });
    const clf: Classifier = createClassifier({ tokenizer: data.tokenizer, labels: [0, 1], hiddenSize: 8, embedDim: 8 });
    let failed: Promise<unknown> | undefined;
    const history = await clf.fit(data, {
      epochs: 2,
      onProgress: (e) => {
        if (e.type === 'step' && failed === undefined) failed = clf.save(path.join(tmp, 'no-such-dir', 'x.safetensors')).catch((err: unknown) => err);
      },
    });
    expect(history.stepsDone).toBe(16);
    expect(await failed).toMatchObject({ message: expect.stringMatching(/no-such-dir/) });
  });
});
