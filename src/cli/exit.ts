/**
 * Exit codes of the `rnnkit` command line, and the two errors a command throws to choose one:
 * `UsageError` (exit 2) and `CliError` (exit 1).
 */

/** Exit code of a usage error (bad option, bad value, bad combination). */
export const EXIT_USAGE = 2;
/** Exit code of a failure while running (bad file, model error). */
export const EXIT_FAILURE = 1;
/** Exit code after Ctrl-C (128 + SIGINT). */
export const EXIT_INTERRUPTED = 130;
/** Exit code after SIGTERM (128 + 15), once the run is saved. */
export const EXIT_TERMINATED = 143;

/** A usage error found after parsing (e.g. options that do not go together): exit code 2. */
export class UsageError extends Error {}

/** A failure the user caused (bad file, wrong kind of model): one line, exit code 1. */
export class CliError extends Error {}

/** Where the action of a command leaves its exit code. */
export interface ExitCode {
  code: number;
}

/** Wraps a command's `fn` as a commander action that stores its exit code in `exit.code`. */
export function exitingWith<A extends unknown[]>(exit: ExitCode, fn: (...args: A) => Promise<number>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    exit.code = await fn(...args);
  };
}
