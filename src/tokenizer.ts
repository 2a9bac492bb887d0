/**
 * Tokenizers: text ⇄ token ids. Three kinds share one interface, {@link Tokenizer}:
 *
 * - `char`: one token per Unicode code point (never a UTF-16 unit, so an emoji is one token).
 *   The vocabulary is sorted by code point, as Python's `sorted(set(text))` sorts it.
 * - `word`: words and (optionally) punctuation marks, with lower-casing, a minimum count and a
 *   maximum vocabulary size.
 * - `byte`: the UTF-8 bytes of the text; ids 0–255 are the byte values.
 *
 * Special tokens (`<pad>`, `<unk>`, `<bos>`, `<eos>`) are optional. When fitted, they take the ids
 * after the regular tokens, so the regular ids do not depend on which specials are present (a
 * char tokenizer's ids are the same as the minimal form of docs/FORMAT.md's; a byte's id is its value).
 *
 * ## JSON form
 * {@link Tokenizer.toJSON} writes, and {@link tokenizerFromJSON} reads, this object (stored as a
 * string in the `tokenizer` metadata of a model file; see `docs/TOKENIZERS.md`):
 *
 * ```json
 * {
 *   "type": "char" | "word" | "byte",
 *   "version": 1,
 *   "vocab": ["\n", " ", "a", "<pad>"],
 *   "specials": { "<pad>": 3 },
 *   "unknown": "error" | "unk",
 *   "lowercase": true,
 *   "punctuation": "split" | "drop" | "keep",
 *   "splitDigits": true,
 *   "splitCjk": true
 * }
 * ```
 *
 * - `vocab[i]` is the text of token id i (char and word only; a byte tokenizer has none: ids
 *   0–255 are bytes). In a char vocabulary every regular entry is exactly one code point.
 * - `specials` maps special token names to ids. For char and word, `vocab[id]` is the special's
 *   own name; for byte, the ids are 256, 257, … in any order, with no gaps.
 * - `unknown` is what `encode` does with text outside the vocabulary: `"error"` throws naming the
 *   character (or word) and its position, `"unk"` maps it to `<unk>` (which must be a special).
 *   Default: `"unk"` when `<unk>` is a special, `"error"` otherwise.
 * - `lowercase`, `punctuation`, `splitDigits` and `splitCjk` are word-only options (defaults `true`,
 *   `"split"`, `false`, `false`; the two splits are written only when true). `splitDigits` makes
 *   every ASCII digit a token of its own and `splitCjk` every CJK ideograph (BERT's
 *   BasicTokenizer's ranges, and 〇), so `"37201"` is five tokens and `"一万"` two: a small
 *   vocabulary covers every number. Decoding writes no space between two such tokens.
 * - `version` is optional; a version other than 1 is refused.
 *
 * The minimal form of docs/FORMAT.md `{"type": "char", "vocab": [...]}` is a valid instance of this form.
 */

import { checkBoolean, checkChoice, checkInt, checkString, describe, error, rangeError, typeError } from './errors';
import { checkOptionKeys } from './option-keys';

/** The kinds of tokenizer. */
export type TokenizerType = 'char' | 'word' | 'byte';

/** The special tokens a tokenizer may have. */
export type SpecialToken = '<pad>' | '<unk>' | '<bos>' | '<eos>';

/** All special token names, in their default id order. */
export const SPECIAL_TOKENS: readonly SpecialToken[] = ['<pad>', '<unk>', '<bos>', '<eos>'];

/** What `encode` does with text outside the vocabulary. */
export type UnknownPolicy = 'error' | 'unk';

/** How the word tokenizer treats punctuation: own tokens, removed, or left attached to words. */
export type PunctuationMode = 'split' | 'drop' | 'keep';

/** Special token name → id. */
export type SpecialIds = Readonly<Partial<Record<SpecialToken, number>>>;

/** The JSON form of a tokenizer (see the module documentation). */
export interface TokenizerJSON {
  type: TokenizerType;
  version?: number;
  vocab?: string[];
  specials?: Partial<Record<SpecialToken, number>>;
  unknown?: UnknownPolicy;
  lowercase?: boolean;
  punctuation?: PunctuationMode;
  splitDigits?: boolean;
  splitCjk?: boolean;
}

/** Options of {@link Tokenizer.encode}. */
export interface EncodeOptions {
  /** Prepend `<bos>` (which must be a special). */
  addBos?: boolean;
  /** Append `<eos>` (which must be a special). */
  addEos?: boolean;
}

/** Options of {@link Tokenizer.decode} and {@link Tokenizer.streamDecoder}. */
export interface DecodeOptions {
  /** Leave special tokens out of the text (default false: they appear as their names). */
  skipSpecials?: boolean;
}

/** Encodes text that arrives in pieces; the ids equal those of encoding the whole text at once. */
export interface StreamEncoder {
  /** Encodes what can be encoded of the text so far (a word tokenizer holds back a partial word). */
  push(text: string): Int32Array;
  /** Encodes whatever is held back; the encoder can then not be used again. */
  end(): Int32Array;
}

