/**
 * The prompt state cache: a prompt sharing a prefix with an earlier one restores the state cached
 * at the longest shared 64-token boundary, and what it generates equals, token for token, what a
 * model without the cache generates; the server turns it on (`stateCacheMb`) and counts its hits
 * in /metrics.
 */
import { describe, expect, it } from 'vitest';
import * as path from 'path';
import { loadLanguageModel, type LanguageModel } from '../src/index';
import { request, startServer, stream } from './server-harness';

const FIXTURE = path.join(__dirname, '../fixtures/models/pp_lstm.safetensors');
/** A 400-character prefix (the fixture's tokenizer reads characters), then two different questions. */
const PREFIX = 'Elizabeth, feeling all the more than common awkwardness and anxiety of her situation, now forced herself to speak; '.repeat(4).slice(0, 400);
const FIRST = PREFIX + 'and Jane said';
const SECOND = PREFIX + 'but Mr. Darcy';

async function fresh(cacheBytes: number): Promise<LanguageModel> {
  const m = await loadLanguageModel(FIXTURE);
  m.setStateCache({ maxBytes: cacheBytes });
  return m;
}

describe('prompt state cache', () => {
  it('a shared prefix is read once; generations equal those of a model without the cache', async () => {
    const cached = await fresh(1 << 20);
    const cold = await fresh(0);
    const options = { maxTokens: 40, temperature: 0.9, seed: 11 };
    expect(await cached.generate(FIRST, options)).toBe(await cold.generate(FIRST, options));
    expect(cached.stateCacheStats()).toMatchObject({ hits: 0, misses: 1, entries: 6 });
    expect(await cached.generate(SECOND, options)).toBe(await cold.generate(SECOND, options));
    const greedy = { maxTokens: 40, greedy: true };
    expect(await cached.generate(SECOND + ' was', greedy)).toBe(await cold.generate(SECOND + ' was', greedy));
    const s = cached.stateCacheStats();
    expect(s).toMatchObject({ hits: 2, misses: 1, reusedTokens: 384 + 384, maxBytes: 1 << 20, evictions: 0 });
    expect(s.bytes).toBeGreaterThan(0);
    expect(s.bytes).toBeLessThanOrEqual(s.maxBytes);
    expect(cold.stateCacheStats()).toMatchObject({ hits: 0, misses: 0, entries: 0, bytes: 0 });
    // Concurrent generations sharing the prefix, streamed and not, equal the cold ones.
    const prompts = Array.from({ length: 6 }, (_, i) => `${PREFIX}${'abcdef'[i]} `);
    const together = await Promise.all(prompts.map((p, i) => cached.generate(p, { ...options, seed: i })));
    for (const [i, p] of prompts.entries()) expect(together[i]).toBe(await cold.generate(p, { ...options, seed: i }));
  });

  it('a small bound evicts least recently used states and stays within its bytes; 0 empties it', async () => {
    const m = await fresh(64 * 1024);
    for (let i = 0; i < 6; i++) await m.generate(`${i}`.repeat(700), { maxTokens: 1 });
    const s = m.stateCacheStats();
    expect(s.evictions).toBeGreaterThan(0);
    expect(s.bytes).toBeLessThanOrEqual(64 * 1024);
    m.setStateCache({ maxBytes: 0 });
    expect(m.stateCacheStats()).toMatchObject({ entries: 0, bytes: 0, maxBytes: 0 });
  });

  it('refuses bad options with the offending name', async () => {
    const m = await loadLanguageModel(FIXTURE);
    expect(() => m.setStateCache({ maxBytes: -1 })).toThrow(expect.objectContaining({ name: 'RangeError', code: 'ERR_RNNKIT_RANGE' }));
    expect(() => m.setStateCache({ maxBytes: 1.5 })).toThrow(/options\.maxBytes/);
    expect(() => m.setStateCache({ maxBytes: 1, maxEntries: 3 } as never)).toThrow(expect.objectContaining({ code: 'ERR_RNNKIT_UNKNOWN_OPTION' }));
    expect(() => m.setStateCache(null as never)).toThrow(TypeError);
  });

  it('the server caches by default and counts hits in /metrics; stateCacheMb 0 turns it off', async () => {
    const model = await loadLanguageModel(FIXTURE);
    const cold = await fresh(0);
    const { server, url } = await startServer(model, { modelId: 'pp_lstm', maxPromptTokens: 4096 });
    try {
      const body = { max_tokens: 24, temperature: 0.8, seed: 5, stream: true };
      const first = await stream(url, { ...body, prompt: FIRST });
      const second = await stream(url, { ...body, prompt: SECOND });
      expect(first.text).toBe(await cold.generate(FIRST, { maxTokens: 24, temperature: 0.8, seed: 5 }));
      expect(second.text).toBe(await cold.generate(SECOND, { maxTokens: 24, temperature: 0.8, seed: 5 }));
      const metrics = (await fetch(`${url}/metrics`).then((r) => r.text())).split('\n');
      expect(metrics).toContain('rnnkit_state_cache_hits_total 1');
      expect(metrics).toContain('rnnkit_state_cache_misses_total 1');
      expect(metrics).toContain('rnnkit_state_cache_reused_tokens_total 384');
      expect(metrics).toContain(`rnnkit_state_cache_max_bytes ${64 * 1024 * 1024}`);
    } finally {
      await server.close({ graceful: false });
    }
    const off = await startServer(model, { stateCacheMb: 0 });
    try {
      expect((await request(off.url, '/v1/models')).status).toBe(200);
      expect(await fetch(`${off.url}/metrics`).then((r) => r.text())).toContain('rnnkit_state_cache_max_bytes 0');
      expect(model.stateCacheStats()).toMatchObject({ maxBytes: 0, entries: 0 });
    } finally {
      await off.server.close({ graceful: false });
    }
  });
});
