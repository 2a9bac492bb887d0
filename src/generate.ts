/**
 * Text generation over the native continuous-batching pool: every `generate`, `stream` and
 * `generateBatch` call of a model adds its sequences to ONE pool, and one scheduler loop steps
 * all live sequences together (one batched network step per token), so concurrent callers — e.g.
 * the requests of a server — share the native work. Each sequence has its own sampler and seed,
 * so its text does not depend on what else is generating.
 *
 * Stop strings are matched on the decoded text: text that could still be the start of a stop
 * string is held back until it cannot, so a stream never emits text that a stop later cuts.
 */

import { error, typeError, rangeError, checkInt, checkNumber, checkBoolean, describe } from './errors';
import type { NativeGenerator, NativeModel } from '../index';
import { native } from './native';
import type { StreamDecoder, Tokenizer } from './tokenizer';
import type { Completion, GenerateOptions } from './types';

/** Generation options with defaults applied and values checked. */
export interface ResolvedGenerateOptions {
  maxTokens: number;
  sampler: { temperature: number; top_k: number; top_p: number; repetition_penalty: number; greedy: boolean };
  stop: string[];
  seed: number;
  /** Beam width when beam search was asked for (`beams` given; 1 = greedy decoding), else 0. */
  beams: number;
  lengthPenalty: number;
  signal?: AbortSignal;
}

/** Checks `options` and fills in defaults; errors name the option and the value. */
export function resolveGenerateOptions(options: GenerateOptions = {}): ResolvedGenerateOptions {
  if (options === null || typeof options !== 'object') throw typeError('ERR_RNNKIT_TYPE', `options: expected an object, got ${describe(options)}`);
  const maxTokens = options.maxTokens === undefined ? 200 : checkInt('options.maxTokens', options.maxTokens, 0, 1_000_000);
  const greedy = options.greedy === undefined ? false : checkBoolean('options.greedy', options.greedy);
  const temperature = options.temperature === undefined ? 1 : checkNumber('options.temperature', options.temperature, 0, 1e6);
  const topK = options.topK === undefined ? 0 : checkInt('options.topK', options.topK, 0);
  const topP = options.topP === undefined ? 1 : checkNumber('options.topP', options.topP, Number.MIN_VALUE, 1);
  const penalty = options.repetitionPenalty === undefined ? 1 : checkNumber('options.repetitionPenalty', options.repetitionPenalty, Number.MIN_VALUE, 1e6);
  const beams = options.beams === undefined ? 0 : checkInt('options.beams', options.beams, 1, 256);
  const lengthPenalty = options.lengthPenalty === undefined ? 1 : checkNumber('options.lengthPenalty', options.lengthPenalty, 0, 10);
  const seed = options.seed === undefined ? Math.floor(Math.random() * 0x100000000) : checkInt('options.seed', options.seed, 0, Number.MAX_SAFE_INTEGER);
  let stop: string[] = [];
  if (options.stop !== undefined) {
    stop = typeof options.stop === 'string' ? [options.stop] : options.stop;
    if (!Array.isArray(stop)) throw typeError('ERR_RNNKIT_TYPE', `options.stop: expected a string or an array of strings, got ${describe(options.stop)}`);
    stop.forEach((s, i) => {
      if (typeof s !== 'string' || s.length === 0) throw typeError('ERR_RNNKIT_TYPE', `options.stop[${i}]: expected a non-empty string, got ${describe(s)}`);
    });
  }
  if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) {
    throw typeError('ERR_RNNKIT_TYPE', `options.signal: expected an AbortSignal, got ${describe(options.signal)}`);
  }
  return {
    maxTokens,
    // temperature 0 means argmax, as OpenAI-style clients expect.
    sampler: { temperature: temperature === 0 ? 1 : temperature, top_k: topK, top_p: topP, repetition_penalty: penalty, greedy: greedy || temperature === 0 },
    stop,
    seed,
    beams,
    lengthPenalty,
    signal: options.signal,
  };
}

/** The AbortError a cancelled generation rejects with. */
export function abortError(): Error {
  const e = error('ABORT_ERR', 'generation was aborted');
  e.name = 'AbortError';
  return e;
}

