/** Assertions shared by the pod IPAM tests. */
import { expect } from 'vitest';
import { PodIpamError } from '../../src/ipam/pod-ipam-errors.js';

/** `fn` throws a PodIpamError with `code` (and a message matching `message`, if given). */
export function expectIpamError(fn: () => unknown, code: string, message?: RegExp): void {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(PodIpamError);
  expect((caught as PodIpamError).code).toBe(code);
  if (message) expect((caught as PodIpamError).message).toMatch(message);
}
