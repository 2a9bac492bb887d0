import { describe, expect, it } from 'vitest';
import { fitWithProgress, formatDuration, formatProgressLine, formatRate, formatStatusLine, ProgressReporter, renderBar, type Fittable } from '../src/progress';
import type { FitOptions } from '../src/fit';
import type { History } from '../src/types';
import type { ProgressEvent } from '../src/types';

function event(over: Partial<ProgressEvent> = {}): ProgressEvent {
  return {
    type: 'step',
    step: 120,
    totalSteps: 1000,
    epoch: 0,
    epochProgress: 0.12,
    loss: 1.84213,
    lr: 0.002,
    gradNorm: 0.734,
    tokensPerSecond: 12345,
    elapsed: 62,
    eta: 190,
    ...over,
  };
}

/** A stream that records what is written. */
function sink(columns?: number) {
  const chunks: string[] = [];
  return { chunks, columns, write: (c: string) => chunks.push(c), text: () => chunks.join('') };
}

describe('formatting', () => {
  it('formats durations', () => {
    expect(formatDuration(0)).toBe('0s');
    expect(formatDuration(42.4)).toBe('42s');
    expect(formatDuration(185)).toBe('3m05s');
    expect(formatDuration(3720)).toBe('1h02m');
    expect(formatDuration(Infinity)).toBe('--');
    expect(formatDuration(-1)).toBe('--');
  });

  it('formats rates', () => {
    expect(formatRate(950)).toBe('950');
    expect(formatRate(12345)).toBe('12.3k');
    expect(formatRate(4_560_000)).toBe('4.56M');
    expect(formatRate(NaN)).toBe('--');
  });

  it('renders bars of exactly the width, eighth-cell resolution', () => {
    expect(renderBar(0, 10)).toBe(' '.repeat(10));
    expect(renderBar(1, 10)).toBe('█'.repeat(10));
    expect(renderBar(0.5, 10)).toBe('█'.repeat(5) + ' '.repeat(5));
    expect(renderBar(0.0125, 10)).toBe('▏' + ' '.repeat(9));
    expect(renderBar(2, 4)).toBe('████');
    expect(renderBar(NaN, 4)).toBe('    ');
    for (let f = 0; f <= 1; f += 0.03) expect([...renderBar(f, 17)]).toHaveLength(17);
  });

  it('gives one line per event type', () => {
    expect(formatProgressLine(event())).toBe('step 120/1000  loss 1.8421  lr 2.00e-3  grad 0.73  12.3k tok/s  elapsed 1m02s  eta 3m10s');
    expect(formatProgressLine(event({ type: 'validation', valLoss: 1.5, valPerplexity: Math.exp(1.5), valBitsPerToken: 1.5 / Math.LN2 }))).toBe(
      'step 120/1000  val loss 1.5000  ppl 4.48  bits/token 2.164',
    );
    expect(formatProgressLine(event({ type: 'checkpoint', path: 'ck.safetensors' }))).toBe('step 120/1000  checkpoint saved to ck.safetensors');
    expect(formatProgressLine(event({ type: 'done', step: 1000 }))).toBe('done: 1000 steps in 1m02s, 12.3k tok/s, last loss 1.8421');
    expect(formatProgressLine(event({ totalSteps: 0, loss: NaN }))).toMatch(/^step 120  loss --/);
  });

  it('fits the status line to the terminal width', () => {
    const wide = formatStatusLine(event(), 1.9, 120);
    expect(wide).toMatch(/^\[█+/);
    expect(wide).toContain('120/1000  loss 1.8421  val 1.9000  12.3k tok/s  ETA 3m10s');
    expect(wide.length).toBeLessThan(120);
    const narrow = formatStatusLine(event(), undefined, 40);
    expect(narrow.startsWith('[')).toBe(false);
    expect(narrow.length).toBeLessThanOrEqual(39);
    expect(formatStatusLine(event({ type: 'done', step: 1000 }), undefined, 120)).toMatch(/^\[█+\] 1000\/1000 .* done in 1m02s$/);
  });

  it('an interrupted run ends with the bar where it stopped, not a full one', () => {
    const stopped = formatStatusLine(event({ type: 'done', step: 170, totalSteps: 3777 }), undefined, 120);
    expect(stopped).toContain('170/3777');
    expect(stopped).toContain('stopped in 1m02s');
    expect(stopped).not.toContain('ETA 0s');
    const bar = /^\[([^\]]*)\]/.exec(stopped)![1];
    expect(bar).toMatch(/^█?[▏▎▍▌▋▊▉]? +$/);
  });

  it('shows the unit the run counts', () => {
    expect(formatProgressLine(event(), 'rows')).toContain('12.3k rows/s');
    expect(formatStatusLine(event(), undefined, 120, 'steps')).toContain('12.3k steps/s');
    for (const [unit, shown] of [
      [undefined, 'tok/s'],
      ['tokens', 'tok/s'],
      ['rows', 'rows/s'],
      ['time steps', 'steps/s'],
    ] as const) {
      const s = sink();
      const r = new ProgressReporter({ mode: 'plain', stream: s, unit });
      r.update(event());
      r.update(event({ type: 'done' }));
      expect(
        s
          .text()
          .split('\n')
          .filter((l) => l.includes(shown)),
      ).toHaveLength(2);
    }
  });
});

