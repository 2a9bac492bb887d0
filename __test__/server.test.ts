/**
 * Protocol tests of the OpenAI-compatible server against a deterministic fake model
 * (`fake-model.ts`). The helpers in `server-harness.ts` take any `CompletionModel`, so a test with
 * the real native model only swaps the model passed to `startServer`.
 */
import * as http from 'node:http';
import * as net from 'node:net';
import { setImmediate as immediate } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import OpenAI from 'openai';
import { createServer, SERVER_DEFAULTS, type CompletionModel, type CompletionStream, type ServerOptions } from '../src/server';
import type { Completion, GenerateOptions } from '../src/types';
import { FakeModel } from './fake-model';
import { request, runStreams, startServer, stream, until, type Started } from './server-harness';

const running: Started[] = [];

/** Starts a server that `afterEach` closes (immediately) if the test did not. */
async function start(model: CompletionModel, options: ServerOptions = {}): Promise<Started> {
  const started = await startServer(model, options);
  running.push(started);
  return started;
}

afterEach(async () => {
  await Promise.all(running.splice(0).map((s) => s.server.close({ graceful: false })));
});

function client(url: string): OpenAI {
  return new OpenAI({ baseURL: `${url}/v1`, apiKey: 'x', maxRetries: 0 });
}

/** A plain `node:http` request (for keep-alive and flow-control tests); `onData` sees each chunk. */
function nodeRequest(
  url: string,
  init: { method: string; path: string; body?: object; agent?: http.Agent; onData?: (chunk: string, res: http.IncomingMessage) => void },
): { req: http.ClientRequest; response: Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string; reusedSocket: boolean }> } {
  const req = http.request(`${url}${init.path}`, { method: init.method, agent: init.agent, headers: { 'content-type': 'application/json' } });
  const response = new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string; reusedSocket: boolean }>((resolve, reject) => {
    req.on('error', reject);
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
        init.onData?.(chunk, res);
      });
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body, reusedSocket: req.reusedSocket }));
      res.on('error', reject);
    });
  });
  req.end(init.body === undefined ? undefined : JSON.stringify(init.body));
  return { req, response };
}

const JSON_TYPE = { 'content-type': 'application/json' };

const health = async (url: string): Promise<{ live: number; queued: number; status: string }> => (await request(url, '/healthz')).body;

describe('OpenAI client compatibility', () => {
  it('completions.create without streaming returns the model text, finish reason and usage', async () => {
    const model = new FakeModel();
    const { url } = await start(model);
    const res = await client(url).completions.create({ model: model.id, prompt: 'It is a truth', max_tokens: 24, seed: 7, temperature: 0.8 });
    const expected = model.expected('It is a truth', { maxTokens: 24, seed: 7 });
    expect(res.id).toMatch(/^cmpl-[0-9a-f]{32}$/);
    expect(res.object).toBe('text_completion');
    expect(res.model).toBe(model.id);
    expect(Math.abs(res.created - Date.now() / 1000)).toBeLessThan(5);
    expect(res.choices).toEqual([{ index: 0, text: expected.text, finish_reason: 'length', logprobs: null }]);
    expect(res.usage).toEqual({ prompt_tokens: 13, completion_tokens: 24, total_tokens: 37 });
    expect(model.calls[0].options).toMatchObject({ maxTokens: 24, seed: 7, temperature: 0.8 });
    expect(model.calls[0].options.signal).toBeInstanceOf(AbortSignal);
  });

  it('completions.create with stream: true delivers the same text piece by piece, then finish_reason and usage', async () => {
    const model = new FakeModel();
    const { url } = await start(model);
    const chunks = [];
    const s = await client(url).completions.create({
      model: model.id,
      prompt: 'It is a truth',
      max_tokens: 30,
      seed: 3,
      stream: true,
      stream_options: { include_usage: true },
    });
    for await (const chunk of s) chunks.push(chunk);
    const expected = model.expected('It is a truth', { maxTokens: 30, seed: 3 });
    const pieces = chunks.filter((c) => c.choices.length > 0);
    expect(pieces.length).toBeGreaterThan(2);
    expect(pieces.map((c) => c.choices[0].text).join('')).toBe(expected.text);
    expect(pieces.slice(0, -1).every((c) => c.choices[0].finish_reason === null)).toBe(true);
    expect(pieces.at(-1)!.choices[0].finish_reason).toBe('length');
    expect(new Set(chunks.map((c) => c.id)).size).toBe(1);
    expect(chunks.every((c) => c.object === 'text_completion' && c.model === model.id)).toBe(true);
    // OpenAI's include_usage shape: usage null on every chunk, then one last chunk with no choices.
    expect(chunks.slice(0, -1).every((c) => c.usage === null)).toBe(true);
    expect(chunks.at(-1)!.choices).toEqual([]);
    expect(chunks.at(-1)!.usage).toEqual({ prompt_tokens: 13, completion_tokens: 30, total_tokens: 43 });
    expect(model.calls[0].method).toBe('stream');
  });

  it('a stop string ends the text before its first occurrence with finish_reason "stop", streaming or not', async () => {
    const model = new FakeModel();
    const { url } = await start(model);
    const full = model.expected('Mr. Darcy', { maxTokens: 40, seed: 11 }).text;
    const stop = full.slice(20, 22);
    const before = full.slice(0, full.indexOf(stop));
    const openai = client(url);
    const plain = await openai.completions.create({ model: model.id, prompt: 'Mr. Darcy', max_tokens: 40, seed: 11, stop: [stop, 'QQ'] });
    expect(plain.choices[0].text).toBe(before);
    expect(plain.choices[0].finish_reason).toBe('stop');
    const s = await openai.completions.create({ model: model.id, prompt: 'Mr. Darcy', max_tokens: 40, seed: 11, stop, stream: true });
    let text = '';
    let finish: string | null = null;
    for await (const chunk of s) {
      text += chunk.choices[0].text;
      finish = chunk.choices[0].finish_reason;
    }
    expect(text).toBe(before);
    expect(finish).toBe('stop');
    expect(model.calls.map((c) => c.options.stop)).toEqual([[stop, 'QQ'], [stop]]);
  });

  it('models.list and models.retrieve show the served model', async () => {
    const model = new FakeModel({ id: 'pride-lstm' });
    const { url } = await start(model);
    const openai = client(url);
    const list = [];
    for await (const m of openai.models.list()) list.push(m);
    expect(list).toEqual([{ id: 'pride-lstm', object: 'model', created: expect.any(Number), owned_by: 'rnnkit' }]);
    expect(await openai.models.retrieve('pride-lstm')).toMatchObject({ id: 'pride-lstm', object: 'model' });
  });

  it('errors reach the client as OpenAI APIErrors with status, param and code', async () => {
    const model = new FakeModel();
    const { url } = await start(model);
    const error = await client(url)
      .completions.create({ model: model.id, prompt: 'x', n: 1000 })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    expect(error).toMatchObject({ status: 400, param: 'n', code: 'invalid_value' });
    expect(model.calls).toEqual([]);
  });
});

