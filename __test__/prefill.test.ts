/**
 * Chunked prefill: while other sequences generate, the generation pool reads a new long prompt
 * `setPrefillChunk` tokens per native call between their steps, instead of all of it at once. The
 * reading ends in the same state bit for bit (the chunks are the state cache's 64-token ones
 * either way: `cargo test -p rnn-core state_cache`), so every generation equals the same one
 * with prompts read whole, or alone.
 */
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadLanguageModel } from '../src/index';
import { native } from '../src/native';
import { resolveOptions } from '../src/server/options';

const FIXTURE = path.join(__dirname, '../fixtures/models/pp_lstm.safetensors');
const LONG = 'It is a truth universally acknowledged, that a single man in possession of a good fortune, must be in want of a wife. '.repeat(9).slice(0, 1000);

describe('chunked prefill', () => {
  it('a long prompt is read a budget of tokens per call while another sequence generates at every step', async () => {
    const model = await loadLanguageModel(FIXTURE);
    const ids = model.tokenizer!.encode(LONG);
    const sampler = native.resolveGenerateOptions({ greedy: true }).sampler;
    /** Calls of `steps` steps until the long prompt's first token, and the tokens the running sequence got meanwhile. */
    const run = (chunk: number, steps: number) => {
      const pool = new native.NativeGenerator(model.native);
      pool.setPrefillChunk(chunk);
      const running = pool.add(model.tokenizer!.encode('Mr. Darcy'), sampler, 1, 1000);
      pool.stepSync(2);
      const long = pool.add(ids, sampler, 2, 5);
      let calls = 0;
      let meanwhile = 0;
      while (calls < 100) {
        const { tokens } = pool.stepSync(steps);
        calls += 1;
        const count = (id: number) => tokens.filter((t, i) => i % 2 === 0 && t === id).length;
        meanwhile += count(running);
        if (count(long) > 0) return { calls, meanwhile };
      }
      throw new Error('the long prompt produced no token in 100 calls');
    };
    // 1,000 ids: 15 full chunks and one of 40, `chunk` ids per call whatever its steps; the first
    // token is sampled in the step that reads the last chunk, and the other sequence got a token
    // at every step meanwhile.
    expect(run(64, 1)).toEqual({ calls: 16, meanwhile: 16 });
    expect(run(64, 4)).toEqual({ calls: 16, meanwhile: 16 * 4 });
    expect(run(256, 3)).toEqual({ calls: 4, meanwhile: 4 * 3 });
    // 0: the whole prompt in the step it joins, its first token in that same step.
    expect(run(0, 4)).toEqual({ calls: 1, meanwhile: 4 });
    expect(() => new native.NativeGenerator(model.native).setPrefillChunk(100)).toThrow(
      expect.objectContaining({ name: 'RangeError', code: 'ERR_RNNKIT_RANGE', message: expect.stringMatching(/^tokens: .*multiple of 64.*100/) }),
    );
  });

  it('generations with long prompts joining running streams equal those read whole, and those alone', async () => {
    const chunked = await loadLanguageModel(FIXTURE);
    chunked.setPrefillChunk(64);
    const whole = await loadLanguageModel(FIXTURE);
    whole.setPrefillChunk(0);
    const alone = await loadLanguageModel(FIXTURE);
    const short = ['Jane', 'Kitty', 'Lizzy'];
    const long = [LONG, LONG.slice(0, 700) + ' Netherfield', LONG.slice(0, 333)];
    const together = async (m: typeof chunked) => {
      const streams = short.map((p, i) => m.stream(p, { maxTokens: 120, seed: i, temperature: 0.9 }));
      const first = streams.map((s) => s[Symbol.asyncIterator]());
      // The long prompts join once the short ones are generating.
      await Promise.all(first.map((it) => it.next()));
      const longs = long.map((p, i) => m.generate(p, { maxTokens: 30, seed: 10 + i, temperature: 0.9 }));
      const shorts = streams.map(async (s) => (await s.completion).text);
      return { shorts: await Promise.all(shorts), longs: await Promise.all(longs) };
    };
    const a = await together(chunked);
    const b = await together(whole);
    expect(a).toEqual(b);
    for (const [i, p] of short.entries()) expect(a.shorts[i]).toBe(await alone.generate(p, { maxTokens: 120, seed: i, temperature: 0.9 }));
    for (const [i, p] of long.entries()) expect(a.longs[i]).toBe(await alone.generate(p, { maxTokens: 30, seed: 10 + i, temperature: 0.9 }));
    expect(() => chunked.setPrefillChunk(-64)).toThrow(expect.objectContaining({ name: 'RangeError', message: expect.stringMatching(/^tokens/) }));
  });

  it('the server option: a multiple of 64, default 128', () => {
    expect(resolveOptions({}).prefillChunk).toBe(128);
    expect(resolveOptions({ prefillChunk: 0 }).prefillChunk).toBe(0);
    expect(() => resolveOptions({ prefillChunk: 100 })).toThrow(
      expect.objectContaining({ name: 'RangeError', code: 'ERR_RNNKIT_RANGE', param: 'options.prefillChunk' }),
    );
  });
});
