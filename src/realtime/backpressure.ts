import type { Socket } from 'node:net';
import type { Logger } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { ChatNamespace, ChatSocket } from './types.ts';

/*
 * Back-pressure per connection. Engine.IO queues what it has to send a client without bound, and ws and the TCP
 * socket below it do the same once the kernel's buffers are full: a client that stops reading (a WebSocket whose
 * peer does not read, a long-polling session that never polls again) makes the node hold everything its user's
 * other tabs cause until the heartbeat gives up on it, about 45 s later: a long-polling session carrying 19 of a
 * user's sockets held 16.7 MB once the user's other tab had renamed a conversation 3,000 times.
 *
 * So one sweep per node looks at what each connection of this node has waiting (Engine.IO's write buffer, plus
 * ws's send buffer on a WebSocket): past half of MAX_BUFFERED_BYTES its sockets join CONGESTED_ROOM, which the
 * fan-out leaves out of `message:delta` (the bulk of the traffic, and the one thing a tab can do without: it takes
 * the whole text from `message:updated` or history, as after any gap); back under half, they leave it. A
 * connection over the bound for `graceMs`, or over twice the bound at two sweeps in a row, is cut. Nothing is kept
 * per socket: the sweep reads Engine.IO's and ws's own state, and remembers only the congested connections.
 *
 * Engine.IO's `writeBuffer`, `transport` and `close(discard)`, and ws's `bufferedAmount`, `terminate()` and
 * `_socket` (its TCP socket) are not in their typings; the interfaces below name what is used.
 */

/**
 * Sockets whose connection has too much waiting: deltas skip them. No user's room can have this name (those are
 * `user:<id>`), and nothing else joins it.
 */
export const CONGESTED_ROOM = 'congested';

export const BACKPRESSURE_TIMING = {
  /** One look at every connection of the node this often: a connection may pass a limit by what it gains in one. */
  sweepMs: 250,
  /** How long a connection may stay over the bound: a tab on a slow link catching up on a long page drains sooner. */
  graceMs: 5_000,
};

/** Why a connection was cut, in the warning logged. */
export const SLOW_CONSUMER_CUT = {
  /** Over MAX_BUFFERED_BYTES for the whole grace period. */
  overBoundTooLong: 'over_bound_too_long',
  /** Over twice MAX_BUFFERED_BYTES at two sweeps in a row: filling too fast to wait (one large answer drains sooner). */
  overTwiceBound: 'over_twice_bound',
} as const;

export type SlowConsumerCut = (typeof SLOW_CONSUMER_CUT)[keyof typeof SLOW_CONSUMER_CUT];

interface EnginePacket {
  type: string;
  data?: string | Buffer;
}

interface EngineConnection {
  writeBuffer: EnginePacket[];
  transport: { name: string; writable: boolean; socket?: { bufferedAmount: number; terminate(): void; _socket?: Socket } };
  close(discard?: boolean): void;
}

/** What the sweep remembers of a congested connection, from when it passed half the bound until it is back under. */
interface Congestion {
  userId: string;
  /** When it went over the bound; undefined while it is between half the bound and the bound. */
  overSince: number | undefined;
  /** Whether it was over twice the bound at the previous sweep. */
  overTwice: boolean;
  bytes: number;
  /** The sweep that last found it over half the bound. */
  sweep: number;
}

export interface BackpressureOptions {
  maxBufferedBytes: number;
  metrics: Metrics;
  log: Logger;
  timing?: Partial<typeof BACKPRESSURE_TIMING>;
}