describe('request parameters', () => {
  it('maps OpenAI and rnnkit parameters to GenerateOptions; temperature 0 means greedy', async () => {
    const model = new FakeModel();
    const { url } = await start(model);
    const res = await request(url, '/v1/completions', {
      body: {
        prompt: ['Elizabeth'],
        temperature: 0,
        top_p: 0.9,
        top_k: 5,
        repetition_penalty: 1.3,
        stop: 'zz',
        seed: 5,
        max_tokens: 12,
        n: 1,
        echo: false,
        user: 'u1',
        logprobs: null,
        best_of: 1,
        suffix: '',
        presence_penalty: 0,
        frequency_penalty: 0,
        logit_bias: {},
        stream: false,
      },
    });
    expect(res.status).toBe(200);
    const options = model.calls[0].options;
    expect(model.calls[0].prompt).toBe('Elizabeth');
    expect(options).toMatchObject({ greedy: true, topP: 0.9, topK: 5, repetitionPenalty: 1.3, stop: ['zz'], seed: 5, maxTokens: 12 });
    expect(options.temperature).toBeUndefined();
    expect(res.body.choices[0].text).toBe(model.expected('Elizabeth', { ...options, signal: undefined }).text);
  });

  it('uses defaultMaxTokens when max_tokens is absent and leaves unset options to the model', async () => {
    const model = new FakeModel();
    const { url } = await start(model, { defaultMaxTokens: 9 });
    const res = await request(url, '/v1/completions', { body: { prompt: 'a' } });
    expect(res.body.usage.completion_tokens).toBe(9);
    const { signal, ...rest } = model.calls[0].options;
    expect(signal).toBeInstanceOf(AbortSignal);
    expect(rest).toEqual({ maxTokens: 9 });
  });

  const NAN_BODY = '{"prompt": "a", "temperature": NaN}';
  const cases: Array<[string, unknown, number, string | null, string, RegExp]> = [
    ['negative max_tokens', { prompt: 'a', max_tokens: -1 }, 400, 'max_tokens', 'invalid_value', /max_tokens.*-1/],
    ['fractional max_tokens', { prompt: 'a', max_tokens: 2.5 }, 400, 'max_tokens', 'invalid_value', /max_tokens.*2\.5/],
    ['max_tokens over the cap', { prompt: 'a', max_tokens: 5000 }, 400, 'max_tokens', 'invalid_value', /max_tokens.*\[1, 256\].*5000/],
    ['string temperature', { prompt: 'a', temperature: 'hot' }, 400, 'temperature', 'invalid_type', /temperature.*"hot"/],
    ['temperature above 2', { prompt: 'a', temperature: 2.5 }, 400, 'temperature', 'invalid_value', /temperature.*2\.5/],
    ['NaN temperature (not JSON)', NAN_BODY, 400, null, 'invalid_json', /not valid JSON/],
    ['n over maxChoices', { prompt: 'a', n: 17 }, 400, 'n', 'invalid_value', /n: .*\[1, 16\].*17/],
    ['n × prompts over maxChoices', { prompt: ['a', 'b', 'c'], n: 6 }, 400, 'n', 'invalid_value', /6 × 3 choices exceeds.*16/],
    ['a non-string prompt in an array', { prompt: ['a', 5] }, 400, 'prompt', 'invalid_type', /prompt\[1\].*5/],
    ['token-id prompt', { prompt: [1, 2, 3] }, 400, 'prompt', 'unsupported_value', /token-id/],
    ['numeric prompt', { prompt: 5 }, 400, 'prompt', 'invalid_type', /prompt.*5/],
    ['missing prompt', { max_tokens: 3 }, 400, 'prompt', 'missing_required_parameter', /prompt: required/],
    ['five stop strings', { prompt: 'a', stop: ['a', 'b', 'c', 'd', 'e'] }, 400, 'stop', 'invalid_value', /at most 4.*5/],
    ['empty stop string', { prompt: 'a', stop: ['x', ''] }, 400, 'stop', 'invalid_value', /stop\[1\]/],
    ['top_p 0', { prompt: 'a', top_p: 0 }, 400, 'top_p', 'invalid_value', /top_p.*\(0, 1\].*0/],
    ['top_p 1.5', { prompt: 'a', top_p: 1.5 }, 400, 'top_p', 'invalid_value', /top_p.*1\.5/],
    ['negative top_k', { prompt: 'a', top_k: -1 }, 400, 'top_k', 'invalid_value', /top_k.*-1/],
    ['zero repetition_penalty', { prompt: 'a', repetition_penalty: 0 }, 400, 'repetition_penalty', 'invalid_value', /repetition_penalty.*0/],
    ['negative seed', { prompt: 'a', seed: -3 }, 400, 'seed', 'invalid_value', /seed.*-3/],
    ['string stream', { prompt: 'a', stream: 'yes' }, 400, 'stream', 'invalid_type', /stream.*"yes"/],
    [
      'stream_options without stream',
      { prompt: 'a', stream_options: { include_usage: true } },
      400,
      'stream_options',
      'invalid_value',
      /only allowed when stream/,
    ],
    ['unknown argument', { prompt: 'a', temprature: 1 }, 400, 'temprature', 'unknown_parameter', /Unrecognized request argument supplied: temprature/],
    ['logprobs 6', { prompt: 'a', logprobs: 6 }, 400, 'logprobs', 'invalid_value', /logprobs.*\[0, 5\].*6/],
    ['best_of 3', { prompt: 'a', best_of: 3 }, 400, 'best_of', 'unsupported_parameter', /best_of.*3/],
    ['echo with logprobs', { prompt: 'a', echo: true, logprobs: 1 }, 400, 'echo', 'unsupported_value', /echo: not supported together with logprobs/],
    ['presence_penalty 3', { prompt: 'a', presence_penalty: 3 }, 400, 'presence_penalty', 'invalid_value', /presence_penalty.*3/],
    ['frequency_penalty -2.5', { prompt: 'a', frequency_penalty: -2.5 }, 400, 'frequency_penalty', 'invalid_value', /frequency_penalty.*-2\.5/],
    ['a non-object stream_options', { prompt: 'a', stream: true, stream_options: 'usage' }, 400, 'stream_options', 'invalid_type', /stream_options.*"usage"/],
    [
      'a string include_usage',
      { prompt: 'a', stream: true, stream_options: { include_usage: 'yes' } },
      400,
      'stream_options',
      'invalid_type',
      /include_usage.*"yes"/,
    ],
    ['a non-object body', '[1, 2]', 400, null, 'invalid_type', /JSON object.*array/],
    ['prompt over maxPromptTokens', { prompt: 'x'.repeat(65) }, 400, 'prompt', 'context_length_exceeded', /65 tokens exceeds.*64/],
    ['prompt outside the vocabulary', { prompt: 'a\u0007' }, 400, 'prompt', 'invalid_value', /not in the vocabulary/],
    ['another model', { prompt: 'a', model: 'gpt-4' }, 404, 'model', 'model_not_found', /"gpt-4" does not exist/],
  ];

  it.each(cases)('rejects %s with an OpenAI-shaped error', async (_name, body, status, param, code, message) => {
    const model = new FakeModel({ vocab: 'abcdefghijklmnopqrstuvwxyz x' });
    const { url } = await start(model, { maxTokens: 256, maxPromptTokens: 64 });
    const res = await request(url, '/v1/completions', { body });
    expect(res.status).toBe(status);
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(Object.keys(res.body.error).sort()).toEqual(['code', 'message', 'param', 'type']);
    expect(res.body.error).toMatchObject({ type: 'invalid_request_error', param, code });
    expect(res.body.error.message).toMatch(message);
    expect(model.calls).toEqual([]);
  });
});

