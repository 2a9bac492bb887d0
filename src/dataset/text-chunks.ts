/**
 * Text files read in bounded pieces: a file of any size becomes a sequence of strings of about
 * `chunkSize` bytes each, cut at UTF-8 character boundaries, so no caller ever holds the whole
 * text as one JavaScript string. Invalid UTF-8 is an error naming the file and the byte offset,
 * unless `lossy` asks for U+FFFD replacements.
 */

import { isUtf8 } from 'buffer';
import * as fs from 'fs';
import { error, typeError } from '../errors';

/** How {@link readTextChunks} reads a file. */
export interface ChunkOptions {
  /** Bytes read at a time. */
  chunkSize: number;
  /** Replace ill-formed UTF-8 with U+FFFD instead of refusing the file. */
  lossy: boolean;
  /** The argument that named the file, for error messages (`path`, `options.validation.file`). */
  name: string;
  /** Name the line of invalid UTF-8 too (line-based files: JSONL), counting newlines as it reads. */
  lines?: boolean;
}

/**
 * The file as strings of about `chunkSize` bytes. A character split between two reads is carried
 * to the next piece, so the pieces joined are exactly the file decoded whole. Invalid UTF-8 (by
 * default) is a TypeError `ERR_RNNKIT_ENCODING` naming the file and the byte offset of the first
 * ill-formed sequence; with `lossy` each ill-formed sequence becomes U+FFFD (the WHATWG decoder's
 * replacement, as `TextDecoder` does on the whole file).
 */
export async function* readTextChunks(path: string, o: ChunkOptions): AsyncGenerator<string> {
  const stream = fs.createReadStream(path, { highWaterMark: o.chunkSize });
  let carry: Buffer = Buffer.alloc(0);
  let offset = 0; // file offset of the first byte of `carry`
  let newlines = 0; // before `offset`, counted when `o.lines`
  const checked = (bytes: Buffer): string => {
    if (!o.lossy && !isUtf8(bytes)) {
      const bad = firstInvalidUtf8(bytes);
      throw invalidUtf8(o.name, path, offset + bad, bytes[bad], o.lines ? newlines + countNewlines(bytes, bad) + 1 : undefined);
    }
    if (o.lines) newlines += countNewlines(bytes, bytes.length);
    return bytes.toString('utf8');
  };
  try {
    for await (const raw of stream as AsyncIterable<Buffer>) {
      const bytes = carry.length === 0 ? raw : Buffer.concat([carry, raw]);
      const cut = completeEnd(bytes);
      const text = checked(bytes.subarray(0, cut));
      carry = Buffer.from(bytes.subarray(cut));
      offset += cut;
      if (text.length > 0) yield text;
    }
  } catch (e) {
    if ((e as { code?: string }).code === 'ERR_RNNKIT_ENCODING') throw e;
    throw error('ERR_RNNKIT_IO', `${o.name}: ${JSON.stringify(path)}: read failed (${(e as Error).message})`);
  } finally {
    stream.destroy();
  }
  // A file ending inside a character.
  if (carry.length > 0) yield checked(carry);
}

/**
 * A whole file's bytes (a CSV file, parsed whole) as text: invalid UTF-8 is a TypeError
 * `ERR_RNNKIT_ENCODING` naming `name`, the file, the byte offset and the line, unless `lossy`
 * (U+FFFD replacements, as `TextDecoder` gives).
 */
export function decodeUtf8(bytes: Buffer, path: string, o: { name: string; lossy: boolean }): string {
  if (!o.lossy && !isUtf8(bytes)) {
    const bad = firstInvalidUtf8(bytes);
    throw invalidUtf8(o.name, path, bad, bytes[bad], countNewlines(bytes, bad) + 1);
  }
  return bytes.toString('utf8');
}

/** Newlines (LF bytes) in `b[0, end)`. */
function countNewlines(b: Buffer, end: number): number {
  let n = 0;
  for (let i = b.indexOf(10); i >= 0 && i < end; i = b.indexOf(10, i + 1)) n++;
  return n;
}

/** The error for an ill-formed byte sequence at file offset `at` (on line `line` when known). */
function invalidUtf8(name: string, path: string, at: number, byte: number, line?: number): TypeError {
  const where = line === undefined ? '' : ` line ${line}`;
  const e = typeError(
    'ERR_RNNKIT_ENCODING',
    `${name}: invalid UTF-8 at byte ${at} (0x${byte.toString(16).padStart(2, '0')}) of ${JSON.stringify(path)}${where}; read it with lossy: true (--lossy) to replace invalid bytes with U+FFFD`,
  );
  Object.defineProperty(e, 'offset', { value: at, enumerable: true });
  if (line !== undefined) Object.defineProperty(e, 'line', { value: line, enumerable: true });
  return e;
}

/** Length of a UTF-8 sequence by its lead byte (1 for ASCII and for bytes that lead nothing). */
function sequenceLength(lead: number): number {
  if (lead >= 0xf0 && lead <= 0xf7) return 4;
  if (lead >= 0xe0) return lead <= 0xef ? 3 : 1;
  if (lead >= 0xc0) return 2;
  return 1;
}

/**
 * Where the last complete character of `b` ends: `b.length`, unless `b` ends with the start of a
 * sequence whose remaining bytes are still to be read (at most 3 bytes held back).
 */
function completeEnd(b: Uint8Array): number {
  for (let j = b.length - 1; j >= Math.max(0, b.length - 4); j--) {
    if ((b[j] & 0xc0) !== 0x80) return j + sequenceLength(b[j]) > b.length ? j : b.length;
  }
  return b.length;
}

/**
 * Offset of the first ill-formed sequence of `b` by the well-formed table of the Unicode
 * Standard (§3.9, Table 3-7: no overlong forms, no surrogates, nothing past U+10FFFF), or -1.
 * `isUtf8` (which checks each piece first) says whether, not where.
 */
function firstInvalidUtf8(b: Uint8Array): number {
  let i = 0;
  while (i < b.length) {
    const c = b[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    let n: number; // continuation bytes
    let lo = 0x80; // range of the first continuation byte
    let hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) n = 1;
    else if (c >= 0xe0 && c <= 0xef) {
      n = 2;
      if (c === 0xe0) lo = 0xa0;
      else if (c === 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 3;
      if (c === 0xf0) lo = 0x90;
      else if (c === 0xf4) hi = 0x8f;
    } else return i;
    if (i + n >= b.length || b[i + 1] < lo || b[i + 1] > hi) return i;
    for (let k = 2; k <= n; k++) if ((b[i + k] & 0xc0) !== 0x80) return i;
    i += n + 1;
  }
  return -1;
}
