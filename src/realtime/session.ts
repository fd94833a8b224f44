import type { ChatSocket } from './types.ts';

// setTimeout cannot wait longer than 2^31-1 ms; a longer-lived token is re-checked when that wait ends.
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Disconnects a socket when its token expires, telling it first with `auth:expired`;
 * `auth:refresh` with a newer token for the same user moves the deadline.
 */
export function watchExpiry(socket: ChatSocket): void {
  let timer: NodeJS.Timeout | undefined;
  const arm = () => {
    clearTimeout(timer);
    const waitMs = socket.data.exp * 1000 - Date.now();
    if (waitMs <= 0) {
      socket.emit('auth:expired', { exp: socket.data.exp });
      socket.disconnect(true);
      return;
    }
    timer = setTimeout(arm, Math.min(waitMs, MAX_TIMER_MS));
  };
  socket.data.rearmExpiry = arm;
  socket.on('disconnect', () => clearTimeout(timer));
  arm();
}
