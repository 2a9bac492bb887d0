import { describe, expect, it } from 'vitest';
import { execFileSync } from 'child_process';
import * as path from 'path';

// Checks the benchmark harness's output shape only. Speed goals live in the benchmarks
// (bench/RESULTS.md), never in unit tests: a loaded CI machine must not fail a build.
const root = path.join(__dirname, '..');

describe('bench/run.js', () => {
  it('prints SPEC.md records for --quick --configs TRAIN-RNN-S --json', () => {
    const env = { ...process.env };
    delete env.PEERS_OUT; // do not append smoke-test records to anyone's results file
    const out = execFileSync(process.execPath, [path.join(root, 'bench/run.js'), '--quick', '--configs', 'TRAIN-RNN-S', '--json'], {
      cwd: root,
      env,
      encoding: 'utf8',
    });
    const records = out
      .split('\n')
      .filter((l) => l.trim())
      .map((l) => JSON.parse(l));
    // one metric record and one peak_rss_mb record per thread count (default 1,2)
    expect(records.length).toBe(4);
    for (const r of records) {
      expect(r).toMatchObject({ peer: 'rnnkit', config: 'TRAIN-RNN-S' });
      expect(typeof r.variant).toBe('string');
      expect([1, 2]).toContain(r.threads);
      for (const k of ['median', 'min', 'max', 'n']) expect(Number.isFinite(r[k])).toBe(true);
      expect(r.min).toBeLessThanOrEqual(r.median);
      expect(r.median).toBeLessThanOrEqual(r.max);
      expect(r.median).toBeGreaterThan(0);
    }
    const metrics = records.map((r) => `${r.threads}:${r.metric}:${r.unit}`).sort();
    expect(metrics).toEqual(['1:peak_rss_mb:MiB', '1:train_tokens_per_s:tok/s', '2:peak_rss_mb:MiB', '2:train_tokens_per_s:tok/s']);
    for (const r of records.filter((x) => x.metric === 'train_tokens_per_s')) expect(r.n).toBeGreaterThanOrEqual(1);
  });

  it('refuses unknown configs and options', () => {
    const run = (...args: string[]) =>
      execFileSync(process.execPath, [path.join(root, 'bench/run.js'), ...args], { cwd: root, encoding: 'utf8', stdio: 'pipe' });
    expect(() => run('--configs', 'TRAIN-NOPE')).toThrow(/unknown config/);
    expect(() => run('--thread', '1')).toThrow(/unknown option/);
    expect(run('--help')).toMatch(/Usage/);
  });
});
