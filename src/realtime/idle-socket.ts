import type { EventEmitter } from 'node:events';
import type { IncomingMessage } from 'node:http';
import type { Socket as TcpSocket } from 'node:net';
import type { ChatSocket } from './types.ts';

/*
 * Per-socket memory decides how many tabs a node can hold, and an idle socket keeps much that only its handshake
 * needed. trimIdleSocket lets go of that once a socket is authenticated. (A socket that opens on long-polling
 * and upgrades later keeps what its upgrade made; the SDK and the widget open on WebSocket by default.) Each
 * step was measured with `npm run bench:memory` (heap per idle socket at 4,000 sockets: 9.2 KB before these
 * steps, 7.6 KB after).
 * The fields touched below are Engine.IO's, ws's and Node's own; they are not in their typings.
 */

interface EngineSocket extends EventEmitter {
  request: IncomingMessage | null;
  transport: EngineTransport;
}

interface EngineTransport extends EventEmitter {
  name: string;
  /** The ws WebSocket, on a WebSocket transport. */
  socket?: EventEmitter & { _socket?: TcpSocket };
}

/** What Engine.IO's WebSocketResponse subscribes to the TCP close, to emit `close` on itself. */
const RESPONSE_CLOSE_RELAY = '() => this.emit("close")';

/** Stands for the handshake record, which nothing reads after authentication. */
const RELEASED_HANDSHAKE: ChatSocket['handshake'] = Object.freeze({
  headers: Object.freeze({}),
  time: '',
  address: '',
  xdomain: false,
  secure: false,
  issued: 0,
  url: '',
  query: Object.freeze({}),
  auth: Object.freeze({}),
}) as ChatSocket['handshake'];

export function trimIdleSocket(socket: ChatSocket) {
  const conn = socket.conn as unknown as EngineSocket;
  // The HTTP request (headers, token, parser state) stays on the engine socket for the whole connection.
  conn.request = null;
  (socket as { handshake: unknown }).handshake = RELEASED_HANDSHAKE;

  const transport = conn.transport;
  const ws = transport.name === 'websocket' ? transport.socket : undefined;
  if (ws) releaseUpgrade(transport, ws);
  for (const emitter of [socket, conn, transport, ws]) {
    if (emitter) compactListeners(emitter);
  }
}

/** Listeners that only the WebSocket upgrade needed. */
function releaseUpgrade(transport: EngineTransport, ws: NonNullable<EngineTransport['socket']>) {
  const tcp = ws._socket;
  // The response object HTTP middlewares get for an upgrade relays the TCP close to itself, which keeps it and
  // the upgrade request alive as long as the socket. No middleware here listens to it (an Engine.IO middleware
  // added later that waits for the response's close, as pino-http does, would not see it on a WebSocket).
  for (const listener of tcp?.rawListeners('close') ?? []) {
    if (String((listener as { listener?: unknown }).listener) === RESPONSE_CLOSE_RELAY) {
      tcp!.removeListener('close', listener as () => void);
    }
  }
  // Guards the moment before the transport's own error listener exists; Engine.IO removes it on an upgrade from
  // polling, not on a direct WebSocket.
  for (const listener of ws.listeners('error')) {
    if (listener.name === 'onUpgradeError') ws.removeListener('error', listener as () => void);
  }
  // Sets Engine.IO's cookie on polling responses; a WebSocket transport never emits it.
  transport.removeAllListeners('headers');
}

/**
 * A plain EventEmitter keeps its listeners in a null-prototype object, which V8 stores as a hash table; a copy
 * taken once the socket's listeners are in place has a plain shape and takes about half the memory. (A listener
 * removed later turns it back into a hash table, as it would have been.) Streams start from a pre-shaped
 * object already, so the TCP socket and ws's receiver are left alone.
 */
function compactListeners(emitter: EventEmitter) {
  const withEvents = emitter as unknown as { _events: object };
  withEvents._events = Object.setPrototypeOf({ ...withEvents._events }, null);
}
