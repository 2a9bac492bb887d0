/**
 * No input crashes the process, no signal loses work: the model-file loader over mutated and
 * absurd files, a diverging update undone, beam search stopped by its signal (API and Ctrl-C),
 * metadata errors naming the file, kill -9 and SIGTERM during training.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { execFile, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createLanguageModel, loadModel, TextCorpus } from '../src/index';
import { cli, compileCli, root } from './cli-harness';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rnnkit-reliability-'));

beforeAll(async () => {
  await compileCli();
}, 120_000);

/** Runs a script of scripts/ and parses the JSON summary it prints. */
function script(name: string, args: string[]): Promise<{ status: number | null; summary: Record<string, unknown>; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [path.join(root, 'scripts', name), ...args], { maxBuffer: 1 << 24 }, (err, stdout, stderr) => {
      const status = err ? ((err as { code?: number }).code ?? null) : 0;
      try {
        resolve({ status, summary: JSON.parse(stdout), stderr });
      } catch {
        reject(new Error(`${name} printed no summary (status ${status}): ${stderr}`));
      }
    });
  });
}

function tiny(text: string, cell: 'rnn' | 'lstm' | 'gru' = 'gru') {
  const corpus = TextCorpus.fromString(text, { seqLen: 16, batchSize: 4 });
  const model = createLanguageModel({ tokenizer: corpus.tokenizer, cell, hiddenSize: 12, embedDim: 6, numLayers: 1, seed: 2 });
  return { model, corpus };
}

const text = 'the cat sat on the mat; the dog sat on the log. '.repeat(30);

describe('the model-file loader', () => {
  it('refuses 200 mutants and the absurd files with coded errors naming them, in bounded memory', async () => {
    const r = await script('fuzz-loader.mjs', ['--mutants', '200', '--batch', '100', '--timeout', '20', '--seed', '7']);
    expect(r.summary.failures).toEqual([]);
    expect(r.status).toBe(0);
    expect(r.summary).toMatchObject({ mutants: 200, crashes: 0, hangs: 0, uncoded: 0, unnamed: 0 });
    expect(r.summary.absurdPeakRssMb as number).toBeLessThanOrEqual(100);
    const absurd = r.summary.absurd as { file: string; code: string }[];
    expect(absurd.length).toBeGreaterThanOrEqual(5);
    for (const a of absurd) expect(a.code, a.file).toBe('ERR_RNNKIT_FORMAT');
  }, 120_000);

  it('names the file in every tokenizer metadata error', async () => {
    const { model } = tiny(text);
    const file = path.join(tmp, 'bad-tokenizer.safetensors');
    model.native.setTokenizer({ type: 'char', version: 1, vocab: 'abc' });
    await model.save(file);
    await expect(loadModel(file)).rejects.toMatchObject({ code: 'ERR_RNNKIT_FORMAT', message: expect.stringContaining(JSON.stringify(file)) });
    model.native.setTokenizer({ type: 'nope' });
    await model.save(file);
    await expect(loadModel(file)).rejects.toMatchObject({ code: 'ERR_RNNKIT_FORMAT', message: expect.stringContaining(JSON.stringify(file)) });
  });
});

describe('a diverging update', () => {
  it('is undone: fit rejects, and the model keeps finite weights that generate and save', async () => {
    const { model, corpus } = tiny(text, 'rnn');
    // Huge but finite biases give a finite loss; weight decay pushes them past f32 in the update.
    const bias = new Float32Array(model.getTensor('head.bias').length).fill(1e38);
    model.setTensor('head.bias', bias);
    const run = model.fit(corpus, { maxSteps: 3, optimizer: { type: 'sgd', lr: 1, momentum: 0.9, weightDecay: 10 } });
    await expect(run).rejects.toMatchObject({ code: 'ERR_RNNKIT_LOSS_NOT_FINITE', message: expect.stringMatching(/update of step 1 .* undone/) });
    for (const { name } of model.tensors()) expect(model.getTensor(name).every(Number.isFinite), name).toBe(true);
    expect(Array.from(model.getTensor('head.bias'))).toEqual(Array.from(bias));
    const file = path.join(tmp, 'diverged.safetensors');
    await model.save(file);
    const back = await loadModel(file);
    expect(back.task).toBe('language_model');
    expect(typeof (await model.generate('the', { maxTokens: 5, seed: 1 }))).toBe('string');
  });
});

