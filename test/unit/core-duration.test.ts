import { describe, expect, it } from 'vitest';
import { formatDuration, parseDuration } from '../../src/core/duration.js';
import { InvalidArgumentError } from '../../src/core/errors.js';

describe('parseDuration', () => {
  it('reads Go-style durations into milliseconds', () => {
    expect(parseDuration('24h')).toBe(86_400_000);
    expect(parseDuration('90m')).toBe(5_400_000);
    expect(parseDuration('3s')).toBe(3000);
    expect(parseDuration('500ms')).toBe(500);
    expect(parseDuration('1h30m')).toBe(5_400_000);
    expect(parseDuration('1m500ms')).toBe(60_500);
    expect(parseDuration('1.5h')).toBe(5_400_000);
    expect(parseDuration('0s')).toBe(0);
    expect(parseDuration(' 10s ')).toBe(10_000);
  });

  it('reads a bare integer as seconds', () => {
    expect(parseDuration('30')).toBe(30_000);
    expect(parseDuration('0')).toBe(0);
    expect(parseDuration('86400')).toBe(86_400_000);
  });

  it('rejects anything else with an InvalidArgumentError naming the value and what it was for', () => {
    for (const bad of ['', '1d', '-5s', '1h 30m', 'h', '10sec', '1.s', 'ten', '3s5', '1.5']) {
      expect(() => parseDuration(bad, '--resync-interval')).toThrow(InvalidArgumentError);
      expect(() => parseDuration(bad, '--resync-interval')).toThrow(`invalid --resync-interval ${JSON.stringify(bad)}`);
    }
    expect(() => parseDuration('1d')).toThrow(/invalid duration "1d": cannot read "1d"/);
    expect(() => parseDuration('99999999999999999999h')).toThrow(/too large/);
  });
});

describe('formatDuration', () => {
  it('writes the shortest spelling and round-trips with parseDuration', () => {
    expect(formatDuration(86_400_000)).toBe('24h');
    expect(formatDuration(5_400_000)).toBe('1h30m');
    expect(formatDuration(10_000)).toBe('10s');
    expect(formatDuration(500)).toBe('500ms');
    expect(formatDuration(0)).toBe('0s');
    for (const ms of [1, 999, 61_001, 3_723_004]) expect(parseDuration(formatDuration(ms))).toBe(ms);
    expect(() => formatDuration(-1)).toThrow(InvalidArgumentError);
  });
});
