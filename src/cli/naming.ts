/**
 * How error messages name things: the model API's names (`text`, `options.seqLen`, `data[3]`)
 * rewritten as the command line's (`"story.txt"`, `--seq-len`, `"rows.jsonl" line 4`), so that
 * the user reads the name of what they typed.
 *
 * An engine error says which name it is about in `err.param`, and its message starts with that
 * name: only that leading name is replaced, so the rest of the message is never rewritten by
 * accident. Errors of the TypeScript side carry no `param`; their messages are rewritten by
 * pattern as before.
 */

/**
 * How one command renames an error: `param` gives the command line's name for an API name
 * (undefined: keep it); `message` rewrites a whole message that names nothing in `param`.
 */
export interface Renamer {
  param(name: string): string | undefined;
  message(message: string): string;
}

/**
 * Errors already renamed through their `param`: an enclosing renamer leaves them alone, since
 * their messages no longer start with an API name.
 */
const renamed = new WeakSet<object>();

/** The API name an error's message starts with, when the error says which. */
function leadingParam(err: Error & { param?: unknown }): string | undefined {
  const p = err.param;
  return typeof p === 'string' && p.length > 0 && err.message.startsWith(p) ? p : undefined;
}

/** Runs `fn`, rewriting the message of an error it throws with `renamer` (API names → the command line's). */
export async function renaming<T>(renamer: Renamer, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    const err = e as Error & { param?: unknown };
    if (typeof err?.message !== 'string' || renamed.has(err)) throw err;
    const param = leadingParam(err);
    if (param === undefined) {
      err.message = renamer.message(err.message);
    } else {
      const name = renamer.param(param);
      if (name !== undefined) {
        err.message = name + err.message.slice(param.length);
        renamed.add(err);
      }
    }
    throw err;
  }
}

/**
 * Runs `fn`, renaming the subject of an API error message for the command line: an error
 * `text: unknown character …` about the argument the API calls `text` becomes
 * `"story.txt": unknown character …`.
 */
export function naming<T>(apiName: string, cliName: string, fn: () => Promise<T>): Promise<T> {
  return renaming(
    {
      param: (name) => (name === apiName ? cliName : undefined),
      message: (m) => (m.startsWith(`${apiName}: `) ? `${cliName}: ${m.slice(apiName.length + 2)}` : m),
    },
    fn,
  );
}

/**
 * Flags of the nested `fit` options, whose flag names do not follow from their keys
 * (`options.schedule.etaMin` is `--min-lr`).
 */
const NESTED_FLAGS: Record<string, string> = {
  'options.optimizer.type': '--optimizer',
  'options.optimizer.lr': '--lr',
  'options.optimizer.momentum': '--momentum',
  'options.optimizer.weightDecay': '--weight-decay',
  'options.schedule.type': '--schedule',
  'options.schedule.warmupSteps': '--warmup',
  'options.schedule.stepSize': '--step-size',
  'options.schedule.gamma': '--gamma',
  'options.schedule.etaMin': '--min-lr',
  'options.checkpoint.path': '--checkpoint',
  'options.checkpoint.every': '--checkpoint-every',
  'options.checkpoint.best': '--checkpoint-best',
  'options.earlyStopping': '--early-stopping',
  'options.earlyStopping.patience': '--early-stopping',
};

/** The `fit` options `train` sets from its flags (the nested ones are in {@link NESTED_FLAGS}). */
export const FIT_FLAG_KEYS = [
  'optimizer',
  'schedule',
  'clipNorm',
  'scheduledSampling',
  'scheduledSamplingRamp',
  'epochs',
  'maxSteps',
  'timeLimit',
  'validateEvery',
  'logEvery',
  'checkpoint',
  'earlyStopping',
  'seed',
] as const;

/**
 * Runs `fn`, naming API options by their flags in error messages (`options.seqLen` becomes
 * `--seq-len`, `options.optimizer.lr` `--lr`); `keys` are the top-level options the command sets
 * from flags; `names` overrides the name of some (e.g. the labels of a resumed model).
 */
export function flagNaming<T>(keys: readonly string[], fn: () => Promise<T>, names: Record<string, string> = {}): Promise<T> {
  const top = (key: string): string | undefined => names[key] ?? (keys.includes(key) ? flag(key) : undefined);
  return renaming(
    {
      param: (name) => {
        const key = /^options\.(\w+)$/.exec(name)?.[1];
        if (key !== undefined) return top(key);
        const root = /^options\.(\w+)/.exec(name)?.[1];
        return root !== undefined && keys.includes(root) ? NESTED_FLAGS[name] : undefined;
      },
      message: (m) =>
        m
          // The API's advice to set options.onTooLong has no command-line counterpart.
          .replace(/ \(set options\.onTooLong[^)]*\)/, '')
          .replace(/\boptions\.(\w+)((?:\.\w+)?)/g, (whole, key: string, sub: string) => {
            const nested = sub && keys.includes(key) ? NESTED_FLAGS[`options.${key}${sub}`] : undefined;
            return nested ?? (top(key) === undefined ? whole : top(key) + sub);
          }),
    },
    fn,
  );
}

/**
 * Runs `fn`, naming rows by their file lines: the API's `data[i]` (rows `data`) and
 * `options.validation[i]` (rows `validation`) become `where` of the row (`"<file>" line L`).
 */
export function rowNaming<T>(data: readonly { where: string }[], validation: readonly { where: string }[], fn: () => Promise<T>): Promise<T> {
  const row = (set: string, i: string) => (set === 'data' ? data : validation)[Number(i)]?.where;
  return renaming(
    {
      param: (name) => {
        const m = /^(data|options\.validation)\[(\d+)\](?:\.(.+))?$/.exec(name);
        const where = m ? row(m[1], m[2]) : undefined;
        return where === undefined ? undefined : m![3] === undefined ? where : `${where}: ${m![3]}`;
      },
      message: (m) =>
        m.replace(/^(data|options\.validation)\[(\d+)\]\.?/, (whole, set: string, i: string) => {
          const where = row(set, i);
          return where === undefined ? whole : `${where}: `;
        }),
    },
    fn,
  );
}

/** `--camelCase` key → `--kebab-case` flag, for messages. */
export function flag(key: string): string {
  return '--' + key.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase()).replace(/^lowercase$/, 'no-lowercase');
}
