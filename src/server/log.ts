/** The server's structured log records ({@link ServerOptions.onLog}). */

/** Severity of a {@link LogEntry}. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/** One structured log record passed to `onLog`. */
export interface LogEntry {
  /** Severity. */
  level: LogLevel;
  /**
   * What happened: `'listening'`, `'request'` (one per request), `'abort'`, `'error'`, `'refused'`
   * (a connection over a limit), `'shutdown'`, or (`rnnkit serve --workers`, the supervising
   * process) `'worker'`: a worker started, exited or was replaced.
   */
  event: 'listening' | 'request' | 'abort' | 'error' | 'refused' | 'shutdown' | 'worker';
  /** Human-readable one-line description. */
  message: string;
  /** The request's id (`cmpl-…`/`chatcmpl-…`, also sent as the `x-request-id` header). */
  requestId?: string;
  /**
   * Machine-readable details. A `'request'` record has `method`, `path`, `status`, `durationMs`,
   * `client` and, for generations, `promptTokens`, `completionTokens` and (streams) `ttftMs`.
   */
  data?: Record<string, unknown>;
}

/** Calls `onLog` with a record; a throwing hook must not take the server down. */
export function emitLog(onLog: ((entry: LogEntry) => void) | undefined, entry: LogEntry): void {
  if (!onLog) return;
  try {
    onLog(entry);
  } catch {
    // ignored: see above
  }
}
