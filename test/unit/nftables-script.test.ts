import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../src/core/errors.js';
import { renderMasqueradeScript, renderRemoveScript } from '../../src/nftables/index.js';

const spec = { clusterNetwork: '10.244.0.0/16', podSubnet: '10.244.3.0/24' };

/** The script without comment lines and rule comments: what nft acts on. */
function statements(script: string): string[] {
  return script.split('\n')
    .map((l) => l.replace(/ comment "[^"]*"$/, '').trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
}

describe('renderMasqueradeScript', () => {
  it('renders flannel\'s rules as one table that replaces itself in one transaction', () => {
    expect(statements(renderMasqueradeScript(spec))).toEqual([
      'table ip twill {}',
      'delete table ip twill',
      'table ip twill {',
      'chain postrouting {',
      'type nat hook postrouting priority srcnat; policy accept;',
      'meta mark & 0x00004000 == 0x00004000 return',
      'ip saddr 10.244.3.0/24 ip daddr 10.244.0.0/16 return',
      'ip saddr 10.244.0.0/16 ip daddr 10.244.3.0/24 return',
      'ip saddr != 10.244.0.0/16 ip daddr 10.244.3.0/24 return',
      'ip saddr 10.244.0.0/16 ip daddr != 224.0.0.0/4 masquerade fully-random',
      'ip saddr != 10.244.0.0/16 ip daddr 10.244.0.0/16 masquerade fully-random',
      '}',
      'chain forward {',
      'type filter hook forward priority filter; policy accept;',
      'ip saddr 10.244.0.0/16 accept',
      'ip daddr 10.244.0.0/16 accept',
      '}',
      '}',
      // No IPv6 in the spec: `ip6 twill` is removed in the same transaction (if it was there).
      'table ip6 twill {}',
      'delete table ip6 twill',
    ]);
  });

  it('creates the table before deleting it, so the first apply needs no special case', () => {
    const lines = statements(renderMasqueradeScript(spec));
    expect(lines.indexOf('table ip twill {}')).toBeLessThan(lines.indexOf('delete table ip twill'));
    expect(lines.filter((l) => l.startsWith('delete'))).toEqual(['delete table ip twill', 'delete table ip6 twill']);
  });

  it('gives every rule a comment nft accepts (quoted, no inner quotes, at most 128 bytes)', () => {
    const rules = renderMasqueradeScript(spec).split('\n').filter((l) => /(return|masquerade|accept)\b/.test(l) && !l.includes('policy'));
    expect(rules).toHaveLength(8);
    for (const rule of rules) {
      const m = / comment "([^"]*)"$/.exec(rule);
      expect(m, rule).not.toBeNull();
      expect(Buffer.byteLength(m![1]!)).toBeLessThanOrEqual(128);
    }
  });

  it('accepts a pod subnet written as subnet.env writes it (first address) and normalises it', () => {
    expect(renderMasqueradeScript({ clusterNetwork: '10.244.0.0/16', podSubnet: '10.244.3.1/24' }))
      .toBe(renderMasqueradeScript(spec));
    expect(renderMasqueradeScript({ clusterNetwork: '10.244.7.9/16', podSubnet: '10.244.3.0/24' }))
      .toBe(renderMasqueradeScript(spec));
  });

  it('is deterministic (the agent may compare scripts between runs)', () => {
    expect(renderMasqueradeScript(spec)).toBe(renderMasqueradeScript({ ...spec }));
  });

  it.each([
    [{ clusterNetwork: '10.244.0.0', podSubnet: '10.244.3.0/24' }, /masquerade clusterNetwork "10.244.0.0": missing/],
    [{ clusterNetwork: '10.244.0.0/16', podSubnet: 'ten/24' }, /masquerade podSubnet "ten\/24"/],
    [{ clusterNetwork: 'fd00::/48', podSubnet: 'fd00::/64' }, /clusterNetwork "fd00::\/48": must be IPv4 \(the table is of family ip\); an IPv6 prefix goes in clusterNetworkV6/],
    [{ clusterNetwork: '10.244.0.0/16', podSubnet: '10.245.3.0/24' }, /podSubnet "10.245.3.0\/24": is not inside the cluster network 10.244.0.0\/16/],
    [{ clusterNetwork: '10.244.0.0/16', podSubnet: '10.0.0.0/8' }, /is not inside the cluster network/],
    [{ clusterNetwork: '10.244.0.0/16; flush ruleset', podSubnet: '10.244.3.0/24' }, /clusterNetwork/],
  ])('rejects %j', (bad, message) => {
    expect(() => renderMasqueradeScript(bad)).toThrow(InvalidArgumentError);
    expect(() => renderMasqueradeScript(bad)).toThrow(message);
  });
});

describe('renderRemoveScript', () => {
  it('deletes both tables without failing when they are absent (creates them first, in the same transaction)', () => {
    expect(renderRemoveScript()).toBe('table ip twill {}\ndelete table ip twill\ntable ip6 twill {}\ndelete table ip6 twill\n');
  });
});