describe('beam search', () => {
  it('settles promptly when its signal aborts', async () => {
    const { model } = tiny(text);
    const started = Date.now();
    const run = model.generate('the', { beams: 64, maxTokens: 1e6, signal: AbortSignal.timeout(200) });
    await expect(run).rejects.toMatchObject({ code: 'ABORT_ERR', name: 'AbortError' });
    // Without the check between steps the search runs 10^6 steps (minutes); with it, one step.
    expect(Date.now() - started).toBeLessThan(10_000);
  }, 30_000);

  it('stops at the first Ctrl-C in rnnkit generate', async () => {
    const { model } = tiny(text);
    const file = path.join(tmp, 'beam.safetensors');
    await model.save(file);
    const child = spawn(process.execPath, [cli, 'generate', file, '--prompt', 'the', '--beams', '64', '--max-tokens', '1000000'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const done = new Promise<{ status: number | null; ms: number }>((resolve) => {
      let at = 0;
      setTimeout(() => {
        at = Date.now();
        child.kill('SIGINT');
      }, 1500);
      child.on('close', (status) => resolve({ status, ms: Date.now() - at }));
    });
    const r = await done;
    expect(r.status).toBe(130);
    expect(r.ms).toBeLessThan(10_000);
  }, 30_000);
});

describe('kill -9 and SIGTERM during training', () => {
  it('leave checkpoints that load and resume, and no temporary file after the next save', async () => {
    const r = await script('kill-trials.mjs', ['--kills', '3', '--terms', '1', '--seed', '3']);
    expect(r.summary.failures).toEqual([]);
    expect(r.status).toBe(0);
    expect(r.summary).toMatchObject({ kills: 3, terms: 1, termsResumable: 1, tempFilesAfterNextSave: 0 });
    // Trials 0 and 2 are killed as a write starts (repeated until one lands inside it): their
    // temporary files are removed by the next save.
    expect(r.summary.killsThatLeftTempFiles as number).toBeGreaterThanOrEqual(2);
    expect(r.summary.tempFilesRemovedByNextSave).toBe(r.summary.killsThatLeftTempFiles);
  }, 120_000);
});

describe('rnnkit eval', () => {
  it('stops at Ctrl-C or SIGTERM between chunks, with exit 130 or 143 and no result', async () => {
    const { model } = tiny(text);
    const file = path.join(tmp, 'eval.safetensors');
    await model.save(file);
    // 10 MB at one lane: tens of seconds to the end; stopped after 1.5 s.
    const long = path.join(tmp, 'long.txt');
    fs.writeFileSync(long, text.repeat(Math.ceil(10e6 / text.length)));
    for (const [signal, status] of [
      ['SIGINT', 130],
      ['SIGTERM', 143],
    ] as const) {
      const child = spawn(process.execPath, [cli, 'eval', file, long, '--lanes', '1'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
      child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      const r = await new Promise<{ status: number | null; ms: number }>((resolve) => {
        let at = 0;
        setTimeout(() => {
          at = Date.now();
          child.kill(signal);
        }, 1500);
        child.on('close', (code) => resolve({ status: code, ms: Date.now() - at }));
      });
      expect(r.status, stderr).toBe(status);
      expect(r.ms).toBeLessThan(5_000);
      expect(stderr).toMatch(new RegExp(`^${signal}: evaluation stopped after [0-9.]+ s; no result\\n$`));
      expect(stdout).toBe('');
    }
  }, 60_000);
});

describe('a text of more than 112 M tokens', () => {
  it('is streamed, stored and trained on in a process whose JavaScript heap is 256 MB', async () => {
    // Two files of 60 and 65 MiB (one char token a byte): 131 M tokens, more than a JavaScript
    // string or array of that text can hold under the heap limit (or at all: V8's fatal
    // "invalid size" error at ~112 M elements).
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rnnkit-big-'));
    try {
      const block = Buffer.from(text.repeat(Math.ceil((1 << 20) / text.length)).slice(0, 1 << 20));
      const files = [60, 65].map((mib, i) => {
        const p = path.join(dir, `part-${i}.txt`);
        const fd = fs.openSync(p, 'w');
        for (let k = 0; k < mib; k++) fs.writeSync(fd, block);
        fs.closeSync(fd);
        return p;
      });
      const program = `
        const { TextCorpus, createLanguageModel } = require(${JSON.stringify(path.join(root, 'dist', 'index.js'))});
        (async () => {
          const corpus = await TextCorpus.fromFiles(${JSON.stringify(files)}, { seqLen: 32, batchSize: 8, validation: 0 });
          const model = createLanguageModel({ tokenizer: corpus.tokenizer, hiddenSize: 8, embedDim: 4, seed: 1 });
          const history = await model.fit(corpus, { maxSteps: 2 });
          console.log(JSON.stringify({ tokens: corpus.numTokens('train'), bytesPerToken: corpus.bytesPerToken, steps: history.stepsDone, heap: process.memoryUsage().heapUsed }));
        })().catch((e) => { console.error(e); process.exit(1); });`;
      const r = await new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
        execFile(process.execPath, ['--max-old-space-size=256', '-e', program], { maxBuffer: 1 << 20 }, (err, stdout, stderr) =>
          resolve({ status: err ? ((err as { code?: number }).code ?? null) : 0, stdout, stderr }),
        );
      });
      expect(r.status, r.stderr).toBe(0);
      const out = JSON.parse(r.stdout);
      // Both files and the blank line ("\n\n") that joins them.
      expect(out).toMatchObject({ tokens: 125 * (1 << 20) + 2, bytesPerToken: 1, steps: 2 });
      expect(out.heap).toBeLessThan(128 << 20);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
