/**
 * Training progress for the command line, from the `ProgressEvent`s of `fit`.
 *
 * Three modes, one reporter ({@link ProgressReporter}):
 * - `tty`: one status line redrawn in place (`\r` + erase to end of line): a bar, step/total,
 *   loss, last validation loss, throughput (`tok/s`, `rows/s` or `steps/s`: the `unit` option) and ETA; step events redraw at most every `throttleMs`;
 *   validation, checkpoint and done events always redraw. Log messages go above the bar.
 * - `plain`: one line per event (for logs, pipes and CI).
 * - `json`: one JSON object per event and per message (`--json`; the stream is stderr, so stdout
 *   keeps only the command's result).
 *
 * A small hand-written renderer rather than a library: the line carries training-specific fields
 * (validation loss, tokens/s), it must interleave with log messages, and the formatting functions
 * are pure so tests can check them without a terminal.
 */

import type { FitOptions } from './fit';
import type { History, ProgressEvent } from './types';

/** How progress is shown. */
export type ProgressMode = 'tty' | 'plain' | 'json';

/** Where progress is written: a writable stream, with `columns` on a TTY. */
export interface ProgressStream {
  write(chunk: string): unknown;
  /** Terminal width (TTY streams have it; 0 or missing means 80). */
  columns?: number;
}

/** Options of {@link ProgressReporter}. */
export interface ProgressOptions {
  /** How progress is shown. */
  mode: ProgressMode;
  /** Where it is written (the CLI uses stderr). */
  stream: ProgressStream;
  /** `tty` mode: least time between two redraws for step events, in ms. Default 100. */
  throttleMs?: number;
  /** Clock in ms (tests inject one). Default `Date.now`. */
  now?: () => number;
  /**
   * What the run's throughput counts, shown per second: `tok` (`tokens`), `rows`, `steps`
   * (`time steps`). The CLI's names of its task units are accepted and shortened. Default `tok`.
   */
  unit?: string;
}

/** The short form of a throughput unit for `<unit>/s` (`tokens` → `tok`, `time steps` → `steps`). */
export function rateUnit(unit: string | undefined): string {
  if (unit === undefined || unit === 'tokens' || unit === 'token') return 'tok';
  if (unit === 'time steps') return 'steps';
  return unit;
}

/** A duration for people: `42s`, `3m05s`, `1h02m`; `--` when unknown (non-finite or negative). */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** A rate for people: `950`, `12.3k`, `4.56M`. */
export function formatRate(perSecond: number): string {
  if (!Number.isFinite(perSecond) || perSecond < 0) return '--';
  if (perSecond < 1000) return perSecond.toFixed(0);
  if (perSecond < 1e6) return `${(perSecond / 1e3).toFixed(1)}k`;
  return `${(perSecond / 1e6).toFixed(2)}M`;
}

/** A loss with 4 decimals, or `--` when not finite. */
function formatLoss(loss: number | undefined): string {
  return loss === undefined || !Number.isFinite(loss) ? '--' : loss.toFixed(4);
}

/** `step/total` (total omitted when unknown). */
function formatStep(e: ProgressEvent): string {
  return e.totalSteps > 0 && Number.isFinite(e.totalSteps) ? `${e.step}/${e.totalSteps}` : String(e.step);
}

/**
 * The plain-text line of one event: step events give loss, learning rate, gradient norm,
 * throughput and times; validation events the validation loss, perplexity and bits per token
 * (and accuracy when present); checkpoint events the path (or, when the write failed, why); the
 * done event the totals.
 */
