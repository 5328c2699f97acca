import { TwillError } from '../core/errors.js';
import type { SubnetRange } from '../ipam/network-config.js';

/** Every leasable subnet of a family is taken (by leases or reservations). The agent retries with backoff. */
export class SubnetExhaustedError extends TwillError {
  constructor(range: SubnetRange, taken: number, family: '' | 'IPv6 ' = '') {
    super('ESUBNET_EXHAUSTED',
      `no free ${family}subnet: all ${taken} subnets ${range.subnetMin}..${range.subnetMax} of ${range.network} are leased or reserved`);
  }
}

/**
 * A write lost although etcd did not change in between: not a race, something blocks it for good
 * (a key the listing cannot read, a bug). Thrown instead of looping; the agent retries with backoff.
 */
export class LeaseWriteBlockedError extends TwillError {
  constructor(revision: string, what: string) {
    super('ELEASE_BLOCKED', `writing this host's lease (${what}) failed twice with nothing changed in etcd since revision ${revision}: `
      + 'a key under subnets/ blocks it; look for malformed leases (twillctl leases)');
  }
}
