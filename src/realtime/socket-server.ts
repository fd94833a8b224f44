import type { IncomingMessage, Server as HttpServer } from 'node:http';
import type { Duplex } from 'node:stream';
import { createAdapter, createShardedAdapter } from '@socket.io/redis-adapter';
import { RateLimiterMemory } from 'rate-limiter-flexible';
import { Server } from 'socket.io';
import type { Allowance } from '../limits/user-limits.ts';
import type { Logger } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import { CHAT_NAMESPACE, type ConnectErrorData } from '../shared/events.ts';
import { isOriginAllowed } from './origin.ts';
import type { RedisClients } from './redis.ts';
import type { ChatNamespace, ChatServer } from './types.ts';

/** How long a stop forwarded to the other nodes waits for their answers. */
export const REMOTE_STOP_TIMEOUT_MS = 3000;

export interface SocketServerOptions {
  corsOrigins?: string[];
  maxMessageChars: number;
  redis?: RedisClients;
  redisAdapter: 'classic' | 'sharded';
  /** Sharded adapter: a channel per room held on this node (dynamic), or one channel every node hears (static). */
  redisSubscriptionMode: 'dynamic' | 'static';
  redisPrefix: string;
  /** New connections per client address per window, on this node. */
  handshakes: Allowance;
  clientAddress: (req: IncomingMessage) => string;
  metrics: Metrics;
  log: Logger;
}

/**
 * The Socket.IO server and its fan-out, made before anything else so that every service can publish from the
 * start; it takes connections once `attach` binds it to the HTTP server.
 */
