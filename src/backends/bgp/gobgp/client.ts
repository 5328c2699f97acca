import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client, credentials, Metadata, type ClientReadableStream, type MethodDefinition, type ServiceError } from '@grpc/grpc-js';
import { loadSync, type PackageDefinition } from '@grpc/proto-loader';
import { TwillError } from '../../../core/errors.js';
import type { DefinedSet, Family, Global, Path, Peer, Policy, PolicyAssignment, TableType, WatchEventRequest, WatchEventResponse } from './api.js';

/** Every unary call gets this long; gobgpd answers them from memory. */
const UNARY_DEADLINE_MS = 10_000;
/** ListPeer and ListPath stream a whole table (10,000s of paths at most here). */
const LIST_DEADLINE_MS = 60_000;

const PROTO_DIR = join('proto', 'gobgp', 'api');
const PROTO_FILES = ['gobgp.proto', 'attribute.proto'];
const SERVICE = 'apipb.GobgpApi';

/**
 * proto/gobgp/api/ of the install, found by walking up from this module: src/backends/bgp/gobgp/
 * under vitest, dist/src/backends/bgp/gobgp/ in a build or the image (package.json "files" and the
 * Dockerfile ship proto/ beside dist/).
 */
export function protoDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, PROTO_DIR);
    if (existsSync(join(candidate, PROTO_FILES[0]!))) return candidate;
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`twill: ${PROTO_DIR}/ not found above ${import.meta.url}`);
    dir = parent;
  }
}

let definition: PackageDefinition | undefined;

/**
 * The apipb definitions, loaded once. `json` makes proto-loader pack an object with '@type' into a
 * google.protobuf.Any and unpack an Any it knows back into one (api.ts); attribute.proto is
 * loaded for those types only.
 */
export function gobgpDefinition(): PackageDefinition {
  definition ??= loadSync(PROTO_FILES, {
    includeDirs: [protoDir()],
    keepCase: true,
    longs: Number,
    enums: String,
    defaults: true,
    oneofs: true,
    json: true,
  });
  return definition;
}

/** A failed GoBGP API call; `grpcCode` is the gRPC status (14 UNAVAILABLE: gobgpd is not reachable). */
export class GobgpApiError extends TwillError {
  readonly grpcCode: number | undefined;

  constructor(method: string, target: string, err: Partial<ServiceError>) {
    super('EGOBGP', `gobgpd ${method} (${target}): ${err.details || err.message || 'failed'}`, { cause: err });
    this.grpcCode = err.code;
  }
}

type AnyMethod = MethodDefinition<object, object>;

/**
 * The GobgpApi calls Twill makes, each with a deadline. `target` is a gRPC target:
 * "127.0.0.1:50051" (gobgpd's --api-hosts default is :50051) or "unix:///run/gobgpd.sock". The
 * API has no authentication: gobgpd must listen where only this host can reach it.
 */
export class GobgpClient {
  readonly #client: Client;
  readonly #methods: Readonly<Record<string, AnyMethod>>;