describe('routes and error statuses', () => {
  it('answers /healthz with live and queued counts', async () => {
    const { url } = await start(new FakeModel(), { maxConcurrent: 3, maxQueue: 5 });
    const res = await request(url, '/healthz');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ status: 'ok', model: 'fake-char-model', live: 0, queued: 0, maxConcurrent: 3, maxQueue: 5 });
  });

  it('404 for unknown routes and models, 405 with Allow for wrong methods', async () => {
    const { url } = await start(new FakeModel());
    const unknown = await request(url, '/v1/chat/completion', { body: { prompt: 'a' } });
    expect(unknown.status).toBe(404);
    expect(unknown.body.error).toEqual({ message: 'Invalid URL (POST /v1/chat/completion)', type: 'invalid_request_error', param: null, code: 'not_found' });
    const model = await request(url, '/v1/models/nope');
    expect(model.status).toBe(404);
    expect(model.body.error).toMatchObject({ param: 'model', code: 'model_not_found' });
    const get = await request(url, '/v1/completions');
    expect(get.status).toBe(405);
    expect(get.headers.get('allow')).toBe('POST, OPTIONS');
    expect(get.body.error).toMatchObject({ type: 'invalid_request_error', code: 'method_not_allowed' });
    const del = await request(url, '/v1/models', { method: 'DELETE' });
    expect(del.status).toBe(405);
    expect(del.headers.get('allow')).toBe('GET, HEAD, OPTIONS');
    const malformed = await request(url, '/v1/models/%E0%A4%A');
    expect(malformed.status).toBe(400);
    expect(malformed.body.error.message).toMatch(/malformed percent-encoding/);
    expect((await request(url, '/healthz?probe=1')).status).toBe(200);
    const head = await fetch(`${url}/healthz`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe('');
  });

  it('survives a client that leaves in the middle of sending its body', async () => {
    const { url, logs } = await start(new FakeModel());
    const { hostname, port } = new URL(url);
    const socket = net.connect(Number(port), hostname);
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.write('POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"prompt":');
    await new Promise((r) => setTimeout(r, 50)); // let the server parse the head and start reading the body
    socket.destroy();
    await until('the request is logged as closed by the client', () => logs.some((l) => l.event === 'request' && l.data?.status === 499));
    expect((await request(url, '/healthz')).status).toBe(200);
  });

  it('a listen error (port in use) rejects listen()', async () => {
    const { url } = await start(new FakeModel());
    const second = createServer(new FakeModel(), { port: Number(new URL(url).port) });
    await expect(second.listen()).rejects.toThrow(/EADDRINUSE/);
  });

  it('a throwing onLog hook does not disturb serving', async () => {
    const server = createServer(new FakeModel(), {
      port: 0,
      onLog: () => {
        throw new Error('log sink down');
      },
    });
    const { url } = await server.listen();
    expect((await request(url, '/v1/completions', { body: { prompt: 'a', max_tokens: 3 } })).status).toBe(200);
    await server.close();
  });

  it('413 when the body exceeds bodyLimit, by Content-Length or while streaming it', async () => {
    const model = new FakeModel();
    const { url } = await start(model, { bodyLimit: 1024 });
    const big = JSON.stringify({ prompt: 'a'.repeat(4000) });
    const declared = await request(url, '/v1/completions', { body: big });
    expect(declared.status).toBe(413);
    expect(declared.body.error).toMatchObject({ type: 'invalid_request_error', code: 'request_too_large' });
    expect(declared.body.error.message).toMatch(/1024 bytes/);
    const encoder = new TextEncoder();
    const chunked = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < 4; i++) controller.enqueue(encoder.encode(big.slice(i * 1000, (i + 1) * 1000)));
        controller.close();
      },
    });
    const res = await fetch(`${url}/v1/completions`, { method: 'POST', body: chunked, duplex: 'half', headers: JSON_TYPE } as RequestInit);
    expect(res.headers.get('transfer-encoding')).toBeNull();
    expect(res.status).toBe(413);
    const refused = (await res.json()) as { error: { code: string } };
    expect(refused.error.code).toBe('request_too_large');
    // The limit is exclusive of smaller bodies.
    expect((await request(url, '/v1/completions', { body: { prompt: 'a'.repeat(900), max_tokens: 1 } })).status).toBe(200);
    expect(model.calls.length).toBe(1);
  });

  it('500 with a generic message when the model fails; the cause goes to onLog only', async () => {
    class Broken extends FakeModel {
      override complete(): Promise<Completion> {
        return Promise.reject(new Error('weights file vanished'));
      }
    }
    const { url, logs } = await start(new Broken());
    const res = await request(url, '/v1/completions', { body: { prompt: 'a' } });
    expect(res.status).toBe(500);
    expect(res.body.error).toMatchObject({ type: 'server_error', code: 'internal_error', param: null });
    expect(res.body.error.message).not.toMatch(/vanished/);
    expect(res.body.error.message).toContain(res.headers.get('x-request-id'));
    expect(logs.some((l) => l.level === 'error' && l.message.includes('weights file vanished') && l.requestId === res.headers.get('x-request-id'))).toBe(true);
  });

  it('a model range error (e.g. an invalid option for this model) is a 400', async () => {
    class Picky extends FakeModel {
      override complete(prompt: string, options: GenerateOptions): Promise<Completion> {
        if ((options.topK ?? 0) > 3) return Promise.reject(Object.assign(new RangeError('topK: expected at most 3, got 9'), { code: 'ERR_RNNKIT_RANGE' }));
        return super.complete(prompt, options);
      }
    }
    const { url } = await start(new Picky());
    const res = await request(url, '/v1/completions', { body: { prompt: 'a', top_k: 9 } });
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ type: 'invalid_request_error', message: 'topK: expected at most 3, got 9' });
  });

  it('a model error before the first piece of a stream is a plain JSON error, not an event', async () => {
    class PickyStream extends FakeModel {
      override stream(prompt: string, options: GenerateOptions): CompletionStream {
        if ((options.topK ?? 0) > 3) {
          const completion = Promise.reject(Object.assign(new RangeError('topK: expected at most 3, got 9'), { code: 'ERR_RNNKIT_RANGE' }));
          const pieces = async function* (): AsyncGenerator<string> {
            await completion;
          };
          return Object.assign(pieces(), { completion });
        }
        return super.stream(prompt, options);
      }
    }
    const { url } = await start(new PickyStream());
    const res = await stream(url, { prompt: 'a', top_k: 9 });
    expect(res.status).toBe(400);
    expect(res.events).toEqual([{ error: { message: 'topK: expected at most 3, got 9', type: 'invalid_request_error', param: null, code: 'invalid_value' } }]);
  });

  it('a model that reports finish reason "abort" without being aborted is a 500', async () => {
    class Quitter extends FakeModel {
      override async complete(prompt: string): Promise<Completion> {
        return { text: '', finishReason: 'abort', promptTokens: prompt.length, completionTokens: 0 };
      }
    }
    const { url, logs } = await start(new Quitter());
    const res = await request(url, '/v1/completions', { body: { prompt: 'a' } });
    expect(res.status).toBe(500);
    expect(logs.some((l) => l.level === 'error' && /without being aborted/.test(l.message))).toBe(true);
  });

  it('logs through onLog, one request record per response', async () => {
    const { url, logs } = await start(new FakeModel());
    await request(url, '/v1/models');
    expect(logs.map((l) => l.event)).toEqual(['listening', 'request']);
    expect(logs[1]).toMatchObject({ level: 'info', data: { method: 'GET', path: '/v1/models', status: 200 } });
  });
});

