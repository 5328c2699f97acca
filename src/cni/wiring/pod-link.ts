import type { Link, Netlink } from '../../netlink/index.js';

/** A pod's interface and its host end on the bridge, as ADD made them. */
export interface PodLinkPair {
  readonly bridge: Link;
  readonly host: Link;
  readonly container: Link;
}

/**
 * The host end of the pod's veth `container`, when it is a port of the bridge `bridgeName`: the
 * mark of a pair twill made (CHECK requires it; DEL deletes nothing else). Otherwise a reason, to
 * complete "<ifname> ...". The container end's IFLA_LINK is its peer's index in the host's
 * namespace; the peer must point back, so an unrelated link that happens to have that index is
 * not mistaken for it.
 */
export async function hostEndOf(host: Netlink, container: Link, bridgeName: string): Promise<PodLinkPair | string> {
  if (container.kind !== 'veth') return `is a ${container.kind ?? 'plain'} device, not a veth`;
  const bridge = await host.getLink(bridgeName);
  if (!bridge || bridge.kind !== 'bridge') return `has no bridge ${bridgeName} on the host to be a port of`;
  const peer = container.linkIndex !== undefined ? await host.getLink(container.linkIndex) : undefined;
  if (!peer || peer.kind !== 'veth' || peer.linkIndex !== container.index || peer.masterIndex !== bridge.index) {
    return `is a veth whose host end is not a port of ${bridgeName}`;
  }
  return { bridge, host: peer, container };
}
