import { constants } from 'node:os';

/** Where Linux has two names for one number, the one the kernel's own headers and iproute2 print. */
const PREFERRED = ['EOPNOTSUPP', 'EAGAIN', 'EDEADLK'];

const namesByNumber = new Map<number, string>();
for (const name of PREFERRED) {
  const value = (constants.errno as Record<string, number>)[name];
  if (value !== undefined) namesByNumber.set(value, name);
}
for (const [name, value] of Object.entries(constants.errno)) {
  // Several names share a number (EAGAIN/EWOULDBLOCK); keep the first, canonical one.
  if (!namesByNumber.has(value)) namesByNumber.set(value, name);
}

/** "EEXIST" for 17, and so on; "E<n>" for numbers Node does not know. */
export function errnoName(errno: number): string {
  return namesByNumber.get(Math.abs(errno)) ?? `E${Math.abs(errno)}`;
}

export function errnoNumber(name: string): number {
  const value = (constants.errno as Record<string, number>)[name];
  if (value === undefined) throw new Error(`unknown errno name ${name}`);
  return value;
}
