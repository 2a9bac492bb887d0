/**
 * Generation options cross the binding as typed objects checked once, natively: unknown keys are
 * refused on every generation entry point with the parameter named and a did-you-mean, no JSON
 * string is part of the native generation signatures, and the server takes the library's own
 * language model as it is.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'fs';
import * as path from 'path';
import { createLanguageModel, createServer, loadLanguageModel, type LanguageModel } from '../src/index';
import { native } from '../src/native';
import { request } from './server-harness';

const root = path.join(__dirname, '..');
let model: LanguageModel;

beforeAll(async () => {
  model = await loadLanguageModel(path.join(root, 'fixtures/models/pp_lstm.safetensors'));
});

/** The error `run` throws or rejects with. */
async function caught(run: () => unknown): Promise<Error & { code?: string; param?: string }> {
  try {
    await run();
  } catch (e) {
    return e as Error & { code?: string; param?: string };
  }
  throw new Error('expected an error');
}

function expectUnknown(e: Error & { code?: string; param?: string }, param: string, suggestion: string): void {
  expect(e).toBeInstanceOf(TypeError);
  expect(e.code).toBe('ERR_RNNKIT_UNKNOWN_OPTION');
  expect(e.param).toBe(param);
  expect(e.message).toContain(`did you mean "${suggestion}"`);
}

describe('generate refuses unknown option keys', () => {
  it('generate, complete, stream and generateBatch name the key and suggest the option', async () => {
    const bad = { max_tokens: 5 } as never;
    expectUnknown(await caught(() => model.generate('It is', bad)), 'options.max_tokens', 'maxTokens');
    expectUnknown(await caught(() => model.complete('It is', bad)), 'options.max_tokens', 'maxTokens');
    // stream() refuses before it returns, synchronously.
    expectUnknown(await caught(() => model.stream('It is', bad)), 'options.max_tokens', 'maxTokens');
    expectUnknown(await caught(() => model.generateBatch(['It is', 'Jane'], bad)), 'options.max_tokens', 'maxTokens');
    expectUnknown(await caught(() => model.generate('It is', { temprature: 0.5 } as never)), 'options.temprature', 'temperature');
    // `signal` is handled in TypeScript but still suggested.
    expectUnknown(await caught(() => model.generate('It is', { signl: new AbortController().signal } as never)), 'options.signl', 'signal');
  });

  it('beam search and the session refuse them too', async () => {
    expectUnknown(await caught(() => model.generate('It is', { beams: 2, max_tokens: 5 } as never)), 'options.max_tokens', 'maxTokens');
    expectUnknown(await caught(() => model.generate('It is', { beams: 2, length_penalty: 0 } as never)), 'options.length_penalty', 'lengthPenalty');
    const ids = model.tokenizer!.encode('It is');
    const beam = { beams: 2, maxTokens: 3, lengthPenalty: 0, stopTokens: [] };
    expectUnknown(
      await caught(() => native.beamSearchNative(model.native, ids, { ...beam, max_tokens: 3 } as never, new native.CancelToken())),
      'options.max_tokens',
      'maxTokens',
    );
    expectUnknown(await caught(() => model.session({ row: 2 } as never)), 'options.row', 'rows');
    const s = model.session();
    s.feed('It is');
    expectUnknown(await caught(() => s.next({ top_k: 3 } as never)), 'options.top_k', 'topK');
    expectUnknown(await caught(() => s.nextBatch({ temp: 0 } as never)), 'options.temp', 'temperature');
    // Sampling options the session has no use for are unknown to it, not ignored.
    expect((await caught(() => s.next({ maxTokens: 3 } as never))).code).toBe('ERR_RNNKIT_UNKNOWN_OPTION');
    expect(s.next({ greedy: true }).id).toBeGreaterThanOrEqual(0);
  });

  it('bad values are checked natively and named as the caller wrote them', async () => {
    const cases: [object, string, string][] = [
      [{ maxTokens: -1 }, 'options.maxTokens', 'ERR_RNNKIT_RANGE'],
      [{ topK: 2.5 }, 'options.topK', 'ERR_RNNKIT_RANGE'],
      [{ repetitionPenalty: 0 }, 'options.repetitionPenalty', 'ERR_RNNKIT_RANGE'],
      [{ seed: -1 }, 'options.seed', 'ERR_RNNKIT_RANGE'],
      [{ beams: 0 }, 'options.beams', 'ERR_RNNKIT_RANGE'],
      [{ beams: 300 }, 'options.beams', 'ERR_RNNKIT_RANGE'],
      [{ temperature: 'hot' }, 'options.temperature', 'ERR_RNNKIT_TYPE'],
      [{ stop: ['a', ''] }, 'options.stop[1]', 'ERR_RNNKIT_TYPE'],
    ];
    for (const [options, param, code] of cases) {
      const e = await caught(() => model.generate('It is', options as never));
      expect({ param: e.param, code: e.code, head: e.message.startsWith(`${param}: `) }, e.message).toEqual({ param, code, head: true });
    }
    expect((await caught(() => model.generate('It is', null as never))).message).toMatch(/^options: expected an object/);
    expect((await caught(() => model.generate('It is', { signal: 'now' } as never))).message).toMatch(/^options.signal: expected an AbortSignal/);
  });
});

