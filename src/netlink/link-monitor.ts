import { EventEmitter } from 'node:events';
import rawNetlink from 'netlink/dist/raw.js'; // the raw socket alone, as channel.ts says
import * as C from './constants.js';
import { findNetlinkSocketFd } from './channel.js';
import {
  getsockoptBuffer, NETLINK_NO_ENOBUFS, setsockoptInt, SK_MEMINFO_DROPS, SK_MEMINFO_VARS, SO_MEMINFO, SO_RCVBUFFORCE, SOL_NETLINK, SOL_SOCKET,
} from './libc.js';
import { parseLink } from './links.js';
import { parseFdb, parseNeighbour } from './neighbours.js';
import { parseNexthop } from './nexthops.js';
import { parseRoute } from './routes.js';
import type { KernelDeletion, LinkWatch, LinkWatchEvents, WatchOptions } from './handle.js';

const { RawNetlinkSocket } = rawNetlink;
const NETLINK_ROUTE = 0;
/** rtnetlink multicast groups (enum rtnetlink_groups, include/uapi/linux/rtnetlink.h). */
const RTNLGRP_LINK = 1;
const RTNLGRP_NEIGH = 3;
const RTNLGRP_IPV4_ROUTE = 7;
const RTNLGRP_IPV6_ROUTE = 11;
const RTNLGRP_NEXTHOP = 32;
const NLMSG_HDRLEN = 16;
const RECEIVE_BUFFER = 8 * 1024 * 1024;

export type { LinkEvent } from './handle.js';

/**
 * Kernel notifications of one namespace, from a socket subscribed to rtnetlink multicast groups:
 * link changes always (RTNLGRP_LINK), and with `deletions` deleted routes, neighbours, FDB entries
 * and nexthops too. Lets a backend notice at once that its device went away or down, or that an
 * entry of its was deleted, instead of at the next periodic resync (Calico's Felix works the same
 * way). Only deletions, and new routes of other protocols, are parsed: the notifications of new
 * entries (every ARP state change, every route Twill writes itself) are skipped by their header.
 * Emits events; never logs.
 */
export class LinkMonitor extends EventEmitter<LinkWatchEvents> implements LinkWatch {
  private readonly raw: InstanceType<typeof RawNetlinkSocket>;
  private readonly fd: number;
  private drops = 0;
  private dropCheck: NodeJS.Immediate | undefined;

  /** Construct inside the target namespace (Netlink.watchLinks does that). */
  constructor(options: WatchOptions = {}) {
    super();
    this.raw = new RawNetlinkSocket(NETLINK_ROUTE, { recvBufferSize: 1 << 20, sendBufferSize: 1 << 16 });
    try {
      this.fd = findNetlinkSocketFd(this.raw.address().port);
      // A burst of Twill's own writes (15,000 notifications for 5,000 leases) can overflow even a
      // large buffer. The kernel would then fail the next recvmsg with ENOBUFS, and the netlink
      // library aborts the process on that error (its ErrnoException throws in the poll
      // handler). So overruns are only counted (NETLINK_NO_ENOBUFS) and read from the socket's
      // drop counter after each read: a drop is reported as 'error', and the owner resyncs.
      setsockoptInt(this.fd, SOL_NETLINK, NETLINK_NO_ENOBUFS, 1);
      try { setsockoptInt(this.fd, SOL_SOCKET, SO_RCVBUFFORCE, RECEIVE_BUFFER); } catch { /* keep 1 MiB (no CAP_NET_ADMIN) */ }
    } catch (err) {
      this.raw.close();
      throw err;
    }
    this.raw.addMembership(RTNLGRP_LINK);
    if (options.deletions) for (const group of [RTNLGRP_NEIGH, RTNLGRP_IPV4_ROUTE, RTNLGRP_IPV6_ROUTE, RTNLGRP_NEXTHOP]) this.raw.addMembership(group);
    this.raw.on('message', (buf: Buffer) => this.receive(buf));
    this.raw.on('error', (err: Error) => this.emit('error', err));
    this.raw.unref();
  }

