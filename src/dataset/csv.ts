/** CSV parsing (RFC 4180) for the labelled datasets' `fromCSV`. */

import { checkString, describe, error, rangeError } from '../errors';

/** A parsed CSV record with the (1-based) line it starts on. */
export interface CsvRecord {
  fields: string[];
  line: number;
}

/**
 * Parses CSV text (RFC 4180): fields separated by `delimiter`, optionally quoted with `"` (a
 * quote inside a quoted field is doubled; quoted fields may hold delimiters and newlines), records
 * ended by LF, CRLF or CR. Blank lines are skipped. Errors name the line: an unterminated quoted
 * field, a quote inside an unquoted field, text after a closing quote.
 */
export function parseCSV(text: string, delimiter = ','): CsvRecord[] {
  checkString('text', text);
  checkString('delimiter', delimiter);
  if (delimiter.length !== 1 || delimiter === '"' || delimiter === '\n' || delimiter === '\r') {
    throw rangeError('ERR_RNNKIT_RANGE', `delimiter: expected one character other than a quote or newline, got ${describe(delimiter)}`);
  }
  const records: CsvRecord[] = [];
  let fields: string[] = [];
  let field = '';
  let line = 1;
  let recordLine = 1;
  let quoted = false; // the current field was quoted
  let i = 0;
  const endRecord = () => {
    fields.push(field);
    if (!(fields.length === 1 && fields[0] === '' && !quoted)) records.push({ fields, line: recordLine });
    fields = [];
    field = '';
    quoted = false;
  };
  while (i < text.length) {
    const c = text[i];
    if (c === '"') {
      if (field !== '' || quoted) throw error('ERR_RNNKIT_FORMAT', `CSV line ${line}: a quote inside an unquoted field`);
      quoted = true;
      const start = line;
      i++;
      for (;;) {
        if (i >= text.length) throw error('ERR_RNNKIT_FORMAT', `CSV line ${start}: unterminated quoted field`);
        const d = text[i];
        if (d === '"') {
          if (text[i + 1] === '"') {
            field += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        if (d === '\n' || (d === '\r' && text[i + 1] !== '\n')) line++;
        field += d;
        i++;
      }
      const next = text[i];
      if (i < text.length && next !== delimiter && next !== '\n' && next !== '\r') {
        throw error('ERR_RNNKIT_FORMAT', `CSV line ${line}: text after a closing quote`);
      }
      continue;
    }
    if (c === delimiter) {
      fields.push(field);
      field = '';
      quoted = false;
      i++;
      continue;
    }
    if (c === '\n' || c === '\r') {
      endRecord();
      i += c === '\r' && text[i + 1] === '\n' ? 2 : 1;
      line++;
      recordLine = line;
      continue;
    }
    field += c;
    i++;
  }
  if (field !== '' || fields.length > 0 || quoted) endRecord();
  return records;
}