describe('no JSON crosses the generation binding', () => {
  const dts = fs.readFileSync(path.join(root, 'index.d.ts'), 'utf8');

  /** The parameter list of the declaration of `name` in index.d.ts. */
  function params(name: string): string {
    const m = new RegExp(`\\b${name}\\(([^)]*)\\)`).exec(dts);
    expect(m, name).not.toBeNull();
    return m![1];
  }

  it('the native generation entry points take typed option objects, no string', () => {
    for (const name of ['add', 'next', 'beamSearchNative', 'resolveGenerateOptions']) {
      const p = params(name);
      expect(p, name).not.toMatch(/:\s*string\b/);
      expect(p, name).not.toMatch(new RegExp('json', 'i'));
    }
    expect(params('add')).toMatch(/sampler: SamplerOptions/);
    expect(params('next')).toMatch(/options: SamplerOptions/);
    expect(params('beamSearchNative')).toMatch(/options: BeamOptions/);
    expect(params('resolveGenerateOptions')).toMatch(/options: NativeGenerateOptions/);
  });

  it('the TypeScript generation path serialises nothing', () => {
    for (const file of ['src/generate.ts', 'src/session.ts']) {
      expect(fs.readFileSync(path.join(root, file), 'utf8'), file).not.toMatch(/JSON\.(stringify|parse)/);
    }
  });
});

describe("createServer accepts the library's own language model", () => {
  it("serves a loaded model as it is, one completion equal to the model's own", async () => {
    const served = await loadLanguageModel(path.join(root, 'fixtures/models/pp_lstm.safetensors'));
    const server = createServer(served, { host: '127.0.0.1', port: 0 });
    const { url } = await server.listen();
    try {
      const r = await request(url, '/v1/completions', { body: { prompt: 'Elizabeth was', max_tokens: 12, temperature: 0 } });
      expect(r.status).toBe(200);
      expect(r.body.model).toBe('rnnkit');
      expect(r.body.choices[0].text).toBe(await served.generate('Elizabeth was', { maxTokens: 12, greedy: true }));
      expect(r.body.usage).toMatchObject({ completion_tokens: 12 });
      expect((await request(url, '/v1/models')).body.data[0].id).toBe('rnnkit');
    } finally {
      await server.close({ graceful: false });
    }
  });

  it('takes the id from options.modelId and refuses a model without a tokenizer', async () => {
    const server = createServer(model, { port: 0, modelId: 'pride' });
    const { url } = await server.listen();
    try {
      expect((await request(url, '/v1/models/pride')).status).toBe(200);
      const r = await request(url, '/v1/completions', { body: { model: 'pride', prompt: 'Jane', max_tokens: 3 } });
      expect(r.status).toBe(200);
    } finally {
      await server.close({ graceful: false });
    }
    const idsOnly = createLanguageModel({ vocabSize: 7, hiddenSize: 8, embedDim: 4 });
    expect(() => createServer(idsOnly)).toThrow(/model: serving needs a model with a tokenizer/);
    expect(() => createServer(model, { modelId: '' })).toThrow(/options.modelId/);
  });
});
