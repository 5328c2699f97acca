/**
 * flannel's dual-stack lease format (issue 17 item 1): keys as MakeSubnetKey writes them and as
 * ParseSubnetKey's subnetRegex reads them (flannel pkg/subnet/subnet.go), records with PublicIPv6
 * and BackendV6Data (pkg/lease/lease.go), and the transaction conditions that keep both subnets of
 * a lease unique. The real etcd side is in test/integration/store-dual-stack.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../src/core/errors.js';
import { createConditions, prefixRangeEnd } from '../../src/store/create-conditions.js';
import { FLANNEL_SUBNET_REGEX, keyLayout, NO_IPV4_SUBNET, parseSubnetKeyName, subnetKey, subnetToKeyName } from '../../src/store/keys.js';
import { decodeKv } from '../../src/store/kv.js';
import { decodeLease, encodeLease } from '../../src/store/lease-codec.js';

describe("lease keys: flannel's MakeSubnetKey", () => {
  it('writes the IPv6 part after "&" as Go prints it (RFC 5952)', () => {
    const cases: [string, string | undefined, string][] = [
      ['10.244.3.0/24', undefined, '10.244.3.0-24'],
      // flannel's documented forms (reference flannel.md: "flannel's dual-stack format").
      ['10.244.3.0/24', 'fc00:0:0:3::/64', '10.244.3.0-24&fc00:0:0:3::-64'],
      ['10.5.52.0/24', 'fc00::/64', '10.5.52.0-24&fc00::-64'],
      // Any spelling in, Go's out: lower case, the longest run of zero groups compressed...
      ['10.244.3.0/24', 'FC00:0000:0:3:0:0:0:0/64', '10.244.3.0-24&fc00:0:0:3::-64'],
      ['10.244.3.0/24', '2001:db8:0:0:1:0:0:0/112', '10.244.3.0-24&2001:db8:0:0:1::-112'],
      // ... the first of two equally long runs, and never a single zero group.
      ['10.244.3.0/24', '2001:0:0:1:0:0:1:0/112', '10.244.3.0-24&2001::1:0:0:1:0-112'],
      ['10.244.3.0/24', 'fc00:0:1:0:1:0:1:0/112', '10.244.3.0-24&fc00:0:1:0:1:0:1:0-112'],
      // IPv6-only: flannel's empty IP4Net.
      [NO_IPV4_SUBNET, 'fc00:0:0:3::/64', '0.0.0.0-0&fc00:0:0:3::-64'],
    ];
    for (const [subnet, ipv6Subnet, name] of cases) {
      expect(subnetToKeyName(subnet, ipv6Subnet), name).toBe(name);
      // flannel's own regex reads the name from its first character, to the same parts.
      const m = FLANNEL_SUBNET_REGEX.exec(name)!;
      expect(m.index, name).toBe(0);
      expect(m[3] === undefined ? undefined : `${m[3]}/${m[4]}`, name).toBe(ipv6Subnet === undefined ? undefined : name.split('&')[1]!.replace('-', '/'));
      // And Twill reads back what it wrote.
      expect(parseSubnetKeyName(name), name).toEqual({ ok: true, subnet: subnet === NO_IPV4_SUBNET ? NO_IPV4_SUBNET : subnet, ipv6Subnet: name.split('&')[1]?.replace(/-(\d+)$/, '/$1') });
    }
    expect(subnetKey(keyLayout(), '10.244.3.0/24', 'fc00:0:0:3::/64')).toBe('/coreos.com/network/subnets/10.244.3.0-24&fc00:0:0:3::-64');
  });

  it('refuses subnets flannel could not read back from a key', () => {
    const cases: [string, string | undefined, RegExp][] = [
      [NO_IPV4_SUBNET, undefined, /stands for "no IPv4 subnet" and needs an IPv6 subnet/],
      ['10.244.3.0/24', '10.0.0.0/8', /invalid IPv6 subnet "10.0.0.0\/8": must be an IPv6 prefix/],
      ['10.244.3.0/24', 'fc00::1/64', /host bits are set/],
      ['10.244.3.0/32', undefined, /longer than flannel's lease keys can name/],
      ['10.244.3.0/24', 'fc00::/128', /longer than flannel's lease keys can name/],
      ['10.244.3.0/24', '::a00:0/120', /::\/96 or ::ffff:0:0\/96, which flannel writes as a dotted quad/],
      ['10.244.3.0/24', '::ffff:a00:0/120', /dotted quad/],
      ['fc00::/64', undefined, /lease keys are named by an IPv4 subnet/],
    ];
    for (const [subnet, ipv6Subnet, message] of cases) {
      expect(() => subnetToKeyName(subnet, ipv6Subnet), `${subnet} ${ipv6Subnet}`).toThrow(InvalidArgumentError);
      expect(() => subnetToKeyName(subnet, ipv6Subnet), `${subnet} ${ipv6Subnet}`).toThrow(message);
    }
  });
});

describe("lease keys: what flannel's subnetRegex accepts, and what Twill makes of it", () => {
  it('is not anchored at the start and has two unescaped dots', () => {
    expect(FLANNEL_SUBNET_REGEX.exec('x10.244.3.0-24')?.index).toBe(1);
    expect(FLANNEL_SUBNET_REGEX.exec('10.244x3y0-24')?.[1]).toBe('10.244x3y0');
    expect(FLANNEL_SUBNET_REGEX.exec('10.244.3.0-24&FC00::-64')).toBeNull();
  });

  it('takes the keys flannel takes, refuses the rest with a reason, and keeps what flannel honours taken', () => {
    type Want = { ok: true; subnet: string; ipv6Subnet?: string } | { ok: false; reason: RegExp; subnet?: string; ipv6Subnet?: string };
    const cases: [string, Want][] = [
      ['10.244.3.0-24', { ok: true, subnet: '10.244.3.0/24' }],
      ['10.244.3.0-24&fc00:0:0:3::-64', { ok: true, subnet: '10.244.3.0/24', ipv6Subnet: 'fc00:0:0:3::/64' }],
      ['0.0.0.0-0&fc00:0:0:3::-64', { ok: true, subnet: NO_IPV4_SUBNET, ipv6Subnet: 'fc00:0:0:3::/64' }],
      // strconv.ParseUint takes leading zeros; net.ParseIP any IPv6 spelling: same subnets.
      ['10.244.3.0-024', { ok: true, subnet: '10.244.3.0/24' }],
      ['10.244.3.0-24&fc00:0:0:3:0:0:0:0-064', { ok: true, subnet: '10.244.3.0/24', ipv6Subnet: 'fc00:0:0:3::/64' }],
      // flannel takes these, with host bits or text before the subnet: Twill refuses them but keeps their subnets taken.
      ['10.244.3.5-24', { ok: false, reason: /has host bits set .*flannel reads it as 10\.244\.3\.0\/24, which stay taken/, subnet: '10.244.3.0/24' }],
      ['10.244.3.0-24&fc00::5-64', { ok: false, reason: /bad IPv6 part "fc00::5-64", which has host bits set/, subnet: '10.244.3.0/24', ipv6Subnet: 'fc00::/64' }],
      ['x10.244.3.0-24', { ok: false, reason: /"x10.244.3.0" is not an IPv4 address/, subnet: '10.244.3.0/24' }],
      ['a/10.244.3.0-24', { ok: false, reason: /contains "\/"/, subnet: '10.244.3.0/24' }],
      ['10.5.52.0-24&10.1.0.0-16', { ok: false, reason: /bad IPv6 part "10.1.0.0-16", which is not an IPv6 prefix/, subnet: '10.1.0.0/16' }],
      // flannel skips these (ParseSubnetKey returns nil): nothing taken...
      ['10.244.3.0-32', { ok: false, reason: /prefix length "32": flannel reads only 0\.\.31 \(5 bits\)/ }],
      ['010.244.3.0-24', { ok: false, reason: /not an IPv4 address/ }],
      ['10.244x3.0-24', { ok: false, reason: /not an IPv4 address/ }],
      ['10.244.3.0-24 ', { ok: false, reason: /prefix length/ }],
      // ... except the IPv4 subnet a name starts with before "&": Twill's create checks those keys.
      ['10.244.3.0-24&fc00::-128', { ok: false, reason: /prefix length "128": flannel reads only 0\.\.127 \(7 bits\).*its IPv4 subnet 10.244.3.0\/24 stays taken/, subnet: '10.244.3.0/24' }],
      ['10.244.3.0-24&FC00::-64', { ok: false, reason: /upper-case hex or a dotted quad/, subnet: '10.244.3.0/24' }],
      ['10.244.3.0-24&::ffff:1.2.3.4-120', { ok: false, reason: /upper-case hex or a dotted quad/, subnet: '10.244.3.0/24' }],
      ['10.244.3.0-24&', { ok: false, reason: /bad IPv6 part "", which is not <address>-<length>/, subnet: '10.244.3.0/24' }],
      ['10.244.3.0-24&fc00::-64&fc00::-64', { ok: false, reason: /more than one "&"/, subnet: '10.244.3.0/24' }],
    ];
    for (const [name, want] of cases) {
      const got = parseSubnetKeyName(name);
      if (want.ok) {
        expect(got, name).toEqual(want);
        continue;
      }
      expect(got.ok, name).toBe(false);
      if (got.ok) continue;
      expect(got.reason, name).toMatch(want.reason);
      expect({ subnet: got.subnet, ipv6Subnet: got.ipv6Subnet }, name).toEqual({ subnet: want.subnet, ipv6Subnet: want.ipv6Subnet });
    }
  });
});

describe('lease records with PublicIPv6 and BackendV6Data (flannel pkg/lease/lease.go)', () => {
  it("decodes flannel's records and encodes them back byte for byte", () => {
    const records = [
      // IPv4-only, as every flannel writes it: PublicIPv6 null, no BackendV6Data.
      '{"PublicIP":"192.168.64.3","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"}}',
      // Dual-stack vxlan: a second VTEP for IPv6.
      '{"PublicIP":"192.168.64.3","PublicIPv6":"fc00::3","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"},"BackendV6Data":{"VNI":1,"VtepMAC":"0e:5a:9c:e4:3d:21"}}',
      // Dual-stack host-gw: no backend data at all.
      '{"PublicIP":"192.168.64.4","PublicIPv6":"2001:db8::4","BackendType":"host-gw"}',
      // IPv6-only vxlan: flannel's empty ip.IP4, BackendData omitted.
      '{"PublicIP":"0.0.0.0","PublicIPv6":"fc00::5","BackendType":"vxlan","BackendV6Data":{"VNI":1,"VtepMAC":"0e:5a:9c:e4:3d:22"}}',
      '{"PublicIP":"192.168.64.6","PublicIPv6":"fc00::6","BackendType":"wireguard","BackendData":null,"BackendV6Data":null}',
    ];
    for (const text of records) {
      const r = decodeLease(text);
      expect(r.ok, text).toBe(true);
      if (r.ok) expect(encodeLease(r.record)).toBe(text);
    }
    expect(decodeLease(records[1]!)).toEqual({
      ok: true,
      record: { publicIp: '192.168.64.3', publicIpv6: 'fc00::3', backendType: 'vxlan', backendData: { VNI: 1, VtepMAC: 'c6:d2:32:6f:8f:44' }, backendV6Data: { VNI: 1, VtepMAC: '0e:5a:9c:e4:3d:21' } },
    });
  });

  it('refuses a bad PublicIPv6 like any malformed record, and will not write one', () => {
    for (const bad of ['"fe80::1%eth0"', '"10.0.0.2"', '"fc00::zz"', '42', '{}']) {
      const r = decodeLease(`{"PublicIP":"10.0.0.1","PublicIPv6":${bad},"BackendType":"vxlan"}`);
      expect(r.ok, bad).toBe(false);
      if (!r.ok) expect(r.reason, bad).toMatch(/PublicIPv6 .* is neither null nor an IPv6 address/);
    }
    expect(() => encodeLease({ publicIp: '10.0.0.1', publicIpv6: 'fe80::1%eth0', backendType: 'vxlan' })).toThrow(InvalidArgumentError);
  });

  it('decodes dual-stack keys into leases with both subnets, and keeps the subnets of a bad one taken', () => {
    const l = keyLayout();
    const key = `${l.subnetsPrefix}10.244.3.0-24&fc00:0:0:3::-64`;
    const value = '{"PublicIP":"198.18.0.3","PublicIPv6":"fd00::3","BackendType":"vxlan","BackendData":null}';
    expect(decodeKv(l, { key, value, lease: '7', modRevision: '5', createRevision: '5' }, 1000)).toMatchObject({
      ok: true, lease: { subnet: '10.244.3.0/24', ipv6Subnet: 'fc00:0:0:3::/64', key, record: { publicIpv6: 'fd00::3' } },
    });
    expect(decodeKv(l, { key, value: '{"PublicIP":"198.18.0.3","PublicIPv6":"nope","BackendType":"vxlan"}', lease: '0', modRevision: '5', createRevision: '5' }))
      .toMatchObject({ ok: false, malformed: { key, subnet: '10.244.3.0/24', ipv6Subnet: 'fc00:0:0:3::/64', reason: expect.stringMatching(/PublicIPv6/) as string } });
    const hostBits = `${l.subnetsPrefix}10.244.3.0-24&fc00::5-64`;
    expect(decodeKv(l, { key: hostBits, value, lease: '0', modRevision: '5', createRevision: '5' }))
      .toMatchObject({ ok: false, malformed: { key: hostBits, subnet: '10.244.3.0/24', ipv6Subnet: 'fc00::/64' } });
    const ipv4Only = decodeKv(l, { key: `${l.subnetsPrefix}10.244.4.0-24`, value, lease: '0', modRevision: '5', createRevision: '5' });
    expect(ipv4Only.ok && 'ipv6Subnet' in ipv4Only.lease).toBe(false);
  });
});

describe('the conditions of a lease key creation', () => {
  const subnetsPrefix = '/coreos.com/network/subnets/';
  const range = (c: { key?: Buffer; range_end?: Buffer }): [string, string | undefined] => [c.key!.toString(), c.range_end?.toString()];
  // etcd's enums (only src/store imports etcd3): CompareTarget Version 0, Create 1; CompareResult Equal 0, Less 2.
  const VERSION = 0, CREATE = 1, EQUAL = 0, LESS = 2;

  it('computes prefix range ends as etcd does', () => {
    expect(prefixRangeEnd(Buffer.from('/a/subnets/')).toString()).toBe('/a/subnets0');
    expect(prefixRangeEnd(Buffer.from([0x61, 0xff, 0xff]))).toEqual(Buffer.from([0x62]));
    expect(prefixRangeEnd(Buffer.from([0xff]))).toEqual(Buffer.from([0]));
  });

  it('an IPv4 lease: no key of its IPv4 subnet, plain or dual-stack; nothing else', () => {
    const c = createConditions({ key: `${subnetsPrefix}10.244.3.0-24`, ipv4Key: `${subnetsPrefix}10.244.3.0-24`, subnet: '10.244.3.0/24', subnetsPrefix, freeAsOf: undefined });
    expect(c.map(range)).toEqual([[`${subnetsPrefix}10.244.3.0-24`, undefined], [`${subnetsPrefix}10.244.3.0-24&`, `${subnetsPrefix}10.244.3.0-24'`]]);
    expect(c.every((x) => x.target === VERSION && x.result === EQUAL && x.version === 0)).toBe(true);
  });

  it('a dual-stack lease: also no key created after the listing its subnets were picked from', () => {
    const key = `${subnetsPrefix}10.244.3.0-24&fc00:0:0:3::-64`;
    const c = createConditions({ key, ipv4Key: `${subnetsPrefix}10.244.3.0-24`, subnet: '10.244.3.0/24', subnetsPrefix, freeAsOf: '41' });
    expect(c.map(range)).toEqual([[key, undefined], [`${subnetsPrefix}10.244.3.0-24`, undefined], [`${subnetsPrefix}10.244.3.0-24&`, `${subnetsPrefix}10.244.3.0-24'`],
      [subnetsPrefix, '/coreos.com/network/subnets0']]);
    expect(c[3]).toMatchObject({ target: CREATE, result: LESS, create_revision: '42' });
  });

  it('an IPv6-only lease: not the shared "0.0.0.0-0" range, only its own key and the guard', () => {
    const key = `${subnetsPrefix}0.0.0.0-0&fc00:0:0:3::-64`;
    const c = createConditions({ key, ipv4Key: `${subnetsPrefix}0.0.0.0-0`, subnet: NO_IPV4_SUBNET, subnetsPrefix, freeAsOf: '7' });
    expect(c.map(range)).toEqual([[key, undefined], [subnetsPrefix, '/coreos.com/network/subnets0']]);
  });
});
