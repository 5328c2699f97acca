import { TwillError } from '../../../core/errors.js';
import { routedFamilies, type DriverOptions } from '../driver.js';
import { gobgpFamily, type Peer } from './api.js';
import type { GobgpClient } from './client.js';
import { ownRouteOf, type OwnRoute } from './paths.js';

export type SpeakerIdentity = Pick<DriverOptions, 'asn' | 'routerId' | 'listen'> & Partial<Pick<DriverOptions, 'families'>>;

/** What gobgpd had when the driver came to it. */
export interface FoundState {
  /** True when gobgpd had not been started: it is now, and has nothing. */
  readonly started: boolean;
  readonly peers: readonly Peer[];
  /** This host's own paths in its global RIB. */
  readonly routes: readonly OwnRoute[];
}

/**
 * Makes sure gobgpd runs BGP as this host (GetBgp; StartBgp when it does not yet), and reads what
 * it has. A gobgpd that already runs with this ASN and router id is adopted as it is: twilld
 * restarted while gobgpd kept its sessions and routes, and the backend's next setPeers and
 * announce say what changes. One that runs as another speaker is not ours to change: StartBgp
 * cannot be repeated, and stopping it would cut every session it has.
 */
export async function ensureStarted(client: GobgpClient, me: SpeakerIdentity): Promise<FoundState> {
  const global = await client.getBgp();
  // GetBgp answers an unstarted gobgpd with an empty Global (AS 0).
  if (!global.asn) {
    await client.startBgp({ asn: me.asn, router_id: me.routerId, listen_port: me.listen.port, listen_addresses: [me.listen.address] });
    return { started: true, peers: [], routes: [] };
  }
  if (global.asn !== me.asn || global.router_id !== me.routerId) {
    throw new TwillError('EGOBGP_CONFLICT',
      `gobgpd at ${client.target} already runs as AS ${global.asn} with router id ${global.router_id ?? ''}, but this host is AS ${me.asn} with router id ${me.routerId}: `
      + 'restart gobgpd without BGP configuration (--api-hosts only) or fix the ASN/router id; Twill will not take over another speaker');
  }
  // The listen address is not compared: gobgpd cannot change it without a restart, and one an
  // operator runs may listen more widely than Twill would have asked.
  const [peers, ...paths] = await Promise.all([client.listPeers(), ...routedFamilies(me).map((f) => client.listPaths('GLOBAL', '', gobgpFamily(f)))]);
  return { started: false, peers, routes: paths.flat().flatMap((p) => ownRouteOf(p) ?? []) };
}
