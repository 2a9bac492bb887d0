/**
 * What applications need from the server, against the deterministic fake model: chat
 * completions (official client, JSON and streaming, templates, n), completions' n, prompt
 * arrays and echo, the API key, CORS and the JSON-only content type, connection limits and
 * timeouts (idle sockets, slowloris, keep-alive), model faults as 500s that harm no other
 * request, /metrics, /readyz, the request log, and the embeddable node:http and fetch handlers.
 */
import * as http from 'node:http';
import * as net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import OpenAI from 'openai';
import { createHandler, DEFAULT_CHAT_TEMPLATE, type CompletionModel, type ServerOptions } from '../src/server';
import { FakeModel } from './fake-model';
import { request, startServer, until, type Started } from './server-harness';

const running: Started[] = [];

async function start(model: CompletionModel, options: ServerOptions = {}): Promise<Started> {
  const started = await startServer(model, options);
  running.push(started);
  return started;
}

afterEach(async () => {
  await Promise.all(running.splice(0).map((s) => s.server.close({ graceful: false })));
});

const client = (url: string, apiKey = 'x') => new OpenAI({ baseURL: `${url}/v1`, apiKey, maxRetries: 0 });
const JSON_TYPE = { 'content-type': 'application/json' };
const TURN_STOPS = ['\nuser:', '\nsystem:', '\nassistant:'];
const MESSAGES = [
  { role: 'system' as const, content: 'Be brief.' },
  { role: 'user' as const, content: 'Hi' },
];
const RENDERED = 'system: Be brief.\nuser: Hi\nassistant:';

