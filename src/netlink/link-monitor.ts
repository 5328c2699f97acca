import { EventEmitter } from 'node:events';
import netlinkPkg from 'netlink';
import * as C from './constants.js';
import { parseLink } from './links.js';
import type { LinkWatch, LinkWatchEvents } from './handle.js';

const { RawNetlinkSocket } = netlinkPkg;
const NETLINK_ROUTE = 0;
/** RTNLGRP_LINK (include/uapi/linux/rtnetlink.h): notifications of link changes. */
const RTNLGRP_LINK = 1;

export type { LinkEvent } from './handle.js';

/**
 * Kernel notifications of link changes in one namespace, from a socket subscribed to the
 * RTNLGRP_LINK multicast group. Lets a backend notice at once that its device was deleted or
 * went down, instead of at the next periodic resync. Emits events; never logs.
 */
export class LinkMonitor extends EventEmitter<LinkWatchEvents> implements LinkWatch {
  private readonly raw: InstanceType<typeof RawNetlinkSocket>;

  /** Construct inside the target namespace (Netlink.watchLinks does that). */
  constructor() {
    super();
    this.raw = new RawNetlinkSocket(NETLINK_ROUTE, { recvBufferSize: 1 << 20, sendBufferSize: 1 << 16 });
    this.raw.addMembership(RTNLGRP_LINK);
    this.raw.on('message', (buf: Buffer) => this.receive(buf));
    this.raw.on('error', (err: Error) => this.emit('error', err));
    this.raw.unref();
  }

  close(): void {
    this.raw.close();
  }

  private receive(buf: Buffer): void {
    for (let off = 0; off + 16 <= buf.length; ) {
      const len = buf.readUInt32LE(off);
      if (len < 16 || off + len > buf.length) break;
      const type = buf.readUInt16LE(off + 4);
      if (type === C.RTM_NEWLINK || type === C.RTM_DELLINK) {
        const link = parseLink(Buffer.from(buf.subarray(off + 16, off + len)));
        this.emit('link', { type: type === C.RTM_NEWLINK ? 'new' : 'deleted', link });
      }
      off += (len + 3) & ~3;
    }
  }
}