/** Decodes ids that arrive in pieces; the pieces joined equal decoding all ids at once. */
export interface StreamDecoder {
  /**
   * Returns the text of `ids`, holding back what cannot be written yet (a byte tokenizer holds
   * back the bytes of an incomplete UTF-8 character). Out-of-range ids throw a RangeError.
   */
  push(ids: ArrayLike<number>): string;
  /** Returns the text held back (an incomplete character becomes U+FFFD); the decoder is reset. */
  end(): string;
}

/** Text ⇄ token ids. Create one with {@link fitTokenizer} or {@link tokenizerFromJSON}. */
export interface Tokenizer {
  /** Which kind of tokenizer this is. */
  readonly type: TokenizerType;
  /** Number of ids, specials included: every id is in [0, vocabSize). */
  readonly vocabSize: number;
  /** The special tokens and their ids. */
  readonly specials: SpecialIds;
  /** What `encode` does with text outside the vocabulary. */
  readonly unknown: UnknownPolicy;
  /** The ids of `text`. Throws naming the character (or word) and its position when unknown. */
  encode(text: string, options?: EncodeOptions): Int32Array;
  /** The text of `ids` (integers in [0, vocabSize), else a RangeError naming the index). */
  decode(ids: ArrayLike<number>, options?: DecodeOptions): string;
  /** The id of a token (a vocabulary entry, a special name, or `<0xHH>` for a byte); undefined if none. */
  tokenToId(token: string): number | undefined;
  /** The text of one id (`<0xHH>` for a byte id). */
  idToToken(id: number): string;
  /** A new incremental encoder (no `<bos>`/`<eos>`). */
  streamEncoder(): StreamEncoder;
  /** A new incremental decoder. */
  streamDecoder(options?: DecodeOptions): StreamDecoder;
  /** The JSON form (see the module documentation). */
  toJSON(): TokenizerJSON;
}

/** Options for fitting a char tokenizer. */
export interface CharTokenizerOptions {
  type: 'char';
  /** Special tokens to add after the characters, in this order (default none). */
  specials?: SpecialToken[];
  /**
   * Unknown character policy. Default `"unk"`, with `<unk>` added to the specials when they do
   * not list it; `"error"` fits without `<unk>` and refuses unknown characters.
   */
  unknown?: UnknownPolicy;
}

/** Options for fitting a word tokenizer. */
export interface WordTokenizerOptions {
  type: 'word';
  /** Special tokens to add after the words, in this order (default none). */
  specials?: SpecialToken[];
  /** Unknown word policy (default `"unk"` when `<unk>` is a special, else `"error"`). */
  unknown?: UnknownPolicy;
  /** Lower-case words (default true). */
  lowercase?: boolean;
  /** Punctuation as separate tokens, dropped, or attached to words (default `"split"`). */
  punctuation?: PunctuationMode;
  /** Every ASCII digit a token of its own (default false): `"37201"` is 5 tokens, decoded back without spaces. */
  splitDigits?: boolean;
  /** Every CJK ideograph a token of its own (default false), decoded back without spaces. */
  splitCjk?: boolean;
  /** Keep words seen at least this many times (default 1). */
  minCount?: number;
  /**
   * Largest vocabulary size, specials included: the most frequent words are kept, ties broken by
   * code-point order of the words. Default: no limit.
   */
  maxVocabSize?: number;
}

/** Options for a byte tokenizer (nothing is learnt from text). */
export interface ByteTokenizerOptions {
  type: 'byte';
  /** Special tokens, ids 256, 257, … in this order (default none). */
  specials?: SpecialToken[];
}

/** Options of {@link fitTokenizer}. */
export type TokenizerOptions = CharTokenizerOptions | WordTokenizerOptions | ByteTokenizerOptions;

/** Collects text in pieces and builds a tokenizer from it (see {@link createTokenizerFitter}). */
export interface TokenizerFitter {
  /** Adds a piece of the corpus (pieces may split words anywhere). */
  push(text: string): void;
  /** Builds the tokenizer. Throws ERR_RNNKIT_EMPTY when the corpus gave no tokens (char, word). */
  finish(): Tokenizer;
}

const TYPES: readonly TokenizerType[] = ['char', 'word', 'byte'];
const POLICIES: readonly UnknownPolicy[] = ['error', 'unk'];
const PUNCTUATION: readonly PunctuationMode[] = ['split', 'drop', 'keep'];

// ---------------------------------------------------------------------------------------------
// Helpers

/** Compares two strings by Unicode code points (JavaScript's `<` compares UTF-16 units). */
export function compareCodePoints(a: string, b: string): number {
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const ca = a.codePointAt(i)!;
    const cb = b.codePointAt(j)!;
    if (ca !== cb) return ca - cb;
    i += ca > 0xffff ? 2 : 1;
    j += cb > 0xffff ? 2 : 1;
  }
  return a.length - i - (b.length - j);
}

/** Number of code points in `s`. */
function countCodePoints(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i++;
    }
    n++;
  }
  return n;
}

/** Describes one character for an error message: its text and U+ code. */
function describeChar(ch: string): string {
  return `${JSON.stringify(ch)} (U+${ch.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')})`;
}