describe('chat completions', () => {
  it('chat.completions.create renders the default template and answers as the assistant', async () => {
    const model = new FakeModel();
    const { url } = await start(model);
    const res = await client(url).chat.completions.create({ model: model.id, messages: MESSAGES, max_completion_tokens: 20, seed: 3, temperature: 0.7 });
    expect(model.calls[0].prompt).toBe(RENDERED);
    expect(model.calls[0].options).toMatchObject({ maxTokens: 20, seed: 3, temperature: 0.7, stop: TURN_STOPS });
    const expected = model.expected(RENDERED, { maxTokens: 20, seed: 3, stop: TURN_STOPS });
    expect(res.id).toMatch(/^chatcmpl-[0-9a-f]{32}$/);
    expect(res.object).toBe('chat.completion');
    expect(res.choices).toEqual([
      { index: 0, message: { role: 'assistant', content: expected.text, refusal: null }, logprobs: null, finish_reason: expected.finishReason },
    ]);
    expect(res.usage).toEqual({
      prompt_tokens: RENDERED.length,
      completion_tokens: expected.completionTokens,
      total_tokens: RENDERED.length + expected.completionTokens,
    });
  });

  it('streams the same message: a role delta, content deltas, the finish reason, then usage', async () => {
    const model = new FakeModel();
    const { url } = await start(model);
    const body = { model: model.id, messages: MESSAGES, max_tokens: 30, seed: 9 };
    const whole = await client(url).chat.completions.create(body);
    const chunks: OpenAI.Chat.Completions.ChatCompletionChunk[] = [];
    for await (const chunk of await client(url).chat.completions.create({ ...body, stream: true, stream_options: { include_usage: true } })) chunks.push(chunk);
    expect(chunks[0].choices[0].delta).toEqual({ role: 'assistant', content: '' });
    expect(chunks.every((c) => c.object === 'chat.completion.chunk' && c.id === chunks[0].id)).toBe(true);
    const content = chunks.map((c) => c.choices[0]?.delta.content ?? '').join('');
    expect(content).toBe(whole.choices[0].message.content);
    const last = chunks.at(-1)!;
    expect(last.choices).toEqual([]);
    expect(last.usage).toEqual(whole.usage);
    expect(chunks.at(-2)!.choices[0].finish_reason).toBe(whole.choices[0].finish_reason);
    expect(chunks.slice(0, -1).every((c) => c.usage === null)).toBe(true);
  });

  it('n choices get seeds seed, seed+1, …; usage counts the prompt once', async () => {
    const model = new FakeModel();
    const { url } = await start(model);
    const res = await client(url).chat.completions.create({ messages: MESSAGES, n: 3, seed: 5, max_tokens: 8, model: model.id });
    expect(res.choices.map((c) => c.index)).toEqual([0, 1, 2]);
    expect(model.calls.map((c) => c.options.seed).sort()).toEqual([5, 6, 7]);
    for (const c of res.choices) expect(c.message.content).toBe(model.expected(RENDERED, { maxTokens: 8, seed: 5 + c.index, stop: TURN_STOPS }).text);
    const completion = res.choices.reduce((s, c) => s + model.expected(RENDERED, { maxTokens: 8, seed: 5 + c.index, stop: TURN_STOPS }).completionTokens, 0);
    expect(res.usage).toEqual({ prompt_tokens: RENDERED.length, completion_tokens: completion, total_tokens: RENDERED.length + completion });
    // Streaming n: every choice's deltas carry its index.
    const s = await client(url).chat.completions.create({ messages: MESSAGES, n: 2, seed: 5, max_tokens: 8, model: model.id, stream: true });
    const text = ['', ''];
    for await (const chunk of s) for (const c of chunk.choices) text[c.index] += c.delta.content ?? '';
    expect(text).toEqual([res.choices[0].message.content, res.choices[1].message.content]);
  });

  it('uses the chatTemplate option over the model’s stored template, and the stored one over the default', async () => {
    const stored = '{% for m in messages %}[{{ m.role }}] {{ m.content }}|{% endfor %}>';
    const model = new FakeModel({ chatTemplate: stored });
    const { url } = await start(model);
    await client(url).chat.completions.create({ messages: MESSAGES, model: model.id, max_tokens: 2 });
    expect(model.calls[0].prompt).toBe('[system] Be brief.|[user] Hi|>');
    // A custom template adds no stop strings.
    expect(model.calls[0].options.stop).toBeUndefined();
    const custom = await start(model, { chatTemplate: '{{ messages[-1].content }}=' });
    await client(custom.url).chat.completions.create({
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'a' },
            { type: 'text', text: 'b' },
          ],
        },
      ],
      model: model.id,
      max_tokens: 2,
    });
    expect(model.calls[1].prompt).toBe('ab=');
    expect(() => createHandler(model, { chatTemplate: '{% for %}' })).toThrow(/options.chatTemplate: not a valid Jinja chat template/);
    expect(DEFAULT_CHAT_TEMPLATE).toContain('add_generation_prompt');
  });

  const cases: Array<[string, Record<string, unknown>, string, string, RegExp]> = [
    ['missing messages', {}, 'messages', 'missing_required_parameter', /messages: required/],
    ['empty messages', { messages: [] }, 'messages', 'invalid_value', /non-empty array/],
    ['an unknown role', { messages: [{ role: 'robot', content: 'x' }] }, 'messages[0].role', 'invalid_value', /"robot"/],
    [
      'an image part',
      { messages: [{ role: 'user', content: [{ type: 'image_url', image_url: {} }] }] },
      'messages[0].content[0]',
      'unsupported_value',
      /only text/,
    ],
    ['tools', { messages: MESSAGES, tools: [{ type: 'function', function: { name: 'f' } }] }, 'tools', 'unsupported_parameter', /tools: not supported/],
    ['both token budgets', { messages: MESSAGES, max_tokens: 3, max_completion_tokens: 3 }, 'max_completion_tokens', 'invalid_value', /either/],
    ['top_logprobs without logprobs', { messages: MESSAGES, top_logprobs: 2 }, 'top_logprobs', 'invalid_value', /requires logprobs/],
    ['top_logprobs 21', { messages: MESSAGES, logprobs: true, top_logprobs: 21 }, 'top_logprobs', 'invalid_value', /\[0, 20\].*21/],
    ['a JSON response format', { messages: MESSAGES, response_format: { type: 'json_object' } }, 'response_format', 'unsupported_parameter', /response_format/],
    ['an unknown argument', { messages: MESSAGES, temprature: 1 }, 'temprature', 'unknown_parameter', /Unrecognized request argument/],
  ];

  it.each(cases)('refuses %s with a 400 naming the parameter', async (_name, body, param, code, message) => {
    const model = new FakeModel();
    const { url } = await start(model);
    const res = await request(url, '/v1/chat/completions', { body });
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ type: 'invalid_request_error', param, code });
    expect(res.body.error.message).toMatch(message);
    expect(model.calls).toEqual([]);
  });
});

