import { PodIpamError, type PodIpam } from '../../ipam/pod-ipam.js';
import type { Link, Netlink } from '../../netlink/index.js';
import type { CniRequest, PluginContext } from '../context.js';
import { CniCode, CniError } from '../spec/errors.js';
import type { SubnetState } from '../subnet-state.js';

/** Everything an ADD has gathered before it wires the pod; shared with the repeated-ADD path. */
export interface AddScope {
  readonly ctx: PluginContext;
  readonly req: CniRequest;
  readonly state: SubnetState;
  readonly bridge: Link;
  /** Netlink in the pod's namespace. */
  readonly pod: Netlink;
  readonly ipam: PodIpam;
  readonly mtu: number;
  readonly ipMasq: boolean;
}

/** Stops an ADD whose deadline passed (deadline.ts): the caller's catch then undoes what it did. */
export function checkpoint(req: CniRequest): void {
  req.signal?.throwIfAborted();
}

/** Maps the allocator's typed failures to CNI codes. */
export function ipamToCni(err: unknown): unknown {
  if (!(err instanceof PodIpamError)) return err;
  const code = {
    EXHAUSTED: CniCode.ADDRESSES_EXHAUSTED, DUPLICATE: CniCode.DUPLICATE_ATTACHMENT, UNAVAILABLE: CniCode.ADDRESS_UNAVAILABLE,
    IO: CniCode.IO_FAILURE, STRAY: CniCode.IO_FAILURE,
  }[err.code];
  return new CniError(code, err.message, undefined, { cause: err });
}
