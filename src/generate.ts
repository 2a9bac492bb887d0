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

import { error, typeError, describe } from './errors';
import type { NativeGenerator, NativeModel, ResolvedGenerateOptions as NativeResolved } from '../index';
import { native } from './native';
import type { StreamDecoder, Tokenizer } from './tokenizer';
import type { Completion, GenerateOptions } from './types';

/**
 * Generation options with defaults applied and values checked (by the engine:
 * `resolveGenerateOptions` in the binding), plus the caller's `signal`.
 */
export interface ResolvedGenerateOptions extends NativeResolved {
  signal?: AbortSignal;
}

/**
 * Checks `options` and fills in defaults. Every value is checked once, natively; an unknown key
 * is a TypeError with code `ERR_RNNKIT_UNKNOWN_OPTION`, `param` (`options.max_tokens`) and a
 * did-you-mean. Only `signal` stays here: an AbortSignal cannot cross into the engine.
 */
export function resolveGenerateOptions(options: GenerateOptions = {}): ResolvedGenerateOptions {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw typeError('ERR_RNNKIT_TYPE', `options: expected an object, got ${describe(options)}`);
  }
  const { signal, ...engine } = options;
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw typeError('ERR_RNNKIT_TYPE', `options.signal: expected an AbortSignal, got ${describe(signal)}`);
  }
  return { ...native.resolveGenerateOptions(engine), signal };
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
    const ids = promptIds(this.tokenizer, prompt);
    if (opts.maxTokens === 0) {
      onDone({ text: '', finishReason: 'length', promptTokens: ids.length, completionTokens: 0 });
      return;
    }
    const id = this.pool.add(ids, opts.sampler, opts.seed, opts.maxTokens);
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

/**
 * The ids a prompt is fed as. An empty prompt (or one that encodes to no token) starts from the
 * model's start state: `<bos>` fed to the zero state when the tokenizer has one (how training
 * windows that start a text begin), otherwise no ids at all, and the engine samples the first
 * token from the zero state's logits.
 */
export function promptIds(tokenizer: Tokenizer, prompt: string): Int32Array {
  const ids = tokenizer.encode(prompt);
  if (ids.length > 0) return ids;
  const bos = tokenizer.tokenToId('<bos>');
  return bos === undefined ? ids : Int32Array.of(bos);
}

/** Beam search (`beams` given): the best hypothesis, cut at the first stop string. */
export async function beamComplete(model: NativeModel, tokenizer: Tokenizer, prompt: string, opts: ResolvedGenerateOptions): Promise<Completion> {
  const ids = promptIds(tokenizer, prompt);
  if (opts.signal?.aborted) throw abortError();
  const eos = tokenizer.tokenToId('<eos>');
  // The search runs natively to the end in one call: the signal reaches it through a token the
  // engine checks before every step.
  const cancel = new native.CancelToken();
  const onAbort = () => cancel.cancel();
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  let hyps;
  try {
    hyps = await native.beamSearchNative(
      model,
      ids,
      { beams: opts.beams, maxTokens: opts.maxTokens, lengthPenalty: opts.lengthPenalty, stopTokens: eos === undefined ? [] : [eos] },
      cancel,
    );
  } catch (e) {
    if (opts.signal?.aborted) throw abortError();
    throw e;
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
  }
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