describe('completions: n, prompt arrays, echo', () => {
  it('n × prompts choices in prompt-major order, echo puts the prompt first', async () => {
    const model = new FakeModel();
    const { url } = await start(model);
    const res = await client(url).completions.create({ model: model.id, prompt: ['ab', 'cd'], n: 2, seed: 1, max_tokens: 5, echo: true });
    expect(res.choices.map((c) => c.index)).toEqual([0, 1, 2, 3]);
    const want = (p: string, seed: number) => p + model.expected(p, { maxTokens: 5, seed }).text;
    expect(res.choices.map((c) => c.text)).toEqual([want('ab', 1), want('ab', 2), want('cd', 1), want('cd', 2)]);
    expect(res.usage).toEqual({ prompt_tokens: 4, completion_tokens: 20, total_tokens: 24 });
    let streamed = '';
    for await (const chunk of await client(url).completions.create({ model: model.id, prompt: 'ab', seed: 1, max_tokens: 5, echo: true, stream: true }))
      streamed += chunk.choices[0]?.text ?? '';
    expect(streamed).toBe(want('ab', 1));
  });

  it('passes presence and frequency penalties to the model', async () => {
    const model = new FakeModel();
    const { url } = await start(model);
    await client(url).completions.create({ model: model.id, prompt: 'a', presence_penalty: 0.5, frequency_penalty: -1 });
    expect(model.calls[0].options).toMatchObject({ presencePenalty: 0.5, frequencyPenalty: -1 });
  });
});

describe('API key', () => {
  it('401 in OpenAI’s shape without the key or with a wrong one; the key opens /v1; health and metrics stay open', async () => {
    const model = new FakeModel();
    const { url } = await start(model, { apiKey: 'sk-right' });
    const none = await request(url, '/v1/models');
    expect(none.status).toBe(401);
    expect(none.body.error).toMatchObject({ type: 'invalid_request_error', code: 'missing_api_key' });
    expect(none.headers.get('www-authenticate')).toBe('Bearer');
    const wrong = await client(url, 'sk-wrong')
      .chat.completions.create({ model: model.id, messages: MESSAGES })
      .catch((e: unknown) => e);
    expect(wrong).toBeInstanceOf(OpenAI.AuthenticationError);
    expect(wrong).toMatchObject({ status: 401, code: 'invalid_api_key' });
    const prefix = await client(url, 'sk-righ')
      .models.list()
      .catch((e: unknown) => e);
    expect(prefix).toBeInstanceOf(OpenAI.AuthenticationError);
    expect(model.calls).toEqual([]);
    const ok = await client(url, 'sk-right').chat.completions.create({ model: model.id, messages: MESSAGES, max_tokens: 3 });
    expect(ok.choices).toHaveLength(1);
    expect((await request(url, '/healthz')).status).toBe(200);
    expect((await fetch(`${url}/metrics`)).status).toBe(200);
  });
});

