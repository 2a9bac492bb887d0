/** Class labels and label sets of the labelled and tagged datasets. */

import { describe, rangeError, typeError } from '../errors';
import { compareCodePoints } from '../tokenizer';

/** A class label: a string or a number. */
export type Label = string | number;

/**
 * The label set: declared (checked) or inferred (sorted: numbers ascending, strings by code point).
 * `found` are the labels of the rows, each with `where` to name its row in errors; `optionName`
 * names the declared set in errors.
 */
export class LabelSet {
  readonly labels: readonly Label[];
  private readonly ids = new Map<Label, number>();

  constructor(declared: unknown, found: { label: unknown; where: string }[], optionName: string) {
    if (declared !== undefined) {
      if (!Array.isArray(declared) || declared.length === 0)
        throw typeError('ERR_RNNKIT_TYPE', `${optionName}: expected a non-empty array of strings or numbers, got ${describe(declared)}`);
      declared.forEach((l, i) => {
        if (typeof l !== 'string' && !(typeof l === 'number' && Number.isFinite(l)))
          throw typeError('ERR_RNNKIT_TYPE', `${optionName}[${i}]: expected a string or finite number, got ${describe(l)}`);
        if (this.ids.has(l)) throw typeError('ERR_RNNKIT_TYPE', `${optionName}[${i}]: duplicate label ${describe(l)}`);
        this.ids.set(l, i);
      });
      this.labels = [...declared];
      for (const { label, where } of found) {
        if (!this.ids.has(label as Label))
          throw rangeError(
            'ERR_RNNKIT_RANGE',
            `${where}: label ${describe(label)} is not in ${optionName} (${this.labels.map((l) => JSON.stringify(l)).join(', ')})`,
          );
      }
      return;
    }
    let kind: 'string' | 'number' | undefined;
    const set = new Set<Label>();
    for (const { label, where } of found) {
      if (typeof label !== 'string' && !(typeof label === 'number' && Number.isFinite(label)))
        throw typeError('ERR_RNNKIT_TYPE', `${where}: label: expected a string or finite number, got ${describe(label)}`);
      kind ??= typeof label as 'string' | 'number';
      if (typeof label !== kind)
        throw typeError(
          'ERR_RNNKIT_TYPE',
          `${where}: label ${describe(label)} is a ${typeof label} but earlier labels are ${kind}s (declare ${optionName} to mix)`,
        );
      set.add(label);
    }
    this.labels = kind === 'number' ? [...(set as Set<number>)].sort((a, b) => a - b) : [...(set as Set<string>)].sort(compareCodePoints);
    this.labels.forEach((l, i) => this.ids.set(l, i));
  }

  /** The id of a label (must be in the set). */
  id(label: Label): number {
    return this.ids.get(label)!;
  }
}
