/**
 * The command line's files: corpora read streamed (several files joined), invalid UTF-8 refused
 * with the byte offset (or replaced with --lossy), and the output and checkpoint paths checked
 * before training, with a checkpoint that fails mid-run reported while training goes on.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, compileCli, expectOneLineError, runCli, type Run } from './cli-harness';

let dir: string;
const rnnkit = (args: string[]) => runCli(dir, args);
const text = 'It is a truth universally acknowledged, that a single man in possession of a good fortune. '.repeat(30);
const small = ['--hidden', '8', '--embed', '4', '--seq-len', '16', '--batch-size', '4'];

beforeAll(async () => {
  await compileCli();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rnnkit-cli-files-'));
  fs.writeFileSync(path.join(dir, 'a.txt'), text);
  fs.writeFileSync(path.join(dir, 'b.txt'), text.toUpperCase());
  fs.writeFileSync(path.join(dir, 'afile'), 'not a directory');
  fs.writeFileSync(path.join(dir, 'bad.txt'), Buffer.concat([Buffer.from(text), Buffer.from([0xfe]), Buffer.from(text)]));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('train and eval read corpora streamed', () => {
  it('trains on several files joined with a blank line', async () => {
    const r = await rnnkit(['train', 'a.txt', 'b.txt', ...small, '--max-steps', '2', '--validation', '0', '--out', 'ab.safetensors', '--json']);
    expect(r.status).toBe(0);
    // Both files' characters and the blank line between them: 2 × 2,730 + 2 = 5,462 tokens.
    expect(r.stderr).toMatch(/on 5,462 tokens/);
  });

  it('refuses invalid UTF-8 naming the file and the byte, and reads it with --lossy', async () => {
    const offset = Buffer.byteLength(text);
    expectOneLineError(
      await rnnkit(['train', 'bad.txt', ...small, '--max-steps', '1', '--out', 'bad.safetensors']),
      1,
      new RegExp(`invalid UTF-8 at byte ${offset} \\(0xfe\\) of "bad\\.txt".*--lossy`),
    );
    const lossy = await rnnkit(['train', 'bad.txt', ...small, '--max-steps', '1', '--validation', '0', '--lossy', '--out', 'lossy.safetensors', '--json']);
    expect(lossy.status).toBe(0);
    expect(JSON.parse(lossy.stdout).model).toBe('lossy.safetensors');
    expectOneLineError(
      await rnnkit(['eval', 'lossy.safetensors', 'bad.txt']),
      1,
      new RegExp(`^rnnkit: error: text file "bad\\.txt": invalid UTF-8 at byte ${offset}`),
    );
    const evaluated = await rnnkit(['eval', 'lossy.safetensors', 'bad.txt', '--lossy', '--json']);
    expect(evaluated.status).toBe(0);
    expect(JSON.parse(evaluated.stdout).tokens).toBe(2 * Buffer.byteLength(text));
  });
});

describe('train checks its output paths before training', () => {
  it('refuses an unwritable --out or --checkpoint with a usage error, before any compute', async () => {
    for (const [flag, value] of [
      ['--out', 'afile/model.safetensors'],
      ['--checkpoint', 'afile/ck.safetensors'],
      ['--checkpoint', '.'],
      ['--chart', 'afile/loss.svg'],
    ]) {
      const r = await rnnkit(['train', 'a.txt', ...small, '--max-steps', '5', flag, value]);
      expectOneLineError(r, 2, new RegExp(`${flag} "${value.replace('.', '\\.')}" (cannot be written|is a directory)`));
    }
  });

  it('reports a checkpoint that fails mid-run, goes on, and still writes --out', async () => {
    const ckDir = path.join(dir, 'ckdir');
    fs.mkdirSync(ckDir);
    const args = [
      'train',
      'a.txt',
      ...small,
      '--max-steps',
      '1000',
      '--checkpoint',
      'ckdir/ck.safetensors',
      '--checkpoint-every',
      '1',
      '--validation',
      '0',
      '--out',
      'after.safetensors',
    ];
    // Once the first checkpoint is written, its directory becomes a file: every later write fails.
    // The directory is renamed away (atomic, while the run may be writing in it), not removed.
    const r = await new Promise<Run>((resolve, reject) => {
      const child = spawn(process.execPath, [cli, ...args], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      let broken = false;
      child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
      child.stderr.setEncoding('utf8').on('data', (d: string) => {
        stderr += d;
        if (!broken && /checkpoint saved/.test(stderr)) {
          broken = true;
          fs.renameSync(ckDir, `${ckDir}-moved`);
          fs.writeFileSync(ckDir, 'in the way');
        }
      });
      child.on('error', reject);
      child.on('close', (status) => resolve({ status, stdout, stderr }));
    });
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/warning: checkpoint not saved \(.*ck\.safetensors.*\); training goes on/);
    expect(r.stdout).toMatch(/stopped: max_steps after 1000 steps/);
    expect(fs.statSync(path.join(dir, 'after.safetensors')).size).toBeGreaterThan(0);
  });
});
