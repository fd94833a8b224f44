import type { ManagerOptions, Socket, SocketOptions } from 'socket.io-client';
import type {
  ClientToServerEvents,
  ConversationDto,
  MessageDelta,
  MessageDto,
  NotificationName,
  NotificationPayloads,
  ServerToClientEvents,
  ToolUpdate,
} from '../shared/events.ts';

/**
 * The connection as a UI shows it.
 *
 * @example
 * chat.on('status', (s: ConnectionStatus) => (banner.hidden = s === 'connected'));
 */
export type ConnectionStatus = 'connecting' | 'connected' | 'reconnecting' | 'disconnected';

/**
 * A server notification as `filterIncoming` sees it: the event name and its payload, narrowed together.
 *
 * @example
 * const dropDeltaOne = (...[event, payload]: IncomingNotification) => !(event === 'message:delta' && payload.index === 1);
 */
export type IncomingNotification = {
  [K in NotificationName]: [event: K, payload: NotificationPayloads[K]];
}[NotificationName];

/**
 * The socket under the client, typed by the shared event contract.
 *
 * @example
 * const socket: ChatSocket = chat.socket;
 */
export type ChatSocket = Socket<ServerToClientEvents, ClientToServerEvents>;

/**
 * Options of `createChatClient`. Give `token` or `getToken` (with both, `token` is unused once `getToken` runs).
 *
 * @example
 * const options: ChatClientOptions = { url: 'https://chat.example.com', getToken: () => fetchToken() };
 */
export interface ChatClientOptions {
  /** The gateway's base URL; the client connects to `url + '/chat'`. */
  url: string;
  /** A fixed JWT. Renew it with `refreshToken(token)` before it expires. */
  token?: string;
  /**
   * Called for every (re)connect's handshake and, ~30 s before the current token expires, to renew it on the open
   * socket with `auth:refresh` — so the server never has to expire the socket.
   */
  getToken?: () => string | Promise<string>;
  /** How long a command waits for its acknowledgement before failing with `TIMEOUT` (default 10 000). */
  ackTimeoutMs?: number;
  /**
   * How many times `send` (and `open`) try when no acknowledgement arrives, or the gateway answers `UNAVAILABLE`
   * (then after its `retryAfterMs`) (default 3). The same `clientMessageId` every time: a retry never duplicates.
   * Only attempts made while connected count: one made while the connection is coming back waits for it first.
   */
  sendAttempts?: number;
  /** How long before the token's `exp` to renew it when `getToken` is given (default 30 000). */
  refreshBeforeMs?: number;
  /** Engine.IO transports (default `['websocket']`: no long-polling, so no sticky sessions needed). */
  transports?: ('websocket' | 'polling' | 'webtransport')[];
  /**
   * Add `?affinity=<key>` to the connection URL, a short hash of the token's `sub` (see `affinityKey`), so that a load
   * balancer hashing on it sends every tab of one user to the same gateway node (default true). Only an optimisation:
   * the gateway delivers to tabs on any node either way. With `getToken` and no `token`, the first token is fetched
   * before the connection opens, so that the very first request carries the key.
   *
   * @example
   * const chat = createChatClient({ url: 'https://chat.example.com', getToken, userAffinity: false });
   */
  userAffinity?: boolean;
  /** Passed to socket.io-client's `io()` (`auth` and `autoConnect` are the client's own). `forceNew` defaults to true. */
  socketOptions?: Partial<ManagerOptions & SocketOptions>;
  /** Connect at once (default true); else call `connect()`. */
  autoConnect?: boolean;
  /**
   * How long a streaming reply may go unheard of (no delta, no update) before this client reads it again from the
   * history, and again each time as long while it stays streaming and quiet (default 5000 ms; `Infinity` never).
   * While a reply's text grows, the server sends it in deltas some 50 ms apart and saves it about once a second,
   * so a reply silent for this long has most likely moved on (or ended) in broadcasts this tab lost; the re-read
   * makes the tab show what is stored without waiting for new traffic. One timer serves the whole client, and
   * none runs while nothing streams. Far below the server's save interval, a slow reply is re-read needlessly.
   *
   * @example
   * const chat = createChatClient({ url: 'https://chat.example.com', getToken, staleStreamMs: 3000 });
   */
  staleStreamMs?: number;
  /**
   * For debugging and tests: return false to drop an incoming notification before the client sees it — e.g. to
   * simulate a broadcast lost by the Redis adapter, which the client must then repair by itself.
   */
  filterIncoming?: (...notification: IncomingNotification) => boolean;
}

/**
 * What the client tells the UI; subscribe with `chat.on(event, listener)`.
 *
 * @example
 * chat.on('delta', (_delta, message) => renderMessage(message));
 */
export interface ChatClientEvents {
  /** A message of a followed conversation is new or changed (created, updated, or filled in after a gap). */
  message: (message: MessageDto) => void;
  /** A streaming message grew by `delta.text`; `message` is its whole current state. */
  delta: (delta: MessageDelta, message: MessageDto) => void;
  /**
   * A tool call of a streaming reply started or ended (`update.call`: its name, status, duration and error code;
   * never its arguments or result). `message` is the reply as now held, its `metadata.toolCalls` holding every
   * call so far, in order (the last 20); the same picture a tab that opens the conversation later gets from history.
   *
   * @example
   * chat.on('tool', ({ call }, reply) => showChip(reply.id, call.id, call.status === 'running' ? `${call.name}…` : call.name));
   */
  tool: (update: ToolUpdate, message: MessageDto) => void;
  /** A conversation is new or changed in the local list. */
  conversation: (conversation: ConversationDto) => void;
  /** A conversation was deleted (by this tab, another tab, or while this one was away). */
  conversationDeleted: (conversationId: string) => void;
  status: (status: ConnectionStatus) => void;
  /** The server expired the socket's token (`exp` set) or refused an expired one at the handshake. */
  authExpired: (info: { exp?: number }) => void;
  /** A failure nobody awaited: a refused handshake, a failed gap fill, a failed token refresh, a listener that threw. */
  error: (error: Error) => void;
}
