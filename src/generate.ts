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
import type { NativeGenerator, NativeModel, ResolvedGenerateOptions as NativeResolved, StepOutput } from '../index';
import { native } from './native';
import type { StreamDecoder, Tokenizer } from './tokenizer';
import type { Completion, GenerateOptions, StateCacheStats, TokenLogprob } from './types';

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

/** Receives a generation's text as it becomes safe to show, with the log-probabilities of the tokens it came from. */
export type OnText = (piece: string, logprobs: TokenLogprob[] | undefined) => void;

/** One generation's bookkeeping inside the scheduler. */
interface Job {
  decoder: StreamDecoder;
  filter: StopFilter;
  remaining: number;
  completionTokens: number;
  promptTokens: number;
  streaming: boolean;
  /** Alternatives per token when log-probabilities were asked for. */
  top: number | undefined;
  /** Log-probabilities of the tokens whose text has not been emitted yet. */
  pending: TokenLogprob[];
  onText: OnText;
  onDone: (result: Completion | Error) => void;
  detach?: () => void;
}

/**
 * Milliseconds of engine work a streaming call runs at least: the crossing into the engine, the
 * wake-up of the JavaScript side and one write per stream are paid once per several tokens.
 */
const STREAM_CALL_MS = 4;
/**
 * The most milliseconds of engine work one streaming call runs, so a token waits at most about
 * this long before it is written. 10 against 20, interleaved at 64 streams on a loaded machine:
 * gap p99 37–52 ms against 56–62 ms at the same tokens/s (bench/RESULTS.md).
 */
const STREAM_CALL_MAX_MS = 10;
/**
 * A streaming call runs enough steps that its fixed cost (the wait for a worker thread and for
 * the JavaScript thread around each call: microseconds on an idle machine, milliseconds on a
 * busy one) is at most 1/OVERHEAD_SHARE of its time: the engine computes ~3/4 of the time.
 */
const OVERHEAD_SHARE = 4;
/** The most steps one native call runs. */
const MAX_STEPS_PER_CALL = 16;
/**
 * While a stream of a batch of at most FIRST_TOKEN_BATCH waits for its first token, calls run
 * one step, so the time to first token is its prompt's reading and one step, not a whole call.
 * Larger batches are joined too often (every few steps) for that: their calls keep their size.
 */
const FIRST_TOKEN_BATCH = 8;

/**
 * A model fault inside generation, not the caller's input (non-finite logits, a token id the
 * tokenizer lacks): `ERR_RNNKIT_GENERATION`, the engine's own code in `cause`.
 */
function generationError(code: string, message: string): Error {
  const e = error('ERR_RNNKIT_GENERATION', `generation failed (${code}): ${message}`);
  Object.defineProperty(e, 'cause', { value: { code, message }, enumerable: false });
  return e;
}

/** Drives one model's native pool: a loop that runs while any sequence is live. */
export class GenerationScheduler {
  private readonly pool: NativeGenerator;
  private readonly jobs = new Map<number, Job>();
  private running = false;
  /** Measured engine milliseconds per step (exponential moving average), for the streaming call size. */
  private stepMs = 0;
  /** Measured milliseconds per call outside the engine (moving average): waits for threads. */
  private callOverheadMs = 0;
  /**
   * Sequences with log-probabilities that finished while the previous output was read
   * (`previousLogprobs`) or while this one is (`recentLogprobs`): the next native call was
   * already running when they left, so its output may still hold their records, to skip.
   */
  private recentLogprobs = new Set<number>();
  private previousLogprobs = new Set<number>();
  /** Decoded text of single token ids (log-probability entries). */
  private readonly tokenText = new Map<number, string>();

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

  /** Bounds the pool's prompt state cache to `bytes` (0: off). */
  setStateCacheLimit(bytes: number): void {
    this.pool.setStateCacheLimit(bytes);
  }

  /** Prompt tokens the pool reads per call while other sequences generate (a multiple of 64; 0: whole prompts at once). */
  setPrefillChunk(tokens: number): void {
    this.pool.setPrefillChunk(tokens);
  }

  /** Counts of the pool's prompt state cache. */
  stateCacheStats(): StateCacheStats {
    return this.pool.stateCacheStats();
  }

