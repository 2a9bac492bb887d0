/**
 * A small deterministic `CompletionModel` for server tests: one token is one character of a
 * seeded pseudo-random text, produced with a fixed delay per token. It honours `maxTokens`,
 * `stop` (generation ends before the first occurrence; streamed pieces never contain a partial
 * stop string), `seed` (same prompt + seed → same text; `greedy` ignores the seed) and `signal`
 * (rejects with an AbortError), and it records what the server asked of it.
 */
import { setImmediate as immediate, setTimeout as sleep } from 'node:timers/promises';
import type { CompletionModel, CompletionStream } from '../src/server';
import type { Completion, GenerateOptions } from '../src/types';
import { error, rangeError } from '../src/errors';

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz     ,.';

/** mulberry32: a tiny seeded 32-bit generator, uniform in [0, 1). */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function hash(text: string): number {
  let h = 2166136261;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619);
  return h >>> 0;
}

function stopsOf(options: GenerateOptions): string[] {
  if (options.stop === undefined) return [];
  return typeof options.stop === 'string' ? [options.stop] : options.stop;
}

/**
 * The generation itself, one step per token: yields the text that may be shown after that token
 * ('' while a possible stop string is held back) and returns the accounting.
 */
function* steps(prompt: string, options: GenerateOptions, seed: number): Generator<string, Completion> {
  const random = mulberry32((options.greedy ? 0 : seed) ^ hash(prompt));
  const stops = stopsOf(options);
  const maxTokens = options.maxTokens ?? 200;
  const promptTokens = prompt.length;
  let text = '';
  let shown = 0;
  for (let n = 1; n <= maxTokens; n++) {
    text += ALPHABET[Math.floor(random() * ALPHABET.length)];
    const hits = stops.map((s) => text.indexOf(s)).filter((i) => i >= 0);
    if (hits.length > 0) {
      const end = Math.min(...hits);
      yield text.slice(shown, end);
      return { text: text.slice(0, end), finishReason: 'stop', promptTokens, completionTokens: n };
    }
    let held = 0;
    for (const s of stops) {
      for (let k = Math.min(s.length - 1, text.length); k > held; k--) {
        if (text.endsWith(s.slice(0, k))) {
          held = k;
          break;
        }
      }
    }
    const piece = text.slice(shown, text.length - held);
    shown += piece.length;
    yield piece;
  }
  yield text.slice(shown);
  return { text, finishReason: 'length', promptTokens, completionTokens: maxTokens };
}

/** Settings of {@link FakeModel}. */
export interface FakeModelOptions {
  /** Model id. Default `'fake-char-model'`. */
  id?: string;
  /** Milliseconds per token; 0 yields to the event loop once per token instead. Default 0. */
  delayMs?: number;
  /** Characters the "tokenizer" knows; a prompt with others is a vocabulary error. Default: any. */
  vocab?: string;
  /** A prompt that makes the model fail after its first token, as a model fault does (`ERR_RNNKIT_GENERATION`). */
  fault?: string;
  /** A chat template the model carries (as a model file's `chat_template` metadata). */
  chatTemplate?: string;
}

/** The deterministic fake model described in this file's header. */
export class FakeModel implements CompletionModel {
  readonly id: string;
  /** Every call the server made, in order. */
  readonly calls: Array<{ method: 'complete' | 'stream'; prompt: string; options: GenerateOptions }> = [];
  /** Prompts of the generations whose signal fired. */
  readonly aborted: string[] = [];
  /** Generations running now, and the most that ever ran at once. */
  live = 0;
  maxLive = 0;
  /** Milliseconds per token (see {@link FakeModelOptions.delayMs}); timing only, never the text. */
  delayMs: number;
  private readonly vocab: string | undefined;
  private readonly fault: string | undefined;
  readonly chatTemplate: string | undefined;
  private gate: Promise<void> = Promise.resolve();

  constructor(options: FakeModelOptions = {}) {
    this.id = options.id ?? 'fake-char-model';
    this.delayMs = options.delayMs ?? 0;
    this.vocab = options.vocab;
    this.fault = options.fault;
    this.chatTemplate = options.chatTemplate;
  }

  countTokens(text: string): number {
    if (this.vocab !== undefined) {
      const unknown = [...text].find((c) => !this.vocab!.includes(c));
      if (unknown !== undefined) throw rangeError('ERR_RNNKIT_VOCAB', `character ${JSON.stringify(unknown)} is not in the vocabulary`);
    }
    return text.length;
  }

  /**
   * Holds every generation that starts from now on before its first token until the returned
   * function is called (held generations notice an abort only after the release).
   */
  hold(): () => void {
    let release!: () => void;
    this.gate = new Promise((resolve) => (release = resolve));
    return () => {
      this.gate = Promise.resolve();
      release();
    };
  }

  /** What the model produces for this prompt and options, computed directly (no server, no delay). */
  expected(prompt: string, options: GenerateOptions): Completion {
    const it = steps(prompt, options, options.seed ?? 0);
    for (;;) {
      const r = it.next();
      if (r.done) return r.value;
    }
  }

  async complete(prompt: string, options: GenerateOptions): Promise<Completion> {
    this.calls.push({ method: 'complete', prompt, options });
    const run = this.run(prompt, options);
    for (;;) {
      const r = await run.next();
      if (r.done) return r.value;
    }
  }

  stream(prompt: string, options: GenerateOptions): CompletionStream {
    this.calls.push({ method: 'stream', prompt, options });
    let settle!: (c: Completion) => void;
    let fail!: (e: unknown) => void;
    const completion = new Promise<Completion>((resolve, reject) => {
      settle = resolve;
      fail = reject;
    });
    const run = this.run(prompt, options);
    async function* pieces(): AsyncGenerator<string> {
      try {
        for (;;) {
          const r = await run.next();
          if (r.done) {
            settle(r.value);
            return;
          }
          yield r.value;
        }
      } catch (e) {
        fail(e);
        throw e;
      } finally {
        // Reached early only when the consumer stops iterating (return()).
        await run.return(undefined as never);
        fail(new Error('the stream was closed before it finished'));
      }
    }
    return Object.assign(pieces(), { completion });
  }

  /** The timed generation shared by `complete` and `stream`: non-empty pieces, then the accounting. */
  private async *run(prompt: string, options: GenerateOptions): AsyncGenerator<string, Completion> {
    const signal = options.signal;
    const onAbort = (): void => void this.aborted.push(prompt);
    signal?.addEventListener('abort', onAbort, { once: true });
    this.live++;
    this.maxLive = Math.max(this.maxLive, this.live);
    try {
      await this.gate;
      const it = steps(prompt, options, options.seed ?? Math.floor(Math.random() * 2 ** 32));
      for (;;) {
        if (this.delayMs > 0) await sleep(this.delayMs, undefined, { signal });
        else await immediate(undefined, { signal });
        const r = it.next();
        if (r.done) return r.value;
        if (r.value !== '') yield r.value;
        if (prompt === this.fault) throw error('ERR_RNNKIT_GENERATION', 'generation failed (ERR_RNNKIT_NON_FINITE): logits: not finite at index 3');
      }
    } finally {
      signal?.removeEventListener('abort', onAbort);
      this.live--;
    }
  }
}