export function formatProgressLine(e: ProgressEvent, unit = 'tok'): string {
  const head = `step ${formatStep(e)}`;
  switch (e.type) {
    case 'step':
      return `${head}  loss ${formatLoss(e.loss)}  lr ${e.lr.toExponential(2)}  grad ${Number.isFinite(e.gradNorm) ? e.gradNorm.toFixed(2) : '--'}  ${formatRate(e.tokensPerSecond)} ${unit}/s  elapsed ${formatDuration(e.elapsed)}  eta ${formatDuration(e.eta)}`;
    case 'validation': {
      const parts = [`${head}  val loss ${formatLoss(e.valLoss)}`];
      // Perplexity and bits are per token: a row's or an utterance's loss has neither.
      const perToken = unit === 'tok' || unit.endsWith(' tokens');
      if (perToken && e.valPerplexity !== undefined) parts.push(`ppl ${e.valPerplexity.toFixed(2)}`);
      if (perToken && e.valBitsPerToken !== undefined) parts.push(`bits/token ${e.valBitsPerToken.toFixed(3)}`);
      if (e.valAccuracy !== undefined) parts.push(`accuracy ${(e.valAccuracy * 100).toFixed(1)}%`);
      return parts.join('  ');
    }
    case 'checkpoint':
      return `${head}  checkpoint saved${e.path ? ` to ${e.path}` : ''}`;
    case 'checkpointError':
      return `${head}  warning: checkpoint not saved (${e.message}); training goes on`;
    case 'done':
      return `done: ${e.step} steps in ${formatDuration(e.elapsed)}, ${formatRate(e.tokensPerSecond)} ${unit}/s, last loss ${formatLoss(e.loss)}`;
  }
}

/** A bar of `width` cells filled to `fraction` (clamped to [0, 1]), with eighth-cell resolution. */
export function renderBar(fraction: number, width: number): string {
  const f = Number.isFinite(fraction) ? Math.min(1, Math.max(0, fraction)) : 0;
  const eighths = Math.round(f * width * 8);
  const full = Math.floor(eighths / 8);
  const partial = eighths % 8;
  const parts = ['', '▏', '▎', '▍', '▌', '▋', '▊', '▉'];
  return '█'.repeat(full) + (full < width ? parts[partial] + ' '.repeat(width - full - (partial > 0 ? 1 : 0)) : '');
}

/**
 * The TTY status line for the latest event and the last known validation loss, fitted to
 * `columns`: the bar shrinks first, then disappears, then trailing fields are cut.
 *
 * The bar shows the steps done out of the planned total for every event, `done` included: a run
 * stopped early (Ctrl-C, a time limit, early stopping) ends with a partial bar and its elapsed
 * time, not a full bar and `ETA 0s`, which would claim the plan was carried out.
 */
export function formatStatusLine(e: ProgressEvent, valLoss: number | undefined, columns: number, unit = 'tok'): string {
  const planned = e.totalSteps > 0 && Number.isFinite(e.totalSteps);
  const complete = e.type === 'done' && (!planned || e.step >= e.totalSteps);
  const fields = [formatStep(e), `loss ${formatLoss(e.loss)}`];
  if (valLoss !== undefined) fields.push(`val ${formatLoss(valLoss)}`);
  fields.push(
    `${formatRate(e.tokensPerSecond)} ${unit}/s`,
    e.type === 'done' ? `${complete ? 'done' : 'stopped'} in ${formatDuration(e.elapsed)}` : `ETA ${formatDuration(e.eta)}`,
  );
  const text = fields.join('  ');
  const room = columns - 1 - text.length - 3;
  const fraction = complete ? 1 : planned ? e.step / e.totalSteps : 0;
  if (room >= 10) return `[${renderBar(fraction, Math.min(30, room))}] ${text}`;
  return text.slice(0, Math.max(0, columns - 1));
}

/** Shows training progress in one of three modes (see the module documentation). */
export class ProgressReporter {
  private readonly mode: ProgressMode;
  private readonly stream: ProgressStream;
  private readonly throttleMs: number;
  private readonly now: () => number;
  private lastDraw = -Infinity;
  private last: ProgressEvent | undefined;
  private valLoss: number | undefined;
  private drawn = false;
  private readonly unit: string;

  /** A reporter writing to `options.stream` in `options.mode`. */
  constructor(options: ProgressOptions) {
    this.mode = options.mode;
    this.stream = options.stream;
    this.throttleMs = options.throttleMs ?? 100;
    this.now = options.now ?? Date.now;
    this.unit = rateUnit(options.unit);
  }

