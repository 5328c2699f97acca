import { TwillError } from '../core/errors.js';

/**
 * Why the pod address allocator refused:
 * - EXHAUSTED: every candidate address of the subnet is taken;
 * - DUPLICATE: (containerId, ifname) already has an attachment (a repeated ADD without a DEL);
 * - UNAVAILABLE: the specific address asked for is taken;
 * - IO: the data directory could not be read or written, or holds a malformed attachment;
 * - STRAY: an entry of the data directory is not what its name says (a directory or FIFO named
 *   like an address, a file where a directory belongs, a name no allocator writes). Strays are
 *   skipped and reported (PodIpamOptions.onStray), never a reason to fail a release or a GC.
 */
export type PodIpamErrorCode = 'EXHAUSTED' | 'DUPLICATE' | 'UNAVAILABLE' | 'IO' | 'STRAY';

export class PodIpamError extends TwillError {
  // `declare`: only narrows the type. A field declaration would redefine `code` as undefined
  // after super() ran (ES2022 class fields).
  declare readonly code: PodIpamErrorCode;

  constructor(code: PodIpamErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** The errno code of a Node.js system error ("ENOENT"), or undefined for anything else. */
export function errnoOf(err: unknown): string | undefined {
  if (err instanceof Error && 'code' in err && typeof err.code === 'string') return err.code;
  return undefined;
}

/** Wraps an unexpected file system failure, naming what was being done to which path. */
export function ioError(action: string, path: string, err: unknown): PodIpamError {
  if (err instanceof PodIpamError) return err;
  const reason = err instanceof Error ? err.message : String(err);
  return new PodIpamError('IO', `cannot ${action} ${path}: ${reason}`, { cause: err });
}
