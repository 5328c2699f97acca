import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../src/core/errors.js';
import {
  Masquerade, renderMasqueradeScript, renderRemoveScript, TABLE_FAMILIES, TABLE_FAMILY_V6, TABLE_NAME, type MasqueradeSpec, type NftResult, type NftRunner,
} from '../../src/nftables/index.js';

const V4 = { clusterNetwork: '10.244.0.0/16', podSubnet: '10.244.3.0/24' };
const V6 = { clusterNetworkV6: 'fd00:10:244::/56', podSubnetV6: 'fd00:10:244:3::/64' };
const DUAL: MasqueradeSpec = { ...V4, ...V6 };

const HEADER = '# Twill masquerading (flannel\'s FLANNEL-POSTRTG and FLANNEL-FWD). Generated: replaced as a whole.\n';

const IPV4_TABLE = `table ip twill {}
delete table ip twill
table ip twill {
\tchain postrouting {
\t\ttype nat hook postrouting priority srcnat; policy accept;
\t\tmeta mark & 0x00004000 == 0x00004000 return comment "kube-proxy masquerades what it marked"
\t\tip saddr 10.244.3.0/24 ip daddr 10.244.0.0/16 return comment "pod to cluster: keep the pod address"
\t\tip saddr 10.244.0.0/16 ip daddr 10.244.3.0/24 return comment "cluster to this host's pods: keep the source"
\t\tip saddr != 10.244.0.0/16 ip daddr 10.244.3.0/24 return comment "outside to this host's pods: keep the source"
\t\tip saddr 10.244.0.0/16 ip daddr != 224.0.0.0/4 masquerade fully-random comment "pods to outside"
\t\tip saddr != 10.244.0.0/16 ip daddr 10.244.0.0/16 masquerade fully-random comment "outside to other hosts' pods"
\t}
\tchain forward {
\t\ttype filter hook forward priority filter; policy accept;
\t\tip saddr 10.244.0.0/16 accept comment "from the cluster network"
\t\tip daddr 10.244.0.0/16 accept comment "to the cluster network"
\t}
}
`;

const IPV6_TABLE = `table ip6 twill {}
delete table ip6 twill
table ip6 twill {
\tchain postrouting {
\t\ttype nat hook postrouting priority srcnat; policy accept;
\t\tmeta mark & 0x00004000 == 0x00004000 return comment "kube-proxy masquerades what it marked"
\t\tip6 saddr fd00:10:244:3::/64 ip6 daddr fd00:10:244::/56 return comment "pod to cluster: keep the pod address"
\t\tip6 saddr fd00:10:244::/56 ip6 daddr fd00:10:244:3::/64 return comment "cluster to this host's pods: keep the source"
\t\tip6 saddr != fd00:10:244::/56 ip6 daddr fd00:10:244:3::/64 return comment "outside to this host's pods: keep the source"
\t\tip6 saddr fd00:10:244::/56 ip6 daddr != ff00::/8 masquerade fully-random comment "pods to outside"
\t\tip6 saddr != fd00:10:244::/56 ip6 daddr fd00:10:244::/56 masquerade fully-random comment "outside to other hosts' pods"
\t}
\tchain forward {
\t\ttype filter hook forward priority filter; policy accept;
\t\tip6 saddr fd00:10:244::/56 accept comment "from the cluster network"
\t\tip6 daddr fd00:10:244::/56 accept comment "to the cluster network"
\t}
}
`;

