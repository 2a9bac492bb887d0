import { describe as suite, expect, it } from 'vitest';
import { checkChoice, checkInt, checkNumber, checkString, describe } from '../src/errors';

suite('argument checks', () => {
  it('names the argument and the value in TypeError and RangeError', () => {
    expect(() => checkInt('hiddenSize', '8', 1)).toThrow(TypeError);
    expect(() => checkInt('hiddenSize', 1.5, 1)).toThrow(/hiddenSize.*1\.5/);
    expect(() => checkInt('hiddenSize', 0, 1)).toThrow(RangeError);
    expect(() => checkNumber('lr', Number.NaN)).toThrow(/lr.*NaN/);
    expect(() => checkString('prompt', 3)).toThrow(/prompt.*3/);
    expect(() => checkChoice('cell', 'lstn', ['rnn', 'lstm', 'gru'] as const)).toThrow(/cell.*"lstn"/);
    try {
      checkInt('epochs', -1, 1);
    } catch (e) {
      expect((e as { code: string }).code).toBe('ERR_RNNKIT_RANGE');
    }
  });
  it('accepts valid values and returns them', () => {
    expect(checkInt('n', 3, 1, 5)).toBe(3);
    expect(checkNumber('x', 0.5, 0, 1)).toBe(0.5);
    expect(checkChoice('cell', 'gru', ['rnn', 'lstm', 'gru'] as const)).toBe('gru');
    expect(describe(new Float32Array(3))).toBe('a Float32Array of length 3');
  });
});