/**
 * Holds back text that could be the beginning of a stop string, and finds the first stop.
 * `push` returns the text safe to emit and whether a stop string was reached.
 */
export class StopFilter {
  private pending = '';
  constructor(private readonly stops: readonly string[]) {}

  /** Adds generated text; returns what can be emitted now and whether generation must stop. */
  push(piece: string): { emit: string; stopped: boolean } {
    this.pending += piece;
    let cut = -1;
    for (const s of this.stops) {
      const at = this.pending.indexOf(s);
      if (at >= 0 && (cut < 0 || at < cut)) cut = at;
    }
    if (cut >= 0) {
      const emit = this.pending.slice(0, cut);
      this.pending = '';
      return { emit, stopped: true };
    }
    // Keep the longest suffix that is a proper prefix of some stop string.
    let keep = 0;
    for (const s of this.stops) {
      for (let k = Math.min(s.length - 1, this.pending.length); k > keep; k--) {
        if (this.pending.endsWith(s.slice(0, k))) {
          keep = k;
          break;
        }
      }
    }
    const emit = this.pending.slice(0, this.pending.length - keep);
    this.pending = this.pending.slice(this.pending.length - keep);
    return { emit, stopped: false };
  }

  /** The held-back text at the end of generation (no stop followed). */
  flush(): string {
    const rest = this.pending;
    this.pending = '';
    return rest;
  }
}

/** One generation's bookkeeping inside the scheduler. */
interface Job {
  decoder: StreamDecoder;
  filter: StopFilter;
  remaining: number;
  completionTokens: number;
  promptTokens: number;
  streaming: boolean;
  onText: (piece: string) => void;
  onDone: (result: Completion | Error) => void;
  detach?: () => void;
}

/** Drives one model's native pool: a loop that runs while any sequence is live. */
export class GenerationScheduler {
  private readonly pool: NativeGenerator;
  private readonly jobs = new Map<number, Job>();
  private running = false;

  constructor(
    model: NativeModel,
    private readonly tokenizer: Tokenizer,
  ) {
    this.pool = new native.NativeGenerator(model);
  }

  /** Live sequences. */
  get size(): number {
    return this.jobs.size;
  }

  /** Starts one generation; `onText` gets text pieces, `onDone` the completion or an error. */
  start(prompt: string, opts: ResolvedGenerateOptions, streaming: boolean, onText: (piece: string) => void, onDone: (r: Completion | Error) => void): void {
    if (opts.signal?.aborted) {
      onDone(abortError());
      return;
    }
    const ids = this.tokenizer.encode(prompt);
    if (ids.length === 0) throw rangeError('ERR_RNNKIT_EMPTY', 'prompt: expected text that encodes to at least one token, got ""');
    if (opts.maxTokens === 0) {
      onDone({ text: '', finishReason: 'length', promptTokens: ids.length, completionTokens: 0 });
      return;
    }
    const id = this.pool.add(ids, JSON.stringify(opts.sampler), opts.seed, opts.maxTokens);
    const job: Job = {
      decoder: this.tokenizer.streamDecoder(),
      filter: new StopFilter(opts.stop),
      remaining: opts.maxTokens,
      completionTokens: 0,
      promptTokens: ids.length,
      streaming,
      onText,
      onDone,
    };
    if (opts.signal) {
      const signal = opts.signal;
      const onAbort = () => this.finish(id, abortError());
      signal.addEventListener('abort', onAbort, { once: true });
      job.detach = () => signal.removeEventListener('abort', onAbort);
    }
    this.jobs.set(id, job);
    if (!this.running) void this.loop();
  }

  private finish(id: number, result: Completion | Error): void {
    const job = this.jobs.get(id);
    if (!job) return;
    this.jobs.delete(id);
    this.pool.remove(id);
    job.detach?.();
    job.onDone(result);
  }

  private async loop(): Promise<void> {
    this.running = true;
    try {
      while (this.jobs.size > 0) {
        // Streams want every token as soon as it exists; whole completions can take several
        // steps per native call (less crossing of the thread boundary).
        const steps = [...this.jobs.values()].some((j) => j.streaming) ? 1 : 16;
        let pairs: Int32Array;
        try {
          pairs = await this.pool.step(steps);
        } catch (e) {
          for (const id of [...this.jobs.keys()]) this.finish(id, e as Error);
          return;
        }
        for (let i = 0; i < pairs.length; i += 2) this.accept(pairs[i], pairs[i + 1]);
      }
    } finally {
      this.running = false;
    }
  }