  constructor(readonly target: string) {
    this.#methods = gobgpDefinition()[SERVICE] as unknown as Record<string, AnyMethod>;
    this.#client = new Client(target, credentials.createInsecure(), {
      // gobgpd is local: after it restarts, reconnect within seconds, not grpc-js's 120 s at most.
      'grpc.initial_reconnect_backoff_ms': 500,
      'grpc.max_reconnect_backoff_ms': 5_000,
    });
  }

  async getBgp(): Promise<Global> {
    const res = await this.unary<{ global: Global | null }>('GetBgp', {});
    return res.global ?? {};
  }

  async startBgp(global: Global): Promise<void> {
    await this.unary('StartBgp', { global });
  }

  async addPeer(peer: Peer): Promise<void> {
    await this.unary('AddPeer', { peer });
  }

  /** Sends the peer a Cease (RFC 4486 subcode 3, Peer De-configured) and forgets it. */
  async deletePeer(address: string): Promise<void> {
    await this.unary('DeletePeer', { address });
  }

  /** Lets a peer held down (admin state DOWN or PFX_CT) connect again. */
  async enablePeer(address: string): Promise<void> {
    await this.unary('EnablePeer', { address });
  }

  /** Every peer with its state and counters (but for "advertised": see adjOutSize). */
  async listPeers(): Promise<Peer[]> {
    const res = await this.collect<{ peer: Peer | null }>('ListPeer', {});
    return res.flatMap((r) => (r.peer ? [r.peer] : []));
  }

  /**
   * Adds a local path to the global RIB; one with the same NLRI replaces it. The uuid gobgpd
   * answers with is not kept: DeletePath with the same path works as well, and also for paths
   * an earlier twilld added.
   */
  async addPath(path: Path): Promise<void> {
    await this.unary('AddPath', { table_type: 'GLOBAL', path });
  }

  /** Withdraws the local path with this NLRI (gobgpd wants its next hop attribute too, any value). */
  async deletePath(path: Path): Promise<void> {
    await this.unary('DeletePath', { table_type: 'GLOBAL', family: path.family, path });
  }

  /** The paths of a table: GLOBAL (`name` empty) or a peer's ADJ_IN (`name` its address). */
  async listPaths(table: TableType, name: string, family: Family): Promise<Path[]> {
    const res = await this.collect<{ destination: { paths: Path[] } | null }>('ListPath', { table_type: table, name, family });
    return res.flatMap((r) => r.destination?.paths ?? []);
  }

  /**
   * How many prefixes gobgpd sends the peer: its Adj-RIB-Out after export rules. ListPeer's
   * "advertised" (enableAdvertised) counts before them: the peer's own routes too, which gobgpd
   * does not send back to it.
   */
  async adjOutSize(peer: string, family: Family): Promise<number> {
    const res = await this.unary<{ num_destination: number }>('GetTable', { table_type: 'ADJ_OUT', family, name: peer });
    return res.num_destination;
  }

  /** The PREFIX defined set of this name, or undefined when gobgpd has none. */
  async prefixSet(name: string): Promise<DefinedSet | undefined> {
    const res = await this.collect<{ defined_set: DefinedSet | null }>('ListDefinedSet', { defined_type: 'PREFIX', name });
    return res.find((r) => r.defined_set?.name === name)?.defined_set ?? undefined;
  }

  /**
   * Creates the set, or adds its prefixes to the one of that name gobgpd has. An entry it has
   * already is added again (a duplicate: it matches the same, and removal takes both).
   */
  async addDefinedSet(set: DefinedSet): Promise<void> {
    await this.unary('AddDefinedSet', { defined_set: set });
  }

  /** Removes these prefixes from the set (the set stays, also when empty). */
  async deleteFromDefinedSet(set: DefinedSet): Promise<void> {
    await this.unary('DeleteDefinedSet', { defined_set: set, all: false });
  }

  /** The policy of this name, with its statements, or undefined when gobgpd has none. */
  async policy(name: string): Promise<Policy | undefined> {
    const res = await this.collect<{ policy: Policy | null }>('ListPolicy', { name });
    return res.find((r) => r.policy?.name === name)?.policy ?? undefined;
  }

  /** Adds a policy with its statements (refused when one of their names exists already). */
  async addPolicy(policy: Policy): Promise<void> {
    await this.unary('AddPolicy', { policy, refer_existing_statements: false });
  }

  /**
   * Deletes the policy and its statements (those no other policy uses); refused while it is
   * assigned. (Deleting only some statements would leave them behind in gobgpd 3.10, in use by
   * nothing, their names taken.)
   */
  async deletePolicy(name: string): Promise<void> {
    await this.unary('DeletePolicy', { policy: { name }, all: true, preserve_statements: false });
  }

  /**
   * Makes these the policies of the table and direction, replacing what it had, with this
   * default. Paths already sent are not re-evaluated: only what gobgpd sends next is.
   */
  async setPolicyAssignment(assignment: PolicyAssignment): Promise<void> {
    await this.unary('SetPolicyAssignment', { assignment });
  }

  /** The event stream; the caller cancels it. No deadline: it lives as long as the driver. */
  watch(request: WatchEventRequest): ClientReadableStream<WatchEventResponse> {
    const m = this.method('WatchEvent');
    return this.#client.makeServerStreamRequest(m.path, m.requestSerialize, m.responseDeserialize, request, new Metadata(), {});
  }

  close(): void {
    this.#client.close();
  }

  private method(name: string): AnyMethod {
    const m = this.#methods[name];
    if (!m) throw new Error(`twill: ${name} is not in proto/gobgp/api/gobgp.proto`);
    return m;
  }

  private unary<T extends object = object>(name: string, request: object): Promise<T> {
    const m = this.method(name);
    return new Promise<T>((resolve, reject) => {
      this.#client.makeUnaryRequest(m.path, m.requestSerialize, m.responseDeserialize, request, new Metadata(),
        { deadline: Date.now() + UNARY_DEADLINE_MS }, (err, res) => {
          if (err) reject(new GobgpApiError(name, this.target, err));
          else resolve(res as T);
        });
    });
  }

  private collect<T extends object>(name: string, request: object): Promise<T[]> {
    const m = this.method(name);
    return new Promise<T[]>((resolve, reject) => {
      const out: T[] = [];
      const stream = this.#client.makeServerStreamRequest(m.path, m.requestSerialize, m.responseDeserialize, request, new Metadata(),
        { deadline: Date.now() + LIST_DEADLINE_MS });
      stream.on('data', (item: T) => out.push(item));
      stream.on('error', (err: ServiceError) => reject(new GobgpApiError(name, this.target, err)));
      stream.on('end', () => resolve(out));
    });
  }
}
