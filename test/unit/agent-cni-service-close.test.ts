import { describe, expect, it } from 'vitest';
import { closeCniServing } from '../../src/agent/cni-service.js';

// twilld's SIGTERM path: the socket waits for calls in progress, and only the pool can end a hung
// one (its grace period cuts calls short). Closing them one after the other would wait out the
// hung call's whole deadline.

describe('closeCniServing', () => {
  it('lets the pool cut a hung call short while the socket waits for it', async () => {
    let endCall!: () => void;
    const callInProgress = new Promise<void>((resolve) => { endCall = resolve; });
    const order: string[] = [];
    const server = {
      async close() {
        order.push('socket stops listening');
        await callInProgress; // like CniSocketServer: waits for its calls in progress
        order.push('socket closed');
      },
    };
    const pool = {
      async close() {
        order.push('pool closing');
        await Promise.resolve(); // the grace period passes; the call is cut short and answered
        endCall();
        order.push('pool closed');
      },
    };
    await closeCniServing(server, pool);
    expect(order).toEqual(['socket stops listening', 'pool closing', 'pool closed', 'socket closed']);
  }, 2000);

  it('still closes the socket when the pool fails to close', async () => {
    let socketClosed = false;
    const server = { async close() { socketClosed = true; } };
    const pool = { close: () => Promise.reject(new Error('thread stuck')) };
    await expect(closeCniServing(server, pool)).rejects.toThrow('thread stuck');
    expect(socketClosed).toBe(true);
  });
});