/** A FORMAT error about a tokenizer JSON. */
function formatError(message: string): Error {
  return error('ERR_RNNKIT_FORMAT', `tokenizer JSON: ${message}`);
}

/** Checks an ids argument: an array or integer typed array of ids in [0, vocabSize). */
function checkIds(name: string, ids: unknown, vocabSize: number): ArrayLike<number> {
  const ok =
    Array.isArray(ids) ||
    ids instanceof Int32Array ||
    ids instanceof Uint32Array ||
    ids instanceof Int16Array ||
    ids instanceof Uint16Array ||
    ids instanceof Int8Array ||
    ids instanceof Uint8Array;
  if (!ok) throw typeError('ERR_RNNKIT_TYPE', `${name}: expected an array or integer typed array of token ids, got ${describe(ids)}`);
  const arr = ids as ArrayLike<unknown>;
  for (let i = 0; i < arr.length; i++) checkInt(`${name}[${i}]`, arr[i], 0, vocabSize - 1);
  return arr as ArrayLike<number>;
}

/** Validates a list of special names given as a fitting option. */
function checkSpecialList(value: unknown): SpecialToken[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw typeError('ERR_RNNKIT_TYPE', `options.specials: expected an array of special token names, got ${describe(value)}`);
  const seen = new Set<string>();
  value.forEach((s, i) => {
    checkChoice(`options.specials[${i}]`, s, SPECIAL_TOKENS);
    if (seen.has(s)) throw typeError('ERR_RNNKIT_TYPE', `options.specials[${i}]: duplicate special token ${describe(s)}`);
    seen.add(s);
  });
  return value as SpecialToken[];
}

/** Resolves the unknown policy against the specials; `where` prefixes error messages. */
function resolvePolicy(where: string, value: unknown, specials: SpecialIds, fail: (m: string) => Error): UnknownPolicy {
  if (value === undefined) return specials['<unk>'] !== undefined ? 'unk' : 'error';
  if (typeof value !== 'string' || !(POLICIES as readonly string[]).includes(value)) {
    throw fail(`${where}: expected "error" or "unk", got ${describe(value)}`);
  }
  if (value === 'unk' && specials['<unk>'] === undefined) throw fail(`${where}: "unk" needs the special token "<unk>"`);
  return value as UnknownPolicy;
}

/** Builds the specials → id map for specials appended after `first` regular ids. */
function appendSpecials(list: SpecialToken[], first: number): Partial<Record<SpecialToken, number>> {
  const out: Partial<Record<SpecialToken, number>> = {};
  list.forEach((s, i) => (out[s] = first + i));
  return out;
}

// ---------------------------------------------------------------------------------------------
// Word splitting

const WORD = "[\\p{L}\\p{N}\\p{M}]+(?:['’][\\p{L}\\p{N}\\p{M}]+)*";
const SPLIT_RE: Record<PunctuationMode, RegExp> = {
  split: new RegExp(`${WORD}|[^\\s\\p{L}\\p{N}\\p{M}]`, 'gu'),
  drop: new RegExp(WORD, 'gu'),
  keep: /\S+/gu,
};

/** How the word tokenizer cuts a text into tokens. */
interface WordRules {
  lowercase: boolean;
  punctuation: PunctuationMode;
  splitDigits: boolean;
  splitCjk: boolean;
}

// The engine's rule (`defaults.rs`, `is_single_piece`): ASCII digits; CJK ideographs in BERT's
// BasicTokenizer ranges, and 〇.
const CJK_RANGES = '\\u3007\\u3400-\\u4DBF\\u4E00-\\u9FFF\\uF900-\\uFAFF\\u{20000}-\\u{2A6DF}\\u{2A700}-\\u{2CEAF}\\u{2F800}-\\u{2FA1F}';
const DIGIT = /^[0-9]$/u;
const CJK = new RegExp(`^[${CJK_RANGES}]$`, 'u');
const SINGLES: Record<string, RegExp> = {
  digits: /[0-9]/gu,
  cjk: new RegExp(`[${CJK_RANGES}]`, 'gu'),
  both: new RegExp(`[0-9${CJK_RANGES}]`, 'gu'),
};

/** Whether `token` is one character that the rules make a token of its own (a digit, an ideograph). */
function isSingle(token: string, rules: WordRules): boolean {
  return (rules.splitDigits && DIGIT.test(token)) || (rules.splitCjk && CJK.test(token));
}

/** Calls `f(token, utf16Index)` for each word-level token of `text`. */
function forEachWord(text: string, rules: WordRules, f: (token: string, index: number) => void): void {
  const re = new RegExp(SPLIT_RE[rules.punctuation]);
  const singles = rules.splitDigits ? (rules.splitCjk ? SINGLES.both : SINGLES.digits) : rules.splitCjk ? SINGLES.cjk : undefined;
  const emit = (w: string, index: number) => f(rules.lowercase ? w.toLowerCase() : w, index);
  for (const m of text.matchAll(re)) {
    if (singles === undefined) {
      emit(m[0], m.index!);
      continue;
    }
    // Digits and ideographs one token each; the runs between them whole.
    let last = 0;
    for (const d of m[0].matchAll(new RegExp(singles))) {
      if (d.index! > last) emit(m[0].slice(last, d.index), m.index! + last);
      emit(d[0], m.index! + d.index!);
      last = d.index! + d[0].length;
    }
    if (last < m[0].length) emit(m[0].slice(last), m.index! + last);
  }
}

