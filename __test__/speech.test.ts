import { afterAll, describe, expect, it } from 'vitest';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { TestRandom } from './random';
import { SpeechDataset, SpeechRecognizer, createSpeechRecognizer, loadModel, loadModelSync, type Utterance } from '../src/index';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rnnkit-speech-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const ALPHABET = 'abc ';
const F = 5;

/**
 * Synthetic "audio": each letter sounds as 3–4 frames of its own feature (plus noise), a space
 * as 3 pause frames, with 1–2 silent frames between; transcripts are 1–3 words of 1–2 letters.
 */
function utterances(n: number, seed: number): Utterance[] {
  const rng = new TestRandom(seed);
  return Array.from({ length: n }, () => {
    const words = Array.from({ length: 1 + rng.nextInt(3) }, () => Array.from({ length: 1 + rng.nextInt(2) }, () => 'abc'[rng.nextInt(3)]).join(''));
    const text = words.join(' ');
    const frames: number[] = [];
    const push = (cls: number, count: number) => {
      for (let c = 0; c < count; c++) for (let k = 0; k < F; k++) frames.push((k === cls ? 1 : 0) + 0.2 * (rng.nextFloat() - 0.5));
    };
    push(3, 1 + rng.nextInt(2));
    for (const ch of text) {
      if (ch === ' ') push(4, 3);
      else push('abc'.indexOf(ch), 3 + rng.nextInt(2));
      push(3, 1 + rng.nextInt(2));
    }
    return { frames: Float32Array.from(frames), text };
  });
}

async function errorOf(fn: () => unknown): Promise<Error & { code?: string; param?: string }> {
  try {
    await fn();
  } catch (e) {
    return e as Error & { code?: string; param?: string };
  }
  throw new Error('expected an error');
}

