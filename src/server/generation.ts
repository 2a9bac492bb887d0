/**
 * Running a validated request's generations and writing the answer: one generation per choice
 * (`n` × prompts), all in flight at once (the model's scheduler batches them with every other
 * request's), answered as one JSON body or as server-sent events in the endpoint's format.
 *
 * Streams: each generation's chunks (the text accumulated since the previous read) become
 * events; the events of all choices go out together, at most one write per {@link COALESCE_MS},
 * so at many streams each write carries several tokens; a client that stops reading holds its
 * generations back (back-pressure) instead of buffering without bound.
 */

import type { Completion, GenerateOptions, TokenLogprob } from '../types';
import type { StreamChunk } from '../generate';
import type { CompletionModel, CompletionStream } from './model';
import type { Exchange } from './exchange';

/** Why the server aborted a generation. */
export type AbortCause = 'disconnect' | 'timeout' | 'shutdown';

/** One admitted request's generations, from admission until its answer is complete. */
export class Generation {
  readonly controller = new AbortController();
  cause: AbortCause | null = null;
  live = false;

  constructor(
    readonly id: string,
    readonly exchange: Exchange,
  ) {}

  get done(): Promise<void> {
    return this.exchange.done;
  }

  /** Stops the request's other generations after one of them failed (no abort cause: the failure is the answer). */
  stop(): void {
    if (!this.controller.signal.aborted) this.controller.abort(new DOMException('generation stopped: another choice of the request failed', 'AbortError'));
  }

  abort(cause: AbortCause): void {
    if (this.cause !== null) return;
    this.cause = cause;
    this.controller.abort(new DOMException(`generation aborted: ${cause}`, 'AbortError'));
  }
}

/** One choice to generate. */
export interface Choice {
  /** Index in the answer's `choices`. */
  index: number;
  /** Which prompt it continues (usage counts each prompt once). */
  promptIndex: number;
  prompt: string;
  promptTokens: number;
  options: GenerateOptions;
  /** Text put before the generated text (completions' `echo`). */
  prefix: string;
}

/** Token accounting in OpenAI's shape. */
export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

/** How an endpoint presents results (`completions.ts`, `chat.ts`). */
export interface Format {
  /** `cmpl` or `chatcmpl`: the prefix of response ids. */
  readonly idPrefix: string;
  /** The whole answer of a plain request. */
  answer(base: Base, results: Array<{ choice: Choice; completion: Completion; finishReason: string }>, usage: Usage): object;
  /** Events a streamed choice starts with (chat: the assistant role). */
  opening(base: Base, choice: Choice): object[];
  /** The event of one chunk of a streamed choice. */
  piece(base: Base, choice: Choice, text: string, logprobs: TokenLogprob[] | undefined, offset: number): object;
  /** The last event of a streamed choice. */
  finish(base: Base, choice: Choice, finishReason: string): object;
  /** The usage event (`stream_options.include_usage`). */
  usage(base: Base, usage: Usage): object;
}

/** Fields every answer and event starts with. */
export interface Base {
  id: string;
  created: number;
  model: string;
  /** Streams with `include_usage`: every chunk carries `usage: null`. */
  includeUsage: boolean;
}

/** What a request asks the runner to do. */
export interface Run {
  choices: Choice[];
  stream: boolean;
  includeUsage: boolean;
  format: Format;
}

/** Statistics the handler logs and counts. */
export interface RunStats {
  promptTokens: number;
  completionTokens: number;
  /** Streams: milliseconds from the start of generation to the first text written. */
  ttftMs?: number;
  /** Streams: seconds between consecutive chunks of text (a chunk holds the tokens produced meanwhile). */
  gaps: number[];
}

const SSE_HEADERS = { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'x-accel-buffering': 'no' };

/** Maps the model's finish reason to OpenAI's; `'abort'` is only valid when this server aborted it. */
function finishReason(c: Completion, g: Generation): 'stop' | 'length' {
  if (c.finishReason !== 'abort') return c.finishReason;
  throw g.controller.signal.aborted ? g.controller.signal.reason : new Error('the model finished with reason "abort" without being aborted');
}

function usageOf(run: Run, completions: number[]): Usage {
  const prompts = new Map<number, number>();
  for (const c of run.choices) prompts.set(c.promptIndex, c.promptTokens);
  const prompt = [...prompts.values()].reduce((a, b) => a + b, 0);
  const completion = completions.reduce((a, b) => a + b, 0);
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
}