/** Index just after the last whitespace of `s` (0 if none): text before it holds only whole words. */
function wholeWordsEnd(s: string): number {
  for (let i = s.length - 1; i >= 0; i--) if (/\s/.test(s[i])) return i + 1;
  return 0;
}

const NO_SPACE_BEFORE = new Set(['.', ',', ';', ':', '!', '?', ')', ']', '}', '%', '…', '»']);
const NO_SPACE_AFTER = new Set(['(', '[', '{', '¿', '¡', '«']);

/** Whether decoding puts a space between tokens `prev` and `next` (none between two split digits or ideographs). */
function spaceBetween(prev: string | undefined, next: string, rules: WordRules): boolean {
  return prev !== undefined && !NO_SPACE_BEFORE.has(next) && !NO_SPACE_AFTER.has(prev) && !(isSingle(prev, rules) && isSingle(next, rules));
}

// ---------------------------------------------------------------------------------------------
// Char and word tokenizers: a vocabulary list

/** Shared behaviour of the tokenizers with an explicit vocabulary (char, word). */
abstract class VocabTokenizer implements Tokenizer {
  abstract readonly type: 'char' | 'word';
  readonly vocabSize: number;
  protected readonly vocab: readonly string[];
  protected readonly ids: Map<string, number>;
  protected readonly specialIds: Set<number>;

  constructor(
    vocab: readonly string[],
    readonly specials: SpecialIds,
    readonly unknown: UnknownPolicy,
  ) {
    this.vocab = vocab;
    this.vocabSize = vocab.length;
    this.ids = new Map(vocab.map((t, i) => [t, i]));
    this.specialIds = new Set(Object.values(specials) as number[]);
    Object.freeze(this.specials);
  }

  abstract encode(text: string, options?: EncodeOptions): Int32Array;
  abstract streamEncoder(): StreamEncoder;
  abstract streamDecoder(options?: DecodeOptions): StreamDecoder;
  protected abstract optionsJSON(): Partial<TokenizerJSON>;

  /** Adds `<bos>`/`<eos>` around `body` as `options` ask. */
  protected wrap(body: Int32Array, options: EncodeOptions | undefined): Int32Array {
    if (options !== undefined && (typeof options !== 'object' || options === null)) {
      throw typeError('ERR_RNNKIT_TYPE', `options: expected an object, got ${describe(options)}`);
    }
    const pre: number[] = [];
    const post: number[] = [];
    if (options?.addBos !== undefined && checkBoolean('options.addBos', options.addBos)) pre.push(this.requireSpecial('<bos>', 'options.addBos'));
    if (options?.addEos !== undefined && checkBoolean('options.addEos', options.addEos)) post.push(this.requireSpecial('<eos>', 'options.addEos'));
    if (pre.length + post.length === 0) return body;
    const out = new Int32Array(pre.length + body.length + post.length);
    out.set(pre, 0);
    out.set(body, pre.length);
    out.set(post, pre.length + body.length);
    return out;
  }

  /** The id of a special, or a TypeError naming the option that needs it. */
  protected requireSpecial(s: SpecialToken, option: string): number {
    const id = this.specials[s];
    if (id === undefined) throw typeError('ERR_RNNKIT_VOCAB', `${option}: the tokenizer has no ${s} special token`);
    return id;
  }

  /** The id for an unknown token, or the error the policy asks for (`where()`: what and position). */
  protected unknownId(where: () => [string, number]): number {
    if (this.unknown === 'unk') return this.specials['<unk>']!;
    const [what, position] = where();
    throw rangeError('ERR_RNNKIT_VOCAB', `text: unknown ${what} at position ${position} (not in the ${this.type} tokenizer's vocabulary of ${this.vocabSize})`);
  }

  /** Checks decode options; returns skipSpecials. */
  protected skip(options: DecodeOptions | undefined): boolean {
    if (options === undefined) return false;
    if (typeof options !== 'object' || options === null) throw typeError('ERR_RNNKIT_TYPE', `options: expected an object, got ${describe(options)}`);
    return options.skipSpecials === undefined ? false : checkBoolean('options.skipSpecials', options.skipSpecials);
  }

  decode(ids: ArrayLike<number>, options?: DecodeOptions): string {
    const d = this.streamDecoder(options);
    return d.push(ids) + d.end();
  }

  tokenToId(token: string): number | undefined {
    return this.ids.get(checkString('token', token));
  }

  idToToken(id: number): string {
    return this.vocab[checkInt('id', id, 0, this.vocabSize - 1)];
  }

  toJSON(): TokenizerJSON {
    return { type: this.type, version: 1, vocab: [...this.vocab], specials: { ...this.specials }, unknown: this.unknown, ...this.optionsJSON() };
  }
}

/** One token per Unicode code point. */
class CharTokenizer extends VocabTokenizer {
  readonly type = 'char';
  private readonly byCodePoint = new Map<number, number>();

