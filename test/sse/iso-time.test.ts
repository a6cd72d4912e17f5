import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isoTime } from '../../src/sse/iso-time.js';

describe('isoTime', () => {
  it('gives toISOString() for every millisecond across second, minute, day and year boundaries', () => {
    const starts = [Date.UTC(2026, 11, 3, 10, 43, 21, 990), Date.UTC(2026, 11, 31, 23, 59, 59, 900), Date.UTC(1970, 0, 1, 0, 0, 0, 1), Date.UTC(10_000, 0, 1) - 50];
    for (const start of starts) {
      for (let ms = start; ms < start + 1200; ms++) assert.equal(isoTime(ms), new Date(ms).toISOString());
    }
  });

  it('truncates a fractional time as a Date does, and going back in time is answered as well', () => {
    for (const ms of [1_764_758_602_123.9, 1_764_758_602_000.5, 1_764_758_601_999, 1_700_000_000_007, 1_764_758_602_999.99]) {
      assert.equal(isoTime(ms), new Date(ms).toISOString());
    }
  });

  it('throws for a time no Date holds, as toISOString does', () => {
    assert.throws(() => isoTime(8.64e15 + 1000), RangeError);
  });
});
