/** Where a command writes: the result to stdout, everything else (logs, progress) to stderr. */

import type { ProgressMode } from '../progress';

/** Where a command writes: the result to stdout, everything else to stderr. */
export interface Io {
  json: boolean;
  /** Prints the result: `human` text normally, `data` as one JSON line with `--json`. */
  result(human: string, data: unknown): void;
  /** A log line on stderr (a JSON object with `--json`). */
  log(message: string): void;
}

/** The output channel of a command. */
export function makeIo(json: boolean): Io {
  return {
    json,
    result: (human, data) => process.stdout.write(json ? JSON.stringify(data) + '\n' : human.endsWith('\n') ? human : human + '\n'),
    log: (message) => process.stderr.write(json ? JSON.stringify({ event: 'log', message }) + '\n' : message + '\n'),
  };
}

/** Progress mode for stderr: JSON lines with `--json`, a bar on a TTY, plain lines otherwise. */
export function progressMode(json: boolean): ProgressMode {
  return json ? 'json' : process.stderr.isTTY ? 'tty' : 'plain';
}

/**
 * Makes a closed reader of `stream` (`rnnkit generate --stream | head -c 10`) end the program
 * quietly with status 0, as a pipe's reader going away is the reader's choice, not a failure.
 * Other write errors keep Node's default (an uncaught error).
 */
export function exitQuietlyOnEpipe(stream: NodeJS.WriteStream = process.stdout): void {
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE') throw e;
    process.exit(0);
  });
}
