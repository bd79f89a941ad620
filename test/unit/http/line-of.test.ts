/** lineOf (the files view's source line): what text.split('\n')[n - 1] gives, without splitting the file. */
import { expect, it } from 'vitest';
import fc from 'fast-check';
import { lineOf } from '../../../src/http/fleet.js';

it('gives line n as splitting the text would, past the end included', () => {
  fc.assert(fc.property(fc.array(fc.constantFrom('a', 'b', '\n', ' ', '#')).map((a) => a.join('')), fc.integer({ min: 1, max: 12 }), (text, n) => {
    expect(lineOf(text, n)).toBe(text.split('\n')[n - 1]);
  }), { numRuns: 2000, seed: 15 });
});
