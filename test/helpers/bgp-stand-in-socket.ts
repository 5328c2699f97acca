import { EventEmitter } from 'node:events';
import type net from 'node:net';

/**
 * What a Connection (src/bgp/session/connection.ts) uses of a socket, with no network behind it:
 * each `emit('data', chunk)` is one read. Counts pause() and resume() (reads gathered) and
 * ignores writes. `socket` is the same object, typed as what the Connection takes.
 */
export interface StandInSocket extends EventEmitter {
  paused: number;
  resumed: number;
  readonly socket: net.Socket;
}

export function standInSocket(): StandInSocket {
  const standIn = Object.assign(new EventEmitter(), {
    paused: 0, resumed: 0, remoteAddress: '198.18.64.1', remotePort: 179, localAddress: '198.18.64.2',
    setNoDelay: () => undefined, write: () => true, destroy: () => undefined,
    pause: () => { standIn.paused++; },
    resume: () => { standIn.resumed++; },
  });
  return Object.assign(standIn, { socket: standIn as unknown as net.Socket });
}
