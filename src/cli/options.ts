/** The kinds of option that several commands declare: `--json`, integers and numbers in a range. */

import { Option } from 'commander';
import { parseInteger, parseNumber } from './parsers';

/** `--json`: the result as one JSON object on stdout. */
export function jsonOption(): Option {
  return new Option('--json', 'print the result as JSON on stdout (logs and progress on stderr)');
}

/** An option whose value is an integer in [min, max]. */
export function intOption(flags: string, description: string, min: number, max?: number): Option {
  return new Option(flags, description).argParser(parseInteger(min, max));
}

/** An option whose value is a number in [min, max] (`open`: above `min`, not at it). */
export function numOption(flags: string, description: string, min: number, max?: number, open?: boolean): Option {
  return new Option(flags, description).argParser(parseNumber(min, max, open));
}
