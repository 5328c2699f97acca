/**
 * Builds the etcd3 client from StoreOptions: endpoints, TLS files, username/password, and the
 * fault handling Twill wants instead of etcd3's defaults:
 *
 * - No circuit breaker. etcd3's default opens a per-host breaker for 5 s after 3 failures, so
 *   every call fails for up to 5 s after etcd is back. Callers retry with their own backoff.
 * - Retries only across hosts: with N endpoints a recoverable failure is tried on the next host,
 *   up to N attempts; with one endpoint, none. A blind retry of a transaction whose reply was lost
 *   would misreport a compare-and-swap that actually succeeded as a lost race.
 * - Watch reconnects 100 ms doubling to 5 s (etcd3's default grows to 30 s).
 * - gRPC keepalive pings on open streams, so a frozen or partitioned etcd breaks the watch (and it
 *   reconnects) instead of leaving it silently dead. etcd refuses pings more often than every 5 s
 *   (--grpc-keepalive-min-time) and pings without streams, hence 10 s and no permit-without-calls.
 *
 * Per-call deadlines are not set here (etcd3 would apply them per attempt); the store computes one
 * absolute deadline per operation.
 */
import { readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';
import { Etcd3, isRecoverableError, type IOptions } from 'etcd3';
import { InvalidArgumentError } from '../core/errors.js';
import { WatchReconnectBackoff } from './backoff.js';
import { StoreError } from './errors.js';
import type { StoreOptions } from './types.js';

type FaultHandling = NonNullable<IOptions['faultHandling']>;
type Policy = NonNullable<FaultHandling['global']>;

/** A cockatiel-shaped policy (etcd3's IPolicy) that runs `fn`, retrying recoverable errors up to `attempts` times. */
function attemptsPolicy(attempts: number): Policy {
  const noEvent = (): { dispose(): void } => ({ dispose: () => undefined });
  return {
    _altReturn: undefined as never,
    onSuccess: noEvent,
    onFailure: noEvent,
    async execute(fn, signal = new AbortController().signal) {
      for (let attempt = 1; ; attempt++) {
        try {
          return await fn({ signal });
        } catch (err) {
          if (attempt >= attempts || !(err instanceof Error && isRecoverableError(err))) throw err;
        }
      }
    },
  };
}

export const DEFAULT_CALL_TIMEOUT_MS = 5000;

export interface EtcdClientSettings {
  readonly client: Etcd3;
  readonly endpoints: readonly string[];
  readonly callTimeoutMs: number;
}

function readTlsFile(what: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new StoreError('ESTORE_TLS', `cannot read the TLS ${what} file ${path}: ${err instanceof Error ? err.message : String(err)}`, { op: 'connect', cause: err });
  }
}

function checkEndpoints(endpoints: readonly string[]): void {
  // Checked as unknown: options may come from JSON or flags, whatever the types say.
  const list: unknown = endpoints;
  if (!Array.isArray(list) || list.length === 0) throw new InvalidArgumentError('etcd endpoints', endpoints, 'need at least one');
  for (const e of list as unknown[]) {
    if (typeof e !== 'string' || !/^https?:\/\/[^/\s]+\/?$/.test(e)) {
      throw new InvalidArgumentError('etcd endpoint', e, 'expected http://host:port or https://host:port');
    }
  }
  const secure = endpoints.filter((e) => e.startsWith('https://')).length;
  if (secure !== 0 && secure !== endpoints.length) throw new InvalidArgumentError('etcd endpoints', endpoints, 'mixes http:// and https://');
}

export function createEtcdClient(opts: StoreOptions): EtcdClientSettings {
  checkEndpoints(opts.endpoints);
  const callTimeoutMs = opts.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
  if (!Number.isFinite(callTimeoutMs) || callTimeoutMs <= 0) throw new InvalidArgumentError('etcd call timeout', callTimeoutMs, 'must be a positive number of ms');
  // etcd3 wants "host:port" without a trailing slash; its own "https://" check decides TLS.
  const hosts = opts.endpoints.map((e) => e.replace(/\/$/, ''));

  const options: IOptions = {
    hosts,
    faultHandling: {
      host: () => attemptsPolicy(1),
      global: attemptsPolicy(hosts.length),
      watchBackoff: new WatchReconnectBackoff(),
    },
    grpcOptions: {
      'grpc.keepalive_time_ms': 10_000,
      'grpc.keepalive_timeout_ms': 5_000,
      'grpc.initial_reconnect_backoff_ms': 100,
      'grpc.max_reconnect_backoff_ms': 5_000,
    },
  };

  const tls = opts.tls;
  if (tls?.caFile || tls?.certFile || tls?.keyFile) {
    if (Boolean(tls.certFile) !== Boolean(tls.keyFile)) {
      throw new InvalidArgumentError('etcd TLS client certificate', tls, 'give both the certificate and the key file, or neither');
    }
    options.credentials = {
      // Without a CA file, trust Node's bundled roots (what https:// alone would do).
      rootCertificate: tls.caFile ? readTlsFile('CA', tls.caFile) : Buffer.from(rootCertificates.join('\n')),
      ...(tls.certFile ? { certChain: readTlsFile('certificate', tls.certFile) } : {}),
      ...(tls.keyFile ? { privateKey: readTlsFile('key', tls.keyFile) } : {}),
    };
  }

  if (opts.username !== undefined || opts.password !== undefined) {
    if (!opts.username || opts.password === undefined) throw new InvalidArgumentError('etcd credentials', opts.username ?? '', 'give both username and password');
    options.auth = {
      username: opts.username,
      password: opts.password,
      // The token exchange must not hang on a dead etcd either.
      callOptions: () => ({ deadline: Date.now() + callTimeoutMs }),
    };
  }

  return { client: new Etcd3(options), endpoints: opts.endpoints, callTimeoutMs };
}
