// The numbers task's data: the rules of scripts/numbers-data.mjs reproduce every pair of the
// training file and of the held-out file, refuse a wrong pair, and the held-out numbers are absent
// from the training file in every direction.
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

const script = path.join(__dirname, '..', 'scripts', 'numbers-data.mjs');
const data = (name: string) => path.join(__dirname, '..', 'data', name);
const verify = (file: string) => spawnSync(process.execPath, [script, 'verify', file], { encoding: 'utf8' });
const pairs = (file: string) =>
  fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as { source: string; target: string; task: string });
const number = (p: { source: string; target: string; task: string }) => (p.task === 'num2en' ? p.source : p.target);

describe('numbers data', () => {
  it('the rules reproduce every training and held-out pair', () => {
    for (const file of [data('numbers-train.jsonl'), data('numbers-test.jsonl')]) {
      const r = verify(file);
      expect(r.status, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout).notReproduced).toBe(0);
    }
    expect(JSON.parse(verify(data('numbers-train.jsonl')).stdout)).toMatchObject({ pairs: 60000, en2num: 20204, zh2num: 19733, num2en: 20063 });
  });

  it('refuses pairs the rules do not give', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rnnkit-numbers-'));
    try {
      const lines = [
        { source: '一万零一十', target: '10010', task: 'zh2num' },
        { source: '一万一十', target: '10010', task: 'zh2num' },
        { source: 'three thousand and one', target: '3001', task: 'en2num' },
        { source: '21', target: 'twenty one', task: 'num2en' },
      ];
      const file = path.join(dir, 'bad.jsonl');
      fs.writeFileSync(file, lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
      const r = verify(file);
      expect(r.status).toBe(1);
      expect(JSON.parse(r.stdout).notReproduced).toBe(3);
      expect(r.stderr).not.toContain('line 1:');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('holds out 1,000 numbers per direction that the training file lacks, and regenerates the same file', () => {
    const train = new Set(pairs(data('numbers-train.jsonl')).map(number));
    const test = pairs(data('numbers-test.jsonl'));
    for (const task of ['en2num', 'zh2num', 'num2en']) expect(test.filter((p) => p.task === task)).toHaveLength(1000);
    const numbers = test.map(number);
    expect(new Set(numbers).size).toBe(3000);
    expect(numbers.filter((n) => train.has(n))).toEqual([]);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rnnkit-numbers-'));
    try {
      const out = path.join(dir, 'test.jsonl');
      execFileSync(process.execPath, [script, 'test', '--out', out]);
      expect(fs.readFileSync(out, 'utf8')).toBe(fs.readFileSync(data('numbers-test.jsonl'), 'utf8'));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
