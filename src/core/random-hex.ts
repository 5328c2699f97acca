import { closeSync, openSync, readSync } from 'node:fs';
import { lazyCrypto } from './lazy-builtins.js';

/**
 * `bytes` random bytes from the kernel's CSPRNG as lower-case hex (veth names, attempt ids). Read
 * from /dev/urandom, which never blocks once the kernel is seeded, so a CNI call without the agent
 * need not load node:crypto for eight hex digits (lazy-builtins.ts); node:crypto where the device
 * cannot be read.
 */
export function randomHex(bytes: number): string {
  const buf = Buffer.allocUnsafe(bytes);
  try {
    const fd = openSync('/dev/urandom', 'r');
    try {
      if (readSync(fd, buf, 0, bytes, null) === bytes) return buf.toString('hex');
    } finally {
      closeSync(fd);
    }
  } catch {
    // no readable /dev/urandom (a chroot without /dev): node:crypto below
  }
  return lazyCrypto().randomBytes(bytes).toString('hex');
}
