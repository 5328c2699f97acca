import { InvalidArgumentError } from './errors.js';

/** Linux IFNAMSIZ is 16 including the terminating NUL (include/uapi/linux/if.h). */
export const MAX_IFNAME_BYTES = 15;

/** Checks a Linux interface name the way the kernel's dev_valid_name() does. */
export function validateIfname(name: string): string {
  if (typeof name !== 'string' || name.length === 0) {
    throw new InvalidArgumentError('interface name', name, 'must be a non-empty string');
  }
  const bytes = Buffer.byteLength(name);
  if (bytes > MAX_IFNAME_BYTES) {
    throw new InvalidArgumentError('interface name', name, `is ${bytes} bytes long, the kernel allows at most ${MAX_IFNAME_BYTES}`);
  }
  if (name === '.' || name === '..' || /[/:\s]/.test(name)) {
    throw new InvalidArgumentError('interface name', name, 'must not be "." or ".." nor contain "/", ":" or whitespace');
  }
  return name;
}