  constructor(vocab: readonly string[], specials: SpecialIds, unknown: UnknownPolicy) {
    super(vocab, specials, unknown);
    vocab.forEach((t, i) => {
      if (!this.specialIds.has(i)) this.byCodePoint.set(t.codePointAt(0)!, i);
    });
  }

  /** Encodes `text` whose first code point is at `offset` in a longer stream (for messages). */
  encodeAt(text: string, offset: number): Int32Array {
    // Written into a typed array, not a growing JS array: V8 cannot grow an array past ~112 M
    // elements (a fatal error, not an exception). A text has at most `text.length` code points.
    const out = new Int32Array(text.length);
    let n = 0;
    for (const ch of text) {
      const id = this.byCodePoint.get(ch.codePointAt(0)!);
      out[n] = id ?? this.unknownId(() => [`character ${describeChar(ch)}`, offset + n]);
      n++;
    }
    return n === out.length ? out : out.slice(0, n);
  }

  encode(text: string, options?: EncodeOptions): Int32Array {
    return this.wrap(this.encodeAt(checkString('text', text), 0), options);
  }

  streamEncoder(): StreamEncoder {
    let offset = 0;
    return {
      push: (text: string) => {
        checkString('text', text);
        const ids = this.encodeAt(text, offset);
        offset += ids.length;
        return ids;
      },
      end: () => new Int32Array(0),
    };
  }

  streamDecoder(options?: DecodeOptions): StreamDecoder {
    const skip = this.skip(options);
    return {
      push: (ids: ArrayLike<number>) => {
        const arr = checkIds('ids', ids, this.vocabSize);
        let s = '';
        for (let i = 0; i < arr.length; i++) if (!(skip && this.specialIds.has(arr[i]))) s += this.vocab[arr[i]];
        return s;
      },
      end: () => '',
    };
  }

  protected optionsJSON(): Partial<TokenizerJSON> {
    return {};
  }
}

/** Words and punctuation marks. */
class WordTokenizer extends VocabTokenizer {
  readonly type = 'word';

  constructor(
    vocab: readonly string[],
    specials: SpecialIds,
    unknown: UnknownPolicy,
    private readonly rules: WordRules,
  ) {
    super(vocab, specials, unknown);
  }

  /** Encodes `text` whose first code point is at `offset` in a longer stream (for messages). */
  private encodeAt(text: string, offset: number): Int32Array {
    // A typed array as for characters (a text has fewer words than UTF-16 units); trimmed after.
    const out = new Int32Array(text.length);
    let n = 0;
    forEachWord(text, this.rules, (w, index) => {
      const id = this.ids.get(w);
      out[n++] =
        id !== undefined && !this.specialIds.has(id) ? id : this.unknownId(() => [`word ${describe(w)}`, offset + countCodePoints(text.slice(0, index))]);
    });
    return out.slice(0, n);
  }

  encode(text: string, options?: EncodeOptions): Int32Array {
    return this.wrap(this.encodeAt(checkString('text', text), 0), options);
  }

  streamEncoder(): StreamEncoder {
    let held = '';
    let offset = 0;
    let ended = false;
    const run = (text: string): Int32Array => {
      const ids = this.encodeAt(text, offset);
      offset += countCodePoints(text);
      return ids;
    };
    return {
      push: (text: string) => {
        checkString('text', text);
        if (ended) throw error('ERR_RNNKIT_CONFIG', 'streamEncoder: push after end');
        held += text;
        const cut = wholeWordsEnd(held);
        const ready = held.slice(0, cut);
        held = held.slice(cut);
        return run(ready);
      },
      end: () => {
        ended = true;
        const ids = run(held);
        held = '';
        return ids;
      },
    };
  }

  streamDecoder(options?: DecodeOptions): StreamDecoder {
    const skip = this.skip(options);
    let prev: string | undefined;
    return {
      push: (ids: ArrayLike<number>) => {
        const arr = checkIds('ids', ids, this.vocabSize);
        let s = '';
        for (let i = 0; i < arr.length; i++) {
          if (skip && this.specialIds.has(arr[i])) continue;
          const t = this.vocab[arr[i]];
          s += (spaceBetween(prev, t, this.rules) ? ' ' : '') + t;
          prev = t;
        }
        return s;
      },
      end: () => {
        prev = undefined;
        return '';
      },
    };
  }

  protected optionsJSON(): Partial<TokenizerJSON> {
    const { lowercase, punctuation, splitDigits, splitCjk } = this.rules;
    return { lowercase, punctuation, ...(splitDigits ? { splitDigits } : {}), ...(splitCjk ? { splitCjk } : {}) };
  }
}

// ---------------------------------------------------------------------------------------------
// Byte tokenizer

/** The UTF-8 bytes of the text: id b is byte b; specials from 256. */
class ByteTokenizer implements Tokenizer {
  readonly type = 'byte';
  readonly unknown: UnknownPolicy = 'error';
  readonly vocabSize: number;
  private readonly names = new Map<number, SpecialToken>();

