import type { CniRequest } from '../context.js';
import { CniCode, CniError } from '../spec/errors.js';
import { requireVersionFor } from '../spec/versions.js';
import { readSubnetState } from '../subnet-state.js';

/**
 * STATUS (SPEC.md 1.1 "STATUS"): can ADD work now? Only with a lease: without the subnet file
 * there is no address to give, so code 50 (containerd then keeps the node's network NotReady).
 * DEL keeps working either way.
 */
export function status(req: CniRequest): void {
  requireVersionFor('STATUS', req.conf.cniVersion, '1.1.0');
  try {
    readSubnetState(req.conf.subnetFile);
  } catch (err) {
    throw new CniError(CniCode.UNAVAILABLE, `twill cannot add pods: ${(err as Error).message}`, undefined, { cause: err });
  }
}
