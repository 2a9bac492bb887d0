// The browser example (examples/browser/) in headless Chromium: a fixture language model is
// exported to ONNX, the example's static server serves it on loopback, and the page's greedy
// continuation (onnxruntime-web's WebAssembly backend, the tokenizer read from the ONNX metadata)
// is read from the DOM and compared with rnnkit's own greedy generation of the same prompt.
// Chromium comes from the system (Debian package `chromium`), driven by puppeteer-core, which
// downloads no browser; without a Chromium binary the test is skipped, saying so.
import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import puppeteer from 'puppeteer-core';
import { loadModel, type LanguageModel } from '../src';

/** The system Chromium: $CHROMIUM_PATH, else the first of the usual binaries that exists. */
const chromium = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'].find(
  (p): p is string => !!p && fs.existsSync(p),
);

/** Starts `node examples/browser/serve.mjs model` on a free loopback port: the process and its URL. */
function startServer(model: string): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, ['examples/browser/serve.mjs', model, '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /at (http:\/\/127\.0\.0\.1:\d+\/)/.exec(out);
      if (m) resolve({ child, url: m[1] });
    });
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    child.on('exit', (code) => reject(new Error(`serve.mjs exited with ${code}: ${err}`)));
  });
}

describe('browser example', () => {
  it.skipIf(!chromium)(
    `generates in headless Chromium the greedy text rnnkit generates${chromium ? '' : ' (skipped: no Chromium binary; install the Debian package chromium or set CHROMIUM_PATH)'}`,
    async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rnnkit-browser-'));
      const file = path.join(dir, 'model.onnx');
      const m = (await loadModel('fixtures/models/pp_lstm.safetensors')) as LanguageModel;
      await m.exportOnnx(file);
      const prompt = 'Elizabeth was ';
      const n = 100;
      const server = await startServer(file);
      const browser = await puppeteer.launch({ executablePath: chromium, headless: true, args: ['--no-sandbox'] });
      try {
        const page = await browser.newPage();
        await page.goto(`${server.url}?prompt=${encodeURIComponent(prompt)}&tokens=${n}`);
        // Done when the output is filled, or the page reports an error (shown in the failure).
        await page.waitForSelector('#output:not(:empty), #status[data-error]', { timeout: 45_000 });
        const status = await page.$eval('#status', (e) => e.textContent);
        expect(status).toMatch(/^done/);
        const text = await page.$eval('#output', (e) => e.textContent);
        console.log(`browser: ${status}`);
        expect([...text!].length).toBe(n);
        expect(text).toBe(await m.generate(prompt, { greedy: true, maxTokens: n }));
      } finally {
        await browser.close();
        server.child.kill();
        fs.rmSync(dir, { recursive: true, force: true });
      }
    },
    60_000,
  );
});
