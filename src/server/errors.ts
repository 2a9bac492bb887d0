/**
 * Errors in OpenAI's shape, `{ error: { message, type, param, code } }` with an HTTP status, and
 * which model errors blame the client (400) and which are the server's own fault (500).
 */

import { describe } from '../errors';

/** An error answered as `{ error: { message, type, param, code } }` with an HTTP status. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type: string,
    readonly param: string | null = null,
    readonly code: string | null = null,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }

  /** The JSON body OpenAI's clients parse. */
  get body(): ErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

/** OpenAI's error body. */
export interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

/** A 400 `invalid_request_error` naming `param`. */
export function invalid(param: string | null, message: string, code = 'invalid_value'): ApiError {
  return new ApiError(400, message, 'invalid_request_error', param, code);
}

/** The 503 every request gets while the server shuts down. */
export function shuttingDown(): ApiError {
  return new ApiError(503, 'the server is shutting down', 'server_error', null, 'server_shutting_down');
}

/**
 * Model error codes that mean "the request was wrong" (a bad prompt or option), answered 400.
 * Everything else a model throws — `ERR_RNNKIT_GENERATION` (non-finite logits, a token its
 * tokenizer lacks) or any other failure — is the server's fault: 500 `server_error`.
 */
const CLIENT_ERROR_CODES = new Set(['ERR_RNNKIT_TYPE', 'ERR_RNNKIT_RANGE', 'ERR_RNNKIT_EMPTY', 'ERR_RNNKIT_VOCAB', 'ERR_RNNKIT_UNKNOWN_OPTION']);

/** Whether a model's error blames the request. */
export function isClientError(e: unknown): e is Error {
  return e instanceof Error && CLIENT_ERROR_CODES.has((e as { code?: unknown }).code as string);
}

/** Runs an argument check and turns its TypeError/RangeError into a 400 naming `param`. */
export function checked<T>(param: string, check: () => T): T {
  try {
    return check();
  } catch (e) {
    throw invalid(param, (e as Error).message, e instanceof TypeError ? 'invalid_type' : 'invalid_value');
  }
}

/** A request body field that must be a JSON object. */
export function objectBody(body: unknown): Record<string, unknown> {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw invalid(null, `request body: expected a JSON object, got ${describe(body)}`, 'invalid_type');
  }
  return body as Record<string, unknown>;
}
