import { ipv6Refusal, type Backend, type ExternalInterface } from '../backends/backend.js';
import { hasIpv4, type NetworkConfig } from '../ipam/network-config.js';
import type { Address, Route } from '../netlink/index.js';
import { underlayConflict } from './underlay-check.js';

/** What the agent knows of this host when it judges a network config. */
export interface HostView {
  readonly ext: ExternalInterface;
  /** The external interface's addresses and routes, of both families. */
  readonly addresses: readonly Address[];
  readonly routes: readonly Route[];
}

export type ConfigCheck = { readonly usable: NetworkConfig } | { readonly refused: string };

/**
 * Whether this agent can use `config` on this host, or why not. Beside the underlay
 * check (underlay-check.ts), for each family: IPv6 needs a backend that routes it (Backend's
 * supportsIpv6) and an address to publish as PublicIPv6; IPv4 needs an IPv4 address on the
 * external interface.
 */
export function checkConfig(config: NetworkConfig, backend: Backend, host: HostView): ConfigCheck {
  const refused = ipv6Problem(config, backend, host);
  if (refused !== undefined) return { refused };
  if (!hasIpv4(config)) return { usable: config };
  if (host.ext.address === undefined) {
    return { refused: `the external interface ${host.ext.name} has no IPv4 address, and the network config enables IPv4 (EnableIPv4: false makes an IPv6-only network)` };
  }
  const conflict = underlayConflict(config.network, host.ext.name, host.addresses, host.routes);
  return conflict === undefined ? { usable: config } : { refused: conflict };
}

function ipv6Problem(config: NetworkConfig, backend: Backend, host: HostView): string | undefined {
  if (config.ipv6 === undefined) return undefined;
  const refusal = ipv6Refusal(backend);
  if (refusal !== undefined) return refusal;
  const { ext } = host;
  if (ext.publicIpv6 === undefined) {
    return `EnableIPv6: the external interface ${ext.name} has no global IPv6 address to publish as PublicIPv6; add one, or give --public-ipv6`;
  }
  return underlayConflict(config.ipv6.network, ext.name, host.addresses, host.routes, 'IPv6Network');
}
