/** JSONL files: one JSON object a line, read as a stream. */

import * as fs from 'fs';
import * as readline from 'readline';
import { describe, error } from '../errors';

/**
 * The records of a JSONL file: one JSON object a line, blank lines skipped. Each comes with
 * `where`, `"<path>" line L`, for errors; a line that is not a JSON object is an error naming it.
 */
export async function* readJSONLRecords(path: string): AsyncGenerator<{ record: Record<string, unknown>; where: string }> {
  const lines = readline.createInterface({ input: fs.createReadStream(path, { encoding: 'utf8' }), crlfDelay: Infinity });
  let n = 0;
  for await (const line of lines) {
    n++;
    if (line.trim() === '') continue;
    const where = `${JSON.stringify(path)} line ${n}`;
    let obj: unknown;
    try {
      obj = JSON.parse(line);
    } catch (e) {
      throw error('ERR_RNNKIT_FORMAT', `${where}: not valid JSON (${(e as Error).message})`);
    }
    if (typeof obj !== 'object' || obj === null || Array.isArray(obj))
      throw error('ERR_RNNKIT_FORMAT', `${where}: expected a JSON object, got ${describe(obj)}`);
    yield { record: obj as Record<string, unknown>, where };
  }
}
