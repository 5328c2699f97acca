import { InvalidArgumentError } from './errors.js';

// Durations as flannel and etcd users write them (Go's time.ParseDuration, restricted to the
// units a network agent needs), plus a bare integer meaning seconds, because flannel's own timing
// flags (--subnet-lease-renew-margin, --iptables-resync) are plain numbers.

const UNIT_MS: Readonly<Record<string, number>> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1 };

// One component: a decimal number and a unit. `ms` is listed before `m` so it wins the match.
const COMPONENT = /(\d+(?:\.\d+)?|\.\d+)(ms|h|m|s)/y;

/**
 * Parses "24h", "90m", "3s", "500ms", "1h30m", "1.5h" or a bare integer ("30" = 30 s) into
 * milliseconds, rounded to the nearest millisecond. `what` names the value in the error
 * (a flag, a config field), e.g. `invalid --subnet-lease-ttl "1d": ...`.
 */
export function parseDuration(text: string, what = 'duration'): number {
  if (typeof text !== 'string') throw new InvalidArgumentError(what, text, 'not a string');
  const s = text.trim();
  if (/^\d+$/.test(s)) return checked(Number(s) * 1000, text, what);
  if (s === '') throw new InvalidArgumentError(what, text, 'empty; expected e.g. 24h, 90m, 3s, 500ms or 1h30m');
  let ms = 0;
  COMPONENT.lastIndex = 0;
  while (COMPONENT.lastIndex < s.length) {
    const at = COMPONENT.lastIndex;
    const m = COMPONENT.exec(s);
    if (m === null) {
      throw new InvalidArgumentError(what, text, `cannot read "${s.slice(at)}": expected a number and a unit (h, m, s or ms), e.g. 24h, 1h30m, 500ms, or a bare number of seconds`);
    }
    ms += Number(m[1]) * UNIT_MS[m[2]!]!;
  }
  return checked(Math.round(ms), text, what);
}

function checked(ms: number, text: string, what: string): number {
  if (!Number.isSafeInteger(ms)) throw new InvalidArgumentError(what, text, 'too large');
  return ms;
}

/** The shortest "1h30m" / "10s" / "500ms" spelling of a whole number of milliseconds (help texts, logs). */
export function formatDuration(ms: number): string {
  if (!Number.isSafeInteger(ms) || ms < 0) throw new InvalidArgumentError('duration in ms', ms, 'must be a non-negative integer');
  if (ms === 0) return '0s';
  let out = '';
  let rest = ms;
  for (const [unit, size] of Object.entries(UNIT_MS)) {
    const n = Math.floor(rest / size);
    if (n > 0) out += `${n}${unit}`;
    rest -= n * size;
  }
  return out;
}
