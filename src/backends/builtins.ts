import { allocBackend } from './alloc/alloc.js';
import { bgpBackend } from './bgp/bgp.js';
import { hostGwBackend } from './host-gw/host-gw.js';
import { ipipBackend } from './ipip/ipip.js';
import { BackendRegistry } from './registry.js';
import { vxlanBackend } from './vxlan/vxlan.js';

/** Every backend this build ships, registered by name in one explicit place. */
export function registerBuiltins(registry: BackendRegistry = new BackendRegistry()): BackendRegistry {
  registry.register(hostGwBackend);
  registry.register(vxlanBackend);
  registry.register(ipipBackend);
  registry.register(bgpBackend());
  return registry.register(allocBackend);
}
