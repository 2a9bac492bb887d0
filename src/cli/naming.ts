/**
 * How error messages name things: the model API's names (`text`, `options.seqLen`, `data[3]`)
 * rewritten as the command line's (`"story.txt"`, `--seq-len`, `"rows.jsonl" line 4`), so that
 * the user reads the name of what they typed.
 */

/** Runs `fn`, rewriting the message of an error it throws with `rename` (API names → the command line's). */
export async function renaming<T>(rename: (message: string) => string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    const err = e as Error;
    if (typeof err?.message === 'string') err.message = rename(err.message);
    throw err;
  }
}

/**
 * Runs `fn`, renaming the subject of an API error message for the command line: an error
 * `text: unknown character …` about the argument the API calls `text` becomes
 * `"story.txt": unknown character …`.
 */
export function naming<T>(apiName: string, cliName: string, fn: () => Promise<T>): Promise<T> {
  return renaming((m) => (m.startsWith(`${apiName}: `) ? `${cliName}: ${m.slice(apiName.length + 2)}` : m), fn);
}

/**
 * Runs `fn`, naming API options by their flags in error messages (`options.seqLen` becomes
 * `--seq-len`); `names` overrides the flag of some (e.g. the labels of a resumed model).
 */
export function flagNaming<T>(keys: readonly string[], fn: () => Promise<T>, names: Record<string, string> = {}): Promise<T> {
  return renaming(
    (m) =>
      m
        // The API's advice to set options.onTooLong has no command-line counterpart.
        .replace(/ \(set options\.onTooLong[^)]*\)/, '')
        .replace(/\boptions\.(\w+)/g, (whole, key: string) => names[key] ?? (keys.includes(key) ? flag(key) : whole)),
    fn,
  );
}

/** `--camelCase` key → `--kebab-case` flag, for messages. */
export function flag(key: string): string {
  return '--' + key.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase()).replace(/^lowercase$/, 'no-lowercase');
}
