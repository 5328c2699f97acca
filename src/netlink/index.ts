/**
 * Twill's only door to the kernel's network configuration. Nothing outside src/netlink imports
 * `netlink` or `koffi`; everything else uses what this file exports.
 */
export { Netlink, withNetns } from './netlink.js';
export type { NetlinkHandle, MutationBatch, BatchFailure, LinkWatch, LinkWatchEvents, LinkEvent, LinkRef, KernelDeletion, WatchOptions } from './handle.js';
export type { NetlinkBatch } from './batch.js';
export { createNetns, deleteNetns, enterNetns, listNetns, netnsPath, runInNetns, currentNetnsId, NETNS_RUN_DIR } from './netns.js';
export { NetlinkError, UnsupportedByKernelError, isNetlinkError } from './errors.js';
export { listNexthopsIfSupported } from './nexthops.js';
export { ensureAddress, ensureBridge, ensureIpip, ensureVxlan, IncompatibleLinkError, type EnsureOptions, type EnsureResult } from './ensure.js';
export { readSysctl, writeSysctl } from './sysctl.js';
export { LinkMonitor } from './link-monitor.js';
export { RTPROT_TWILL, RT_TABLE_MAIN, type RouteScope } from './constants.js';
export type { RouteFilter } from './routes.js';
export type { AddAddressOptions } from './addresses.js';
export type * from './types.js';
export { connectTcp, TcpConnectError, type ConnectTcpOptions } from './tcp-connect.js';
export { listenTcp, type ListenTcpOptions, type TcpListener } from './tcp-listen.js';
export { setTcpTtl, readTcpTtl, type TcpTransportOptions } from './tcp-socket.js';
export { TCP_MD5SIG_MAXKEYLEN } from './tcp-md5.js';
export { peerCredentials, type PeerCredentials } from './peer-credentials.js';
export { exitNow } from './libc.js';