describe('limits, aborts and timeouts', () => {
  it('429 with Retry-After when maxConcurrent and maxQueue are full; admitted requests still finish', async () => {
    const model = new FakeModel({ delayMs: 5 });
    const { url } = await start(model, { maxConcurrent: 1, maxQueue: 1, retryAfter: 3 });
    const first = stream(url, { prompt: 'first', max_tokens: 40, seed: 1 });
    await until('first generation live', async () => (await health(url)).live === 1);
    const second = request(url, '/v1/completions', { body: { prompt: 'second', max_tokens: 10, seed: 2 } });
    await until('second request queued', async () => (await health(url)).queued === 1);
    const third = await request(url, '/v1/completions', { body: { prompt: 'third' } });
    expect(third.status).toBe(429);
    expect(third.headers.get('retry-after')).toBe('3');
    expect(third.body.error).toMatchObject({ type: 'rate_limit_error', code: 'rate_limit_exceeded', param: null });
    expect(third.body.error.message).toMatch(/maxConcurrent 1, maxQueue 1/);
    const [a, b] = await Promise.all([first, second]);
    expect(a.done).toBe(true);
    expect(a.text).toBe(model.expected('first', { maxTokens: 40, seed: 1 }).text);
    expect(b.status).toBe(200);
    expect(b.body.choices[0].text).toBe(model.expected('second', { maxTokens: 10, seed: 2 }).text);
    expect(model.calls.map((c) => c.prompt)).toEqual(['first', 'second']);
  });

  it('a client that disconnects mid-stream aborts its generation', async () => {
    const model = new FakeModel({ delayMs: 5 });
    const { url } = await start(model);
    const controller = new AbortController();
    const res = await fetch(`${url}/v1/completions`, {
      method: 'POST',
      headers: JSON_TYPE,
      body: JSON.stringify({ prompt: 'leaving', max_tokens: 1000, stream: true }),
      signal: controller.signal,
    });
    const reader = res.body!.getReader();
    const first = await reader.read();
    expect(new TextDecoder().decode(first.value)).toMatch(/^data: \{/);
    controller.abort();
    await until('the model sees the abort', () => model.aborted.includes('leaving'));
    await until('no live generation', async () => (await health(url)).live === 0);
  });

  it('a client that stops reading holds its generation back (back-pressure); leaving then aborts it', async () => {
    const piece = 'x'.repeat(64 * 1024);
    const big = {
      id: 'big',
      pulled: 0,
      aborted: false,
      countTokens: (text: string) => text.length,
      complete: () => Promise.reject(new Error('not used')),
      stream(_prompt: string, options: GenerateOptions): CompletionStream {
        options.signal!.addEventListener('abort', () => (big.aborted = true));
        const completion = new Promise<Completion>(() => undefined); // never reached: the client leaves first
        const pieces = async function* (): AsyncGenerator<string> {
          for (let i = 0; i < options.maxTokens!; i++) {
            await immediate(undefined, { signal: options.signal });
            big.pulled++;
            yield piece;
          }
        };
        return Object.assign(pieces(), { completion });
      },
    };
    const { url } = await start(big, { maxTokens: 5000 });
    const { req, response } = nodeRequest(url, {
      method: 'POST',
      path: '/v1/completions',
      body: { prompt: 'a', max_tokens: 5000, stream: true },
      onData: (_chunk, res) => res.pause(),
    });
    response.catch(() => undefined);
    // Without back-pressure all 5000 pieces (320 MB) would be produced and buffered at once.
    let last = -1;
    await until('the generation stalls', async () => {
      await new Promise((r) => setTimeout(r, 100));
      const stalled = big.pulled === last;
      last = big.pulled;
      return stalled;
    });
    expect(big.pulled).toBeGreaterThan(0);
    expect(big.pulled).toBeLessThan(1000);
    req.destroy();
    await until('the generation is aborted', () => big.aborted);
  });

  it('a client that disconnects while waiting for a plain completion aborts it', async () => {
    const model = new FakeModel({ delayMs: 5 });
    const { url } = await start(model);
    const controller = new AbortController();
    const pending = fetch(`${url}/v1/completions`, {
      method: 'POST',
      headers: JSON_TYPE,
      body: JSON.stringify({ prompt: 'bye', max_tokens: 1000 }),
      signal: controller.signal,
    });
    await until('generation live', () => model.live === 1);
    controller.abort();
    await expect(pending).rejects.toThrow();
    await until('the model sees the abort', () => model.aborted.includes('bye'));
  });

  it('a queued request whose client leaves is dropped from the queue and never reaches the model', async () => {
    const model = new FakeModel({ delayMs: 5 });
    const { url } = await start(model, { maxConcurrent: 1 });
    const first = request(url, '/v1/completions', { body: { prompt: 'first', max_tokens: 40 } });
    await until('first live', () => model.live === 1);
    const controller = new AbortController();
    const queued = fetch(`${url}/v1/completions`, {
      method: 'POST',
      headers: JSON_TYPE,
      body: JSON.stringify({ prompt: 'queued' }),
      signal: controller.signal,
    });
    await until('second queued', async () => (await health(url)).queued === 1);
    controller.abort();
    await expect(queued).rejects.toThrow();
    await until('queue empty', async () => (await health(url)).queued === 0);
    expect((await first).status).toBe(200);
    expect(model.calls.map((c) => c.prompt)).toEqual(['first']);
  });

  it('requestTimeout aborts the generation: 504 for a plain request, an error event for a stream', async () => {
    const model = new FakeModel({ delayMs: 10 });
    const { url } = await start(model, { requestTimeout: 150 });
    const started = performance.now();
    const plain = await request(url, '/v1/completions', { body: { prompt: 'slow', max_tokens: 500 } });
    expect(performance.now() - started).toBeLessThan(2000);
    expect(plain.status).toBe(504);
    expect(plain.body.error).toMatchObject({ type: 'timeout_error', code: 'request_timeout', param: null });
    expect(plain.body.error.message).toMatch(/150 ms/);
    const streamed = await stream(url, { prompt: 'slow stream', max_tokens: 500 });
    expect(streamed.status).toBe(200);
    expect(streamed.done).toBe(false);
    expect(streamed.events.length).toBeGreaterThan(1);
    expect(streamed.events.at(-1)).toEqual({
      error: { message: expect.stringMatching(/timeout/), type: 'timeout_error', param: null, code: 'request_timeout' },
    });
    expect(model.aborted).toEqual(['slow', 'slow stream']);
  });

  it('the openai client raises a timed-out stream as an APIError', async () => {
    const model = new FakeModel({ delayMs: 10 });
    const { url } = await start(model, { requestTimeout: 100 });
    const s = await client(url).completions.create({ model: model.id, prompt: 'slow', max_tokens: 500, stream: true });
    const consume = async (): Promise<number> => {
      let n = 0;
      for await (const chunk of s) n += chunk.choices.length;
      return n;
    };
    const error = await consume().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.APIError);
    expect(error).toMatchObject({ code: 'request_timeout', type: 'timeout_error' });
  });
});