/** Runs `run` for generation `g` of `model` and writes the answer; returns the accounting. */
export async function execute(model: CompletionModel, g: Generation, run: Run, base: Base, stats: RunStats): Promise<void> {
  const signal = g.controller.signal;
  if (!run.stream) {
    const completions = await Promise.all(run.choices.map((c) => model.complete(c.prompt, { ...c.options, signal })));
    const results = run.choices.map((choice, i) => ({ choice, completion: completions[i], finishReason: finishReason(completions[i], g) }));
    const usage = usageOf(
      run,
      completions.map((c) => c.completionTokens),
    );
    stats.promptTokens = usage.prompt_tokens;
    stats.completionTokens = usage.completion_tokens;
    const body = JSON.stringify(run.format.answer(base, results, usage));
    g.exchange.send(200, { 'content-type': 'application/json' }, body);
    return;
  }
  const writer = new EventWriter(g.exchange, signal);
  const t0 = performance.now();
  let last = t0;
  const streams: CompletionStream[] = [];
  try {
    for (const c of run.choices) streams.push(model.stream(c.prompt, { ...c.options, signal }));
  } catch (e) {
    for (const s of streams) s.completion.catch(() => undefined);
    throw e;
  }
  // Observed below; this only keeps a rejection that follows a failed iteration from going unhandled.
  for (const s of streams) s.completion.catch(() => undefined);
  const counts = await Promise.all(
    run.choices.map(async (choice, i): Promise<number> => {
      const s = streams[i];
      const piece = pieceWriter(run.format, base, choice);
      let opened = false;
      let offset = 0;
      const open = async (): Promise<void> => {
        if (opened) return;
        opened = true;
        for (const e of run.format.opening(base, choice)) await writer.event(e);
        if (choice.prefix !== '') {
          await writer.event(run.format.piece(base, choice, choice.prefix, undefined, 0));
          offset = choice.prefix.length;
        }
      };
      for await (const chunk of s.chunks ? s.chunks() : textChunks(s)) {
        await open();
        const now = performance.now();
        if (stats.ttftMs === undefined) stats.ttftMs = now - t0;
        else stats.gaps.push((now - last) / 1000);
        last = now;
        await writer.raw(piece(chunk.text, chunk.logprobs, offset));
        offset += chunk.text.length;
      }
      const c = await s.completion;
      await open();
      await writer.event(run.format.finish(base, choice, finishReason(c, g)));
      return c.completionTokens;
    }),
  ).catch((e: unknown) => {
    // What was generated before the failure goes out before the error event that ends the stream.
    writer.write();
    throw e;
  });
  const usage = usageOf(run, counts);
  stats.promptTokens = usage.prompt_tokens;
  stats.completionTokens = usage.completion_tokens;
  if (run.includeUsage) await writer.event(run.format.usage(base, usage));
  await writer.flush();
  g.exchange.end('data: [DONE]\n\n');
}

/** The chunks of a stream without `chunks()`: its text pieces. */
async function* textChunks(s: CompletionStream): AsyncGenerator<StreamChunk> {
  for await (const text of s) yield { text };
}

/** Stands for a piece's text while its event is serialized once (see {@link pieceWriter}). */
const TEXT_MARK = '\u0000rnnkit-text\u0000';

/**
 * The SSE event of a piece of `choice`'s text. Without log-probabilities an event differs from
 * the next only in its text, so the event is serialized once around a mark and each piece costs
 * one `JSON.stringify` of its text, not of the whole object.
 */
function pieceWriter(format: Format, base: Base, choice: Choice): (text: string, logprobs: TokenLogprob[] | undefined, offset: number) => string {
  const full = (text: string, logprobs: TokenLogprob[] | undefined, offset: number): string =>
    `data: ${JSON.stringify(format.piece(base, choice, text, logprobs, offset))}\n\n`;
  if (choice.options.logprobs !== undefined) return full;
  const parts = full(TEXT_MARK, undefined, 0).split(JSON.stringify(TEXT_MARK));
  if (parts.length !== 2) return full;
  const [head, tail] = parts;
  return (text) => head + JSON.stringify(text) + tail;
}

/**
 * Milliseconds a stream's events may wait to share one write: an event that follows a write by
 * less than this is held until this long after it, so at many streams each write (and each read
 * of the client) carries several events, and no event waits longer than this.
 */
const COALESCE_MS = 5;

/**
 * Writes SSE events: the status and headers with the first write, then the events gathered until
 * {@link COALESCE_MS} after the previous write, in one write. Taking an event never waits unless
 * the client lags: then the next one waits until the client has read the last write
 * (back-pressure), and the model's stream meanwhile gathers its text into fewer, larger pieces.
 * A model whose stream only produces when read (an async generator) is read at full speed.
 */
class EventWriter {
  private pending = '';
  private timer = false;
  private lastWrite = -Infinity;
  /** Settles when the client has read the last write; null while it keeps up. */
  private blocked: Promise<void> | null = null;

  constructor(
    private readonly exchange: Exchange,
    private readonly signal: AbortSignal,
  ) {}

  event(payload: object): Promise<void> | undefined {
    return this.raw(`data: ${JSON.stringify(payload)}\n\n`);
  }

  /** An event already serialized (`data: …\n\n`); a promise when the client must catch up first. */
  raw(event: string): Promise<void> | undefined {
    this.pending += event;
    if (this.blocked) return this.blocked;
    if (!this.timer) {
      this.timer = true;
      const run = (): void => {
        this.timer = false;
        this.write();
      };
      const wait = this.lastWrite + COALESCE_MS - performance.now();
      if (wait > 0) setTimeout(run, wait);
      else setImmediate(run);
    }
    return undefined;
  }

  /** Writes everything pending and waits until the client has read it. */
  async flush(): Promise<void> {
    if (this.blocked) await this.blocked;
    this.write();
    if (this.blocked) await this.blocked;
  }

  /** Writes what is pending now (back-pressure or not). */
  write(): void {
    // Answered otherwise meanwhile (an error, the client gone): nothing more goes out.
    if (this.exchange.closed) this.pending = '';
    if (this.pending === '') return;
    const text = this.pending;
    this.pending = '';
    this.lastWrite = performance.now();
    if (!this.exchange.started) this.exchange.start(200, SSE_HEADERS);
    const wait = this.exchange.write(text);
    if (!wait) return;
    const blocked: Promise<void> = abortable(wait, this.signal).finally(() => {
      if (this.blocked === blocked) this.blocked = null;
    });
    // Observed by the next event or flush; a stream that ends with an abort may never look.
    blocked.catch(() => undefined);
    this.blocked = blocked;
  }
}

/** `promise`, or a rejection with the signal's reason when it aborts first. */
function abortable(promise: Promise<void>, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      () => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      },
      (e) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}
