// The serving core's per-attachment limits: token buckets for datagrams and log lines (dhcp/limits.ts).
import { describe, expect, it } from 'vitest';
import { DEFAULT_SERVE_LIMITS, LogBudget, TokenBucket } from '../../dhcp/limits.js';

describe('TokenBucket', () => {
  it('lets a burst through, then refills at its rate', () => {
    const bucket = new TokenBucket(10, 3, 0);
    expect([bucket.take(0), bucket.take(0), bucket.take(0), bucket.take(0)]).toEqual([true, true, true, false]);
    expect(bucket.msUntilToken(0)).toBe(100);
    expect(bucket.take(50)).toBe(false);
    expect(bucket.msUntilToken(50)).toBe(50);
    expect(bucket.take(100)).toBe(true);
    // Never more than the burst, however long it waited.
    expect([1, 2, 3, 4].map(() => bucket.take(1_000_000))).toEqual([true, true, true, false]);
  });

  it('does not go back in time', () => {
    const bucket = new TokenBucket(1000, 1, 100);
    expect(bucket.take(100)).toBe(true);
    expect(bucket.take(50)).toBe(false);
    expect(bucket.take(101)).toBe(true);
  });
});

describe('LogBudget', () => {
  it('counts what it suppressed and hands the count over once', () => {
    const budget = new LogBudget({ logLinesPerSecond: 1, logBurst: 2 }, 0);
    expect([budget.allow(0), budget.allow(0), budget.allow(0), budget.allow(10)]).toEqual([true, true, false, false]);
    expect(budget.allow(1000)).toBe(true);
    expect(budget.takeSuppressed()).toBe(2);
    expect(budget.takeSuppressed()).toBe(0);
  });

  it('defaults leave room for perfdhcp at 2000 exchanges/s and cut a flood of lines to 20/s', () => {
    expect(DEFAULT_SERVE_LIMITS.packetsPerSecond).toBeGreaterThanOrEqual(4000);
    const budget = new LogBudget(DEFAULT_SERVE_LIMITS, 0);
    let written = 0;
    for (let ms = 0; ms < 10_000; ms++) if (budget.allow(ms)) written++;
    // (one token of rounding: the refill adds 0.02 per ms in floating point)
    const expected = DEFAULT_SERVE_LIMITS.logBurst + 10 * DEFAULT_SERVE_LIMITS.logLinesPerSecond;
    expect(written).toBeGreaterThanOrEqual(expected - 1);
    expect(written).toBeLessThanOrEqual(expected);
  });
});
