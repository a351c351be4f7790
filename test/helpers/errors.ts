import assert from 'node:assert/strict';
import { TesseraError } from '../../src/errors.ts';

/** For assert.rejects / assert.throws: a TesseraError with this code (and message pattern). */
export function rejectsWith(code: string, pattern?: RegExp) {
  return (err: unknown) => {
    assert.ok(err instanceof TesseraError, `expected a TesseraError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (pattern) assert.match(err.message, pattern);
    return true;
  };
}