  constructor(readonly specials: SpecialIds) {
    Object.freeze(this.specials);
    for (const [name, id] of Object.entries(specials) as [SpecialToken, number][]) this.names.set(id, name);
    this.vocabSize = 256 + this.names.size;
  }

  encode(text: string, options?: EncodeOptions): Int32Array {
    const bytes = new TextEncoder().encode(checkString('text', text));
    if (options !== undefined && (typeof options !== 'object' || options === null)) {
      throw typeError('ERR_RNNKIT_TYPE', `options: expected an object, got ${describe(options)}`);
    }
    const bos = options?.addBos !== undefined && checkBoolean('options.addBos', options.addBos) ? [this.requireSpecial('<bos>', 'options.addBos')] : [];
    const eos = options?.addEos !== undefined && checkBoolean('options.addEos', options.addEos) ? [this.requireSpecial('<eos>', 'options.addEos')] : [];
    const out = new Int32Array(bos.length + bytes.length + eos.length);
    out.set(bos, 0);
    out.set(bytes, bos.length);
    out.set(eos, bos.length + bytes.length);
    return out;
  }

  private requireSpecial(s: SpecialToken, option: string): number {
    const id = this.specials[s];
    if (id === undefined) throw typeError('ERR_RNNKIT_VOCAB', `${option}: the tokenizer has no ${s} special token`);
    return id;
  }

  decode(ids: ArrayLike<number>, options?: DecodeOptions): string {
    const d = this.streamDecoder(options);
    return d.push(ids) + d.end();
  }

  tokenToId(token: string): number | undefined {
    checkString('token', token);
    const m = /^<0x([0-9A-F]{2})>$/.exec(token);
    if (m) return parseInt(m[1], 16);
    return this.specials[token as SpecialToken];
  }

  idToToken(id: number): string {
    checkInt('id', id, 0, this.vocabSize - 1);
    return id < 256 ? `<0x${id.toString(16).toUpperCase().padStart(2, '0')}>` : this.names.get(id)!;
  }

  streamEncoder(): StreamEncoder {
    return { push: (text: string) => this.encode(text), end: () => new Int32Array(0) };
  }

  streamDecoder(options?: DecodeOptions): StreamDecoder {
    if (options !== undefined && (typeof options !== 'object' || options === null)) {
      throw typeError('ERR_RNNKIT_TYPE', `options: expected an object, got ${describe(options)}`);
    }
    const skip = options?.skipSpecials === undefined ? false : checkBoolean('options.skipSpecials', options.skipSpecials);
    let decoder = new TextDecoder('utf-8');
    return {
      push: (ids: ArrayLike<number>) => {
        const arr = checkIds('ids', ids, this.vocabSize);
        let s = '';
        let start = 0;
        const flushBytes = (end: number) => {
          const bytes = new Uint8Array(end - start);
          for (let i = start; i < end; i++) bytes[i - start] = arr[i];
          s += decoder.decode(bytes, { stream: true });
        };
        for (let i = 0; i < arr.length; i++) {
          if (arr[i] < 256) continue;
          flushBytes(i);
          start = i + 1;
          // A special ends any incomplete character before it.
          s += decoder.decode();
          if (!skip) s += this.names.get(arr[i])!;
        }
        flushBytes(arr.length);
        return s;
      },
      end: () => {
        const s = decoder.decode();
        decoder = new TextDecoder('utf-8');
        return s;
      },
    };
  }

  toJSON(): TokenizerJSON {
    return { type: 'byte', version: 1, specials: { ...this.specials } };
  }
}

// ---------------------------------------------------------------------------------------------
// Reading the JSON form

/** Validates a `specials` map read from JSON against the vocabulary (char/word) or byte layout. */
function readSpecials(value: unknown, vocab: readonly string[] | undefined): Partial<Record<SpecialToken, number>> {
  if (value === undefined) return {};
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw formatError(`"specials": expected an object of name → id, got ${describe(value)}`);
  const out: Partial<Record<SpecialToken, number>> = {};
  const used = new Set<number>();
  for (const [name, id] of Object.entries(value)) {
    if (!(SPECIAL_TOKENS as readonly string[]).includes(name))
      throw formatError(`"specials": unknown special token ${describe(name)} (expected one of ${SPECIAL_TOKENS.join(', ')})`);
    const size = vocab ? vocab.length : 256 + Object.keys(value).length;
    if (typeof id !== 'number' || !Number.isInteger(id) || id < (vocab ? 0 : 256) || id >= size) {
      throw formatError(`"specials"."${name}": expected an integer id in [${vocab ? 0 : 256}, ${size - 1}], got ${describe(id)}`);
    }
    if (used.has(id)) throw formatError(`"specials"."${name}": id ${id} is used by another special`);
    if (vocab && vocab[id] !== name) throw formatError(`"specials"."${name}": vocab[${id}] is ${describe(vocab[id])}, not ${describe(name)}`);
    used.add(id);
    out[name as SpecialToken] = id;
  }
  return out;
}

