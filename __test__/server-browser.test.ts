// A web page calling `rnnkit serve`'s API from another origin, in headless Chromium: the page is
// served from one loopback port, the API from another, with `cors` naming the page's origin and
// an API key (so every call is preflighted). The page posts a chat completion and streams a
// completion (server-sent events read with fetch), and the answers equal the model's own; a
// server that does not list the page's origin is refused by the browser. Chromium comes from
// the system (Debian package `chromium`), driven by puppeteer-core, which downloads no browser;
// without a Chromium binary the test is skipped, saying so.
import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import puppeteer from 'puppeteer-core';
import { loadLanguageModel } from '../src';
import { startServer } from './server-harness';

const chromium = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'].find(
  (p): p is string => !!p && fs.existsSync(p),
);

/** The page: calls the API named in its query string and shows what came back in `#out`. */
const PAGE = `<!doctype html><meta charset="utf-8"><title>rnnkit from the browser</title><pre id="out"></pre>
<script type="module">
const q = new URLSearchParams(location.search);
const headers = { 'content-type': 'application/json', authorization: 'Bearer ' + q.get('key') };
const out = {};
try {
  const chat = await fetch(q.get('api') + '/v1/chat/completions', {
    method: 'POST', headers,
    body: JSON.stringify({ model: 'pp_lstm', messages: [{ role: 'user', content: 'Who is Jane?' }], max_tokens: 24, seed: 4 }),
  });
  out.chat = (await chat.json()).choices[0].message.content;
  const res = await fetch(q.get('api') + '/v1/completions', {
    method: 'POST', headers,
    body: JSON.stringify({ model: 'pp_lstm', prompt: 'Elizabeth was', max_tokens: 30, temperature: 0, stream: true }),
  });
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let raw = '';
  for (;;) { const { done, value } = await reader.read(); if (done) break; raw += value; }
  const events = raw.split('\\n\\n').filter((e) => e.startsWith('data: {')).map((e) => JSON.parse(e.slice(6)));
  out.streamed = events.map((e) => e.choices[0]?.text ?? '').join('');
  out.done = raw.trimEnd().endsWith('data: [DONE]');
  try {
    await fetch(q.get('blocked') + '/v1/models', { headers });
    out.blocked = 'answered';
  } catch (e) {
    out.blocked = e.name;
  }
} catch (e) {
  out.error = String(e);
}
document.getElementById('out').textContent = JSON.stringify(out);
</script>`;

describe('the server from a browser page on another origin', () => {
  it.skipIf(!chromium)(
    `chat and streamed completions through CORS with an API key${chromium ? '' : ' (skipped: no Chromium binary; install the Debian package chromium or set CHROMIUM_PATH)'}`,
    async () => {
      const site = http.createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(PAGE));
      await new Promise<void>((resolve) => site.listen(0, '127.0.0.1', resolve));
      const origin = `http://127.0.0.1:${(site.address() as AddressInfo).port}`;
      const model = await loadLanguageModel(path.join(__dirname, '../fixtures/models/pp_lstm.safetensors'));
      const api = await startServer(model, { modelId: 'pp_lstm', cors: [origin], apiKey: 'secret' });
      const other = await startServer(model, { modelId: 'pp_lstm', cors: ['https://elsewhere.example'], apiKey: 'secret' });
      const browser = await puppeteer.launch({ executablePath: chromium, headless: true, args: ['--no-sandbox'] });
      try {
        const page = await browser.newPage();
        await page.goto(`${origin}/?api=${encodeURIComponent(api.url)}&blocked=${encodeURIComponent(other.url)}&key=secret`);
        await page.waitForSelector('#out:not(:empty)', { timeout: 30_000 });
        const out = JSON.parse((await page.$eval('#out', (e) => e.textContent))!);
        expect(out.error).toBeUndefined();
        expect(out.chat).toBe(
          await model.generate('user: Who is Jane?\nassistant:', { maxTokens: 24, seed: 4, stop: ['\nuser:', '\nsystem:', '\nassistant:'] }),
        );
        expect(out.streamed).toBe(await model.generate('Elizabeth was', { maxTokens: 30, greedy: true }));
        expect(out.done).toBe(true);
        expect(out.blocked).toBe('TypeError');
        // The browser asked first (preflight) for each cross-origin POST, and the API said yes.
        expect(api.logs.filter((l) => l.event === 'request' && l.data?.method === 'OPTIONS' && l.data?.status === 204).length).toBeGreaterThanOrEqual(1);
      } finally {
        await browser.close();
        await api.server.close({ graceful: false });
        await other.server.close({ graceful: false });
        site.close();
      }
    },
    60_000,
  );
});
