import type { ReceivedUpdate } from './rib/rib.js';
import type { Family, Prefix, Route, UpdateMessage } from './types.js';

/**
 * A decoded UPDATE as the RIB takes it: classic IPv4 NLRI and withdrawals plus the MP_REACH /
 * MP_UNREACH ones (RFC 4760), each route sharing the message's one attributes object.
 */
export function toReceivedUpdate(update: UpdateMessage): ReceivedUpdate {
  const announced: Route[] = [];
  const withdrawn: { family: Family; prefix: Prefix }[] = [];
  for (const prefix of update.withdrawn) withdrawn.push({ family: 'ipv4-unicast', prefix });
  if (update.mpUnreach) for (const prefix of update.mpUnreach.withdrawn) withdrawn.push({ family: update.mpUnreach.family, prefix });
  const attributes = update.attributes;
  if (attributes) {
    const v4NextHop = attributes.nextHop ?? '';
    for (const prefix of update.nlri) announced.push({ family: 'ipv4-unicast', prefix, nextHop: v4NextHop, attributes });
    const mp = update.mpReach;
    // RFC 2545 §3: the first next hop is the global one; a link-local second one is not installable off-link.
    if (mp) for (const prefix of mp.nlri) announced.push({ family: mp.family, prefix, nextHop: mp.nextHops[0] ?? '', attributes });
  }
  return { announced, withdrawn };
}
