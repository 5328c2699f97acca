/**
 * The store's pure parts: flannel's key layout and lease JSON, StoreError mapping, backoff.
 */
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../src/core/errors.js';
import { WATCH_BACKOFF, WatchReconnectBackoff } from '../../src/store/backoff.js';
import { StoreError, toStoreError } from '../../src/store/errors.js';
import { canonicalSubnet, keyLayout, normalisePrefix, parseSubnetKeyName, subnetFromKey, subnetKey, subnetToKeyName } from '../../src/store/keys.js';
import { decodeKv } from '../../src/store/kv.js';
import { decodeLease, encodeLease, sameRecord } from '../../src/store/lease-codec.js';

const FLANNEL_SAMPLE = '{"PublicIP":"192.168.64.3","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"}}';

describe('key layout', () => {
  it('normalises the prefix and builds flannel keys', () => {
    expect(keyLayout()).toEqual({ prefix: '/coreos.com/network', configKey: '/coreos.com/network/config', subnetsPrefix: '/coreos.com/network/subnets/' });
    expect(keyLayout('/coreos.com/network///').configKey).toBe('/coreos.com/network/config');
    expect(keyLayout('/').subnetsPrefix).toBe('/subnets/');
    expect(normalisePrefix('/twill')).toBe('/twill');
    for (const bad of ['', 'coreos.com/network', '/a//b']) expect(() => normalisePrefix(bad)).toThrow(InvalidArgumentError);
  });

  it('maps subnets to key names and back', () => {
    expect(subnetToKeyName('10.244.3.0/24')).toBe('10.244.3.0-24');
    expect(subnetKey(keyLayout(), '10.244.3.0/24')).toBe('/coreos.com/network/subnets/10.244.3.0-24');
    expect(parseSubnetKeyName('10.244.3.0-24')).toEqual({ ok: true, subnet: '10.244.3.0/24' });
    expect(parseSubnetKeyName('0.0.0.0-0')).toEqual({ ok: true, subnet: '0.0.0.0/0' });
    expect(canonicalSubnet('10.244.3.0/24')).toBe('10.244.3.0/24');
    for (const bad of ['10.244.3.1/24', '10.244.3.0', 'fc00::/64', 'nonsense']) expect(() => subnetToKeyName(bad)).toThrow(InvalidArgumentError);
  });

  it("reads both subnets of flannel's dual-stack names (store-dual-stack.test.ts has the rest)", () => {
    expect(parseSubnetKeyName('10.5.52.0-24&fc00::-64')).toEqual({ ok: true, subnet: '10.5.52.0/24', ipv6Subnet: 'fc00::/64' });
    const l = keyLayout();
    expect(subnetFromKey(l, '/coreos.com/network/subnets/10.5.52.0-24&fc00::-64')).toEqual({ ok: true, subnet: '10.5.52.0/24', ipv6Subnet: 'fc00::/64' });
  });

  it('calls key names that are not a network prefix malformed, with a reason', () => {
    const l = keyLayout();
    const cases: [string, RegExp][] = [
      ['10.244.3.0', /not <address>-<length>/],
      ['10.244.3.1-24', /host bits/],
      ['10.244.3.0-33', /prefix length/],
      ['300.1.2.0-24', /not a subnet/],
      ['fc00::-64', /not an IPv4 prefix/],
      ['10.5.52.0-24&garbage', /bad IPv6 part/],
      ['10.5.52.0-24&10.1.0.0-16', /not an IPv6 prefix/],
      ['10.5.52.0-24&fc00::-64&x', /more than one "&"/],
      ['a/b', /contains "\/"/],
      ['', /not <address>-<length>/],
    ];
    for (const [name, reason] of cases) {
      const r = subnetFromKey(l, l.subnetsPrefix + name);
      expect(r.ok, name).toBe(false);
      if (!r.ok) expect(r.reason, name).toMatch(reason);
    }
    expect(subnetFromKey(l, '/elsewhere/10.244.3.0-24')).toMatchObject({ ok: false });
  });
});

