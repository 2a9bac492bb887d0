/** Reading and writing the user's files, with one-line errors that name the file and its role. */

import * as fs from 'node:fs';
import * as path from 'node:path';
import { CliError } from './exit';

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

/** Creates the parent directory of `file` when it is missing. */
export function ensureParent(file: string): void {
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
}
