/**
 * Runs the built `rnnkit` command line as a user runs it (`node dist/cli/index.js ...` in a
 * child process), for the CLI tests.
 */
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import * as path from 'node:path';
import { expect } from 'vitest';

export const root = path.join(__dirname, '..');
/** The built entry point of the command line (the package's `bin`). */
export const cli = path.join(root, 'dist', 'cli', 'index.js');

/** Compiles the TypeScript to dist/ (the native engine must already be built). */
export async function compileCli(): Promise<void> {
  await promisify(execFile)(process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', path.join(root, 'tsconfig.json')]);
}

/** What a finished CLI run gave. */
export interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs the CLI in `cwd` in a child process and waits for it without blocking this process (a
 * blocked test worker cannot answer the test runner).
 */
export function runCli(cwd: string, args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli, ...args], { cwd, env: { ...process.env, RNNKIT_DEBUG: '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

/** Asserts the one-line error contract: exit code, one `rnnkit: error:` line, no stack trace. */
export function expectOneLineError(r: Run, code: number, pattern: RegExp) {
  expect(r.status).toBe(code);
  const lines = r.stderr.split('\n').filter((l) => l.length > 0);
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^rnnkit: error: /);
  expect(lines[0]).toMatch(pattern);
  expect(r.stderr).not.toMatch(/^\s+at /m);
  expect(r.stdout).toBe('');
}
