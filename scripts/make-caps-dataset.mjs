#!/usr/bin/env node
/**
 * Writes a tagging data set derived from data/pride-and-prejudice.txt (public domain): rows of
 * lower-cased text, one tag a character, "U" where the original character was upper-case and
 * "l" elsewhere — restoring capitalisation, the task of examples/capitalize.ts, as a JSONL file
 * that `rnnkit train --task tag` reads. Deterministic: the same file every run.
 *
 *   node scripts/make-caps-dataset.mjs [out.jsonl] [rows] [characters-a-row]
 *   (defaults: caps.jsonl, 2400 rows, 96 characters: about the size of data/sentiment.jsonl)
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const [out = 'caps.jsonl', rowsArg = '2400', widthArg = '96'] = process.argv.slice(2);
const rows = Number(rowsArg);
const width = Number(widthArg);
if (!Number.isInteger(rows) || rows < 1 || !Number.isInteger(width) || width < 1) {
  console.error('usage: node scripts/make-caps-dataset.mjs [out.jsonl] [rows >= 1] [characters-a-row >= 1]');
  process.exit(2);
}
const book = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'data', 'pride-and-prejudice.txt');
// One line a paragraph, so that a row does not start inside a run of newlines.
const text = fs.readFileSync(book, 'utf8').replace(/\s+/g, ' ');
const lines = [];
for (let start = 0; lines.length < rows && start + width <= text.length; start += width) {
  const piece = text.slice(start, start + width);
  const lower = piece.toLowerCase();
  if (lower.length !== piece.length) throw new Error('lower-casing changed the length of a row');
  lines.push(JSON.stringify({ text: lower, tags: Array.from(piece, (c) => (c !== c.toLowerCase() ? 'U' : 'l')) }));
}
fs.writeFileSync(out, lines.join('\n') + '\n');
console.log(`${out}: ${lines.length} rows of ${width} characters`);
