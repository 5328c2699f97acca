import { TwillError } from '../core/errors.js';
import { errnoName } from './errno.js';

export interface NetlinkErrorDetails {
  /** The operation Twill attempted, e.g. "link.create" or "route.replace". */
  readonly op: string;
  /** Positive errno as the kernel returned it (EEXIST = 17). */
  readonly errno: number;
  /** The kernel's extended-ack message (NLMSGERR_ATTR_MSG), when it gave one. */
  readonly extack?: string | undefined;
  /** What the operation was about, e.g. an interface name or a route prefix. */
  readonly target?: string | undefined;
}

/**
 * A failure reported by the kernel over netlink (or by a syscall this layer makes). `code` is the
 * errno name, so callers branch on `err.code === 'EEXIST'` rather than on message text.
 */
export class NetlinkError extends TwillError {
  readonly op: string;
  readonly errno: number;
  readonly extack: string | undefined;
  readonly target: string | undefined;

  constructor(details: NetlinkErrorDetails, hint?: string) {
    const name = errnoName(details.errno);
    const parts = [`${details.op}${details.target ? ` ${details.target}` : ''} failed: ${name}`];
    if (details.extack) parts.push(`(kernel: ${details.extack})`);
    if (hint) parts.push(`- ${hint}`);
    super(name, parts.join(' '));
    this.op = details.op;
    this.errno = details.errno;
    this.extack = details.extack;
    this.target = details.target;
  }
}

/** The kernel does not support what was asked (a link kind whose module is not built, say). */
export class UnsupportedByKernelError extends NetlinkError {
  readonly feature: string;

  constructor(details: NetlinkErrorDetails, feature: string) {
    super(details, `this kernel lacks ${feature} (module not built or not loaded)`);
    this.feature = feature;
  }
}

export function isNetlinkError(err: unknown, code?: string): err is NetlinkError {
  return err instanceof NetlinkError && (code === undefined || err.code === code);
}