  close(): void {
    if (this.dropCheck) clearImmediate(this.dropCheck);
    this.dropCheck = undefined;
    this.raw.close();
  }

  /** Notifications the kernel dropped on this socket since it was opened (its buffer was full). */
  droppedSoFar(): number {
    return getsockoptBuffer(this.fd, SOL_SOCKET, SO_MEMINFO, 4 * SK_MEMINFO_VARS).readUInt32LE(4 * SK_MEMINFO_DROPS);
  }

  /** Once per turn of the event loop with reads: did the kernel drop any since the last look? */
  private scheduleDropCheck(): void {
    this.dropCheck ??= setImmediate(() => {
      this.dropCheck = undefined;
      let drops: number;
      try {
        drops = this.droppedSoFar();
      } catch {
        return; // closed meanwhile
      }
      if (drops === this.drops) return;
      const lost = drops - this.drops;
      this.drops = drops;
      this.emit('error', Object.assign(new Error(`${lost} kernel notifications dropped (receive buffer full)`), { code: 'ENOBUFS' }));
    });
  }

  private receive(buf: Buffer): void {
    this.scheduleDropCheck();
    for (let off = 0; off + NLMSG_HDRLEN <= buf.length; ) {
      const len = buf.readUInt32LE(off);
      if (len < NLMSG_HDRLEN || off + len > buf.length) break;
      const type = buf.readUInt16LE(off + 4);
      if (type === C.RTM_NEWLINK || type === C.RTM_DELLINK) {
        const link = parseLink(Buffer.from(buf.subarray(off + NLMSG_HDRLEN, off + len)));
        this.emit('link', { type: type === C.RTM_NEWLINK ? 'new' : 'deleted', link });
      } else if (type === C.RTM_DELROUTE || type === C.RTM_DELNEIGH || type === C.RTM_DELNEXTHOP
        || (type === C.RTM_NEWROUTE && len >= NLMSG_HDRLEN + RTMSG_LEN && isForeignMainRoute(buf, off + NLMSG_HDRLEN))) {
        const deletion = parseDeletion(type, buf.subarray(off + NLMSG_HDRLEN, off + len));
        if (deletion !== undefined) this.emit('deleted', deletion);
      }
      off += (len + 3) & ~3;
    }
  }
}

/** struct rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, flags (u32). */
const RTMSG_LEN = 12;

/**
 * From the header alone: a new route of a protocol other than Twill's, in the main table (a
 * table id above 255 says RT_TABLE_UNSPEC here and the real one in RTA_TABLE). Twill's own
 * writes, thousands in a burst, are skipped without parsing.
 */
function isForeignMainRoute(buf: Buffer, at: number): boolean {
  const table = buf.readUInt8(at + 4);
  return buf.readUInt8(at + 5) !== C.RTPROT_TWILL && (table === C.RT_TABLE_MAIN || table === C.RT_TABLE_UNSPEC);
}

/**
 * The deleted entry (or, for RTM_NEWROUTE, the foreign route) a notification names, or undefined
 * for one of no interest (another table, a malformed message).
 */
function parseDeletion(type: number, data: Buffer): KernelDeletion | undefined {
  try {
    if (type === C.RTM_DELROUTE || type === C.RTM_NEWROUTE) {
      const route = parseRoute(data);
      if (route.table !== C.RT_TABLE_MAIN) return undefined;
      return type === C.RTM_DELROUTE ? { kind: 'route', route } : { kind: 'foreign-route', route };
    }
    if (type === C.RTM_DELNEIGH) {
      return data.readUInt8(0) === C.AF_BRIDGE ? { kind: 'fdb', entry: parseFdb(data) } : { kind: 'neighbour', neighbour: parseNeighbour(data) };
    }
    const id = parseNexthop(data).id;
    return id === 0 ? undefined : { kind: 'nexthop', id };
  } catch {
    return undefined; // a truncated message: the periodic resync still covers what it named
  }
}
