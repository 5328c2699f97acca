/**
 * A scripted BGP peer for speaker tests: the messages it sends are built here, and what it
 * receives is decoded and recorded. It answers nothing by itself unless asked (rawPeer()), so a
 * test can stop at any step of a session: a bare TCP connection, an OPEN without a KEEPALIVE, a
 * NOTIFICATION in the middle of a table.
 *
 *   const peer = await rawPeer(port, { asn: 65002, holdTime: 30, gracefulRestart: 60 });
 *   peer.send(updateFrom({ prefixes: ['10.244.7.0/24'] }));
 *
 * Over loopback: connections come from 127.0.0.2 to a speaker listening on 127.0.0.1 (both are
 * local addresses on Linux), no root, no namespace.
 */
import net from 'node:net';
import type { Readable } from 'node:stream';
import type { Family, Message, PathAttributes } from '../../src/bgp/types.js';
import { MessageType } from '../../src/bgp/types.js';
import { AS_TRANS, decodeMessage, encodeAnnouncements, encodeKeepalive, encodeOpen, encodeWithdrawals, MessageReader } from '../../src/bgp/wire/index.js';

/** A received message as tests look at it: the union's fields made optional to read without narrowing. */
export type ReceivedMessage = Message & { code?: number; subcode?: number; nlri?: readonly string[] };

/** The scripted peer's address on loopback, and the router id its OPENs carry by default. */
export const SCRIPTED_PEER_ADDRESS = '127.0.0.2';
export const SCRIPTED_ROUTER_ID = '2.2.2.2';
/** NEXT_HOP of updateFrom() unless given: not loopback, which a speaker must ignore (RFC 4271 §6.3). */
export const SCRIPTED_NEXT_HOP = '198.18.0.2';

/**
 * Decodes every message arriving on `stream` (read as a 4-octet-AS session, which is what Twill
 * always offers) into `received`, and calls `onMessage` for each. Something that does not decode
 * is recorded as nothing: the tests that look are about sessions, not the codec.
 */
export function recordMessages(stream: Readable, received: ReceivedMessage[], onMessage?: (m: ReceivedMessage) => void): void {
  const reader = new MessageReader();
  stream.on('data', (chunk: Buffer) => {
    let raws: Buffer[];
    try {
      raws = reader.push(chunk);
    } catch {
      return;
    }
    for (const raw of raws) {
      let m: ReceivedMessage;
      try {
        m = decodeMessage(raw, { fourOctetAsn: true }).message;
      } catch {
        continue;
      }
      received.push(m);
      onMessage?.(m);
    }
  });
}

export interface RawConnection {
  readonly socket: net.Socket;
  readonly received: ReceivedMessage[];
  onMessage(listener: (m: ReceivedMessage) => void): void;
}

/** A raw TCP connection from 127.0.0.2 that records what it receives and answers nothing by itself. */
export async function rawConnection(port: number): Promise<RawConnection> {
  const socket = net.connect({ host: '127.0.0.1', port, localAddress: SCRIPTED_PEER_ADDRESS });
  const received: ReceivedMessage[] = [];
  const listeners: ((m: ReceivedMessage) => void)[] = [];
  recordMessages(socket, received, (m) => { for (const l of listeners) l(m); });
  socket.on('error', () => {});
  await new Promise<void>((r) => socket.once('connect', () => r()));
  return { socket, received, onMessage: (l) => listeners.push(l) };
}

export interface ScriptedPeer {
  readonly socket: net.Socket;
  readonly received: ReceivedMessage[];
  send(message: Buffer): void;
}

/** A scripted peer that connects from 127.0.0.2, exchanges OPEN and KEEPALIVE, and records what it gets. */
export async function rawPeer(port: number, o: OpenOptions): Promise<ScriptedPeer> {
  const conn = await rawConnection(port);
  // Answers the speaker's OPEN with a KEEPALIVE; ready at the speaker's KEEPALIVE.
  const ready = new Promise<void>((resolve) => {
    conn.onMessage((m) => {
      if (m.type === MessageType.OPEN) conn.socket.write(encodeKeepalive());
      if (m.type === MessageType.KEEPALIVE) resolve();
    });
  });
  conn.socket.write(openFrom(o));
  await ready;
  return { socket: conn.socket, received: conn.received, send: (b) => conn.socket.write(b) };
}

export interface OpenOptions {
  readonly asn: number;
  readonly holdTime: number;
  /** BGP identifier; default {@link SCRIPTED_ROUTER_ID}. */
  readonly routerId?: string | undefined;
  /** Advertise graceful restart (RFC 4724) with this restart time, in seconds. */
  readonly gracefulRestart?: number | undefined;
  /** The Restart State (R) bit of that capability; default true (the peer has just restarted). */
  readonly restarting?: boolean | undefined;
  readonly families?: readonly Family[] | undefined;
}

/** The OPEN of AS `asn`: 4-octet AS, route refresh, IPv4 unicast unless told (and graceful restart if given). */
export function openFrom(o: OpenOptions): Buffer {
  return encodeOpen({
    version: 4, myAsn: o.asn > 0xffff ? AS_TRANS : o.asn, holdTime: o.holdTime, routerId: o.routerId ?? SCRIPTED_ROUTER_ID,
    capabilities: {
      multiprotocol: o.families ?? ['ipv4-unicast'], fourOctetAsn: o.asn, routeRefresh: true, enhancedRouteRefresh: false, unknown: [],
      ...(o.gracefulRestart !== undefined && { gracefulRestart: { restarting: o.restarting ?? true, restartTime: o.gracefulRestart, families: [] } }),
    },
  });
}

export interface UpdateOptions {
  readonly prefixes: readonly string[];
  /** Default {@link SCRIPTED_NEXT_HOP} (IPv4) or fd00::2 (IPv6). */
  readonly nextHop?: string | undefined;
  /** AS_PATH as one sequence; default [65002]. */
  readonly asPath?: readonly number[] | undefined;
  readonly family?: Family | undefined;
  /** More attributes (LOCAL_PREF, ORIGINATOR_ID, CLUSTER_LIST...). */
  readonly attributes?: Partial<PathAttributes> | undefined;
}

/** UPDATEs announcing `prefixes` (4-octet AS_PATH; one message unless they do not fit in one). */
export function updateFrom(o: UpdateOptions): Buffer {
  const family = o.family ?? 'ipv4-unicast';
  const attributes: PathAttributes = { origin: 0, asPath: [{ type: 'sequence', asns: [...(o.asPath ?? [65002])] }], ...o.attributes };
  const nextHop = o.nextHop ?? (family === 'ipv4-unicast' ? SCRIPTED_NEXT_HOP : 'fd00::2');
  return Buffer.concat(encodeAnnouncements(family, attributes, [nextHop], o.prefixes, { fourOctetAsn: true }));
}

/** UPDATEs withdrawing `prefixes`. */
export function withdrawalFrom(prefixes: readonly string[], family: Family = 'ipv4-unicast'): Buffer {
  return Buffer.concat(encodeWithdrawals(family, prefixes));
}

