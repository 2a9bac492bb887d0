/** Reading and writing the user's files, with one-line errors that name the file and its role. */

import * as fs from 'node:fs';
import * as path from 'node:path';
import { CliError, UsageError } from './exit';

/** Reads a UTF-8 text file, with one-line errors naming `what` and the path. */
export function readText(file: string, what: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw fileError(e, file, what);
  }
}

/** Checks that `file` is a readable regular file. */
export function checkReadable(file: string, what: string): void {
  try {
    if (!fs.statSync(file).isFile()) throw new CliError(`${what} ${JSON.stringify(file)} is not a file`);
    fs.accessSync(file, fs.constants.R_OK);
  } catch (e) {
    throw fileError(e, file, what);
  }
}

/** Turns a Node file-system error into a one-line CliError. */
function fileError(e: unknown, file: string, what: string): Error {
  if (e instanceof CliError) return e;
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return new CliError(`${what} ${JSON.stringify(file)} does not exist`);
  if (code === 'EISDIR') return new CliError(`${what} ${JSON.stringify(file)} is a directory, not a file`);
  if (code === 'EACCES') return new CliError(`${what} ${JSON.stringify(file)} cannot be read (permission denied)`);
  return e as Error;
}

/**
 * Checks, before any work, that `file` (given by `flag`) can be written: its directory is made
 * when missing, and a probe file is created and removed there (what an atomic save does: a temp
 * file beside the target, then a rename). A path that is a directory, under a file, or in a
 * directory that refuses writes is a UsageError naming the flag and the path.
 */
export function checkWritable(file: string, flag: string): void {
  const target = path.resolve(file);
  const where = `${flag} ${JSON.stringify(file)}`;
  try {
    if (fs.statSync(target).isDirectory()) throw new UsageError(`${where} is a directory; give a file path`);
  } catch (e) {
    if (e instanceof UsageError) throw e;
    // A missing file is what a new run writes; other errors show in the probe below.
  }
  const dir = path.dirname(target);
  let probe: string | undefined;
  try {
    fs.mkdirSync(dir, { recursive: true });
    probe = path.join(dir, `.${path.basename(target)}.${process.pid}.probe`);
    fs.writeFileSync(probe, '', { flag: 'wx' });
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const why = err.code === 'ENOTDIR' || err.code === 'EEXIST' ? 'a parent of it is not a directory' : (err.code ?? err.message);
    throw new UsageError(`${where} cannot be written (${why}); choose a path in a writable directory`);
  } finally {
    if (probe !== undefined) fs.rmSync(probe, { force: true });
  }
}

/** Creates the parent directory of `file` when it is missing. */
export function ensureParent(file: string): void {
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
}
