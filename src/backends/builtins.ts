import { allocBackend } from './alloc/alloc.js';
import { BackendRegistry } from './registry.js';

/** Every backend this build ships, registered by name in one explicit place. */
export function registerBuiltins(registry: BackendRegistry = new BackendRegistry()): BackendRegistry {
  return registry.register(allocBackend);
}