  private accept(id: number, token: number): void {
    const job = this.jobs.get(id);
    if (!job) return; // finished (stop or abort) while the step ran
    job.completionTokens += 1;
    job.remaining -= 1;
    const { emit, stopped } = job.filter.push(job.decoder.push([token]));
    if (emit) job.onText(emit);
    if (stopped) {
      this.finish(id, { text: '', finishReason: 'stop', promptTokens: job.promptTokens, completionTokens: job.completionTokens });
    } else if (job.remaining === 0) {
      const rest = job.filter.push(job.decoder.end()).emit + job.filter.flush();
      if (rest) job.onText(rest);
      this.finish(id, { text: '', finishReason: 'length', promptTokens: job.promptTokens, completionTokens: job.completionTokens });
    }
  }
}

/** A generation as an async iterable of text pieces, with its final accounting. */
export interface CompletionStream extends AsyncIterable<string> {
  /** Settles with the whole completion when generation ends (rejects on abort or error). */
  readonly completion: Promise<Completion>;
}

/** Runs one generation to the end and returns its text and accounting. */
export function complete(scheduler: GenerationScheduler, prompt: string, opts: ResolvedGenerateOptions): Promise<Completion> {
  return new Promise((resolve, reject) => {
    let text = '';
    scheduler.start(
      prompt,
      opts,
      false,
      (piece) => {
        text += piece;
      },
      (r) => (r instanceof Error ? reject(r) : resolve({ ...r, text })),
    );
  });
}

/** Streams one generation. */
export function stream(scheduler: GenerationScheduler, prompt: string, opts: ResolvedGenerateOptions): CompletionStream {
  const queue: string[] = [];
  let done: Completion | Error | undefined;
  let wake: (() => void) | undefined;
  let text = '';
  let settle!: { resolve: (c: Completion) => void; reject: (e: Error) => void };
  const completion = new Promise<Completion>((resolve, reject) => {
    settle = { resolve, reject };
  });
  // A consumer may only read the pieces; the promise must not become an unhandled rejection.
  completion.catch(() => undefined);
  scheduler.start(
    prompt,
    opts,
    true,
    (piece) => {
      text += piece;
      queue.push(piece);
      wake?.();
    },
    (r) => {
      done = r;
      if (r instanceof Error) settle.reject(r);
      else settle.resolve({ ...r, text });
      wake?.();
    },
  );
  return {
    completion,
    async *[Symbol.asyncIterator]() {
      for (;;) {
        if (queue.length > 0) {
          yield queue.shift() as string;
          continue;
        }
        if (done !== undefined) {
          if (done instanceof Error) throw done;
          return;
        }
        await new Promise<void>((r) => (wake = r));
        wake = undefined;
      }
    },
  };
}

/** Beam search (`beams` given): the best hypothesis, cut at the first stop string. */
export async function beamComplete(model: NativeModel, tokenizer: Tokenizer, prompt: string, opts: ResolvedGenerateOptions): Promise<Completion> {
  const ids = tokenizer.encode(prompt);
  if (ids.length === 0) throw rangeError('ERR_RNNKIT_EMPTY', 'prompt: expected text that encodes to at least one token, got ""');
  if (opts.signal?.aborted) throw abortError();
  const eos = tokenizer.tokenToId('<eos>');
  const hyps = await native.beamSearchNative(model, ids, opts.beams, opts.maxTokens, opts.lengthPenalty, eos === undefined ? [] : [eos]);
  if (opts.signal?.aborted) throw abortError();
  const best = hyps[0];
  const full = tokenizer.decode(best.tokens, { skipSpecials: true });
  const filter = new StopFilter(opts.stop);
  const { emit, stopped } = filter.push(full);
  return {
    text: stopped ? emit : emit + filter.flush(),
    finishReason: stopped || (eos !== undefined && best.tokens[best.tokens.length - 1] === eos) ? 'stop' : 'length',
    promptTokens: ids.length,
    completionTokens: best.tokens.length,
  };
}