describe('renderMasqueradeScript for IPv6', () => {
  it('dual-stack: both tables, the same rules per family (ip6 matches, ff00::/8 as multicast), in one script', () => {
    expect(renderMasqueradeScript(DUAL)).toBe(`${HEADER}${IPV4_TABLE}${IPV6_TABLE}`);
  });

  it('IPv6-only: the ip6 table, and the ip table removed in the same transaction', () => {
    expect(renderMasqueradeScript(V6)).toBe(`${HEADER}# IPv4: not configured, no table.\ntable ip twill {}\ndelete table ip twill\n${IPV6_TABLE}`);
  });

  it('IPv4-only (the two-field spec of earlier versions): the ip table, and the ip6 table removed', () => {
    expect(renderMasqueradeScript(V4)).toBe(`${HEADER}${IPV4_TABLE}# IPv6: not configured, no table.\ntable ip6 twill {}\ndelete table ip6 twill\n`);
  });

  it('treats fields given as undefined as absent', () => {
    expect(renderMasqueradeScript({ ...V4, clusterNetworkV6: undefined, podSubnetV6: undefined })).toBe(renderMasqueradeScript(V4));
    expect(renderMasqueradeScript({ clusterNetwork: undefined, podSubnet: undefined, ...V6 })).toBe(renderMasqueradeScript(V6));
  });

  it('normalises IPv6 prefixes: host bits dropped, addresses in canonical (RFC 5952) form', () => {
    expect(renderMasqueradeScript({ ...V4, clusterNetworkV6: 'FD00:0010:0244:0000::1/56', podSubnetV6: 'fd00:10:244:3:0:0:0:1/64' }))
      .toBe(renderMasqueradeScript(DUAL));
  });

  it('is deterministic (the agent may compare scripts between runs)', () => {
    expect(renderMasqueradeScript(DUAL)).toBe(renderMasqueradeScript({ ...V6, ...V4 }));
  });

  it.each<[MasqueradeSpec, RegExp]>([
    // The wrong family in a field: named, with where it belongs.
    [{ ...V4, clusterNetworkV6: '10.245.0.0/16', podSubnetV6: '10.245.3.0/24' },
      /^invalid masquerade clusterNetworkV6 "10.245.0.0\/16": must be IPv6 \(the table is of family ip6\); an IPv4 prefix goes in clusterNetwork$/],
    [{ ...V4, clusterNetworkV6: 'fd00:10:244::/56', podSubnetV6: '10.244.3.0/24' },
      /^invalid masquerade podSubnetV6 "10.244.3.0\/24": must be IPv6 \(the table is of family ip6\); an IPv4 prefix goes in podSubnet$/],
    [{ clusterNetwork: '10.244.0.0/16', podSubnet: 'fd00:10:244:3::/64', ...V6 },
      /^invalid masquerade podSubnet "fd00:10:244:3::\/64": must be IPv4 \(the table is of family ip\); an IPv6 prefix goes in podSubnetV6$/],
    [{ clusterNetwork: 'fd00:10:244::/56', podSubnet: 'fd00:10:244:3::/64' },
      /^invalid masquerade clusterNetwork "fd00:10:244::\/56": must be IPv4 \(the table is of family ip\); an IPv6 prefix goes in clusterNetworkV6$/],
    // Half a family.
    [{ ...V4, clusterNetworkV6: 'fd00:10:244::/56' },
      /^invalid masquerade podSubnetV6 undefined: missing: clusterNetworkV6 is given, and IPv6 masquerading needs both$/],
    [{ ...V4, podSubnetV6: 'fd00:10:244:3::/64' },
      /^invalid masquerade clusterNetworkV6 undefined: missing: podSubnetV6 is given, and IPv6 masquerading needs both$/],
    [{ podSubnet: '10.244.3.0/24', ...V6 }, /^invalid masquerade clusterNetwork undefined: missing: podSubnet is given/],
    // No family at all.
    [{}, /^invalid masquerade spec \{\}: names no network: give clusterNetwork and podSubnet \(IPv4\), clusterNetworkV6 and podSubnetV6 \(IPv6\), or both pairs$/],
    [{ clusterNetwork: undefined, podSubnetV6: undefined }, /names no network/],
    // The pod subnet outside the cluster network.
    [{ ...V4, clusterNetworkV6: 'fd00:10:244::/56', podSubnetV6: 'fd00:10:245:3::/64' },
      /^invalid masquerade podSubnetV6 "fd00:10:245:3::\/64": is not inside the cluster network fd00:10:244::\/56$/],
    [{ ...V4, clusterNetworkV6: 'fd00:10:244::/56', podSubnetV6: 'fd00::/48' }, /is not inside the cluster network fd00:10:244::\/56/],
    // Text that is not a prefix never reaches the script.
    [{ ...V4, clusterNetworkV6: 'fd00:10:244::/56; flush ruleset', podSubnetV6: 'fd00:10:244:3::/64' }, /^invalid masquerade clusterNetworkV6 "fd00:10:244::\/56; flush ruleset"/],
    [{ ...V4, clusterNetworkV6: 'fd00:10:244::/56', podSubnetV6: 'fd00:10:244:3::/64 } table ip6 x {' }, /^invalid masquerade podSubnetV6 /],
    [{ ...V4, clusterNetworkV6: 'fd00:10:244::%eth0/56', podSubnetV6: 'fd00:10:244:3::/64' }, /^invalid masquerade clusterNetworkV6 /],
    [{ ...V4, clusterNetworkV6: 'fd00:10:244::/129', podSubnetV6: 'fd00:10:244:3::/64' }, /prefix length must be an integer 0..128/],
    [{ ...V4, clusterNetworkV6: '', podSubnetV6: 'fd00:10:244:3::/64' }, /^invalid masquerade clusterNetworkV6 "": missing "\/prefix-length"$/],
  ])('rejects %j with an InvalidArgumentError', (bad, message) => {
    expect(() => renderMasqueradeScript(bad)).toThrow(InvalidArgumentError);
    expect(() => renderMasqueradeScript(bad)).toThrow(message);
  });
});

