import type { MutationRequest, RtnlChannel } from './channel.js';
import * as neighbours from './neighbours.js';
import * as nexthops from './nexthops.js';
import * as routes from './routes.js';
import type { BatchFailure, MutationBatch } from './handle.js';
import type { FdbSpec, NeighbourSpec, NexthopSpec, RouteSpec } from './types.js';

export type { BatchFailure } from './handle.js';

/**
 * Mutations collected to be sent together (Netlink.batch()): the same requests, in the same order
 * and datagrams, as the same calls on the Netlink handle, but one promise for all of them rather
 * than one each. Each mutation carries a token of the caller's, handed back with its error.
 * A spec that cannot be encoded (an invalid address, say) fails like a refused one.
 */
export class NetlinkBatch<T> implements MutationBatch<T> {
  private readonly requests: MutationRequest[] = [];
  private readonly tokens: T[] = [];
  private readonly invalid: BatchFailure<T>[] = [];

  constructor(private readonly ch: RtnlChannel) {}

  /** Mutations added so far. */
  get size(): number {
    return this.requests.length + this.invalid.length;
  }

  replaceNeighbour(spec: NeighbourSpec, token: T): this { return this.add(() => neighbours.replaceNeighbourRequest(spec), token); }
  deleteNeighbour(spec: { index: number; ip: string }, token: T): this { return this.add(() => neighbours.deleteNeighbourRequest(spec), token); }
  appendFdb(spec: FdbSpec, token: T): this { return this.add(() => neighbours.appendFdbRequest(spec), token); }
  replaceFdb(spec: FdbSpec, token: T): this { return this.add(() => neighbours.replaceFdbRequest(spec), token); }
  deleteFdb(spec: { index: number; mac: string; dst?: string | undefined }, token: T): this { return this.add(() => neighbours.deleteFdbRequest(spec), token); }
  replaceRoute(spec: RouteSpec, token: T): this { return this.add(() => routes.replaceRouteRequest(spec), token); }
  addRoute(spec: RouteSpec, token: T): this { return this.add(() => routes.addRouteRequest(spec), token); }
  deleteRoute(spec: RouteSpec, token: T): this { return this.add(() => routes.deleteRouteRequest(spec), token); }
  addNexthop(spec: NexthopSpec, token: T): this { return this.add(() => nexthops.addNexthopRequest(spec), token); }
  replaceNexthop(spec: NexthopSpec, token: T): this { return this.add(() => nexthops.replaceNexthopRequest(spec), token); }
  deleteNexthop(id: number, token: T): this { return this.add(() => nexthops.deleteNexthopRequest(id), token); }

  /** Sends everything added; resolves, once the kernel has answered all, with the failures. */
  async commit(): Promise<BatchFailure<T>[]> {
    const errors = await this.ch.mutateAll(this.requests);
    const failures = [...this.invalid];
    for (const [i, error] of errors) failures.push({ token: this.tokens[i]!, error });
    return failures;
  }

  private add(build: () => MutationRequest, token: T): this {
    let request: MutationRequest;
    try {
      request = build();
    } catch (error) {
      this.invalid.push({ token, error: error as Error });
      return this;
    }
    this.requests.push(request);
    this.tokens.push(token);
    return this;
  }
}
