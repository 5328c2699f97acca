import { HostRequirementError, TwillError } from '../../core/errors.js';
import { ensureIpip, UnsupportedByKernelError, type Link, type NetlinkHandle } from '../../netlink/index.js';
import { DEVICE_NAME } from './config.js';

/** twill.ipip as Twill wants it. */
export interface IpipDeviceSpec {
  /** Source address of the tunnel: the external interface's IPv4 address. */
  readonly localIp: string;
  /** The external interface: encapsulated packets leave by it. */
  readonly underlayIndex: number;
  readonly mtu: number;
}

/**
 * The kernel cannot create IPIP devices. Said in one line that names the module and how to get
 * it, because that is all an operator needs: twilld logs it as is, without a stack trace.
 */
export class IpipUnsupportedError extends HostRequirementError {
  constructor(cause: unknown) {
    super('EKERNEL_NO_IPIP',
      'the ipip backend needs the kernel\'s IPIP tunnel driver (module "ipip"), which this kernel lacks: ' +
      'load it with `modprobe ipip` (it comes with the kernel\'s modules package), or choose the vxlan or host-gw backend', { cause });
  }
}

/**
 * Makes twill.ipip exist as specified and be up. The name is Twill's own, so a twill.ipip that
 * differs (another local address, another kind) is recreated; any other IPIP device, the
 * kernel's tunl0 included, is never touched.
 */
export async function ensureIpipDevice(nl: NetlinkHandle, spec: IpipDeviceSpec): Promise<{ link: Link; changes: readonly string[] }> {
  try {
    return await ensureIpip(nl, { name: DEVICE_NAME, localIp: spec.localIp, underlayIndex: spec.underlayIndex, mtu: spec.mtu, up: true }, { recreate: true });
  } catch (err) {
    if (err instanceof UnsupportedByKernelError) throw new IpipUnsupportedError(err);
    throw (await conflictOf(nl, spec, err)) ?? err;
  }
}

/**
 * The kernel keeps one IPIP tunnel per local address, remote address and underlay device: while
 * another device bound to the same interface has local 198.18.0.1 and no remote, creating
 * twill.ipip fails with EEXIST, and the raw error does not say which device is in the way. This
 * names it.
 */
async function conflictOf(nl: NetlinkHandle, spec: IpipDeviceSpec, cause: unknown): Promise<TwillError | undefined> {
  // The kernel's key (ip_tunnel_find): local and remote address and underlay device. flanneld's
  // flannel.ipip has no underlay device, so it does not collide with twill.ipip, which has one.
  const other = (await nl.listLinks().catch(() => [])).find((l) =>
    l.name !== DEVICE_NAME && l.kind === 'ipip' && l.ipip?.localIp === spec.localIp && (l.ipip.underlayIndex ?? 0) === spec.underlayIndex);
  if (!other) return undefined;
  return new TwillError('EIPIP_CONFLICT',
    `cannot create ${DEVICE_NAME}: ${other.name} already is an IPIP tunnel from ${spec.localIp} on the same interface, and the kernel allows only one per local address, remote address and interface ` +
    `(once whatever made it is stopped, delete it with \`ip link delete ${other.name}\`)`, { cause });
}
