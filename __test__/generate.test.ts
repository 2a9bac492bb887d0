import { beforeAll, describe, expect, it } from 'vitest';
import * as path from 'path';
import { LanguageModel, StopFilter, loadLanguageModel } from '../src/index';

const root = path.join(__dirname, '..');
let model: LanguageModel;

beforeAll(async () => {
  // A real model trained in PyTorch on Pride and Prejudice (fixtures/models).
  model = await loadLanguageModel(path.join(root, 'fixtures/models/pp_lstm.safetensors'));
});

/** The argmax path computed by hand through a session: feed, take the largest logit, repeat. */
function argmaxPath(prompt: string, n: number): string {
  const session = model.session();
  let logits = session.feed(prompt);
  let text = '';
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let j = 1; j < logits.length; j++) if (logits[j] > logits[best]) best = j;
    text += model.tokenizer!.decode([best]);
    logits = session.feed(new Int32Array([best]));
  }
  return text;
}

describe('generation', () => {
  it('greedy equals the argmax path; beams: 1 equals greedy; temperature 0 is greedy', async () => {
    const prompt = 'It is a truth universally acknowledged';
    const greedy = await model.generate(prompt, { maxTokens: 60, greedy: true });
    expect(greedy).toBe(argmaxPath(prompt, 60));
    expect(await model.generate(prompt, { maxTokens: 60, beams: 1 })).toBe(greedy);
    expect(await model.generate(prompt, { maxTokens: 60, temperature: 0 })).toBe(greedy);
  });

  it('the same seed gives the same text, another seed another text', async () => {
    const opts = { maxTokens: 80, temperature: 1, seed: 11 };
    const a = await model.generate('Mr. Darcy', opts);
    expect(await model.generate('Mr. Darcy', opts)).toBe(a);
    expect(await model.generate('Mr. Darcy', { ...opts, seed: 12 })).not.toBe(a);
    expect([...a].length).toBe(80);
  });

  it('beam search finds a continuation at least as likely as greedy', async () => {
    const prompt = 'she said';
    const logprob = (continuation: string): number => {
      const s = model.session();
      let logits = s.feed(prompt);
      let total = 0;
      for (const id of model.tokenizer!.encode(continuation)) {
        const max = Math.max(...logits);
        const z = logits.reduce((acc, v) => acc + Math.exp(v - max), 0);
        total += logits[id] - max - Math.log(z);
        logits = s.feed(new Int32Array([id]));
      }
      return total;
    };
    const greedy = await model.generate(prompt, { maxTokens: 12, greedy: true });
    // lengthPenalty 0: raw log-probability, so the comparison is exact.
    const beam = await model.generate(prompt, { maxTokens: 12, beams: 4, lengthPenalty: 0 });
    expect(logprob(beam)).toBeGreaterThanOrEqual(logprob(greedy) - 1e-4);
  });

  it('stop strings end generation before them, also when streaming', async () => {
    const prompt = 'Elizabeth';
    const free = await model.generate(prompt, { maxTokens: 120, seed: 5 });
    const stop = free.slice(20, 23);
    const cut = free.indexOf(stop);
    const c = await model.complete(prompt, { maxTokens: 120, seed: 5, stop });
    expect(c.text).toBe(free.slice(0, cut));
    expect(c.finishReason).toBe('stop');
    const pieces: string[] = [];
    const s = model.stream(prompt, { maxTokens: 120, seed: 5, stop: [stop, 'zzzz'] });
    for await (const p of s) pieces.push(p);
    expect(pieces.join('')).toBe(c.text);
    expect((await s.completion).finishReason).toBe('stop');
  });

  it('streams the same text as complete, piece by piece', async () => {
    const opts = { maxTokens: 50, seed: 3, topK: 5, topP: 0.9, repetitionPenalty: 1.2 };
    const whole = await model.complete('The', opts);
    const pieces: string[] = [];
    const s = model.stream('The', opts);
    for await (const p of s) pieces.push(p);
    // A native call runs at most 16 steps (as many as fit in a few ms), so a piece holds at
    // most 16 one-character tokens and 50 tokens arrive in at least 4 pieces.
    expect(pieces.length).toBeGreaterThanOrEqual(4);
    expect(Math.max(...pieces.map((p) => p.length))).toBeLessThanOrEqual(16);
    expect(pieces.join('')).toBe(whole.text);
    expect(await s.completion).toEqual(whole);
    expect(whole).toMatchObject({ finishReason: 'length', completionTokens: 50, promptTokens: 3 });
  });

  it('generateBatch equals the same prompts generated one by one (per-prompt seeds)', async () => {
    const prompts = ['Jane', 'Mr. Bennet', 'Lydia', 'The ball'];
    const batch = await model.generateBatch(prompts, { maxTokens: 40, seed: 100 });
    const alone = await Promise.all(prompts.map((p, i) => model.generate(p, { maxTokens: 40, seed: 100 + i })));
    expect(batch).toEqual(alone);
  });

  it('an empty prompt starts from the zero state: the first token from its prediction, then as if fed', async () => {
    // This tokenizer has no <bos>, so the first token is the argmax of the zero state's logits,
    // and what follows is the argmax path after that one token.
    expect(model.tokenizer!.tokenToId('<bos>')).toBeUndefined();
    const c = await model.complete('', { maxTokens: 30, greedy: true });
    expect(c).toMatchObject({ promptTokens: 0, completionTokens: 30, finishReason: 'length' });
    const first = [...c.text][0];
    expect(c.text).toBe(first + argmaxPath(first, 29));
    const a = await model.generate('', { maxTokens: 40, seed: 3 });
    expect(await model.generate('', { maxTokens: 40, seed: 3 })).toBe(a);
    expect([...a]).toHaveLength(40);
    const pieces: string[] = [];
    for await (const piece of model.stream('', { maxTokens: 40, seed: 3 })) pieces.push(piece);
    expect(pieces.join('')).toBe(a);
    const beam = await model.complete('', { maxTokens: 10, beams: 3 });
    expect(beam.completionTokens).toBe(10);
  });

  it('logprobs are the log-softmax of the model’s logits at each step, in complete and in stream chunks', async () => {
    const prompt = 'Elizabeth';
    const c = await model.complete(prompt, { maxTokens: 10, greedy: true, logprobs: 2 });
    expect(c.logprobs).toHaveLength(10);
    const session = model.session();
    let logits = session.feed(prompt);
    for (const entry of c.logprobs!) {
      const max = Math.max(...logits);
      const lse = max + Math.log(logits.reduce((sum, l) => sum + Math.exp(l - max), 0));
      expect(entry.logprob).toBeCloseTo(logits[entry.id] - lse, 5);
      expect(entry.top.map((t) => t.id)).toEqual([...logits.keys()].sort((a, b) => logits[b] - logits[a] || a - b).slice(0, 2));
      expect(entry.top[0].id).toBe(entry.id); // greedy takes the most likely
      expect(entry.token).toBe(model.tokenizer!.decode([entry.id]));
      logits = session.feed(new Int32Array([entry.id]));
    }
    const chunks = [];
    for await (const chunk of model.stream(prompt, { maxTokens: 10, greedy: true, logprobs: 2 }).chunks()) chunks.push(chunk);
    expect(chunks.map((ch) => ch.text).join('')).toBe(c.text);
    expect(chunks.flatMap((ch) => ch.logprobs ?? [])).toEqual(c.logprobs);
    expect(await model.complete(prompt, { maxTokens: 3 })).not.toHaveProperty('logprobs');
    await expect(model.complete(prompt, { logprobs: 21 })).rejects.toThrow(/options.logprobs/);
    await expect(model.complete(prompt, { beams: 2, logprobs: 1 })).rejects.toThrow(/options.logprobs/);
  });

  it('presence and frequency penalties follow OpenAI’s definition over the whole context', async () => {
    const prompt = 'It is a truth';
    const [presence, frequency] = [0.8, 0.6];
    const got = await model.generate(prompt, { maxTokens: 40, greedy: true, presencePenalty: presence, frequencyPenalty: frequency });
    const session = model.session();
    let logits = session.feed(prompt);
    const counts = new Map<number, number>();
    for (const id of model.tokenizer!.encode(prompt)) counts.set(id, (counts.get(id) ?? 0) + 1);
    let text = '';
    for (let i = 0; i < 40; i++) {
      let best = 0;
      const penalised = (j: number) => logits[j] - (counts.has(j) ? frequency * counts.get(j)! + presence : 0);
      for (let j = 1; j < logits.length; j++) if (penalised(j) > penalised(best)) best = j;
      counts.set(best, (counts.get(best) ?? 0) + 1);
      text += model.tokenizer!.decode([best]);
      logits = session.feed(new Int32Array([best]));
    }
    expect(got).toBe(text);
    expect(got).not.toBe(await model.generate(prompt, { maxTokens: 40, greedy: true }));
    await expect(model.generate(prompt, { presencePenalty: 2.5 })).rejects.toThrow(/options.presencePenalty/);
  });

  it('aborts with an AbortError', async () => {
    const controller = new AbortController();
    const run = model.generate('The', { maxTokens: 100000, signal: controller.signal });
    setTimeout(() => controller.abort(), 20);
    await expect(run).rejects.toMatchObject({ name: 'AbortError' });
  });

  it('refuses bad options with the option named', async () => {
    await expect(model.generate('x', { temperature: -1 })).rejects.toThrow(/options.temperature/);
    await expect(model.generate('x', { topP: 0 })).rejects.toThrow(/options.topP/);
    await expect(model.generate('x', { maxTokens: 1.5 })).rejects.toThrow(/options.maxTokens/);
    await expect(model.generate('x', { stop: [''] })).rejects.toThrow(/options.stop\[0\]/);
    await expect(model.generate(42 as never)).rejects.toThrow(/prompt/);
    // 'Q' never occurs in the training text: the char tokenizer refuses it by name.
    await expect(model.generate('Queen')).rejects.toThrow(/Q/);
    expect(() => model.stream('x', { beams: 3 })).toThrow(/beams/);
  });
});

describe('StopFilter', () => {
  it('holds back possible stop prefixes and cuts at the first stop', () => {
    const f = new StopFilter(['END', 'xyz']);
    expect(f.push('abc E')).toEqual({ emit: 'abc ', stopped: false });
    expect(f.push('N')).toEqual({ emit: '', stopped: false });
    // 'x' could start 'xyz': held back too.
    expect(f.push('x')).toEqual({ emit: 'EN', stopped: false });
    expect(f.push('yzEND')).toEqual({ emit: '', stopped: true });
    const g = new StopFilter(['\n\n']);
    expect(g.push('a\n')).toEqual({ emit: 'a', stopped: false });
    expect(g.flush()).toBe('\n');
  });
});
