/**
 * `rnnkit serve --workers 2` as an operator runs it: two worker processes behind one port answer
 * concurrent requests as the library does, `/metrics` sums both workers, `/readyz` waits for
 * both, a killed worker is replaced, and SIGTERM lets a live stream finish before the server
 * exits 0.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as http from 'node:http';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadLanguageModel } from '../src';
import { cli, compileCli, root } from './cli-harness';
import { sseData, until } from './server-harness';

const MODEL = path.join(root, 'fixtures/models/pp_lstm.safetensors');

/** A GET or POST on a connection of its own (no keep-alive), so the cluster spreads them. */
function call(url: string, method: 'GET' | 'POST', body?: unknown): Promise<{ status: number; text: string }> {
  const data = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, agent: false, headers: data === undefined ? {} : { 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(data);
  });
}

/** The value of a metric line (`name{labels} value`) in a Prometheus exposition, 0 when absent. */
function metric(text: string, line: string): number {
  const found = text.split('\n').find((l) => l.startsWith(line + ' '));
  return found === undefined ? 0 : Number(found.slice(line.length + 1));
}

let child: ChildProcess;
let url: string;
let stderr = '';
let exited: Promise<number | null>;

/** The JSON log records so far. */
function records(): any[] {
  return stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l));
}

beforeAll(async () => {
  await compileCli();
  child = spawn(process.execPath, [cli, 'serve', MODEL, '--port', '0', '--json', '--workers', '2', '--threads', '1', '--model-id', 'pp'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
  child.stderr!.on('data', (d) => (stderr += d));
  let stdout = '';
  const ready = await new Promise<{ url: string; workers: number }>((resolve, reject) => {
    child.stdout!.on('data', (d) => {
      stdout += d;
      if (stdout.includes('\n')) resolve(JSON.parse(stdout.split('\n')[0]));
    });
    child.on('exit', () => reject(new Error(`serve exited before listening: ${stderr}`)));
  });
  expect(ready.workers).toBe(2);
  url = ready.url;
}, 120_000);

afterAll(() => {
  if (child && child.exitCode === null) child.kill('SIGKILL');
});

describe('rnnkit serve --workers 2', () => {
  it('spreads concurrent requests over both workers, each answered as the library answers it', async () => {
    const ready = await call(`${url}/readyz`, 'GET');
    expect(ready.status).toBe(200);
    const seen = new Set<number>();
    for (let i = 0; i < 8; i++) seen.add(JSON.parse((await call(`${url}/healthz`, 'GET')).text).worker);
    expect([...seen].sort()).toEqual([1, 2]);

    const prompts = Array.from({ length: 12 }, (_, i) => ['It is', 'Mr. Darcy', 'Jane'][i % 3]);
    const answers = await Promise.all(
      prompts.map((prompt, i) => call(`${url}/v1/completions`, 'POST', { model: 'pp', prompt, max_tokens: 10, seed: i, temperature: 0.9 })),
    );
    const model = await loadLanguageModel(MODEL);
    for (const [i, a] of answers.entries()) {
      expect(a.status).toBe(200);
      const expected = await model.generate(prompts[i], { maxTokens: 10, seed: i, temperature: 0.9 });
      expect(JSON.parse(a.text).choices[0].text).toBe(expected);
    }

    // One scrape is the whole server: both workers' counts summed.
    const scraped = await call(`${url}/metrics`, 'GET');
    expect(scraped.status).toBe(200);
    expect(metric(scraped.text, 'rnnkit_requests_total{route="/v1/completions",status="200"}')).toBe(12);
    expect(metric(scraped.text, 'rnnkit_requests_total{route="/healthz",status="200"}')).toBe(8);
    expect(metric(scraped.text, 'rnnkit_completion_tokens_total')).toBe(120);
    expect(metric(scraped.text, 'rnnkit_time_to_first_token_seconds_count')).toBe(0);
  }, 60_000);

  it('replaces a killed worker, answering meanwhile and ready again once it listens', async () => {
    const started = records().filter((r) => r.event === 'worker' && /started/.test(r.message));
    const victim = started.find((r) => r.data.worker === 2)!.data.pid as number;
    process.kill(victim, 'SIGKILL');
    await until(
      'the worker exit logged',
      () => records().some((r) => r.event === 'worker' && r.level === 'warn' && r.data.pid === victim && r.data.signal === 'SIGKILL'),
      10_000,
    );
    // The other worker keeps answering while the replacement loads.
    const meanwhile = await call(`${url}/v1/completions`, 'POST', { model: 'pp', prompt: 'It is', max_tokens: 4, seed: 1 });
    expect(meanwhile.status).toBe(200);
    await until('ready again', async () => (await call(`${url}/readyz`, 'GET')).status === 200, 20_000);
    const replacement = records().filter((r) => r.event === 'worker' && /started/.test(r.message) && r.data.worker === 2);
    expect(replacement).toHaveLength(2);
    expect(replacement[1].data.pid).not.toBe(victim);
    expect(child.exitCode).toBeNull();
  }, 60_000);

  it('SIGTERM: a live stream finishes, then the server exits 0', async () => {
    const body = JSON.stringify({ model: 'pp', prompt: 'It is', max_tokens: 300, seed: 2, stream: true });
    const finished = new Promise<string>((resolve, reject) => {
      const req = http.request(`${url}/v1/completions`, { method: 'POST', agent: false, headers: { 'content-type': 'application/json' } }, (res) => {
        let raw = '';
        res.setEncoding('utf8');
        res.once('data', () => child.kill('SIGTERM'));
        res.on('data', (d) => (raw += d));
        res.on('end', () => resolve(raw));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(body);
    });
    const data = sseData(await finished);
    expect(data.at(-1)).toBe('[DONE]');
    const text = data
      .slice(0, -1)
      .map((d) => JSON.parse(d).choices[0].text)
      .join('');
    const model = await loadLanguageModel(MODEL);
    expect(text).toBe(await model.generate('It is', { maxTokens: 300, seed: 2 }));
    expect(await exited).toBe(0);
  }, 60_000);
});