describe('speech recognition', () => {
  it('trains with CTC, transcribes greedy/beam/lexicon, evaluates WER/CER and round-trips through a file', async () => {
    const model = createSpeechRecognizer({ features: { size: F }, alphabet: ALPHABET, cell: 'gru', hiddenSize: 24, frameStacking: 2, seed: 3 });
    expect(model.task).toBe('speech');
    expect([model.alphabet, model.featureSize, model.frameStacking]).toEqual([ALPHABET, F, 2]);
    expect(model.config.bidirectional).toBe(true);
    const held = utterances(40, 2);
    const before = await model.evaluate(held);
    const events: string[] = [];
    const data = SpeechDataset.fromUtterances(utterances(240, 1), { alphabet: ALPHABET, featureSize: F, batchSize: 16, seed: 4 });
    expect(data.size()).toBe(240);
    const [first] = [...data.batches()];
    expect(first.texts.length).toBe(16);
    expect(first.texts.every((t) => /^[abc ]+$/.test(t))).toBe(true);
    const history = await model.fit(data, {
      epochs: 25,
      optimizer: { type: 'adam', lr: 0.02 },
      clipNorm: 1,
      validation: held,
      logEvery: 1000,
      onProgress: (e) => events.push(e.type),
    });
    expect(history.valLoss.at(-1)!).toBeLessThan(history.valLoss[0] * 0.5);
    expect(events).toContain('validation');
    const after = await model.evaluate(held);
    expect(before.cer).toBeGreaterThan(0.5);
    expect(after.cer).toBeLessThan(0.05);
    expect(after.wer).toBeLessThan(0.1);
    expect(after.count).toBe(40);

    const frames = held.map((u) => u.frames);
    const greedy = await model.transcribeFrames(frames);
    expect(greedy.filter((t, i) => t === held[i].text).length).toBeGreaterThanOrEqual(36);
    expect(model.transcribeFramesSync(frames)).toEqual(greedy);
    expect(await model.transcribeFrames(frames[0])).toBe(greedy[0]);
    const beam = await model.transcribeFrames(frames, { beamWidth: 8 });
    expect(beam.filter((t, i) => t === held[i].text).length).toBeGreaterThanOrEqual(35);
    for (const t of await model.transcribeFrames(frames, { beamWidth: 8, lexicon: ['a', 'bc'] })) {
      expect(t === '' || t.split(' ').every((w) => w === 'a' || w === 'bc')).toBe(true);
    }

    const file = path.join(tmp, 'speech.safetensors');
    await model.save(file);
    const loaded = await loadModel(file);
    expect(loaded.task).toBe('speech');
    if (loaded.task !== 'speech') throw new Error('unreachable');
    expect(loaded).toBeInstanceOf(SpeechRecognizer);
    expect([loaded.alphabet, loaded.frameStacking]).toEqual([ALPHABET, 2]);
    expect(await loaded.transcribeFrames(frames)).toEqual(greedy);
    expect((loadModelSync(file) as SpeechRecognizer).transcribeFramesSync(frames[1])).toBe(greedy[1]);
  });

  it('refuses bad options, frames and transcripts with coded, named errors', async () => {
    const create = (o: Record<string, unknown>) => errorOf(() => createSpeechRecognizer(o as never));
    let e = await create({ features: { size: F } });
    expect([e.code, e.param]).toEqual(['ERR_RNNKIT_CONFIG', 'options.alphabet']);
    e = await create({ features: { size: F }, alphabet: 'aa' });
    expect(e.message).toMatch(/alphabet\[1\]/);
    e = await create({ features: { size: F }, alphabet: 'ab', hidenSize: 3 });
    expect(e.code).toBe('ERR_RNNKIT_UNKNOWN_OPTION');
    e = await create({ features: { size: F }, alphabet: 'ab', frameStacking: 0 });
    expect(e.code).toBe('ERR_RNNKIT_RANGE');
    e = await create({ features: { size: 0 }, alphabet: 'ab' });
    expect(e.param).toBe('options.features.size');

    const model = createSpeechRecognizer({ features: { size: F }, alphabet: ALPHABET, hiddenSize: 8, frameStacking: 2 });
    e = await errorOf(() => SpeechDataset.fromUtterances([{ frames: new Float32Array(4 * F), text: 'ax' }], { alphabet: ALPHABET, featureSize: F }));
    expect([e.code, e.param]).toEqual(['ERR_RNNKIT_RANGE', 'utterances[0].text']);
    e = await errorOf(() => model.transcribeFrames(new Float32Array(3 * F + 1)));
    expect([e.code, e.param]).toEqual(['ERR_RNNKIT_SHAPE', 'frames[0]']);
    e = await errorOf(() => model.transcribeFrames(new Float32Array(4 * F), { lexicon: ['a'] }));
    expect([e.code, e.param]).toEqual(['ERR_RNNKIT_CONFIG', 'options.lexicon']);
    e = await errorOf(() => model.transcribeFrames(new Float32Array(4 * F), { beamWidth: 4, lexicon: ['ax'] }));
    expect(e.param).toBe('options.lexicon[0]');
    e = await errorOf(() => model.transcribeFrames(new Float32Array(4 * F), { beamWidht: 4 } as never));
    expect(e.code).toBe('ERR_RNNKIT_UNKNOWN_OPTION');
    const nan = new Float32Array(4 * F);
    nan[7] = NaN;
    e = await errorOf(() => model.transcribeFrames(nan));
    expect(e.code).toBe('ERR_RNNKIT_NON_FINITE');
    // A transcript its audio cannot hold: 4 frames stacked by 2 give 2 steps, "abc" needs 3.
    e = await errorOf(() => model.fit([{ frames: new Float32Array(4 * F), text: 'abc' }]));
    expect([e.code, e.param]).toEqual(['ERR_RNNKIT_RANGE', 'transcripts[0]']);
    const other = SpeechDataset.fromUtterances(utterances(4, 1), { alphabet: 'cba ', featureSize: F });
    e = await errorOf(() => model.fit(other));
    expect(e.code).toBe('ERR_RNNKIT_CONFIG');
    e = await errorOf(() => model.fit(utterances(4, 1), { earlyStopping: { monitor: 'valAccuracy' }, validation: utterances(2, 3) }));
    expect(e.message).toMatch(/speech model/);
  });

  it('aborts training and transcription with an AbortError', async () => {
    const model = createSpeechRecognizer({ features: { size: F }, alphabet: ALPHABET, hiddenSize: 8 });
    const ac = new AbortController();
    const run = model.fit(utterances(64, 5), { epochs: 1000, batchSize: 4, signal: ac.signal, onProgress: () => ac.abort(), logEvery: 1 });
    const e = await errorOf(() => run);
    expect(e.name).toBe('AbortError');
    const done = new AbortController();
    done.abort();
    expect((await errorOf(() => model.transcribeFrames(utterances(1, 1)[0].frames, { signal: done.signal }))).name).toBe('AbortError');
  });

  it('SpecAugment masks training features: seeded, a different run than without, refused where it does not apply', async () => {
    const data = utterances(48, 5);
    const train = async (options: Record<string, unknown>) => {
      const model = createSpeechRecognizer({ features: { size: F }, alphabet: ALPHABET, hiddenSize: 8, seed: 1 });
      const h = await model.fit(data, { batchSize: 16, maxSteps: 4, seed: 2, ...options });
      return { loss: h.loss, transcripts: Array.from(model.transcribeFramesSync(data.slice(0, 4).map((u) => u.frames))) };
    };
    const masks = { specAugment: { freqMasks: 1, freqMaskWidth: 2, timeMasks: 2, timeMaskWidth: 4 } };
    const plain = await train({});
    const augmented = await train(masks);
    expect(await train(masks)).toEqual(augmented);
    // The first step's loss is over masked frames, so it differs from the plain run's.
    expect(augmented.loss[0]).not.toBe(plain.loss[0]);
    const speech = createSpeechRecognizer({ features: { size: F }, alphabet: ALPHABET, hiddenSize: 8 });
    const unknown = await errorOf(() => speech.fit(data, { maxSteps: 1, specAugment: { freqMask: 1 } as never }));
    expect([unknown.code, unknown.param]).toEqual(['ERR_RNNKIT_UNKNOWN_OPTION', 'options.specAugment.freqMask']);
    const ratio = await errorOf(() => speech.fit(data, { maxSteps: 1, specAugment: { maxTimeRatio: 2 } }));
    expect(ratio.param).toBe('options.specAugment.maxTimeRatio');
    expect(ratio).toBeInstanceOf(RangeError);
  });
});
