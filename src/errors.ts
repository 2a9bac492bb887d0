/**
 * Errors thrown by rnnkit. Every error carries a stable `code` (e.g. `ERR_RNNKIT_RANGE`) so
 * programs can branch on it, and a message that names the argument and the offending value.
 */

/** Stable error codes used across the JavaScript API and the native binding. */
export type RnnkitErrorCode =
  | 'ERR_RNNKIT_TYPE'
  | 'ERR_RNNKIT_RANGE'
  | 'ERR_RNNKIT_SHAPE'
  | 'ERR_RNNKIT_NON_FINITE'
  | 'ERR_RNNKIT_CONFIG'
  | 'ERR_RNNKIT_FORMAT'
  | 'ERR_RNNKIT_IO'
  | 'ERR_RNNKIT_LOSS_NOT_FINITE'
  | 'ERR_RNNKIT_BUSY'
  | 'ERR_RNNKIT_VOCAB'
  | 'ERR_RNNKIT_EMPTY'
  | 'ERR_RNNKIT_ENCODING'
  | 'ERR_RNNKIT_PANIC'
  | 'ERR_RNNKIT_NO_BINARY'
  | 'ERR_RNNKIT_UNKNOWN_OPTION'
  | 'ERR_RNNKIT_GENERATION'
  | 'ABORT_ERR';

/**
 * The argument a message names first (`options.seqLen: expected ...` names `options.seqLen`): the
 * same rule as the engine's, so every rnnkit error carries its `param`.
 */
function leadingParam(message: string): string | undefined {
  const head = message.split(': ', 1)[0];
  return head !== message && /^[A-Za-z_][\w.[\]]*$/.test(head) ? head : undefined;
}

/** Attaches a `code` (and the `param` the message names first) to an error of the given class. */
function withCode<E extends Error>(error: E, code: RnnkitErrorCode): E & { code: RnnkitErrorCode; param?: string } {
  Object.defineProperty(error, 'code', { value: code, enumerable: true, writable: false });
  const param = leadingParam(error.message);
  if (param !== undefined) Object.defineProperty(error, 'param', { value: param, enumerable: true, writable: true });
  return error as E & { code: RnnkitErrorCode; param?: string };
}

/** A `TypeError` with a stable code: wrong type, shape or configuration. */
export function typeError(code: RnnkitErrorCode, message: string): TypeError & { code: RnnkitErrorCode } {
  return withCode(new TypeError(message), code);
}

/** A `RangeError` with a stable code: a number or size outside its allowed range. */
export function rangeError(code: RnnkitErrorCode, message: string): RangeError & { code: RnnkitErrorCode } {
  return withCode(new RangeError(message), code);
}

/** A plain `Error` with a stable code: bad files, busy models, failed training. */
export function error(code: RnnkitErrorCode, message: string): Error & { code: RnnkitErrorCode } {
  return withCode(new Error(message), code);
}

/** Describes a value for an error message: its JSON form when short, its type otherwise. */
export function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? value.slice(0, 40) + '…' : value);
  if (typeof value === 'number' || typeof value === 'boolean' || value == null) return String(value);
  if (typeof value === 'bigint') return `${value}n`;
  if (Array.isArray(value)) return `an array of length ${value.length}`;
  if (ArrayBuffer.isView(value)) return `a ${value.constructor.name} of length ${(value as unknown as { length: number }).length}`;
  return `a ${typeof value === 'object' ? (value.constructor?.name ?? 'object') : typeof value}`;
}

/** Checks `value` is an integer in [min, max]; throws TypeError/RangeError naming `name`. */
export function checkInt(name: string, value: unknown, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number') throw typeError('ERR_RNNKIT_TYPE', `${name}: expected an integer, got ${describe(value)}`);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw rangeError('ERR_RNNKIT_RANGE', `${name}: expected an integer in [${min}, ${max}], got ${describe(value)}`);
  }
  return value;
}

/** Checks `value` is a finite number in [min, max]; throws TypeError/RangeError naming `name`. */
export function checkNumber(name: string, value: unknown, min = -Infinity, max = Infinity): number {
  if (typeof value !== 'number') throw typeError('ERR_RNNKIT_TYPE', `${name}: expected a number, got ${describe(value)}`);
  if (!Number.isFinite(value) || value < min || value > max) {
    throw rangeError('ERR_RNNKIT_RANGE', `${name}: expected a finite number in [${min}, ${max}], got ${describe(value)}`);
  }
  return value;
}

/** Checks `value` is a string (optionally non-empty); throws TypeError naming `name`. */
export function checkString(name: string, value: unknown, nonEmpty = false): string {
  if (typeof value !== 'string') throw typeError('ERR_RNNKIT_TYPE', `${name}: expected a string, got ${describe(value)}`);
  if (nonEmpty && value.length === 0) throw rangeError('ERR_RNNKIT_EMPTY', `${name}: expected a non-empty string, got ""`);
  return value;
}

/** Checks `value` is a boolean; throws TypeError naming `name`. */
export function checkBoolean(name: string, value: unknown): boolean {
  if (typeof value !== 'boolean') throw typeError('ERR_RNNKIT_TYPE', `${name}: expected a boolean, got ${describe(value)}`);
  return value;
}

/** Checks `value` is one of `choices`; throws TypeError naming `name` and the choices. */
export function checkChoice<T extends string>(name: string, value: unknown, choices: readonly T[]): T {
  if (typeof value !== 'string' || !(choices as readonly string[]).includes(value)) {
    throw typeError('ERR_RNNKIT_TYPE', `${name}: expected one of ${choices.map((c) => JSON.stringify(c)).join(', ')}, got ${describe(value)}`);
  }
  return value as T;
}
