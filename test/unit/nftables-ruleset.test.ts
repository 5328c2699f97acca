import { describe, expect, it } from 'vitest';
import { hasTable, parseTable } from '../../src/nftables/index.js';

// Captured from `nft -j list table ip twill` (nftables 1.0.6), trimmed to two rules.
const LISTING = JSON.stringify({
  nftables: [
    { metainfo: { version: '1.0.6', release_name: 'Lester Gooch #5', json_schema_version: 1 } },
    { table: { family: 'ip', name: 'twill', handle: 9 } },
    { chain: { family: 'ip', table: 'twill', name: 'postrouting', handle: 1, type: 'nat', hook: 'postrouting', prio: 100, policy: 'accept' } },
    { chain: { family: 'ip', table: 'twill', name: 'forward', handle: 2, type: 'filter', hook: 'forward', prio: 0, policy: 'accept' } },
    { rule: { family: 'ip', table: 'twill', chain: 'postrouting', handle: 3, comment: 'kube-proxy masquerades what it marked',
      expr: [{ match: { op: '==', left: { '&': [{ meta: { key: 'mark' } }, 16384] }, right: 16384 } }, { return: null }] } },
    { rule: { family: 'ip', table: 'twill', chain: 'forward', handle: 9,
      expr: [{ match: { op: '==', left: { payload: { protocol: 'ip', field: 'saddr' } }, right: { prefix: { addr: '10.244.0.0', len: 16 } } } }, { accept: null }] } },
    // Another table's objects (as in `nft -j list ruleset`) are not ours.
    { table: { family: 'inet', name: 'twill', handle: 10 } },
    { chain: { family: 'inet', table: 'twill', name: 'other', handle: 1 } },
    { rule: { family: 'ip', table: 'nat', chain: 'POSTROUTING', handle: 4, expr: [] } },
  ],
});

describe('parseTable', () => {
  it('reads the table, its chains and its rules, ignoring other tables', () => {
    const t = parseTable(LISTING, 'ip', 'twill');
    expect(t).toMatchObject({ family: 'ip', name: 'twill', handle: 9 });
    expect(t!.chains).toEqual([
      { name: 'postrouting', handle: 1, type: 'nat', hook: 'postrouting', prio: 100, policy: 'accept' },
      { name: 'forward', handle: 2, type: 'filter', hook: 'forward', prio: 0, policy: 'accept' },
    ]);
    expect(t!.rules.map((r) => [r.chain, r.handle, r.comment])).toEqual([
      ['postrouting', 3, 'kube-proxy masquerades what it marked'],
      ['forward', 9, undefined],
    ]);
    expect(t!.rules[1]!.expr).toEqual([
      { match: { op: '==', left: { payload: { protocol: 'ip', field: 'saddr' } }, right: { prefix: { addr: '10.244.0.0', len: 16 } } } },
      { accept: null },
    ]);
  });

  it('returns undefined when the table is not in the listing', () => {
    expect(parseTable(LISTING, 'ip', 'flannel-ipv4')).toBeUndefined();
    expect(parseTable('{"nftables":[{"metainfo":{}}]}', 'ip', 'twill')).toBeUndefined();
  });

  it('rejects output that is not nft JSON', () => {
    expect(() => parseTable('table ip twill {', 'ip', 'twill')).toThrow(/not JSON/);
    expect(() => parseTable('{"tables":[]}', 'ip', 'twill')).toThrow(/no "nftables" array/);
    expect(() => parseTable('null', 'ip', 'twill')).toThrow(/no "nftables" array/);
  });
});

describe('hasTable', () => {
  it('finds a table by family and name in `nft -j list tables` output', () => {
    const tables = '{"nftables": [{"metainfo": {"version": "1.0.6"}}, {"table": {"family": "ip", "name": "twill", "handle": 9}}]}';
    expect(hasTable(tables, 'ip', 'twill')).toBe(true);
    expect(hasTable(tables, 'ip6', 'twill')).toBe(false);
    expect(hasTable('{"nftables": [{"metainfo": {}}]}', 'ip', 'twill')).toBe(false);
  });
});