describe('lease codec', () => {
  it("decodes flannel's sample and encodes it back byte for byte", () => {
    const r = decodeLease(FLANNEL_SAMPLE);
    expect(r).toEqual({ ok: true, record: { publicIp: '192.168.64.3', publicIpv6: null, backendType: 'vxlan', backendData: { VNI: 1, VtepMAC: 'c6:d2:32:6f:8f:44' } } });
    if (r.ok) expect(encodeLease(r.record)).toBe(FLANNEL_SAMPLE);
    expect(decodeLease(Buffer.from(FLANNEL_SAMPLE))).toEqual(r);
  });

  it("emits flannel's field names in flannel's order, PublicIPv6 null when absent", () => {
    expect(encodeLease({ backendType: 'host-gw', publicIp: '10.0.0.1' })).toBe('{"PublicIP":"10.0.0.1","PublicIPv6":null,"BackendType":"host-gw"}');
    expect(encodeLease({ backendData: { a: 1 }, backendType: 'vxlan', publicIpv6: 'fd00::1', publicIp: '10.0.0.1' }))
      .toBe('{"PublicIP":"10.0.0.1","PublicIPv6":"fd00::1","BackendType":"vxlan","BackendData":{"a":1}}');
  });

  it('round-trips records, and tolerates unknown fields', () => {
    const records = [
      { publicIp: '198.18.0.1', publicIpv6: null, backendType: 'vxlan', backendData: { VNI: 4096, VtepMAC: '02:00:00:00:00:01' } },
      { publicIp: '198.18.0.2', publicIpv6: 'fd00::2', backendType: 'wireguard', backendData: { PublicKey: 'abc=', Port: 51820 } },
      { publicIp: '198.18.0.3', publicIpv6: null, backendType: 'host-gw' },
    ];
    for (const rec of records) expect(decodeLease(encodeLease(rec))).toEqual({ ok: true, record: rec });
    const extra = decodeLease('{"PublicIP":"10.0.0.1","BackendType":"vxlan","BackendV6Data":{"VNI":1},"Future":true}');
    expect(extra).toEqual({ ok: true, record: { publicIp: '10.0.0.1', publicIpv6: null, backendType: 'vxlan', backendV6Data: { VNI: 1 } } });
  });

  it('rejects garbage with a reason', () => {
    const cases: [string, RegExp][] = [
      ['', /not JSON/],
      ['{"PublicIP":', /not JSON/],
      ['hello', /not JSON/],
      ['[1,2]', /not a JSON object/],
      ['null', /not a JSON object/],
      ['"10.0.0.1"', /not a JSON object/],
      ['{}', /missing PublicIP/],
      ['{"BackendType":"vxlan"}', /missing PublicIP/],
      ['{"PublicIP":"10.0.0.300","BackendType":"vxlan"}', /PublicIP "10.0.0.300" is not an IPv4/],
      ['{"PublicIP":42,"BackendType":"vxlan"}', /PublicIP 42 is not an IPv4/],
      ['{"PublicIP":"fd00::1","BackendType":"vxlan"}', /not an IPv4/],
      ['{"PublicIP":"10.0.0.1"}', /missing BackendType/],
      ['{"PublicIP":"10.0.0.1","BackendType":""}', /BackendType "" is not/],
      ['{"PublicIP":"10.0.0.1","BackendType":7}', /BackendType 7 is not/],
      ['{"PublicIP":"10.0.0.1","PublicIPv6":"10.0.0.2","BackendType":"vxlan"}', /PublicIPv6/],
    ];
    for (const [text, reason] of cases) {
      const r = decodeLease(text);
      expect(r.ok, text).toBe(false);
      if (!r.ok) expect(r.reason, text).toMatch(reason);
    }
    const long = decodeLease(JSON.stringify({ PublicIP: 'x'.repeat(10_000), BackendType: 'vxlan' }));
    expect(!long.ok && long.reason.length).toBeLessThan(120);
  });

  it('refuses to encode what others would skip as malformed', () => {
    expect(() => encodeLease({ publicIp: 'nope', backendType: 'vxlan' })).toThrow(InvalidArgumentError);
    expect(() => encodeLease({ publicIp: '10.0.0.1', backendType: '' })).toThrow(InvalidArgumentError);
    expect(() => encodeLease({ publicIp: '10.0.0.1', publicIpv6: '10.0.0.2', backendType: 'vxlan' })).toThrow(InvalidArgumentError);
  });

  it('compares records by wire form', () => {
    expect(sameRecord({ publicIp: '10.0.0.1', backendType: 'vxlan' }, { publicIp: '10.0.0.1', publicIpv6: null, backendType: 'vxlan' })).toBe(true);
    expect(sameRecord({ publicIp: '10.0.0.1', backendType: 'vxlan', backendData: { VNI: 1 } }, { publicIp: '10.0.0.1', backendType: 'vxlan', backendData: { VNI: 2 } })).toBe(false);
  });

  it('decodes a key/value pair into a lease, a reservation, or a malformed entry', () => {
    const l = keyLayout();
    const key = `${l.subnetsPrefix}10.244.3.0-24`;
    const leased = decodeKv(l, { key, value: FLANNEL_SAMPLE, lease: '7587', modRevision: '12', createRevision: '10' }, 1000);
    expect(leased).toMatchObject({ ok: true, lease: { subnet: '10.244.3.0/24', key, etcdLeaseId: '7587', expiresAt: 1000, modRevision: '12' } });
    const reserved = decodeKv(l, { key, value: FLANNEL_SAMPLE, lease: '0', modRevision: '12', createRevision: '10' }, 1000);
    expect(reserved).toMatchObject({ ok: true, lease: { etcdLeaseId: undefined, expiresAt: undefined } });
    expect(decodeKv(l, { key, value: 'nope', lease: '0', modRevision: '1', createRevision: '1' })).toMatchObject({ ok: false, malformed: { key, reason: expect.stringMatching(/not JSON/) as string } });
    expect(decodeKv(l, { key: `${l.subnetsPrefix}junk`, value: FLANNEL_SAMPLE, lease: '0', modRevision: '1', createRevision: '1' })).toMatchObject({ ok: false });
  });
});