  /** Starts one generation; `onText` gets text pieces, `onDone` the completion or an error. */
  start(prompt: string, opts: ResolvedGenerateOptions, streaming: boolean, onText: OnText, onDone: (r: Completion | Error) => void): void {
    if (opts.signal?.aborted) {
      onDone(abortError());
      return;
    }
    const ids = promptIds(this.tokenizer, prompt);
    if (opts.maxTokens === 0) {
      onDone({ text: '', finishReason: 'length', promptTokens: ids.length, completionTokens: 0 });
      return;
    }
    const id = this.pool.add(ids, opts.sampler, opts.seed, opts.maxTokens, opts.logprobs ?? undefined);
    const job: Job = {
      top: opts.logprobs ?? undefined,
      pending: [],
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
    if (job.top !== undefined) this.recentLogprobs.add(id);
    job.detach?.();
    job.onDone(result);
  }

  /**
   * Steps of the next native call. Whole completions take the most. Streams take enough that
   * the call's fixed cost stays a small share of it ({@link OVERHEAD_SHARE}) and at least
   * {@link STREAM_CALL_MS} of work, but no more than {@link STREAM_CALL_MAX_MS}: few steps on
   * an idle machine (tokens written as they come), more when threads wait to be scheduled; a
   * small batch with a stream waiting for its first token takes one ({@link FIRST_TOKEN_BATCH}).
   */
  private stepsPerCall(): number {
    let streaming = false;
    let fresh = false;
    for (const j of this.jobs.values()) {
      if (!j.streaming) continue;
      streaming = true;
      if (j.completionTokens === 0) {
        fresh = true;
        break;
      }
    }
    if (!streaming) return MAX_STEPS_PER_CALL;
    if (this.stepMs <= 0 || (fresh && this.jobs.size <= FIRST_TOKEN_BATCH)) return 1;
    const budget = Math.min(STREAM_CALL_MAX_MS, Math.max(STREAM_CALL_MS, (OVERHEAD_SHARE - 1) * this.callOverheadMs));
    return Math.max(1, Math.min(MAX_STEPS_PER_CALL, Math.ceil(budget / this.stepMs)));
  }

  /**
   * One native call, with the engine milliseconds per step it took and the milliseconds it took
   * beyond the engine's work (from issue to return: thread waits, and reading the previous
   * output when that took longer).
   */
  private async call(): Promise<{ out: StepOutput; ms: number; overheadMs: number }> {
    const t0 = performance.now();
    const out = await this.pool.step(this.stepsPerCall());
    const taken = out.tokens.length > 0 ? Math.max(1, Math.ceil(out.tokens.length / 2 / Math.max(1, this.jobs.size))) : 0;
    return { out, ms: taken > 0 ? out.computeMs / taken : 0, overheadMs: Math.max(0, performance.now() - t0 - out.computeMs) };
  }

  /**
   * Pipelined: the next native call is issued as soon as one returns, before its tokens are
   * decoded and handed out, so the engine computes while JavaScript decodes and writes. A
   * sequence that finishes meanwhile (stop string, abort) leaves the pool at the next step; the
   * call already running may still produce a token for it, which is skipped.
   */
  private async loop(): Promise<void> {
    this.running = true;
    try {
      let next: ReturnType<GenerationScheduler['call']> | null = this.call();
      while (next !== null) {
        let out: StepOutput;
        try {
          const r = await next;
          out = r.out;
          if (r.ms > 0) {
            this.stepMs = this.stepMs === 0 ? r.ms : 0.8 * this.stepMs + 0.2 * r.ms;
            this.callOverheadMs = 0.8 * this.callOverheadMs + 0.2 * r.overheadMs;
          }
        } catch (e) {
          for (const id of [...this.jobs.keys()]) this.finish(id, e as Error);
          return;
        }
        next = this.jobs.size > 0 ? this.call() : null;
        // Nothing asked for more while the finished call ran.
        next?.catch(() => undefined);
        this.previousLogprobs = this.recentLogprobs;
        this.recentLogprobs = new Set();
        const { tokens, logprobs, failed } = out;
        let at = 0;
        for (let i = 0; i < tokens.length; i += 2) at = this.accept(tokens[i], tokens[i + 1], logprobs, at);
        for (const f of failed) this.finish(f.id, generationError(f.code, f.message));
        if (next === null && this.jobs.size > 0) next = this.call();
      }
    } finally {
      this.running = false;
    }
  }

  /** The text of one token id alone (log-probability entries). */
  private textOf(id: number): string {
    let t = this.tokenText.get(id);
    if (t === undefined) {
      t = this.tokenizer.decode([id]);
      this.tokenText.set(id, t);
    }
    return t;
  }

  /**
   * Takes one generated token of sequence `id`; `at` is the read position in the step's
   * log-probability records, returned advanced past this token's record (when it has one).
   */
  private accept(id: number, token: number, logprobs: Float64Array, at: number): number {
    const job = this.jobs.get(id);
    // A record `[n, logprob, id₁, lp₁, …]` follows every token of a sequence with log-probabilities.
    const record = job?.top !== undefined || (job === undefined && (this.recentLogprobs.has(id) || this.previousLogprobs.has(id))) ? at : -1;
    if (record >= 0) at += 2 + 2 * logprobs[record];
    if (!job) return at; // finished (stop or abort) while the step ran
    try {
      if (record >= 0) {
        const top: TokenLogprob['top'] = [];
        for (let k = 0; k < logprobs[record]; k++) {
          const alt = logprobs[record + 2 + 2 * k];
          top.push({ id: alt, token: this.textOf(alt), logprob: logprobs[record + 3 + 2 * k] });
        }
        job.pending.push({ id: token, token: this.textOf(token), logprob: logprobs[record + 1], top });
      }
      job.completionTokens += 1;
      job.remaining -= 1;
      const { emit, stopped } = job.filter.push(job.decoder.push([token]));
      if (emit) this.emit(job, emit);
      if (stopped) {
        this.finish(id, { text: '', finishReason: 'stop', promptTokens: job.promptTokens, completionTokens: job.completionTokens });
      } else if (job.remaining === 0) {
        const rest = job.filter.push(job.decoder.end()).emit + job.filter.flush();
        if (rest || job.pending.length > 0) this.emit(job, rest);
        this.finish(id, { text: '', finishReason: 'length', promptTokens: job.promptTokens, completionTokens: job.completionTokens });
      }
    } catch (e) {
      // A token this model's tokenizer cannot decode (a model fault): this generation fails, the others go on.
      const err = e as Error & { code?: string };
      this.finish(id, generationError(err.code ?? 'ERR_RNNKIT_GENERATION', err.message));
    }
    return at;
  }

  private emit(job: Job, text: string): void {
    const entries = job.top === undefined ? undefined : job.pending;
    if (entries) job.pending = [];
    job.onText(text, entries);
  }
}

/** What a stream's {@link CompletionStream.chunks} yields: text, with its tokens' log-probabilities when asked for. */
export interface StreamChunk {
  /** Text generated since the previous chunk (never empty unless `logprobs` has entries). */
  text: string;
  /** Log-probabilities of the tokens this text came from (`GenerateOptions.logprobs` given). */
  logprobs?: TokenLogprob[];
}

/**
 * A generation as an async iterable of text pieces, with its final accounting. A reader that
 * falls behind receives what accumulated meanwhile as one piece, so a slow consumer costs one
 * wake-up per read, not per token.
 */
export interface CompletionStream extends AsyncIterable<string> {
  /** Settles with the whole completion when generation ends (rejects on abort or error). */
  readonly completion: Promise<Completion>;
  /** The same stream as chunks with log-probabilities; iterate either this or the stream itself, once. */
  chunks(): AsyncIterable<StreamChunk>;
}

/** Runs one generation to the end and returns its text and accounting. */
export function complete(scheduler: GenerationScheduler, prompt: string, opts: ResolvedGenerateOptions): Promise<Completion> {
  return new Promise((resolve, reject) => {
    let text = '';
    const logprobs: TokenLogprob[] | undefined = opts.logprobs == null ? undefined : [];
    scheduler.start(
      prompt,
      opts,
      false,
      (piece, entries) => {
        text += piece;
        if (entries) logprobs?.push(...entries);
      },
      (r) => (r instanceof Error ? reject(r) : resolve(logprobs ? { ...r, text, logprobs } : { ...r, text })),
    );
  });
}

/** Streams one generation. */
export function stream(scheduler: GenerationScheduler, prompt: string, opts: ResolvedGenerateOptions): CompletionStream {
  let queue: string[] = [];
  let queued: TokenLogprob[] = [];
  const all: TokenLogprob[] | undefined = opts.logprobs == null ? undefined : [];
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
    (piece, entries) => {
      text += piece;
      queue.push(piece);
      if (entries) {
        queued.push(...entries);
        all?.push(...entries);
      }
      wake?.();
    },
    (r) => {
      done = r;
      if (r instanceof Error) settle.reject(r);
      else settle.resolve(all ? { ...r, text, logprobs: all } : { ...r, text });
      wake?.();
    },
  );
  async function* chunks(): AsyncGenerator<StreamChunk> {
    for (;;) {
      if (queue.length > 0) {
        const chunk: StreamChunk = { text: queue.length === 1 ? queue[0] : queue.join('') };
        if (all) chunk.logprobs = queued;
        queue = [];
        queued = [];
        yield chunk;
        continue;
      }
      if (done !== undefined) {
        if (done instanceof Error) throw done;
        return;
      }
      await new Promise<void>((r) => (wake = r));
      wake = undefined;
    }
  }
  return {
    completion,
    chunks,
    async *[Symbol.asyncIterator]() {
      for await (const chunk of chunks()) if (chunk.text !== '') yield chunk.text;
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
  if (opts.logprobs != null) throw typeError('ERR_RNNKIT_TYPE', `options.logprobs: not available with beam search (options.beams ${opts.beams})`);
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