/** Validates a `vocab` list read from JSON for a char or word tokenizer. */
function readVocab(value: unknown, type: 'char' | 'word', specials: unknown): { vocab: string[]; specials: Partial<Record<SpecialToken, number>> } {
  if (!Array.isArray(value)) throw formatError(`"vocab": expected an array of strings, got ${describe(value)}`);
  const vocab = value as unknown[];
  vocab.forEach((t, i) => {
    if (typeof t !== 'string') throw formatError(`"vocab"[${i}]: expected a string, got ${describe(t)}`);
  });
  const sp = readSpecials(specials, vocab as string[]);
  const specialIds = new Set(Object.values(sp));
  const seen = new Map<string, number>();
  (vocab as string[]).forEach((t, i) => {
    if (seen.has(t)) throw formatError(`"vocab"[${i}]: ${describe(t)} repeats "vocab"[${seen.get(t)}]`);
    seen.set(t, i);
    if (specialIds.has(i)) return;
    if ((SPECIAL_TOKENS as readonly string[]).includes(t))
      throw formatError(`"vocab"[${i}]: ${describe(t)} is a special token name but not listed in "specials"`);
    if (type === 'char' && countCodePoints(t) !== 1) throw formatError(`"vocab"[${i}]: a char token must be one code point, got ${describe(t)}`);
    if (type === 'word' && (t.length === 0 || /\s/u.test(t)))
      throw formatError(`"vocab"[${i}]: a word token must be non-empty without whitespace, got ${describe(t)}`);
  });
  if (vocab.length === 0) throw formatError('"vocab": is empty');
  return { vocab: vocab as string[], specials: sp };
}

/**
 * Reads a tokenizer from its JSON form (a string or a parsed object): the minimal form of docs/FORMAT.md
 * `{"type": "char", "vocab": [...]}` or the richer form documented at the top of this module.
 * Throws ERR_RNNKIT_FORMAT naming the field for invalid or truncated JSON.
 */
export function tokenizerFromJSON(json: string | TokenizerJSON): Tokenizer {
  let obj: unknown = json;
  if (typeof json === 'string') {
    try {
      obj = JSON.parse(json);
    } catch (e) {
      throw formatError(`not valid JSON (${(e as Error).message})`);
    }
  } else if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw typeError('ERR_RNNKIT_TYPE', `json: expected a JSON string or object, got ${describe(json)}`);
  }
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) throw formatError(`expected an object, got ${describe(obj)}`);
  const o = obj as Record<string, unknown>;
  if (typeof o.type !== 'string' || !(TYPES as readonly string[]).includes(o.type))
    throw formatError(`"type": expected "char", "word" or "byte", got ${describe(o.type)}`);
  if (o.version !== undefined && o.version !== 1) throw formatError(`"version": this reader knows version 1, got ${describe(o.version)}`);
  const type = o.type as TokenizerType;
  if (type !== 'word') {
    for (const k of ['lowercase', 'punctuation', 'splitDigits', 'splitCjk'])
      if (o[k] !== undefined) throw formatError(`"${k}": only a word tokenizer has this option`);
  }
  if (type === 'byte') {
    if (o.vocab !== undefined) throw formatError('"vocab": a byte tokenizer has no vocabulary list (ids 0–255 are bytes)');
    if (o.unknown !== undefined && o.unknown !== 'error') throw formatError(`"unknown": a byte tokenizer has no unknown tokens, got ${describe(o.unknown)}`);
    const specials = readSpecials(o.specials, undefined);
    return new ByteTokenizer(specials);
  }
  const { vocab, specials } = readVocab(o.vocab, type, o.specials);
  const unknown = resolvePolicy('"unknown"', o.unknown, specials, formatError);
  if (type === 'char') return new CharTokenizer(vocab, specials, unknown);
  if (o.lowercase !== undefined && typeof o.lowercase !== 'boolean') throw formatError(`"lowercase": expected a boolean, got ${describe(o.lowercase)}`);
  if (o.punctuation !== undefined && !(PUNCTUATION as readonly unknown[]).includes(o.punctuation)) {
    throw formatError(`"punctuation": expected "split", "drop" or "keep", got ${describe(o.punctuation)}`);
  }
  for (const k of ['splitDigits', 'splitCjk'])
    if (o[k] !== undefined && typeof o[k] !== 'boolean') throw formatError(`"${k}": expected a boolean, got ${describe(o[k])}`);
  return new WordTokenizer(vocab, specials, unknown, {
    lowercase: (o.lowercase as boolean | undefined) ?? true,
    punctuation: (o.punctuation as PunctuationMode | undefined) ?? 'split',
    splitDigits: (o.splitDigits as boolean | undefined) ?? false,
    splitCjk: (o.splitCjk as boolean | undefined) ?? false,
  });
}

// ---------------------------------------------------------------------------------------------
// Fitting

/** Checks fitting options common to all kinds; returns the validated type. */
function checkOptions(options: unknown): TokenizerOptions {
  if (typeof options !== 'object' || options === null) throw typeError('ERR_RNNKIT_TYPE', `options: expected an object, got ${describe(options)}`);
  const type = checkChoice('options.type', (options as { type: unknown }).type, TYPES);
  checkOptionKeys(
    'options',
    options,
    type === 'byte'
      ? ['type', 'specials']
      : type === 'char'
        ? ['type', 'specials', 'unknown']
        : ['type', 'specials', 'unknown', 'lowercase', 'punctuation', 'splitDigits', 'splitCjk', 'minCount', 'maxVocabSize'],
  );
  return options as TokenizerOptions;
}