  /** Shows one progress event. */
  update(e: ProgressEvent): void {
    if (e.type === 'validation' && e.valLoss !== undefined) this.valLoss = e.valLoss;
    if (this.mode === 'json') {
      this.stream.write(JSON.stringify({ event: 'progress', ...e }) + '\n');
      return;
    }
    if (this.mode === 'plain') {
      this.stream.write(formatProgressLine(e, this.unit) + '\n');
      return;
    }
    this.last = e;
    if (e.type === 'checkpoint' || e.type === 'checkpointError') {
      this.log(formatProgressLine(e, this.unit));
      return;
    }
    const t = this.now();
    if (e.type === 'step' && t - this.lastDraw < this.throttleMs) return;
    this.lastDraw = t;
    this.draw();
  }

  /** Writes a message line (above the bar on a TTY; a `{"event":"log"}` object in JSON mode). */
  log(message: string): void {
    if (this.mode === 'json') {
      this.stream.write(JSON.stringify({ event: 'log', message }) + '\n');
      return;
    }
    if (this.mode === 'tty' && this.drawn) {
      this.stream.write(`\r\x1b[K${message}\n`);
      this.draw();
      return;
    }
    this.stream.write(message + '\n');
  }

  /** Ends the display: a TTY gets its last state drawn and a newline; other modes nothing. */
  finish(): void {
    if (this.mode !== 'tty' || !this.drawn) return;
    this.draw();
    this.stream.write('\n');
    this.drawn = false;
  }

  /** Redraws the status line in place. */
  private draw(): void {
    if (!this.last) return;
    this.stream.write(`\r${formatStatusLine(this.last, this.valLoss, this.stream.columns || 80, this.unit)}\x1b[K`);
    this.drawn = true;
  }
}

/** Anything with the `fit` method of a model (the CLI passes language models). */
export interface Fittable<D> {
  fit(data: D, options?: FitOptions): Promise<History>;
}

/** What {@link fitWithProgress} returns. */
export interface FitOutcome {
  /** The history of the run (up to the interruption when interrupted). */
  history: History;
  /** True when Ctrl-C stopped the run. */
  interrupted: boolean;
  /** The signal that interrupted it. */
  signal?: 'SIGINT' | 'SIGTERM';
  /** The last step event of the run (the final line's step and loss), if there was one. */
  lastStep?: ProgressEvent;
}

/**
 * Runs `model.fit` with progress shown by `reporter` and signal handling: the first SIGINT
 * (Ctrl-C) or SIGTERM (what `docker stop` and systemd send) aborts training through the
 * AbortSignal (the AbortError's history is returned with `interrupted` naming the signal), a
 * second one exits the process at once (128 + the signal's number). Other errors are rethrown.
 * The listeners are removed and the reporter finished in every case.
 */
export async function fitWithProgress<D>(
  model: Fittable<D>,
  data: D,
  options: FitOptions & { batchSize?: number; seed?: number },
  reporter: ProgressReporter,
): Promise<FitOutcome> {
  const controller = new AbortController();
  let interruptedBy: 'SIGINT' | 'SIGTERM' | undefined;
  const onSignal = (signal: 'SIGINT' | 'SIGTERM') => {
    if (controller.signal.aborted) process.exit(signal === 'SIGINT' ? 130 : 143);
    interruptedBy = signal;
    reporter.log(
      signal === 'SIGINT' ? 'interrupted: stopping training (Ctrl-C again to quit at once)' : 'SIGTERM: stopping training (SIGTERM again to quit at once)',
    );
    controller.abort();
  };
  const onSigint = () => onSignal('SIGINT');
  const onSigterm = () => onSignal('SIGTERM');
  let lastStep: ProgressEvent | undefined;
  const onProgress = (e: ProgressEvent) => {
    if (e.type === 'step') lastStep = e;
    reporter.update(e);
  };
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigterm);
  try {
    const history = await model.fit(data, { ...options, signal: controller.signal, onProgress });
    return { history, interrupted: false, lastStep };
  } catch (e) {
    const err = e as Error & { code?: string; history?: History };
    if (err.code === 'ABORT_ERR' && controller.signal.aborted && err.history)
      return { history: err.history, interrupted: true, signal: interruptedBy, lastStep };
    throw e;
  } finally {
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigterm);
    reporter.finish();
  }
}
