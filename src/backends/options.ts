import { InvalidArgumentError } from '../core/errors.js';

/**
 * Shared checks for backend options: every backend rejects keys it does not know (a typo must not
 * pass silently) and names itself in the error.
 */
export function rejectUnknownOptions(type: string, raw: Readonly<Record<string, unknown>>, known: readonly string[]): void {
  for (const key of Object.keys(raw)) {
    if (!known.some((k) => k.toLowerCase() === key.toLowerCase())) {
      const list = known.length > 0 ? `known: ${known.join(', ')}` : 'it takes no options';
      throw new InvalidArgumentError(`${type} backend option`, key, `is not an option of the ${type} backend (${list})`);
    }
  }
}

/** Reads an option by case-insensitive name, as flannel's Go JSON decoding does. */
export function option(raw: Readonly<Record<string, unknown>>, name: string): unknown {
  const key = Object.keys(raw).find((k) => k.toLowerCase() === name.toLowerCase());
  return key === undefined ? undefined : raw[key];
}

/** The error for a bad backend option, naming the backend and the option. */
export function optionError(type: string, name: string, value: unknown, reason: string): InvalidArgumentError {
  return new InvalidArgumentError(`${type} backend option ${name}`, value, reason);
}

/**
 * An integer option in [min, max]; absent or null gives undefined. With `zeroMeans`, 0 is also
 * accepted and gives undefined: flannel treats Port 0 and MTU 0 as "not set" (Go's zero value),
 * so flannel configs that spell them out keep working.
 */
export function integerOption(
  type: string, raw: Readonly<Record<string, unknown>>, name: string, min: number, max: number, zeroMeans?: string,
  /** How the error names the option when it sits inside another ("Peers[0].Port"). */
  label = name,
): number | undefined {
  const value = option(raw, name);
  if (value === undefined || value === null) return undefined;
  if (zeroMeans !== undefined && value === 0) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw optionError(type, label, value, `must be an integer ${min}..${max}${zeroMeans === undefined ? '' : ` (0 means ${zeroMeans})`}`);
  }
  return value;
}

/** A boolean option; absent or null is false (Go's zero value, as flannel reads it). */
export function booleanOption(type: string, raw: Readonly<Record<string, unknown>>, name: string): boolean {
  const value = option(raw, name);
  if (value === undefined || value === null) return false;
  if (typeof value !== 'boolean') throw optionError(type, name, value, 'must be true or false');
  return value;
}
