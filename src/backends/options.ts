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