describe('ProgressReporter', () => {
  it('plain: one line per event', () => {
    const s = sink();
    const r = new ProgressReporter({ mode: 'plain', stream: s });
    r.update(event());
    r.update(event({ step: 121 }));
    r.log('hello');
    r.finish();
    expect(s.text().split('\n')).toEqual([expect.stringMatching(/^step 120\/1000/), expect.stringMatching(/^step 121\/1000/), 'hello', '']);
  });

  it('json: one parseable object per event and message', () => {
    const s = sink();
    const r = new ProgressReporter({ mode: 'json', stream: s });
    r.update(event({ type: 'validation', valLoss: 1.2 }));
    r.log('saved');
    const lines = s
      .text()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines[0]).toMatchObject({ event: 'progress', type: 'validation', step: 120, valLoss: 1.2 });
    expect(lines[1]).toEqual({ event: 'log', message: 'saved' });
  });

  it('tty: redraws in place, throttles step events, always draws validation, logs above the bar', () => {
    let t = 0;
    const s = sink(100);
    const r = new ProgressReporter({ mode: 'tty', stream: s, throttleMs: 100, now: () => t });
    r.update(event({ step: 1 }));
    t = 50;
    r.update(event({ step: 2 })); // throttled
    expect(s.chunks).toHaveLength(1);
    expect(s.chunks[0]).toMatch(/^\r\[.*\] 1\/1000 .*\x1b\[K$/);
    r.update(event({ type: 'validation', step: 2, valLoss: 2.5 }));
    expect(s.chunks).toHaveLength(2);
    t = 200;
    r.update(event({ step: 3 }));
    expect(s.chunks[2]).toContain('3/1000  loss 1.8421  val 2.5000');
    r.log('note');
    expect(s.chunks[3]).toBe('\r\x1b[Knote\n');
    expect(s.chunks[4]).toMatch(/^\r\[.*3\/1000/);
    r.finish();
    expect(s.text().endsWith('\n')).toBe(true);
    expect(s.text()).not.toMatch(/\n\n$/);
  });

  it('tty: a terminal that reports 0 columns gets an 80-column line', () => {
    const s = sink(0);
    const r = new ProgressReporter({ mode: 'tty', stream: s });
    r.update(event());
    expect(s.chunks[0]).toMatch(/^\r\[[█▏▎▍▌▋▊▉ ]{30}\] 120\/1000  loss 1\.8421/);
  });

  it('tty: the last throttled state is drawn on finish', () => {
    const t = 0;
    const s = sink(100);
    const r = new ProgressReporter({ mode: 'tty', stream: s, now: () => t });
    r.update(event({ step: 1 }));
    r.update(event({ step: 7 }));
    r.finish();
    expect(s.chunks[s.chunks.length - 2]).toContain(' 7/1000');
  });
});

function history(steps: number): History {
  return {
    steps: [steps],
    loss: [1],
    valSteps: [],
    valLoss: [],
    stepsDone: steps,
    tokens: steps * 10,
    elapsed: 1,
    stopReason: steps < 100 ? 'aborted' : 'completed',
  };
}

/** A model whose fit emits one step event, then waits for its signal or finishes after `ms`. */
function fakeModel(ms: number): Fittable<string> & { seen?: FitOptions } {
  const m: Fittable<string> & { seen?: FitOptions } = {
    fit(_data, options) {
      m.seen = options;
      options?.onProgress?.(event({ step: 5 }));
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => resolve(history(100)), ms);
        options?.signal?.addEventListener('abort', () => {
          clearTimeout(timer);
          reject(Object.assign(new Error('aborted'), { name: 'AbortError', code: 'ABORT_ERR', history: history(5) }));
        });
      });
    },
  };
  return m;
}

describe('fitWithProgress', () => {
  it('passes options through, reports progress, returns the history', async () => {
    const s = sink();
    const model = fakeModel(5);
    const before = process.listenerCount('SIGINT');
    const out = await fitWithProgress(model, 'text', { maxSteps: 100 }, new ProgressReporter({ mode: 'plain', stream: s }));
    expect(out).toEqual({ history: history(100), interrupted: false, lastStep: event({ step: 5 }) });
    expect(model.seen?.maxSteps).toBe(100);
    expect(s.text()).toMatch(/^step 5\/1000/);
    expect(process.listenerCount('SIGINT')).toBe(before);
  });

  it('turns the first SIGINT into an abort and returns the partial history', async () => {
    const s = sink();
    const p = fitWithProgress(fakeModel(60_000), 'text', {}, new ProgressReporter({ mode: 'plain', stream: s }));
    process.emit('SIGINT');
    const out = await p;
    expect(out.interrupted).toBe(true);
    expect(out.history.stepsDone).toBe(5);
    expect(out.lastStep?.step).toBe(5);
    expect(s.text()).toContain('interrupted: stopping training');
  });

  it('rethrows other errors', async () => {
    const failing: Fittable<string> = { fit: () => Promise.reject(Object.assign(new Error('loss is NaN'), { code: 'ERR_RNNKIT_LOSS_NOT_FINITE' })) };
    await expect(fitWithProgress(failing, 'x', {}, new ProgressReporter({ mode: 'plain', stream: sink() }))).rejects.toThrow('loss is NaN');
  });
});
