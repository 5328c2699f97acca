import { getsockoptBuffer, SO_PEERCRED, SOL_SOCKET } from './libc.js';

/** Who is at the other end of a connected unix socket (struct ucred, unix(7) SO_PEERCRED). */
export interface PeerCredentials {
  /** In the caller's PID namespace; 0 when the peer's process is not visible there. */
  readonly pid: number;
  readonly uid: number;
  readonly gid: number;
}

/**
 * The credentials the kernel recorded when the peer connected (or created the socket pair): they
 * cannot be forged by the peer, unlike anything it sends. Node has no API for SO_PEERCRED, hence
 * this layer. `fd` is a connected AF_UNIX socket's descriptor.
 */
export function peerCredentials(fd: number): PeerCredentials {
  const ucred = getsockoptBuffer(fd, SOL_SOCKET, SO_PEERCRED, 12, 'getsockopt(SO_PEERCRED)');
  return { pid: ucred.readInt32LE(0), uid: ucred.readUInt32LE(4), gid: ucred.readUInt32LE(8) };
}
