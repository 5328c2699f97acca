// The speaker's 'routes' event (src/bgp/speaker-updates.ts): its lists are made on first read, yet
// the event reads, spreads, serialises and compares like a plain object, and a list read twice is
// the same array.

import { describe, expect, it } from 'vitest';
import type { BatchResult, ReceivedBatch } from '../../src/bgp/rib/rib.js';
import { routesEvent, withdrawnEvent } from '../../src/bgp/speaker-updates.js';
import { attrs, prefixList } from './bgp-rib-fixtures.js';

const attributes = attrs([65000]);
const batch: ReceivedBatch = {
  withdrawn: [prefixList('ipv4-unicast', ['10.244.9.0/24'])],
  announced: [{ prefixes: prefixList('ipv4-unicast', ['10.244.1.0/24', '0.0.0.0/0', '10.244.2.0/24']), path: { family: 'ipv4-unicast', nextHop: '198.18.0.1', attributes } }],
};
const result: BatchResult = {
  bestChangeCount: 2, bestChanges: undefined, maxPrefixExceeded: undefined,
  rejected: [{ group: 0, index: 1, reason: 'default-route' }],
  replacedByRejected: [{ family: 'ipv4-unicast', prefix: '0.0.0.0/0' }],
};
const route = (prefix: string) => ({ family: 'ipv4-unicast', prefix, nextHop: '198.18.0.1', attributes });
const expected = {
  peer: '198.18.0.1',
  announced: [route('10.244.1.0/24'), route('10.244.2.0/24')],
  withdrawn: [{ family: 'ipv4-unicast', prefix: '10.244.9.0/24' }, { family: 'ipv4-unicast', prefix: '0.0.0.0/0' }],
  rejected: [{ route: route('0.0.0.0/0'), reason: 'default-route' }],
};

describe('routesEvent', () => {
  it('gives the accepted announcements, the withdrawals and the refusals', () => {
    const event = routesEvent('198.18.0.1', batch, result);
    expect(event).toEqual(expected);
    expect({ ...event }).toEqual(expected);
    expect(JSON.parse(JSON.stringify(event))).toEqual(JSON.parse(JSON.stringify(expected)));
    expect(Object.keys(event)).toEqual(['peer', 'announced', 'withdrawn', 'rejected']);
  });

  it('makes each list once, and only when read', () => {
    const event = routesEvent('198.18.0.1', batch, result);
    expect(event.announced).toBe(event.announced);
    expect(event.withdrawn).toBe(event.withdrawn);
    expect(event.rejected).toBe(event.rejected);
    // Read-only like a plain readonly property: strict-mode code cannot assign it.
    expect(() => { (event as { announced: unknown }).announced = []; }).toThrow(TypeError);
  });
});

describe('withdrawnEvent', () => {
  it('lists every prefix of the lists as withdrawn', () => {
    const event = withdrawnEvent('198.18.0.1', [prefixList('ipv4-unicast', ['10.244.1.0/24']), prefixList('ipv6-unicast', ['fd00:1::/64'])]);
    expect(event).toEqual({
      peer: '198.18.0.1', announced: [], rejected: [],
      withdrawn: [{ family: 'ipv4-unicast', prefix: '10.244.1.0/24' }, { family: 'ipv6-unicast', prefix: 'fd00:1::/64' }],
    });
    expect(event.withdrawn).toBe(event.withdrawn);
  });
});