describe('shutdown', () => {
  it('graceful close stops accepting, lets a live stream finish, then resolves', async () => {
    const model = new FakeModel({ delayMs: 5 });
    const { server, url, logs } = await start(model);
    const live = stream(url, { prompt: 'finish me', max_tokens: 40, seed: 4 });
    await until('stream live', () => model.live === 1);
    const closed = server.close({ graceful: true, timeout: 10_000 });
    await expect(fetch(`${url}/healthz`)).rejects.toThrow();
    const result = await live;
    expect(result.done).toBe(true);
    expect(result.text).toBe(model.expected('finish me', { maxTokens: 40, seed: 4 }).text);
    await closed;
    expect(server.address).toBeNull();
    expect(model.aborted).toEqual([]);
    expect(logs.some((l) => l.event === 'shutdown')).toBe(true);
  });

  it('a request on a kept-alive connection during shutdown gets 503 and Connection: close', async () => {
    const model = new FakeModel({ delayMs: 5 });
    const { server, url } = await start(model);
    const long = stream(url, { prompt: 'long', max_tokens: 200 }); // keeps the drain going
    await until('long live', () => model.live === 1);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    let started!: () => void;
    const firstPiece = new Promise<void>((resolve) => (started = resolve));
    const short = nodeRequest(url, {
      method: 'POST',
      path: '/v1/completions',
      agent,
      body: { prompt: 'short', max_tokens: 20, stream: true },
      onData: () => started(),
    });
    await firstPiece;
    const closing = server.close({ graceful: true, timeout: 10_000 });
    const s = await short.response;
    expect(s.status).toBe(200);
    expect(s.body.endsWith('data: [DONE]\n\n')).toBe(true);
    const h = await nodeRequest(url, { method: 'GET', path: '/healthz', agent }).response;
    expect(h.reusedSocket).toBe(true);
    expect(h.status).toBe(503);
    expect(h.headers.connection).toBe('close');
    expect(JSON.parse(h.body)).toMatchObject({ status: 'shutting_down', live: 1 });
    expect((await long).done).toBe(true);
    await closing;
    agent.destroy();
  });

  it('graceful close aborts streams still live at the deadline with an error event', async () => {
    const model = new FakeModel({ delayMs: 10 });
    const { server, url } = await start(model);
    const live = stream(url, { prompt: 'too long', max_tokens: 1000 });
    await until('stream live', () => model.live === 1);
    const started = performance.now();
    await server.close({ graceful: true, timeout: 100 });
    expect(performance.now() - started).toBeLessThan(2000);
    const result = await live;
    expect(result.done).toBe(false);
    expect(result.events.at(-1).error).toMatchObject({ type: 'server_error', code: 'server_shutting_down' });
    expect(model.aborted).toEqual(['too long']);
  });

  it('graceful close answers queued requests 503 at once and is idempotent', async () => {
    const model = new FakeModel({ delayMs: 5 });
    const { server, url } = await start(model, { maxConcurrent: 1 });
    const live = request(url, '/v1/completions', { body: { prompt: 'live', max_tokens: 60, seed: 9 } });
    await until('live', () => model.live === 1);
    const queued = request(url, '/v1/completions', { body: { prompt: 'queued' } });
    await until('queued', async () => (await health(url)).queued === 1);
    const closing = server.close({ graceful: true, timeout: 60_000 });
    expect(server.close({ graceful: false })).toBe(closing);
    const q = await queued;
    expect(q.status).toBe(503);
    expect(q.body.error).toMatchObject({ type: 'server_error', code: 'server_shutting_down' });
    expect(model.live).toBe(1);
    const l = await live;
    expect(l.status).toBe(200);
    expect(l.body.choices[0].text).toBe(model.expected('live', { maxTokens: 60, seed: 9 }).text);
    await closing;
    expect(model.calls.map((c) => c.prompt)).toEqual(['live']);
    await expect(server.listen()).rejects.toThrow(/closed/);
  });

  it('non-graceful close aborts live generations at once', async () => {
    const model = new FakeModel({ delayMs: 10 });
    const { server, url } = await start(model);
    const live = stream(url, { prompt: 'cut', max_tokens: 1000 });
    const plain = request(url, '/v1/completions', { body: { prompt: 'cut too', max_tokens: 1000 } });
    await until('both live', () => model.live === 2);
    const started = performance.now();
    await server.close({ graceful: false });
    expect(performance.now() - started).toBeLessThan(1000);
    const [s, p] = await Promise.all([live, plain]);
    expect(s.done).toBe(false);
    expect(s.events.at(-1).error.code).toBe('server_shutting_down');
    expect(p.status).toBe(503);
    expect(model.aborted.sort()).toEqual(['cut', 'cut too']);
    expect(model.live).toBe(0);
  });
});