describe('store errors', () => {
  // etcd3's own classes (only src/store may import etcd3) are mapped in the integration tests,
  // from real failures; here the parts that do not depend on them.
  const ctx = { op: 'ping', endpoints: ['https://127.0.0.1:2379'] };

  it('tells TLS failures apart by what OpenSSL said, keeping the cause', () => {
    const cases: [string, RegExp][] = [
      ['14 UNAVAILABLE: No connection established. Last error: Error: unable to verify the first certificate. Resolution note: ', /wrong CA\?/],
      ['14 UNAVAILABLE: ... SSL routines:ssl3_read_bytes:sslv3 alert bad certificate ... SSL alert number 42', /rejected the client certificate/],
      ['14 UNAVAILABLE: Client network socket disconnected before secure TLS connection was established', /does not speak TLS/],
    ];
    for (const [message, hint] of cases) {
      const err = new Error(message);
      const e = toStoreError(err, ctx);
      expect(e.code, message).toBe('ESTORE_TLS');
      expect(e.recoverable).toBe(false);
      expect(e.message).toMatch(/^ping: TLS handshake with etcd at https:\/\/127.0.0.1:2379 failed: /);
      expect(e.message).toMatch(hint);
      expect(e.message).not.toMatch(/Resolution note/);
      expect(e.cause).toBe(err);
    }
  });

  it('passes StoreErrors through and calls the unknown ESTORE_FAILED', () => {
    const passthrough = new StoreError('ESTORE_LEASE_LOST', 'gone', { op: 'renewLease' });
    expect(toStoreError(passthrough, ctx)).toBe(passthrough);
    expect(passthrough.recoverable).toBe(false);
    expect(new StoreError('ESTORE_UNAVAILABLE', 'down', { op: 'x' }).recoverable).toBe(true);
    const e = toStoreError(new Error('etcdserver: request is too large'), ctx);
    expect(e).toMatchObject({ code: 'ESTORE_FAILED', recoverable: false, name: 'StoreError' });
  });
});

describe('watch backoff', () => {
  it("gives etcd3 core's schedule in its immutable shape: 100 ms doubling to a 5 s cap", () => {
    const top = { ...WATCH_BACKOFF, random: () => 0.999999 };
    const factory = new WatchReconnectBackoff(top);
    expect(factory.duration).toBe(0);
    const durations: number[] = [];
    for (let b = factory.next(), i = 0; i < 10; b = b.next(), i++) durations.push(Math.round(b.duration));
    expect(durations).toEqual([100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000, 5000]);
    // etcd3 resets by asking the factory again: the schedule starts over.
    expect(Math.round(factory.next().duration)).toBe(100);
    // Jittered, never zero.
    const low = new WatchReconnectBackoff({ ...WATCH_BACKOFF, random: () => 0 }).next().next();
    expect(low.duration).toBeGreaterThan(0);
    expect(low.duration).toBeLessThan(200);
  });
});
