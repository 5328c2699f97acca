import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAnnouncement, parsePeer, parseServeFlags } from '../../src/ctl/bgp/serve-flags.js';

// `twillctl bgp serve` flags: every value checked, every error naming the flag and the value.

describe('twillctl bgp serve flags', () => {
  it('reads peers with every option, IPv4 and IPv6 with ports', () => {
    expect(parsePeer('198.18.0.2:1179,asn=4200000001,passive,md5=k,multihop=2,local=198.18.0.1,families=ipv4+ipv6,hold=9,max-prefix=10,nexthop6=fd00::1,graceful-restart=0', '--peer', ['10.0.0.0/8,le=32'])).toEqual({
      address: '198.18.0.2', port: 1179, asn: 4200000001, passive: true, md5: 'k', multihop: 2, localAddress: '198.18.0.1',
      families: ['ipv4-unicast', 'ipv6-unicast'], timers: { holdTime: 9 }, gracefulRestartTime: 0,
      import: { accept: ['10.0.0.0/8,le=32'], maxPrefixes: 10 }, export: { nextHopSelf: { ipv6: 'fd00::1' } },
    });
    expect(parsePeer('fd00::2,asn=65000')).toEqual({ address: 'fd00::2', asn: 65000, passive: false });
    expect(parsePeer('[fd00::2]:1790,asn=65000')).toMatchObject({ address: 'fd00::2', port: 1790 });
    expect(parseAnnouncement('10.244.1.0/24,nexthop=198.18.0.9')).toEqual({ prefix: '10.244.1.0/24', nextHop: '198.18.0.9' });
  });

  it('rejects bad peers, announcements and ranges with a message naming the value', () => {
    const bad: [() => unknown, RegExp][] = [
      [() => parsePeer('198.18.0.2'), /asn=N is required/],
      [() => parsePeer('198.18.0.2,asn=0'), /--peer asn "0": must be an integer from 1/],
      [() => parsePeer('198.18.0.2,asn=65000,colour=red'), /unknown option "colour"/],
      [() => parsePeer('198.18.0.2,asn=1,asn=2'), /"asn" given twice/],
      [() => parsePeer('not-an-ip:179,asn=1'), /must be an IP address/],
      [() => parsePeer('198.18.0.2,asn=1,families=ipx'), /must be ipv4, ipv6 or ipv4\+ipv6/],
      [() => parsePeer('198.18.0.2,asn=1,local=x'), /local= must be an IP address/],
      [() => parseAnnouncement('10.0.0.0/8,nexthop=nope'), /nexthop= must be an IP address/],
      [() => parseServeFlags(['--router-id', '1.1.1.1'], {}), /--asn.*is required/],
      [() => parseServeFlags(['--asn', '1'], {}), /--router-id.*is required/],
      [() => parseServeFlags(['--asn', '1', '--router-id', '1.1.1.1', '--accept', '10.0.0.0/33'], {}), /10\.0\.0\.0\/33/],
      [() => parseServeFlags(['--asn', '1', '--router-id', '1.1.1.1', '--peer', '198.18.0.2,asn=2,passive'], {}), /--listen.*is required when a peer is passive/],
      [() => parseServeFlags(['--asn', '1', '--router-id', '1.1.1.1', '--warm-up-prefixes', '-1'], {}), /--warm-up-prefixes "-1"/],
      [() => parseServeFlags(['--asn', '1', '--router-id', '1.1.1.1'], { TWILL_BGP_WARM_UP_PREFIXES: '5000000' }), /TWILL_BGP_WARM_UP_PREFIXES "5000000"/],
    ];
    for (const [fn, msg] of bad) expect(fn).toThrow(msg);
  });

  it('warms the speaker up with 20,000 prefixes unless told another number, 0 for none', () => {
    const warmUp = (argv: string[], env: Record<string, string> = {}): unknown => {
      const cmd = parseServeFlags(['--asn', '1', '--router-id', '1.1.1.1', ...argv], env);
      return cmd.kind === 'run' ? cmd.config.warmUpPrefixes : cmd.kind;
    };
    expect(warmUp([])).toBe(20_000);
    expect(warmUp(['--warm-up-prefixes', '0'])).toBe(0);
    expect(warmUp([], { TWILL_BGP_WARM_UP_PREFIXES: '500' })).toBe(500);
  });

  it('merges a JSON config file with flags, and refuses a malformed one', () => {
    const dir = mkdtempSync(join(tmpdir(), 'twill-serve-'));
    const file = join(dir, 'bgp.json');
    writeFileSync(file, JSON.stringify({ asn: 65001, routerId: '198.18.0.1', listen: ['0.0.0.0:1179'], accept: ['10.244.0.0/16,le=32'], peers: [{ address: '198.18.0.2', asn: 65002, passive: true, holdTime: 9 }], announce: [{ prefix: '10.244.1.0/24' }] }));
    const cmd = parseServeFlags(['--config', file, '--announce', '10.244.9.0/24'], {});
    expect(cmd.kind).toBe('run');
    if (cmd.kind !== 'run') return;
    expect(cmd.config).toMatchObject({ asn: 65001, routerId: '198.18.0.1', listen: [{ host: '0.0.0.0', port: 1179 }], announce: [{ prefix: '10.244.1.0/24' }, { prefix: '10.244.9.0/24' }] });
    expect(cmd.config.peers[0]).toMatchObject({ address: '198.18.0.2', asn: 65002, passive: true, timers: { holdTime: 9 }, import: { accept: ['10.244.0.0/16,le=32'] } });
    writeFileSync(file, '{"asn": 1,');
    expect(() => parseServeFlags(['--config', file], {})).toThrow(/--config.*cannot read it as JSON/);
    // A misspelt key is refused, not ignored (the session would run on a default).
    writeFileSync(file, JSON.stringify({ asn: 65001, routerId: '198.18.0.1', peers: [{ address: '198.18.0.2', asn: 65002, keepalive: 3 }] }));
    expect(() => parseServeFlags(['--config', file], {})).toThrow(/--config peer 198\.18\.0\.2 "keepalive": is not a known key/);
    writeFileSync(file, JSON.stringify({ asn: 65001, routerID: '198.18.0.1' }));
    expect(() => parseServeFlags(['--config', file], {})).toThrow(/--config "routerID": is not a known key/);
    writeFileSync(file, JSON.stringify({ asn: 65001, routerId: '198.18.0.1', announce: [{ prefix: '10.244.1.0/24', nexthop: '198.18.0.1' }] }));
    expect(() => parseServeFlags(['--config', file], {})).toThrow(/--config announce "nexthop": is not a known key/);
  });
});