/** Starts the node's sweep over its /chat sockets; returns what stops it. */
export function watchBackpressure(nsp: ChatNamespace, o: BackpressureOptions) {
  const { sweepMs, graceMs } = { ...BACKPRESSURE_TIMING, ...o.timing };
  const half = o.maxBufferedBytes / 2;
  const twice = o.maxBufferedBytes * 2;
  const congested = new Map<EngineConnection, Congestion>();
  let sweeps = 0;

  function sweep() {
    const sweep = ++sweeps;
    const now = Date.now();
    // A connection may carry several /chat sockets: each is measured once a sweep.
    let measured: Map<EngineConnection, number> | undefined;
    for (const socket of nsp.sockets.values()) {
      const conn = socket.conn as unknown as EngineConnection;
      const known = congested.size > 0 ? congested.get(conn) : undefined;
      // Almost every connection, almost always: nothing waiting.
      if (!known && idle(conn)) continue;
      let bytes = measured?.get(conn);
      if (bytes === undefined) {
        bytes = bufferedBytes(conn, twice);
        measured ??= new Map();
        measured.set(conn, bytes);
      }
      if (bytes > half) {
        if (!socket.rooms.has(CONGESTED_ROOM)) socket.join(CONGESTED_ROOM);
        if (known?.sweep !== sweep) note(conn, known, socket, bytes, sweep, now);
      } else if (known && socket.rooms.has(CONGESTED_ROOM)) {
        socket.leave(CONGESTED_ROOM);
      }
    }
    for (const [conn, state] of congested) {
      // Back under half the bound, or closed: its sockets left the room above, or with their connection.
      if (state.sweep !== sweep) congested.delete(conn);
      else if (state.bytes > twice && state.overTwice) cut(conn, state, SLOW_CONSUMER_CUT.overTwiceBound);
      else if (state.overSince !== undefined && now - state.overSince >= graceMs) cut(conn, state, SLOW_CONSUMER_CUT.overBoundTooLong);
      else state.overTwice = state.bytes > twice;
    }
  }

  function note(conn: EngineConnection, known: Congestion | undefined, socket: ChatSocket, bytes: number, sweep: number, now: number) {
    if (!known) {
      o.metrics.slowConsumers.inc({ action: 'skipped_deltas' });
      o.log.debug(
        { userId: socket.data.userId, bufferedBytes: bytes, transport: conn.transport.name },
        'connection congested: deltas skipped',
      );
      congested.set(conn, {
        userId: socket.data.userId,
        overSince: bytes > o.maxBufferedBytes ? now : undefined,
        overTwice: false,
        bytes,
        sweep,
      });
      return;
    }
    known.sweep = sweep;
    known.bytes = bytes;
    if (bytes <= o.maxBufferedBytes) known.overSince = undefined;
    else known.overSince ??= now;
  }

  function cut(conn: EngineConnection, state: Congestion, reason: SlowConsumerCut) {
    congested.delete(conn);
    o.metrics.slowConsumers.inc({ action: 'disconnected' });
    o.log.warn(
      { userId: state.userId, reason, bufferedBytes: state.bytes, maxBufferedBytes: o.maxBufferedBytes, transport: conn.transport.name },
      'slow consumer disconnected: its client does not take what it is sent',
    );
    // A WebSocket close handshake would queue behind the unread data (ws waits 30 s for it), and a plain close of
    // the TCP socket leaves the kernel holding its send buffer (megabytes) while it goes on offering it to a peer
    // that does not read: the connection is reset instead, which frees both at once. Then Engine.IO drops its write
    // buffer and the connection's sockets.
    if (conn.transport.name === 'websocket') {
      const ws = conn.transport.socket;
      ws?._socket?.resetAndDestroy();
      ws?.terminate();
    }
    conn.close(true);
  }

  const timer = setInterval(() => {
    try {
      sweep();
    } catch (err) {
      // Engine.IO's or ws's fields changed under it (they are not public): the node goes on without the bound.
      o.log.error({ err }, 'back-pressure sweep failed');
    }
  }, sweepMs);
  timer.unref();
  return {
    stop() {
      clearInterval(timer);
      congested.clear();
    },
  };
}

export type Backpressure = ReturnType<typeof watchBackpressure>;

/**
 * Nothing waiting, read in as few objects as can be (the sweep reads every connection of the node): Engine.IO's
 * write buffer is empty, and a WebSocket transport is writable, which it becomes again only once ws has handed the
 * last batch to the kernel. A polling transport is writable only while a poll waits; between polls its queue alone
 * says it. (At 19,000 idle sockets a sweep takes about 3 ms this way; reading ws's `bufferedAmount` of each, which
 * goes through the TCP socket's stream state, took 14–21 ms.)
 */
function idle(conn: EngineConnection): boolean {
  return conn.writeBuffer.length === 0 && (conn.transport.writable || conn.transport.name !== 'websocket');
}

function wsBuffered(conn: EngineConnection): number {
  return conn.transport.name === 'websocket' ? (conn.transport.socket?.bufferedAmount ?? 0) : 0;
}

/**
 * What a connection has waiting, in bytes (text counted by its length: UTF-16 code units, one byte each for the
 * ASCII of JSON). Counting stops past `enough`: beyond that the exact figure decides nothing.
 */
function bufferedBytes(conn: EngineConnection, enough: number): number {
  let bytes = wsBuffered(conn);
  for (const packet of conn.writeBuffer) {
    const data = packet.data;
    bytes += 1 + (data === undefined ? 0 : typeof data === 'string' ? data.length : data.byteLength);
    if (bytes > enough) break;
  }
  return bytes;
}