describe('server options', () => {
  it('validates options with errors naming the option', () => {
    const model = new FakeModel();
    expect(() => createServer(model, { maxConcurrent: 0 })).toThrow(/options\.maxConcurrent.*0/);
    expect(() => createServer(model, { port: 70000 })).toThrow(/options\.port.*70000/);
    expect(() => createServer(model, { bodyLimit: 1.5 })).toThrow(/options\.bodyLimit.*1\.5/);
    expect(() => createServer(model, { maxTokens: 100, defaultMaxTokens: 200 })).toThrow(/options\.defaultMaxTokens.*\[1, 100\].*200/);
    expect(() => createServer(model, { host: '' })).toThrow(/options\.host/);
    expect(() => createServer(model, { maxConcurent: 4 } as ServerOptions)).toThrow(/options\.maxConcurent: unknown option; did you mean "maxConcurrent"/);
    expect(() => createServer(model, { onLog: 'console' } as unknown as ServerOptions)).toThrow(/options\.onLog.*function/);
    expect(() => createServer({ id: 'm', countTokens: () => 0, complete: async () => model.expected('', {}) } as never)).toThrow(/model\.stream/);
  });

  it('has documented defaults and listens on loopback by default', async () => {
    expect(SERVER_DEFAULTS.host).toBe('127.0.0.1');
    const server = createServer(new FakeModel(), { port: 0 });
    const { url } = await server.listen();
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(server.address).toMatchObject({ address: '127.0.0.1', port: Number(new URL(url).port) });
    await expect(server.listen()).rejects.toThrow(/already listening/);
    await server.close();
  });
});

