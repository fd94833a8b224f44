import type { IncomingMessage, Server as HttpServer } from 'node:http';
import type { Duplex } from 'node:stream';
import { createAdapter, createShardedAdapter } from '@socket.io/redis-adapter';
import { Server } from 'socket.io';
import type { Assistant } from '../assistant/assistant.ts';
import { bearerToken, type TokenVerifier } from '../auth/jwt.ts';
import type { Logger } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { Services } from '../services.ts';
import type { Broadcast } from '../shared/broadcast.ts';
import { GatewayError } from '../shared/errors.ts';
import { userRoom, type ConnectErrorData, type MessageDto } from '../shared/events.ts';
import { commandSchemas } from './commands.ts';
import { createDispatcher } from './handlers.ts';
import { trimIdleSocket } from './idle-socket.ts';
import { isOriginAllowed } from './origin.ts';
import type { RedisClients } from './redis.ts';
import { startExpirySweep } from './session.ts';
import type { ChatNamespace, ChatServer } from './types.ts';

export const CHAT_NAMESPACE = '/chat';
const REMOTE_STOP_TIMEOUT_MS = 3000;

export interface RealtimeOptions {
  corsOrigins?: string[];
  maxMessageChars: number;
  maxSocketsPerUser: number;
  redis?: RedisClients;
  redisAdapter: 'classic' | 'sharded';
  redisPrefix: string;
  verifyToken: TokenVerifier;
  assistant: Assistant;
  metrics: Metrics;
  log: Logger;
  services: Services;
  isClosing: () => boolean;
}

/** The Socket.IO side of the gateway: namespace /chat, its handshake, its handlers and its fan-out. */
export function createRealtime(httpServer: HttpServer, o: RealtimeOptions) {
  const io: ChatServer = new Server(httpServer, {
    // The largest valid event is message:send at MAX_MESSAGE_CHARS code points; a JSON encoder that escapes
    // all non-ASCII spends 12 bytes on one. Anything bigger is not a valid event and closes the socket.
    maxHttpBufferSize: o.maxMessageChars * 12 + 4096,
    // Only response headers for browsers; the real Origin check is allowRequest below.
    cors: o.corsOrigins ? { origin: o.corsOrigins, credentials: true } : undefined,
    allowRequest: (req, callback) => {
      const allowed = isOriginAllowed(req, o.corsOrigins);
      if (!allowed) o.log.warn({ origin: req.headers.origin }, 'handshake refused: origin not allowed');
      callback(allowed ? null : 'origin not allowed', allowed);
    },
    serveClient: false,
  });
  // Engine.IO answers a refused WebSocket upgrade with 400; a foreign Origin must get 403 whatever the
  // transport, so upgrades are judged here first (Engine.IO's own listener then finds the socket closed).
  httpServer.prependListener('upgrade', (req: IncomingMessage, socket: Duplex) => {
    if (!isOriginAllowed(req, o.corsOrigins)) socket.end('HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
  });
  if (o.redis) {
    io.adapter(
      o.redisAdapter === 'sharded'
        ? createShardedAdapter(o.redis.pub, o.redis.sub, { channelPrefix: o.redisPrefix, subscriptionMode: 'static' })
        : createAdapter(o.redis.pub, o.redis.sub, { key: o.redisPrefix, requestsTimeout: REMOTE_STOP_TIMEOUT_MS }),
    );
  }

  // Nothing is served on the main namespace: clients must use /chat.
  io.of('/').use((_socket, next) => next(refusal('UNAUTHORIZED', `connect to the ${CHAT_NAMESPACE} namespace`)));

  const nsp: ChatNamespace = io.of(CHAT_NAMESPACE);
  const inflight = { count: 0 };
  const dispatch = createDispatcher({
    services: o.services,
    schemas: commandSchemas(o.maxMessageChars),
    inflight,
    isClosing: o.isClosing,
    verifyToken: o.verifyToken,
    assistant: o.assistant,
    metrics: o.metrics,
    log: o.log,
  });
  const stopExpirySweep = startExpirySweep(nsp);
  // Read when scraped rather than counted per connect and disconnect: no listener per socket.
  o.metrics.countSockets(() => nsp.sockets.size);

  nsp.use((socket, next) => {
    const token = (socket.handshake.auth as { token?: unknown } | undefined)?.token ?? bearerToken(socket.handshake.headers.authorization);
    try {
      const identity = o.verifyToken(token);
      // Counted on this node: the adapter's own room index, no map of ours to keep in step.
      const open = nsp.adapter.rooms.get(userRoom(identity.userId))?.size ?? 0;
      if (open >= o.maxSocketsPerUser) {
        o.log.warn({ userId: identity.userId, open }, 'handshake refused: too many sockets');
        return next(refusal('TOO_MANY_CONNECTIONS', `at most ${o.maxSocketsPerUser} open sockets per user`));
      }
      socket.data.userId = identity.userId;
      socket.data.exp = identity.exp;
      next();
    } catch (err) {
      const code = err instanceof GatewayError && err.code === 'TOKEN_EXPIRED' ? 'TOKEN_EXPIRED' : 'UNAUTHORIZED';
      next(refusal(code, err instanceof GatewayError ? err.message : 'unauthorized'));
    }
  });

  nsp.on('connection', (socket) => {
    socket.join(userRoom(socket.data.userId));
    // Nothing is ever addressed to one socket by its id, so the room Socket.IO makes for it is left: one Set
    // and one index entry less per socket.
    socket.leave(socket.id);
    socket.onAny(dispatch);
    trimIdleSocket(socket);
  });

  if (o.redis) {
    nsp.on('assistant:stop', (messageId: string, ack: (m: MessageDto | null) => void) => {
      o.assistant.stopIfRunningHere(messageId).then(ack, () => ack(null));
    });
    o.assistant.setRemoteStop(async (messageId) => {
      // A node that does not answer in time (it died) leaves the answers of the others in err.responses.
      const answers: (MessageDto | null)[] = await nsp
        .serverSideEmitWithAck('assistant:stop', messageId)
        .catch((err: { responses?: (MessageDto | null)[] }) => err.responses ?? []);
      return answers.find((m): m is MessageDto => Boolean(m));
    });
  }

  return {
    io,
    nsp,
    inflight,
    /** Sends committed changes to every tab of their user, on every node. */
    publish(broadcasts: Broadcast[]) {
      for (const b of broadcasts) {
        (nsp.to(userRoom(b.userId)).emit as (event: string, payload: unknown) => boolean)(b.event, b.payload);
      }
    },
    disconnectUser(userId: string) {
      nsp.in(userRoom(userId)).disconnectSockets(true);
    },
    /** Refuses new sockets and closes the open ones (they reconnect to another node and catch up by seq). */
    async close() {
      stopExpirySweep();
      io.engine.close();
      // Only this node's sockets: through the Redis adapter, nsp.disconnectSockets would close every node's.
      nsp.local.disconnectSockets(true);
      await new Promise<void>((resolve) => io.close(() => resolve()));
    },
  };
}

export type Realtime = ReturnType<typeof createRealtime>;

function refusal(code: ConnectErrorData['code'], message: string): Error {
  const err = new Error(message) as Error & { data: ConnectErrorData };
  err.data = { code };
  return err;
}
