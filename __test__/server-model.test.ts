/**
 * The server over the real native model (the PyTorch-trained fixture): the official client,
 * and bounded loads of 64 and 256 concurrent streams, each equal to the same request made alone.
 * Throughput at 1, 8 and 64 concurrent streams is printed (measured, never asserted).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as path from 'path';
import OpenAI from 'openai';
import { loadLanguageModel, type LanguageModel } from '../src/index';
import { runStreams, startServer, type Started } from './server-harness';

let model: LanguageModel;
let started: Started;

beforeAll(async () => {
  model = await loadLanguageModel(path.join(__dirname, '../fixtures/models/pp_lstm.safetensors'));
  // The library's own model, served as it is.
  started = await startServer(model, { modelId: 'pp_lstm', maxConcurrent: 256, maxQueue: 256, maxConnectionsPerClient: 512 });
});

afterAll(async () => {
  await started?.server.close({ graceful: false });
});

describe('server with the native model', () => {
  it('answers the official openai client, streaming and not, like the model itself', async () => {
    const client = new OpenAI({ baseURL: `${started.url}/v1`, apiKey: 'x', maxRetries: 0 });
    const body = { model: 'pp_lstm', prompt: 'Elizabeth was', max_tokens: 40, temperature: 0.8, seed: 7 };
    const answer = await client.completions.create(body);
    expect(answer.choices[0].text).toBe(await model.generate('Elizabeth was', { maxTokens: 40, temperature: 0.8, seed: 7 }));
    expect(answer.usage).toMatchObject({ prompt_tokens: 13, completion_tokens: 40, total_tokens: 53 });
    let streamed = '';
    for await (const chunk of await client.completions.create({ ...body, stream: true })) streamed += chunk.choices[0]?.text ?? '';
    expect(streamed).toBe(answer.choices[0].text);
    const greedy = await client.completions.create({ ...body, temperature: 0, stop: ['\n'] });
    expect(greedy.choices[0].text).toBe(await model.generate('Elizabeth was', { maxTokens: 40, greedy: true, stop: '\n' }));
  });

  it('chat completions with the default template equal the model continuing the rendered prompt', async () => {
    const client = new OpenAI({ baseURL: `${started.url}/v1`, apiKey: 'x', maxRetries: 0 });
    const messages = [{ role: 'user' as const, content: 'Who is Mr. Darcy?' }];
    const prompt = 'user: Who is Mr. Darcy?\nassistant:';
    const res = await client.chat.completions.create({ model: 'pp_lstm', messages, max_tokens: 40, seed: 3, n: 2 });
    for (const c of res.choices) {
      expect(c.message.content).toBe(await model.generate(prompt, { maxTokens: 40, seed: 3 + c.index, stop: ['\nuser:', '\nsystem:', '\nassistant:'] }));
    }
    let streamed = '';
    for await (const chunk of await client.chat.completions.create({ model: 'pp_lstm', messages, max_tokens: 40, seed: 3, stream: true }))
      streamed += chunk.choices[0]?.delta.content ?? '';
    expect(streamed).toBe(res.choices[0].message.content);
  });

  it('logprobs: the tokens spell the text, greedy picks the top alternative, streaming reports the same', async () => {
    const client = new OpenAI({ baseURL: `${started.url}/v1`, apiKey: 'x', maxRetries: 0 });
    const res = await client.completions.create({ model: 'pp_lstm', prompt: 'Elizabeth', max_tokens: 12, temperature: 0, logprobs: 3 });
    const lp = res.choices[0].logprobs!;
    expect(lp.tokens!.join('')).toBe(res.choices[0].text);
    expect(lp.tokens).toHaveLength(12);
    for (const [i, tops] of lp.top_logprobs!.entries()) {
      const entries = Object.entries(tops);
      expect(entries).toHaveLength(3);
      expect(entries[0]).toEqual([lp.tokens![i], lp.token_logprobs![i]]);
      expect(entries[0][1]).toBeLessThanOrEqual(0);
      expect(entries[0][1]).toBeGreaterThanOrEqual(entries[1][1]);
    }
    expect(lp.text_offset![1]).toBe(lp.tokens![0].length);
    const streamedTokens: string[] = [];
    for await (const chunk of await client.completions.create({
      model: 'pp_lstm',
      prompt: 'Elizabeth',
      max_tokens: 12,
      temperature: 0,
      logprobs: 3,
      stream: true,
    })) {
      streamedTokens.push(...(chunk.choices[0]?.logprobs?.tokens ?? []));
    }
    expect(streamedTokens).toEqual(lp.tokens);
    const chat = await client.chat.completions.create({
      model: 'pp_lstm',
      messages: [{ role: 'user', content: 'Hello' }],
      max_tokens: 6,
      temperature: 0,
      logprobs: true,
      top_logprobs: 2,
    });
    const content = chat.choices[0].logprobs!.content!;
    expect(content.map((t) => t.token).join('')).toBe(chat.choices[0].message.content);
    expect(content[0].top_logprobs).toHaveLength(2);
    expect(content[0].bytes).toEqual([...Buffer.from(content[0].token)]);
  });

  it('presence and frequency penalties are the engine sampler’s: the server answers what generate() gives', async () => {
    const client = new OpenAI({ baseURL: `${started.url}/v1`, apiKey: 'x', maxRetries: 0 });
    const plain = await client.completions.create({ model: 'pp_lstm', prompt: 'It is', max_tokens: 60, temperature: 0 });
    const penalised = await client.completions.create({
      model: 'pp_lstm',
      prompt: 'It is',
      max_tokens: 60,
      temperature: 0,
      presence_penalty: 1.5,
      frequency_penalty: 0.5,
    });
    expect(penalised.choices[0].text).not.toBe(plain.choices[0].text);
    expect(penalised.choices[0].text).toBe(await model.generate('It is', { maxTokens: 60, greedy: true, presencePenalty: 1.5, frequencyPenalty: 0.5 }));
  });

  it('64 concurrent streams all complete, each equal to the same request alone', async () => {
    const prompts = ['It is', 'Mr. Darcy', 'Jane', 'The ', 'Lady Catherine', 'Kitty', 'Netherfield', 'Lizzy'];
    const bodies = Array.from({ length: 64 }, (_, i) => ({ prompt: prompts[i % prompts.length], max_tokens: 48, temperature: 1, top_k: 20, seed: 1000 + i }));
    const alone = await runStreams(started.url, bodies, 1);
    const together = await runStreams(started.url, bodies, 64);
    for (const [i, r] of together.results.entries()) {
      expect(r.status, `stream ${i}`).toBe(200);
      expect(r.done, `stream ${i}`).toBe(true);
      expect(r.text, `stream ${i}`).toBe(alone.results[i].text);
    }
    const eight = await runStreams(started.url, bodies.slice(0, 32), 8);
    const one = await runStreams(started.url, bodies.slice(0, 8), 1);
    const rate = (r: { tokens: number; seconds: number }) => Math.round(r.tokens / r.seconds);
    console.log(
      `server throughput (pp_lstm, 2-layer LSTM H=256): 1 stream ${rate(one)} tok/s, 8 streams ${rate(eight)} tok/s, 64 streams ${rate(together)} tok/s`,
    );
    expect(together.tokens).toBe(64 * 48);
  });

  it('256 concurrent streams all complete, each equal to the same request alone (seeded and greedy)', async () => {
    const prompts = ['It is', 'Mr. Darcy', 'Jane', 'The ', 'Lady Catherine', 'Kitty', 'Netherfield', 'Lizzy'];
    const bodies = Array.from({ length: 256 }, (_, i) =>
      i % 4 === 3
        ? { prompt: prompts[i % prompts.length], max_tokens: 16, temperature: 0 }
        : { prompt: prompts[i % prompts.length], max_tokens: 16, temperature: 0.9, seed: 5000 + i },
    );
    const alone = await runStreams(started.url, bodies, 1);
    const together = await runStreams(started.url, bodies, 256);
    for (const [i, r] of together.results.entries()) {
      expect(r.status, `stream ${i}`).toBe(200);
      expect(r.done, `stream ${i}`).toBe(true);
      expect(r.text, `stream ${i}`).toBe(alone.results[i].text);
    }
    expect(together.tokens).toBe(256 * 16);
  });
});
