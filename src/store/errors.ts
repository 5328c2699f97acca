/**
 * StoreError: every failure the store reports, with a stable code and a `recoverable` flag, so the
 * agent decides "retry with backoff" versus "stop and tell the operator" without reading messages.
 * etcd3's own error classes (one per gRPC status, plus a few etcd ones it recognises by message)
 * are mapped here, in one place; the original is kept as `cause`.
 */
import {
  ClientClosedError,
  EtcdAuthenticationFailedError,
  EtcdInvalidAuthTokenError,
  EtcdLeaseInvalidError,
  EtcdPermissionDeniedError,
  EtcdWatchStreamEnded,
  GRPCDeadlineExceededError,
  GRPCUnauthenticatedError,
  GRPCUnavailableError,
  isRecoverableError,
} from 'etcd3';
import { TwillError } from '../core/errors.js';

export type StoreErrorCode =
  /** etcd unreachable, timed out, no leader: try again later. */
  | 'ESTORE_UNAVAILABLE'
  /** TLS handshake or certificate problem (wrong CA, missing client cert, unreadable file). */
  | 'ESTORE_TLS'
  /** Bad username/password, or the user may not touch these keys. */
  | 'ESTORE_AUTH'
  /** The etcd lease behind our subnet no longer exists: the subnet must be acquired again. */
  | 'ESTORE_LEASE_LOST'
  /** A watch could not continue because etcd compacted the revisions it needed. */
  | 'ESTORE_COMPACTED'
  /** The store was closed. */
  | 'ESTORE_CLOSED'
  /** Anything else etcd refused (a bug, or an etcd we do not understand). */
  | 'ESTORE_FAILED';

const RECOVERABLE: Record<StoreErrorCode, boolean> = {
  ESTORE_UNAVAILABLE: true,
  ESTORE_COMPACTED: true,
  ESTORE_TLS: false,
  ESTORE_AUTH: false,
  ESTORE_LEASE_LOST: false,
  ESTORE_CLOSED: false,
  ESTORE_FAILED: false,
};

export class StoreError extends TwillError {
  declare readonly code: StoreErrorCode;
  /** Retrying the same operation later may succeed (an outage), as opposed to a configuration problem. */
  readonly recoverable: boolean;
  /** What the store was doing, e.g. "createLease 10.244.3.0/24". */
  readonly op: string;

  constructor(code: StoreErrorCode, message: string, options: { op: string; cause?: unknown; recoverable?: boolean }) {
    super(code, message, { cause: options.cause });
    this.op = options.op;
    this.recoverable = options.recoverable ?? RECOVERABLE[code];
  }
}

export function isStoreError(err: unknown, code?: StoreErrorCode): err is StoreError {
  return err instanceof StoreError && (code === undefined || err.code === code);
}

export interface ErrorContext {
  readonly op: string;
  readonly endpoints: readonly string[];
}

/**
 * gRPC reports a failed TLS handshake as UNAVAILABLE, with OpenSSL's words only in the message
 * ("No connection established. Last error: Error: self-signed certificate in certificate chain").
 * Matching text is the only way to tell "wrong CA" from "etcd is down"; the patterns are OpenSSL's
 * and Node's stable verification error texts and codes.
 */
const TLS_PATTERNS = /certificate|self[- ]signed|SSL|TLS|handshake|alert|wrong version number|ERR_OSSL|ERR_TLS|CERT_|issuer|altnames/i;

/**
 * etcd auth refusals etcd3 has no class for, e.g. a request without credentials to an etcd with
 * auth enabled ("etcdserver: user name is empty", INVALID_ARGUMENT). etcd's texts (rpctypes).
 */
const AUTH_PATTERNS = /etcdserver: (user name is empty|authentication is not enabled|authentication failed|invalid auth token|permission denied|user name not found)/;

/** The message of an error and of its causes (gRPC wraps the socket error in its own). */
function messages(err: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = err, depth = 0; e !== undefined && e !== null && depth < 5; depth++) {
    parts.push(e instanceof Error ? e.message : typeof e === 'string' ? e : JSON.stringify(e) ?? typeof e);
    e = e instanceof Error ? e.cause : undefined;
  }
  // grpc-js ends its messages with an empty "Resolution note: "; OpenSSL's carry a timestamp line.
  return parts.join(': ').replace(/\.?\s*Resolution note:\s*$/, '').replace(/\s+/g, ' ').trim();
}

/** Says in plain words which side of the handshake refused. */
function tlsHint(detail: string): string {
  if (/unable to verify|self[- ]signed|local issuer|unable to get issuer|certificate signature failure/i.test(detail)) {
    return "etcd's server certificate does not verify against the CA file (wrong CA?)";
  }
  if (/bad certificate|certificate required|unknown ca|alert number 4[2268]/i.test(detail)) {
    return 'etcd rejected the client certificate (missing, or not signed by a CA etcd trusts)';
  }
  if (/altnames|does not match|hostname/i.test(detail)) return "etcd's certificate does not name this endpoint's host";
  if (/before secure TLS connection|wrong version number|packet length/i.test(detail)) return 'the endpoint does not speak TLS (http:// server behind an https:// endpoint?)';
  return 'check the CA file, the client certificate and key';
}

/** cockatiel (etcd3's fault handling) throws this when a circuit breaker is open. */
function isBrokenCircuit(err: unknown): boolean {
  return err instanceof Error && (err.name === 'BrokenCircuitError' || err.constructor.name === 'BrokenCircuitError');
}

/** Maps anything the etcd client threw into a StoreError (a StoreError passes through). */
export function toStoreError(err: unknown, ctx: ErrorContext): StoreError {
  if (err instanceof StoreError) return err;
  const where = ctx.endpoints.join(',');
  const detail = messages(err);
  const make = (code: StoreErrorCode, message: string): StoreError => new StoreError(code, message, { op: ctx.op, cause: err });

  if (err instanceof ClientClosedError) return make('ESTORE_CLOSED', `${ctx.op}: the store is closed`);
  if (err instanceof EtcdLeaseInvalidError) return make('ESTORE_LEASE_LOST', `${ctx.op}: the etcd lease no longer exists (${detail})`);
  if (
    err instanceof EtcdAuthenticationFailedError
    || err instanceof EtcdInvalidAuthTokenError
    || err instanceof EtcdPermissionDeniedError
    || err instanceof GRPCUnauthenticatedError
    || AUTH_PATTERNS.test(detail)
  ) {
    return make('ESTORE_AUTH', `${ctx.op}: etcd at ${where} refused the credentials or access to the keys: ${detail}`);
  }
  // Before "unavailable": a handshake failure arrives as UNAVAILABLE too.
  if (err instanceof Error && TLS_PATTERNS.test(detail)) {
    return make('ESTORE_TLS', `${ctx.op}: TLS handshake with etcd at ${where} failed: ${tlsHint(detail)}; ${detail}`);
  }
  if (
    err instanceof GRPCUnavailableError
    || err instanceof GRPCDeadlineExceededError
    || err instanceof EtcdWatchStreamEnded
    || isBrokenCircuit(err)
    || (err instanceof Error && isRecoverableError(err))
  ) {
    return make('ESTORE_UNAVAILABLE', `${ctx.op}: etcd at ${where} is unavailable: ${detail}`);
  }
  return make('ESTORE_FAILED', `${ctx.op}: etcd at ${where} failed: ${detail}`);
}
