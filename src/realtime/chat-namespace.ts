import type { IncomingMessage } from 'node:http';
import { bearerToken, type TokenVerifier } from '../auth/jwt.ts';
import type { ClientInfo } from '../chat/send-message.ts';
import type { Logger } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import { GatewayError } from '../shared/errors.ts';
import { PROTOCOL_VERSION, userRoom, type HandshakeAuth } from '../shared/events.ts';
import { createDispatcher, type CommandDeps } from './handlers.ts';
import { trimIdleSocket } from './idle-socket.ts';
import { startExpirySweep } from './session.ts';
import { refusal, refuse } from './socket-server.ts';
import type { ChatNamespace } from './types.ts';

export interface ChatNamespaceOptions {
  verifyToken: TokenVerifier;
  maxSocketsPerUser: number;
  commands: CommandDeps;
  /** What is recorded of the client with each message it sends. */
  clientInfo: (req: IncomingMessage) => ClientInfo;
  /** Resolves once the node hears what is published for the rooms joined so far (see redis.ts). */
  roomsSubscribed?: () => Promise<void>;
  metrics: Metrics;
  log: Logger;
}

/**
 * The protocol versions this gateway speaks (see PROTOCOL_VERSION). When a version 2 comes, a gateway that still
 * serves version 1 clients lists both here for as long as they are about.
 */
export const SUPPORTED_PROTOCOLS: readonly number[] = [PROTOCOL_VERSION];

/**
 * The version a handshake asks for, or undefined when the gateway does not speak it. A client that names none was
 * written before versions were sent, against version 1.
 */
export function protocolOf(auth: HandshakeAuth | undefined): number | undefined {
  const asked = auth?.protocol ?? 1;
  return SUPPORTED_PROTOCOLS.includes(asked) ? asked : undefined;
}

/** Namespace `/chat`: the handshake (protocol version, token, socket cap), the user's room, and every command. */
export function serveChatNamespace(nsp: ChatNamespace, o: ChatNamespaceOptions) {
  const inflight = { count: 0 };
  const dispatch = createDispatcher({ ...o.commands, verifyToken: o.verifyToken, metrics: o.metrics, log: o.log, inflight });
  const stopExpirySweep = startExpirySweep(nsp);
  // Read when scraped rather than counted per connect and disconnect: no listener per socket.
  o.metrics.countSockets(() => nsp.sockets.size);

  nsp.use(async (socket, next) => {
    const auth = socket.handshake.auth as HandshakeAuth | undefined;
    // Before the token: a client of another version may not even send its token where this one looks, and it
    // needs to learn that it must be updated, not that it is unauthorized.
    if (protocolOf(auth) === undefined) {
      const asked = JSON.stringify(auth?.protocol)?.slice(0, 20);
      o.metrics.handshakesRefused.inc({ reason: 'unsupported_protocol' });
      const message = `this gateway speaks protocol version ${SUPPORTED_PROTOCOLS.join(', ')}, not ${asked}: update the client`;
      return refuse(socket, next, refusal({ code: 'UNSUPPORTED_PROTOCOL', supported: [...SUPPORTED_PROTOCOLS] }, message));
    }
    const token = (auth as { token?: unknown } | undefined)?.token ?? bearerToken(socket.handshake.headers.authorization);
    try {
      const identity = await o.verifyToken(token);
      // Counted on this node: the adapter's own room index, no map of ours to keep in step. The socket joins its
      // user's room here, in the same tick as the count (after the verification's await, nothing else runs in
      // between), not once connected: Socket.IO connects a socket a tick after its middlewares, and many CONNECT
      // packets in one request would otherwise all pass the count. (A socket that never connects, or is refused
      // later, leaves its rooms as Socket.IO cleans it up.)
      const room = userRoom(identity.userId);
      const open = nsp.adapter.rooms.get(room)?.size ?? 0;
      if (open >= o.maxSocketsPerUser) {
        o.log.warn({ userId: identity.userId, open }, 'handshake refused: too many sockets');
        o.metrics.handshakesRefused.inc({ reason: 'too_many_connections' });
        return refuse(socket, next, refusal('TOO_MANY_CONNECTIONS', `at most ${o.maxSocketsPerUser} open sockets per user`));
      }
      socket.data.userId = identity.userId;
      socket.data.exp = identity.exp;
      socket.data.issuedAt = identity.issuedAt;
      // The connection's HTTP request is let go once its first socket is in (idle-socket.ts): a further socket on
      // the same connection (a client multiplexing several) records no client metadata.
      socket.data.client = socket.request ? o.clientInfo(socket.request) : undefined;
      socket.join(room);
      // With per-room channels (the sharded adapter in dynamic mode), the first tab of a user on this node has its
      // channel subscribed only now: it is let in once Redis has confirmed it, so that whatever it reads next (its
      // catch-up, a history page) leaves nothing published in between unheard. A wait that is bounded: with Redis
      // away the tabs are told to catch up once the subscriber is back.
      await o.roomsSubscribed?.();
      next();
    } catch (err) {
      const code = err instanceof GatewayError && err.code === 'TOKEN_EXPIRED' ? 'TOKEN_EXPIRED' : 'UNAUTHORIZED';
      o.metrics.handshakesRefused.inc({ reason: code.toLowerCase() });
      refuse(socket, next, refusal(code, err instanceof GatewayError ? err.message : 'unauthorized'));
    }
  });

  nsp.on('connection', (socket) => {
    // Nothing is ever addressed to one socket by its id, so the room Socket.IO makes for it is left: one Set
    // and one index entry less per socket.
    socket.leave(socket.id);
    socket.onAny(dispatch);
    trimIdleSocket(socket);
  });

  return {
    /** Commands being handled, so shutdown can wait for their units of work. */
    inflight,
    stop: stopExpirySweep,
  };
}