describe('renderRemoveScript', () => {
  it('removes both families\' tables, and only Twill\'s', () => {
    expect(TABLE_FAMILIES).toEqual(['ip', 'ip6']);
    expect(renderRemoveScript().split('\n').filter((l) => l.startsWith('delete'))).toEqual(['delete table ip twill', 'delete table ip6 twill']);
  });
});

describe('Masquerade with IPv6 (with a fake nft)', () => {
  const ok = (stdout = ''): NftResult => ({ code: 0, stdout, stderr: '' });

  it('apply() of a dual-stack spec is one `nft -f -`, so both tables change in one transaction', async () => {
    const calls: [readonly string[], string | undefined][] = [];
    const runner: NftRunner = async (args, input) => {
      calls.push([args, input]);
      return ok();
    };
    await new Masquerade({ runner }).apply(DUAL);
    expect(calls).toEqual([[['-f', '-'], renderMasqueradeScript(DUAL)]]);
  });

  it('apply() rejects a wrong-family prefix before running nft', async () => {
    const calls: unknown[] = [];
    const m = new Masquerade({ runner: async (args) => { calls.push(args); return ok(); } });
    await expect(m.apply({ clusterNetworkV6: '10.244.0.0/16', podSubnetV6: '10.244.3.0/24' })).rejects.toThrow(InvalidArgumentError);
    expect(calls).toEqual([]);
  });

  it('current(\'ip6\') reads `nft -j list table ip6 twill`; absent is undefined', async () => {
    const listing = '{"nftables":[{"table":{"family":"ip6","name":"twill","handle":7}},{"chain":{"family":"ip6","table":"twill","name":"postrouting","handle":1}}]}';
    const calls: (readonly string[])[] = [];
    const present = new Masquerade({ runner: async (args) => { calls.push(args); return ok(listing); } });
    expect(await present.current(TABLE_FAMILY_V6)).toMatchObject({ family: 'ip6', name: TABLE_NAME, handle: 7, chains: [{ name: 'postrouting' }] });
    expect(calls).toEqual([['-j', 'list', 'table', 'ip6', 'twill']]);

    calls.length = 0;
    const absent = new Masquerade({
      runner: async (args) => {
        calls.push(args);
        return args[2] === 'table' ? { code: 1, stdout: '', stderr: 'Error: No such file or directory\n' } : ok('{"nftables":[{"table":{"family":"ip","name":"twill","handle":1}}]}');
      },
    });
    expect(await absent.current('ip6')).toBeUndefined(); // `ip twill` exists, but not `ip6 twill`
    expect(calls).toEqual([['-j', 'list', 'table', 'ip6', 'twill'], ['-j', 'list', 'tables', 'ip6']]);
  });
});
