import { describe, expect, it } from 'vitest';
import type { DriverPeer } from '../../src/backends/bgp/driver.js';
import type { Peer } from '../../src/backends/bgp/gobgp/api.js';
import { guessRole, peerKey, peerMessage, planPeers, type PeerOptions } from '../../src/backends/bgp/gobgp/peers.js';

const opts: PeerOptions = { routerId: '198.18.0.1', localAddress: '198.18.0.1', holdTimeS: 9, restartTimeS: 120, maxPrefixes: 500 };
const tor: DriverPeer = { address: '198.18.0.254', asn: 65000, role: 'external', password: 's3cret', port: 1179, multihop: 2 };
const host: DriverPeer = { address: '198.18.0.2', asn: 64512, role: 'mesh', password: undefined, port: 179, multihop: undefined };

/**
 * What ListPeer echoes for a peer added with peerMessage(opts, tor): gobgpd 3.10 fills in its
 * defaults and its state around the configuration (captured from a live gobgpd, trimmed).
 */
function listed(): Peer {
  const ipv4 = { afi: 'AFI_IP', safi: 'SAFI_UNICAST' };
  return {
    conf: { neighbor_address: '198.18.0.254', peer_asn: 65000, auth_password: 's3cret' },
    ebgp_multihop: { enabled: true, multihop_ttl: 2 },
    route_reflector: { route_reflector_client: false, route_reflector_cluster_id: '' },
    state: { neighbor_address: '198.18.0.254', session_state: 'ESTABLISHED', admin_state: 'UP' },
    timers: { config: { hold_time: 9, keepalive_interval: 3, connect_retry: 5 }, state: { uptime: { seconds: 1_700_000_000, nanos: 0 } } },
    transport: { local_address: '198.18.0.1', remote_port: 1179 },
    graceful_restart: { enabled: true, restart_time: 120 },
    afi_safis: [{
      config: { family: ipv4, enabled: true },
      state: { family: ipv4, received: 3, accepted: 3 },
      prefix_limits: { family: ipv4, max_prefixes: 500 },
      mp_graceful_restart: { config: { enabled: true }, state: { end_of_rib_received: true } },
    }],
  };
}

describe('gobgp driver: peer configuration', () => {
  it('maps a session to PeerConf, transport, multihop, timers, graceful restart and the IPv4 family with its prefix limit', () => {
    expect(peerMessage(opts, tor)).toEqual({
      conf: { neighbor_address: '198.18.0.254', peer_asn: 65000, auth_password: 's3cret' },
      transport: { local_address: '198.18.0.1', remote_port: 1179 },
      ebgp_multihop: { enabled: true, multihop_ttl: 2 },
      timers: { config: { hold_time: 9, keepalive_interval: 3, connect_retry: 5 } },
      graceful_restart: { enabled: true, restart_time: 120 },
      afi_safis: [{
        config: { family: { afi: 'AFI_IP', safi: 'SAFI_UNICAST' }, enabled: true },
        prefix_limits: { family: { afi: 'AFI_IP', safi: 'SAFI_UNICAST' }, max_prefixes: 500 },
        mp_graceful_restart: { config: { enabled: true } },
      }],
    });
  });

  it('a directly connected host: no multihop, no password; no graceful restart when the restart time is 0', () => {
    const m = peerMessage({ ...opts, restartTimeS: 0 }, host);
    expect(m.ebgp_multihop).toBeUndefined();
    expect(m.conf?.auth_password).toBe('');
    expect(m.graceful_restart).toBeUndefined();
    expect(m.afi_safis?.[0]?.mp_graceful_restart).toBeUndefined();
    expect(m.route_reflector).toBeUndefined();
  });

  it('a reflector client is marked so, in the cluster named by this host\'s router id (RFC 4456)', () => {
    expect(peerMessage(opts, { ...host, role: 'reflector-client' }).route_reflector)
      .toEqual({ route_reflector_client: true, route_reflector_cluster_id: '198.18.0.1' });
    expect(guessRole(peerMessage(opts, { ...host, role: 'reflector-client' }), 64512)).toBe('reflector-client');
    expect(guessRole(peerMessage(opts, host), 64512)).toBe('mesh');
    expect(guessRole(peerMessage(opts, tor), 64512)).toBe('external');
  });

  it('ListPeer\'s echo of a configured peer has the key of the message it was added with, so an adopted gobgpd keeps its sessions', () => {
    expect(peerKey(listed())).toBe(peerKey(peerMessage(opts, tor)));
    // gobgpd reports unset sections with their defaults.
    const plain = peerMessage({ ...opts, restartTimeS: 0 }, host);
    const echoed: Peer = {
      ...plain,
      ebgp_multihop: { enabled: false, multihop_ttl: 0 },
      route_reflector: { route_reflector_client: false, route_reflector_cluster_id: '' },
      graceful_restart: { enabled: false, restart_time: 0 },
      afi_safis: plain.afi_safis?.map((a) => ({ ...a, mp_graceful_restart: { config: { enabled: false } } })),
    };
    expect(peerKey(echoed)).toBe(peerKey(plain));
  });

  it('every setting is in the key: a change means a new session', () => {
    const base = peerKey(peerMessage(opts, tor));
    for (const p of [{ ...tor, asn: 65001 }, { ...tor, password: 'other' }, { ...tor, port: 179 }, { ...tor, multihop: 3 }, { ...tor, role: 'reflector-client' as const }]) {
      expect(peerKey(peerMessage(opts, p))).not.toBe(base);
    }
    for (const o of [{ ...opts, holdTimeS: 30 }, { ...opts, restartTimeS: 60 }, { ...opts, maxPrefixes: 10 }, { ...opts, localAddress: '198.18.0.9' }]) {
      expect(peerKey(peerMessage(o, tor))).not.toBe(base);
    }
  });

  it('plans the difference by address: removed and changed sessions are deleted, new and changed ones added', () => {
    const a = peerMessage(opts, host);
    const b = peerMessage(opts, tor);
    const c = peerMessage(opts, { ...host, address: '198.18.0.3' });
    const configured = new Map([[host.address, peerKey(a)], [tor.address, peerKey(peerMessage(opts, { ...tor, password: 'old' }))], ['198.18.0.9', 'x']]);
    const plan = planPeers(configured, [a, b, c]);
    expect(plan.remove.sort()).toEqual(['198.18.0.254', '198.18.0.9']);
    expect(plan.add).toEqual([b, c]);
    expect(planPeers(new Map([[host.address, peerKey(a)]]), [a])).toEqual({ remove: [], add: [] });
  });
});
