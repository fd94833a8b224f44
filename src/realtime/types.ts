import type { Namespace, Server, Socket } from 'socket.io';
import type { ClientInfo } from '../chat/send-message.ts';
import type { ClientToServerEvents, MessageDto, ServerToClientEvents } from '../shared/events.ts';

/** Events between gateway nodes (through the Redis adapter). */
export interface InterServerEvents {
  /** Stop a reply if it runs on this node; answered with the stopped message, or null. */
  'assistant:stop': (messageId: string, ack: (message: MessageDto | null) => void) => void;
  /** Which replies run on this node (the sweeper of interrupted replies asks before it ends one). */
  'assistant:running': (ack: (messageIds: string[]) => void) => void;
}

export interface SocketData {
  userId: string;
  /** Token expiry, seconds since the epoch. */
  exp: number;
  /** When the token was issued (`iat`), seconds since the epoch: an erased user is not created again by an older token. */
  issuedAt?: number;
  /** Commands of this socket being handled now. */
  inflight?: number;
  /** What is recorded of the client with each message, taken from the handshake (which is not kept). */
  client?: ClientInfo;
}

export type ChatServer = Server<ClientToServerEvents, ServerToClientEvents, InterServerEvents, SocketData>;
export type ChatNamespace = Namespace<ClientToServerEvents, ServerToClientEvents, InterServerEvents, SocketData>;
export type ChatSocket = Socket<ClientToServerEvents, ServerToClientEvents, InterServerEvents, SocketData>;
