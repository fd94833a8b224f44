import type { Namespace, Server, Socket } from 'socket.io';
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
}

export type ChatServer = Server<ClientToServerEvents, ServerToClientEvents, InterServerEvents, SocketData>;
export type ChatNamespace = Namespace<ClientToServerEvents, ServerToClientEvents, InterServerEvents, SocketData>;
export type ChatSocket = Socket<ClientToServerEvents, ServerToClientEvents, InterServerEvents, SocketData>;