export function createSocketServer(o: SocketServerOptions) {
  // Per node and in memory: a flood of handshakes from one address must cost it, not a round trip to Redis each.
  const handshakes = new RateLimiterMemory({ points: o.handshakes.points, duration: o.handshakes.durationS, keyPrefix: 'handshake' });
  const io: ChatServer = new Server({
    // The largest valid event is message:send at MAX_MESSAGE_CHARS code points; a JSON encoder that escapes
    // all non-ASCII spends 12 bytes on one. Anything bigger is not a valid event and closes the socket.
    maxHttpBufferSize: o.maxMessageChars * 12 + 4096,
    // Only response headers for browsers; the real Origin check is allowRequest below.
    cors: o.corsOrigins ? { origin: o.corsOrigins, credentials: true } : undefined,
    // Runs for each new connection (not for the requests of one already open).
    allowRequest: (req, callback) => {
      if (!isOriginAllowed(req, o.corsOrigins)) {
        o.log.warn({ origin: req.headers.origin }, 'handshake refused: origin not allowed');
        o.metrics.handshakesRefused.inc({ reason: 'origin' });
        return callback('origin not allowed', false);
      }
      const address = o.clientAddress(req);
      handshakes.consume(address).then(
        () => callback(null, true),
        () => {
          o.metrics.handshakesRefused.inc({ reason: 'rate_limited' });
          o.log.warn({ address }, 'handshake refused: too many new connections from this address');
          callback('too many new connections from this address', false);
        },
      );
    },
    serveClient: false,
  });
  if (o.redis) {
    io.adapter(
      o.redisAdapter === 'sharded'
        ? countedByKind(
            createShardedAdapter(o.redis.pub, o.redis.sub, { channelPrefix: o.redisPrefix, subscriptionMode: o.redisSubscriptionMode }),
            o.metrics,
          )
        : createAdapter(o.redis.pub, o.redis.sub, { key: o.redisPrefix, requestsTimeout: REMOTE_STOP_TIMEOUT_MS }),
    );
  }
  // Nothing is served on the main namespace: clients must use /chat.
  io.of('/').use((socket, next) => {
    o.metrics.handshakesRefused.inc({ reason: 'namespace' });
    refuse(socket, next, refusal('UNAUTHORIZED', `connect to the ${CHAT_NAMESPACE} namespace`));
  });
  const nsp: ChatNamespace = io.of(CHAT_NAMESPACE);

  return {
    io,
    nsp,
    attach(httpServer: HttpServer) {
      // Engine.IO answers a refused WebSocket upgrade with 400; a foreign Origin must get 403 whatever the
      // transport, so upgrades are judged here first (Engine.IO's own listener then finds the socket closed).
      httpServer.prependListener('upgrade', (req: IncomingMessage, socket: Duplex) => {
        if (!isOriginAllowed(req, o.corsOrigins)) socket.end('HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      });
      io.attach(httpServer);
    },
    /** Refuses new sockets and closes the open ones (they reconnect to another node and catch up by seq). */
    async close() {
      io.engine?.close();
      // Only this node's sockets: through the Redis adapter, nsp.disconnectSockets would close every node's.
      nsp.local.disconnectSockets(true);
      await new Promise<void>((resolve) => io.close(() => resolve()));
    },
    /** Cuts every connection still open, without a close handshake (for the end of the shutdown bound). */
    terminate() {
      const engine = io.engine as unknown as { clients?: Record<string, EngineClient> } | undefined;
      for (const client of Object.values(engine?.clients ?? {})) {
        client.transport?.socket?.terminate?.();
        client.close?.(true);
      }
    },
  };
}

export type SocketServer = ReturnType<typeof createSocketServer>;

/** What terminate needs of an Engine.IO client (its fields are not in the typings). */
interface EngineClient {
  transport?: { socket?: { terminate?: () => void } };
  close?: (discard: boolean) => void;
}

/**
 * Refuses a socket, then closes its connection once the refusal is sent, unless the connection carries other
 * sockets that were accepted: a refused client has nothing more to do here, and an open connection would hold a
 * slot of the node until the heartbeat ends it (45 s).
 */
export function refuse(socket: { conn: { close(): void }; client: object }, next: (err?: Error) => void, err: Error): void {
  next(err);
  // Socket.IO sends the refusal on the next tick; closing waits for what is buffered to be written. The client's
  // map of its connected sockets is not in Socket.IO's typings.
  setImmediate(() => {
    if ((socket.client as { sockets?: Map<string, unknown> }).sockets?.size === 0) socket.conn.close();
  });
}

/** A refused handshake: the client gets `connect_error` with `err.data` (its `code`, and what else it says). */
export function refusal(data: ConnectErrorData['code'] | ConnectErrorData, message: string): Error {
  const err = new Error(message) as Error & { data: ConnectErrorData };
  err.data = typeof data === 'string' ? ({ code: data } as ConnectErrorData) : data;
  return err;
}

/**
 * What the sharded adapter publishes, by the cluster adapter's message type (socket.io-adapter's MessageType:
 * BROADCAST 3, with a `requestId` when it expects acknowledgements); the rest are requests to every node, and its
 * answers to one node (BROADCAST_CLIENT_COUNT 11, BROADCAST_ACK 12 among them) go out through doPublishResponse.
 */
function publishKind(message: { type: number; data?: { requestId?: unknown } }): string {
  if (message.type !== 3) return 'request';
  return message.data?.requestId === undefined ? 'broadcast' : 'ack';
}

type AdapterFactory = ReturnType<typeof createShardedAdapter>;
interface PublishingAdapter {
  doPublish(message: { type: number; data?: { requestId?: unknown } }): Promise<unknown>;
  doPublishResponse(requesterUid: string, response: unknown): Promise<unknown>;
}

/** Counts the sharded adapter's publishes by kind where it tells them apart: before it encodes them. */
function countedByKind(make: AdapterFactory, metrics: Metrics): AdapterFactory {
  // Socket.IO calls it with `new`: a function, not an arrow.
  return function countingAdapter(nsp) {
    const adapter = make(nsp);
    const hooks = adapter as unknown as PublishingAdapter;
    const publish = hooks.doPublish.bind(adapter);
    const respond = hooks.doPublishResponse.bind(adapter);
    hooks.doPublish = (message) => {
      metrics.redisPublishes.inc({ kind: publishKind(message) });
      return publish(message);
    };
    hooks.doPublishResponse = (requesterUid, response) => {
      metrics.redisPublishes.inc({ kind: 'response' });
      return respond(requesterUid, response);
    };
    return adapter;
  };
}