describe('CORS and content type', () => {
  it('answers the preflight of an allowed origin and marks its answers; other origins get no CORS headers', async () => {
    const model = new FakeModel();
    const { url } = await start(model, { cors: ['https://app.example'] });
    const preflight = await fetch(`${url}/v1/chat/completions`, {
      method: 'OPTIONS',
      headers: { origin: 'https://app.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type' },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe('https://app.example');
    expect(preflight.headers.get('access-control-allow-methods')).toContain('POST');
    expect(preflight.headers.get('access-control-allow-headers')).toBe('authorization, content-type');
    const answer = await fetch(`${url}/v1/models`, { headers: { origin: 'https://app.example' } });
    expect(answer.headers.get('access-control-allow-origin')).toBe('https://app.example');
    expect(answer.headers.get('vary')).toBe('Origin');
    const evil = await fetch(`${url}/v1/chat/completions`, {
      method: 'OPTIONS',
      headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' },
    });
    expect(evil.status).toBe(403);
    expect(evil.headers.get('access-control-allow-origin')).toBeNull();
    const any = await start(model, { cors: ['*'] });
    const star = await fetch(`${any.url}/v1/models`, { headers: { origin: 'https://anyone.example' } });
    expect(star.headers.get('access-control-allow-origin')).toBe('*');
  });

  it('a text/plain POST (what a cross-origin form or simple request sends) is refused with 415 before the model runs', async () => {
    const model = new FakeModel();
    const { url } = await start(model);
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', undefined]) {
      const res = await fetch(`${url}/v1/completions`, {
        method: 'POST',
        headers: type ? { 'content-type': type } : {},
        body: JSON.stringify({ prompt: 'a' }),
      });
      expect(res.status).toBe(415);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('unsupported_media_type');
    }
    const charset = await fetch(`${url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json; charset=utf-8' },
      body: JSON.stringify({ prompt: 'a', max_tokens: 2 }),
    });
    expect(charset.status).toBe(200);
    expect(model.calls).toHaveLength(1);
  });
});

/** A raw TCP connection (optionally from a given loopback source address) and what it received. */
async function connect(url: string, localAddress?: string): Promise<net.Socket & { received: string }> {
  const { hostname, port } = new URL(url);
  const socket = Object.assign(net.connect({ port: Number(port), host: hostname, localAddress }), { received: '' });
  socket.on('error', () => undefined);
  // Reading keeps the socket flowing, so the server's closing of it is seen.
  socket.on('data', (d) => (socket.received += String(d)));
  await new Promise((resolve) => socket.once('connect', resolve));
  return socket;
}

const closed = (socket: net.Socket) => new Promise<void>((resolve) => (socket.destroyed ? resolve() : socket.once('close', () => resolve())));

describe('connection limits and timeouts', () => {
  it('closes sockets that send nothing or send their headers too slowly (slowloris), while others are served', async () => {
    const { url, logs } = await start(new FakeModel(), { headersTimeout: 300, bodyTimeout: 600 });
    const idle = await connect(url);
    const slow = await connect(url);
    slow.write('POST /v1/completions HTTP/1.1\r\nHost: x\r\n');
    const drip = setInterval(() => slow.writable && slow.write('X-Drip: 1\r\n'), 50);
    const t0 = Date.now();
    expect((await request(url, '/v1/models')).status).toBe(200);
    await Promise.all([closed(idle), closed(slow)]);
    clearInterval(drip);
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(logs.some((l) => l.event === 'refused' && l.data?.reason === 'first_request_timeout')).toBe(true);
  });

  it('closes an idle kept-alive connection after keepAliveTimeout', async () => {
    const { url } = await start(new FakeModel(), { keepAliveTimeout: 200 });
    const socket = await connect(url);
    socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    const t0 = Date.now();
    await closed(socket);
    expect(Date.now() - t0).toBeLessThan(2000);
  });

  it('caps connections per client address: a client holding its share does not lock out another', async () => {
    const { url } = await start(new FakeModel(), { maxConnectionsPerClient: 3, headersTimeout: 5000, bodyTimeout: 5000 });
    const held = await Promise.all([1, 2, 3].map(() => connect(url)));
    const extra = await connect(url);
    await closed(extra);
    expect(extra.received).toMatch(/^HTTP\/1.1 503/);
    // Another client address (any 127.x address reaches loopback on Linux) is still served.
    const other = await connect(url, '127.0.0.2');
    other.write('GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    await closed(other);
    expect(other.received).toMatch(/^HTTP\/1.1 200/);
    held.forEach((s) => s.destroy());
  });

  it('caps connections overall', async () => {
    const { url } = await start(new FakeModel(), { maxConnections: 2 });
    const held = await Promise.all([connect(url), connect(url)]);
    const third = await connect(url, '127.0.0.3');
    await closed(third);
    expect(third.received).toMatch(/^HTTP\/1.1 503/);
    held.forEach((s) => s.destroy());
    await Promise.all(held.map(closed));
    await until('a free slot serves again', async () => (await request(url, '/healthz').catch(() => ({ status: 0 }))).status === 200, 3000);
  });
});

describe('model faults', () => {
  it('a model fault is a 500 server_error for its request only; concurrent requests finish normally', async () => {
    const model = new FakeModel({ fault: 'boom', delayMs: 2 });
    const { url } = await start(model);
    const [bad, good, badStream] = await Promise.all([
      request(url, '/v1/completions', { body: { prompt: 'boom', max_tokens: 10 } }),
      request(url, '/v1/completions', { body: { prompt: 'fine', max_tokens: 30, seed: 1 } }),
      fetch(`${url}/v1/chat/completions`, {
        method: 'POST',
        headers: JSON_TYPE,
        body: JSON.stringify({ messages: [{ role: 'user', content: 'x' }], max_tokens: 5, stream: true }),
      }).then((r) => r.text()),
    ]);
    expect(bad.status).toBe(500);
    expect(bad.body.error).toMatchObject({ type: 'server_error', code: 'model_error' });
    expect(bad.body.error.message).toMatch(/model failed/);
    expect(good.status).toBe(200);
    expect(good.body.choices[0].text).toBe(model.expected('fine', { maxTokens: 30, seed: 1 }).text);
    expect(badStream).not.toContain('server_error');
    // A stream that faults after its first piece ends with an error event, not [DONE].
    const faulty = await fetch(`${url}/v1/completions`, {
      method: 'POST',
      headers: JSON_TYPE,
      body: JSON.stringify({ prompt: 'boom', stream: true, max_tokens: 10 }),
    });
    const text = await faulty.text();
    expect(text).toMatch(/data: \{"error":\{[^\n]*"type":"server_error"/);
    expect(text).not.toContain('[DONE]');
    // The other choices of a failed request stop with it.
    const mixed = await request(url, '/v1/completions', { body: { prompt: ['boom', 'long'], max_tokens: 1000 } });
    expect(mixed.status).toBe(500);
    await until('the failed request’s other choice is aborted', () => model.aborted.includes('long'));
  });
});

describe('operations', () => {
  it('/metrics in the Prometheus text format: requests by route and status, tokens, queue, histograms', async () => {
    const model = new FakeModel();
    const { url } = await start(model);
    await client(url).completions.create({ model: model.id, prompt: 'abc', max_tokens: 7 });
    for await (const chunk of await client(url).chat.completions.create({ model: model.id, messages: MESSAGES, max_tokens: 7, stream: true })) void chunk;
    await request(url, '/v1/nowhere');
    const res = await fetch(`${url}/metrics`);
    expect(res.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    const text = await res.text();
    expect(text).toContain('# TYPE rnnkit_requests_total counter');
    expect(text).toMatch(/^rnnkit_requests_total\{route="\/v1\/completions",status="200"\} 1$/m);
    expect(text).toMatch(/^rnnkit_requests_total\{route="\/v1\/chat\/completions",status="200"\} 1$/m);
    expect(text).toMatch(/^rnnkit_requests_total\{route="unknown",status="404"\} 1$/m);
    expect(text).toMatch(new RegExp(`^rnnkit_prompt_tokens_total ${3 + RENDERED.length}$`, 'm'));
    expect(text).toMatch(/^rnnkit_completion_tokens_total 14$/m);
    expect(text).toMatch(/^rnnkit_queue_depth 0$/m);
    expect(text).toMatch(/^rnnkit_active_generations 0$/m);
    expect(text).toMatch(/^rnnkit_batch_size_count 2$/m);
    expect(text).toMatch(/^rnnkit_time_to_first_token_seconds_count 1$/m);
    expect(text).toMatch(/^rnnkit_inter_token_latency_seconds_bucket\{le="\+Inf"\} \d+$/m);
    expect(text).toMatch(
      /^rnnkit_request_duration_seconds_bucket\{le="0.001",route="\/v1\/models\/\{id\}"\}|rnnkit_request_duration_seconds_count\{route="\/v1\/completions"\} 1$/m,
    );
  });

  it('/readyz answers 503 while the queue is full; one request log record per request with its client and tokens', async () => {
    const model = new FakeModel();
    const { url, logs } = await start(model, { maxConcurrent: 1, maxQueue: 0 });
    const release = model.hold();
    const held = request(url, '/v1/completions', { body: { prompt: 'held', max_tokens: 4 } });
    await until('generation live', () => model.live === 1);
    const busy = await request(url, '/readyz');
    expect(busy.status).toBe(503);
    expect(busy.body.status).toBe('busy');
    release();
    expect((await held).status).toBe(200);
    expect((await request(url, '/readyz')).status).toBe(200);
    const record = logs.find((l) => l.event === 'request' && l.data?.path === '/v1/completions');
    expect(record?.data).toMatchObject({ method: 'POST', status: 200, client: '127.0.0.1', promptTokens: 4, completionTokens: 4 });
    expect(record?.requestId).toMatch(/^cmpl-/);
    expect(JSON.parse(JSON.stringify(record))).toEqual(record);
  });
});

describe('embeddable handlers', () => {
  it('the node:http handler mounted in a plain http.Server answers the official client', async () => {
    const model = new FakeModel();
    const handler = createHandler(model);
    const server = http.createServer((req, res) => {
      if (req.url?.startsWith('/api/')) {
        req.url = req.url.slice(4); // as Express's app.use('/api', …) does
        handler.node(req, res);
      } else res.end('app');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as net.AddressInfo;
    try {
      const openai = new OpenAI({ baseURL: `http://127.0.0.1:${port}/api/v1`, apiKey: 'x', maxRetries: 0 });
      const res = await openai.chat.completions.create({ model: model.id, messages: MESSAGES, max_tokens: 6, seed: 2 });
      expect(res.choices[0].message.content).toBe(model.expected(RENDERED, { maxTokens: 6, seed: 2, stop: TURN_STOPS }).text);
    } finally {
      await handler.close();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('the fetch handler answers Requests with Responses, JSON and streamed, with the same checks', async () => {
    const model = new FakeModel();
    const handler = createHandler(model, { apiKey: 'k', cors: ['https://app.example'] });
    const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
      handler.fetch(
        new Request(`http://app.local${path}`, {
          method: 'POST',
          headers: { ...JSON_TYPE, authorization: 'Bearer k', ...headers },
          body: JSON.stringify(body),
        }),
        { client: '10.0.0.1' },
      );
    const plain = await post('/v1/chat/completions', { messages: MESSAGES, max_tokens: 5, seed: 4 }, { origin: 'https://app.example' });
    expect(plain.status).toBe(200);
    expect(plain.headers.get('access-control-allow-origin')).toBe('https://app.example');
    const body = (await plain.json()) as { choices: Array<{ message: { content: string } }> };
    const want = model.expected(RENDERED, { maxTokens: 5, seed: 4, stop: TURN_STOPS }).text;
    expect(body.choices[0].message.content).toBe(want);
    const streamed = await post('/v1/chat/completions', { messages: MESSAGES, max_tokens: 5, seed: 4, stream: true });
    expect(streamed.headers.get('content-type')).toBe('text/event-stream');
    const events = (await streamed.text()).split('\n\n').filter((e) => e.startsWith('data: '));
    expect(events.at(-1)).toBe('data: [DONE]');
    const content = events
      .slice(0, -1)
      .map((e) => JSON.parse(e.slice(6)).choices[0]?.delta.content ?? '')
      .join('');
    expect(content).toBe(want);
    const unauthorised = await handler.fetch(new Request('http://app.local/v1/models'));
    expect(unauthorised.status).toBe(401);
    const preflight = await handler.fetch(new Request('http://app.local/v1/completions', { method: 'OPTIONS', headers: { origin: 'https://app.example' } }));
    expect(preflight.status).toBe(204);
    await handler.close();
    const after = await post('/v1/completions', { prompt: 'a' });
    expect(after.status).toBe(503);
  });

  it('a fetch stream whose reader cancels aborts its generation', async () => {
    const model = new FakeModel({ delayMs: 5 });
    const handler = createHandler(model);
    const res = await handler.fetch(
      new Request('http://app.local/v1/completions', {
        method: 'POST',
        headers: JSON_TYPE,
        body: JSON.stringify({ prompt: 'cancel me', max_tokens: 1000, stream: true }),
      }),
    );
    const reader = res.body!.getReader();
    await reader.read();
    await reader.cancel();
    await until('the model sees the abort', () => model.aborted.includes('cancel me'));
    await handler.close();
  });
});