describe('load', () => {
  it('64 concurrent streams all complete, none errors, each equals the same request made alone', async () => {
    const model = new FakeModel({ delayMs: 1 });
    const { url } = await start(model, { maxConcurrent: 64 });
    const bodies = Array.from({ length: 64 }, (_, i) => {
      const body = { prompt: `prompt ${i % 8}`, max_tokens: 64, seed: 1000 + i, temperature: 0.9 };
      // Every fourth request ends at a stop string taken from late in its own text.
      return i % 4 === 0 ? { ...body, stop: model.expected(body.prompt, { maxTokens: 64, seed: body.seed }).text.slice(48, 51) } : body;
    });
    // Hold the generations until all 64 are inside the model at once: a server that serialised
    // requests (or capped them below maxConcurrent) would never get there.
    const release = model.hold();
    const running64 = runStreams(url, bodies, 64);
    await until('64 generations live at once', () => model.live === 64, 10_000);
    release();
    const together = await running64;
    model.delayMs = 0; // only timing changes; the text depends on prompt, seed and options alone
    const alone = await runStreams(url, bodies, 1);
    for (let i = 0; i < bodies.length; i++) {
      const [a, b] = [together.results[i], alone.results[i]];
      expect(a.status).toBe(200);
      expect(a.done).toBe(true);
      expect(a.events.some((e) => 'error' in e)).toBe(false);
      expect(a.text).toBe(b.text);
      const finish = a.events.at(-2).choices[0].finish_reason;
      expect(finish).toBe(b.events.at(-2).choices[0].finish_reason);
      expect(finish).toBe(i % 4 === 0 ? 'stop' : 'length');
      const { prompt, seed, stop } = bodies[i] as { prompt: string; seed: number; stop?: string };
      expect(a.text).toBe(model.expected(prompt, { maxTokens: 64, seed, stop }).text);
    }
  });

  it('reports server throughput at 1, 8 and 64 concurrent streams (zero-cost fake model)', async () => {
    // The fake spends no time per token (it only yields to the event loop), so this measures the
    // server's per-token overhead plus the in-process HTTP client, not any model.
    const model = new FakeModel({ delayMs: 0 });
    const { url } = await start(model, { maxConcurrent: 64 });
    const bodies = Array.from({ length: 64 }, (_, i) => ({ prompt: 'throughput', max_tokens: 128, seed: i }));
    await runStreams(url, bodies.slice(0, 8), 8); // warm-up
    const lines: string[] = [];
    for (const concurrency of [1, 8, 64]) {
      const run = await runStreams(url, bodies, concurrency);
      expect(run.results.every((r) => r.done)).toBe(true);
      expect(run.tokens).toBe(64 * 128);
      lines.push(
        `concurrency ${String(concurrency).padStart(2)}: ${Math.round(run.tokens / run.seconds)} tokens/s (${run.tokens} tokens in ${run.seconds.toFixed(2)} s)`,
      );
    }
    console.log(`server throughput, fake model, one SSE event per token:\n${lines.join('\n')}`);
  });
});
