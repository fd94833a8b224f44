import type { ChatNamespace } from './types.ts';

const SWEEP_MS = 1000;

/**
 * Disconnects sockets whose token has expired, telling them first with `auth:expired`; `auth:refresh` with a
 * newer token moves `socket.data.exp`. One timer for the node rather than one per socket: per-socket memory
 * decides how many idle tabs a node holds, and a second of lateness at expiry harms no one.
 */
export function startExpirySweep(nsp: ChatNamespace): () => void {
  const timer = setInterval(() => {
    const nowS = Date.now() / 1000;
    for (const socket of nsp.sockets.values()) {
      if (socket.data.exp <= nowS) {
        socket.emit('auth:expired', { exp: socket.data.exp });
        socket.disconnect(true);
      }
    }
  }, SWEEP_MS);
  timer.unref();
  return () => clearInterval(timer);
}
