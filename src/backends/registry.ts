import { InvalidArgumentError } from '../core/errors.js';
import type { Backend } from './backend.js';

/** Backends by type name. Filled explicitly (builtins.ts), never by import side effects. */
export class BackendRegistry {
  private readonly byType = new Map<string, Backend>();

  register(backend: Backend): this {
    if (this.byType.has(backend.type)) throw new Error(`backend ${backend.type} registered twice`);
    this.byType.set(backend.type, backend);
    return this;
  }

  types(): string[] {
    return [...this.byType.keys()].sort();
  }

  get(type: string): Backend {
    const backend = this.byType.get(type);
    if (!backend) {
      throw new InvalidArgumentError('network config Backend.Type', type, `is not a known backend (known: ${this.types().join(', ')})`);
    }
    return backend;
  }

  /** The BackendOptionsParser that network-config parsing takes. */
  readonly parseOptions = (type: string, options: Record<string, unknown>): unknown => this.get(type).parseOptions(options);
}