/**
 * Starts fitting a tokenizer on a corpus given in pieces (for files read in chunks); pieces may
 * split words anywhere. {@link fitTokenizer} is the one-call form.
 */
export function createTokenizerFitter(options: TokenizerOptions): TokenizerFitter {
  const o = checkOptions(options);
  const specialList = checkSpecialList(o.specials);
  if (o.type === 'byte') {
    return { push: (text) => void checkString('text', text), finish: () => new ByteTokenizer(appendSpecials(specialList, 256)) };
  }
  const typeErr = (m: string) => typeError('ERR_RNNKIT_TYPE', m);
  if (o.unknown !== undefined) checkChoice('options.unknown', o.unknown, POLICIES);
  if (o.unknown === 'unk' && !specialList.includes('<unk>')) throw typeErr('options.unknown: "unk" needs "<unk>" in options.specials');
  if (o.type === 'char') {
    const seen = new Set<number>();
    return {
      push: (text) => {
        for (const ch of checkString('text', text)) seen.add(ch.codePointAt(0)!);
      },
      finish: () => {
        if (seen.size === 0) throw rangeError('ERR_RNNKIT_EMPTY', 'text: the corpus is empty, a char tokenizer needs at least one character');
        const vocab = [...seen].sort((a, b) => a - b).map((c) => String.fromCodePoint(c));
        // A character missing from the fitting text is common (a name with an accent, a new
        // symbol) and should not stop generation or evaluation, so new char tokenizers map it to
        // <unk> unless `unknown: 'error'` asks to refuse it.
        const list: SpecialToken[] = o.unknown === undefined && !specialList.includes('<unk>') ? [...specialList, '<unk>'] : specialList;
        const specials = appendSpecials(list, vocab.length);
        return new CharTokenizer([...vocab, ...list], specials, resolvePolicy('options.unknown', o.unknown, specials, typeErr));
      },
    };
  }
  const lowercase = o.lowercase === undefined ? true : checkBoolean('options.lowercase', o.lowercase);
  const punctuation = o.punctuation === undefined ? 'split' : checkChoice('options.punctuation', o.punctuation, PUNCTUATION);
  const splitDigits = o.splitDigits === undefined ? false : checkBoolean('options.splitDigits', o.splitDigits);
  const splitCjk = o.splitCjk === undefined ? false : checkBoolean('options.splitCjk', o.splitCjk);
  const rules: WordRules = { lowercase, punctuation, splitDigits, splitCjk };
  const minCount = o.minCount === undefined ? 1 : checkInt('options.minCount', o.minCount, 1);
  const maxVocabSize = o.maxVocabSize === undefined ? Number.MAX_SAFE_INTEGER : checkInt('options.maxVocabSize', o.maxVocabSize, specialList.length + 1);
  const counts = new Map<string, number>();
  let held = '';
  const count = (text: string) =>
    forEachWord(text, rules, (w) => {
      if (!(SPECIAL_TOKENS as readonly string[]).includes(w)) counts.set(w, (counts.get(w) ?? 0) + 1);
    });
  return {
    push: (text) => {
      held += checkString('text', text);
      const cut = wholeWordsEnd(held);
      count(held.slice(0, cut));
      held = held.slice(cut);
    },
    finish: () => {
      count(held);
      held = '';
      const words = [...counts.entries()]
        .filter(([, n]) => n >= minCount)
        .sort((a, b) => b[1] - a[1] || compareCodePoints(a[0], b[0]))
        .slice(0, maxVocabSize - specialList.length)
        .map(([w]) => w);
      if (words.length === 0) {
        throw rangeError(
          'ERR_RNNKIT_EMPTY',
          `text: no word of the corpus is seen at least options.minCount = ${minCount} times (${counts.size} distinct words)`,
        );
      }
      const specials = appendSpecials(specialList, words.length);
      return new WordTokenizer([...words, ...specialList], specials, resolvePolicy('options.unknown', o.unknown, specials, typeErr), rules);
    },
  };
}

/**
 * Fits a tokenizer on `text` (a string, or an iterable of pieces of one text). Char: the
 * distinct code points in code-point order, then the specials. Word: the words seen at least
 * `minCount` times, most frequent first (ties in code-point order), at most `maxVocabSize` ids
 * with the specials; a word spelt like a special name is not learnt. Byte: nothing is learnt.
 */
export function fitTokenizer(text: string | Iterable<string>, options: TokenizerOptions): Tokenizer {
  const fitter = createTokenizerFitter(options);
  if (typeof text === 'string') fitter.push(text);
  else if (text !== null && typeof text === 'object' && typeof (text as Iterable<string>)[Symbol.iterator] === 'function') {
    for (const piece of text) fitter.push(piece);
  } else throw typeError('ERR_RNNKIT_TYPE', `text: expected a string or an iterable of strings, got ${describe(text)}`);
  return fitter.finish();
}
