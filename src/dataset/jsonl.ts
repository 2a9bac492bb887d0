/** JSONL files: one JSON object a line, read as a stream. */

import { describe, error } from '../errors';
import { readTextChunks } from './text-chunks';

/** How {@link readJSONLRecords} reads a file. */
export interface JsonlReadOptions {
  /** The argument that named the file, for encoding errors (default `path`). */
  name?: string;
  /** Replace invalid UTF-8 with U+FFFD instead of refusing the file (default false). */
  lossy?: boolean;
}

/**
 * The records of a JSONL file: one JSON object a line, blank lines skipped. Each comes with
 * `where`, `"<path>" line L`, for errors; a line that is not a JSON object is an error naming it.
 * The file is read in 1 MiB pieces; invalid UTF-8 is a TypeError `ERR_RNNKIT_ENCODING` naming
 * the file, the byte offset and the line (`err.offset`, `err.line`), unless `lossy`.
 */
export async function* readJSONLRecords(path: string, options: JsonlReadOptions = {}): AsyncGenerator<{ record: Record<string, unknown>; where: string }> {
  let n = 0;
  const parse = (line: string) => {
    n++;
    if (line.trim() === '') return undefined;
    const where = `${JSON.stringify(path)} line ${n}`;
    let obj: unknown;
    try {
      obj = JSON.parse(line);
    } catch (e) {
      throw error('ERR_RNNKIT_FORMAT', `${where}: not valid JSON (${(e as Error).message})`);
    }
    if (typeof obj !== 'object' || obj === null || Array.isArray(obj))
      throw error('ERR_RNNKIT_FORMAT', `${where}: expected a JSON object, got ${describe(obj)}`);
    return { record: obj as Record<string, unknown>, where };
  };
  // Lines end with LF, CRLF or CR (as node:readline reads them); `rest` is the unfinished line.
  const BREAK = /\r\n|\r|\n/;
  let rest = '';
  for await (const piece of readTextChunks(path, { chunkSize: 1 << 20, lossy: options.lossy ?? false, name: options.name ?? 'path', lines: true })) {
    const text = rest + piece;
    // A CR at the end may be the first half of a CRLF: held back for the next piece.
    const held = text.endsWith('\r') ? 1 : 0;
    const lines = text.slice(0, text.length - held).split(BREAK);
    rest = lines.pop()! + (held ? '\r' : '');
    for (const line of lines) {
      const r = parse(line);
      if (r) yield r;
    }
  }
  for (const line of rest.split(BREAK)) {
    const r = parse(line);
    if (r) yield r;
  }
}
