/**
 * The wire contract of namespace `/chat`, shared by the server, the SDK, the widget and the load tester.
 * Commands are `domain:verb` (client → server, always acknowledged); notifications are `domain:verbed`.
 */
import type { WireError } from './errors.ts';

export type Role = 'user' | 'assistant' | 'system';
export type Status = 'complete' | 'streaming' | 'stopped' | 'failed';

export interface ConversationDto {
  id: string;
  title: string | null;
  lastSeq: number;
  createdAt: string;
  updatedAt: string;
}

export interface MessageDto {
  id: string;
  conversationId: string;
  seq: number;
  role: Role;
  status: Status;
  content: string;
  metadata: Record<string, unknown> | null;
  clientMessageId: string | null;
  createdAt: string;
  updatedAt: string;
}

/** Every acknowledgement: exactly one per client event. */
export type Ack<T> = { ok: true; data: T } | { ok: false; error: WireError };
export type AckCallback<T> = (result: Ack<T>) => void;

export interface CommandPayloads {
  /** `reuse: 'latest'`: the user's most recently updated conversation if there is one (get-or-create). */
  'conversation:create': { title?: string | null; reuse?: 'latest' };
  'conversation:list': { limit?: number; cursor?: string | null };
  'conversation:rename': { conversationId: string; title: string | null };
  'conversation:delete': { conversationId: string };
  'message:send': { conversationId?: string | null; content: string; clientMessageId: string };
  'assistant:stop': { conversationId: string; messageId: string };
  'history:get': { conversationId: string; before?: number; after?: number; limit?: number };
  'auth:refresh': { token: string };
}

export interface CommandResults {
  /** `created`: false when an existing conversation was reused. */
  'conversation:create': { conversation: ConversationDto; created: boolean };
  'conversation:list': { conversations: ConversationDto[]; nextCursor: string | null };
  'conversation:rename': { conversation: ConversationDto };
  'conversation:delete': { conversationId: string };
  'message:send': { message: MessageDto; conversation: ConversationDto };
  'assistant:stop': { message: MessageDto };
  'history:get': { conversation: ConversationDto; messages: MessageDto[]; hasMore: boolean };
  'auth:refresh': { exp: number };
}

export type CommandName = keyof CommandPayloads;

export type ClientToServerEvents = {
  [K in CommandName]: (payload: CommandPayloads[K], ack: AckCallback<CommandResults[K]>) => void;
};

export interface MessageDelta {
  conversationId: string;
  messageId: string;
  index: number;
  text: string;
}

/**
 * One tool call of an assistant reply (tools over MCP), as every tab sees it. Arguments and results are not
 * shown: they may hold what only the tool and the model should see.
 */
export interface ToolCallDto {
  /** Unique within the reply. */
  id: string;
  /** The tool's name as the model called it, e.g. `add_task`. */
  name: string;
  status: 'running' | 'complete' | 'failed';
  startedAt: string;
  /** Null while it runs. */
  durationMs: number | null;
  /** Why it failed (`TOOL_ERROR`, `TOOL_TIMEOUT`, …); null unless it did. */
  error: string | null;
}

/** A tool call of a reply started or ended; the reply's `metadata.toolCalls` holds every call so far, in order. */
export interface ToolUpdate {
  conversationId: string;
  messageId: string;
  call: ToolCallDto;
}

export interface NotificationPayloads {
  'conversation:created': { conversation: ConversationDto };
  'conversation:updated': { conversation: ConversationDto };
  'conversation:deleted': { conversationId: string };
  'message:created': { message: MessageDto };
  'message:updated': { message: MessageDto };
  'message:delta': MessageDelta;
  'tool:updated': ToolUpdate;
  'auth:expired': { exp: number };
  /**
   * Events for this tab may have been lost (the node's link to the other nodes broke and came back): catch up as
   * after a reconnect (`history:get { after }` for each open conversation, `conversation:list`), each tab after a
   * random pause of up to `spreadMs` so that thousands of tabs do not ask at once.
   */
  'sync:required': SyncRequired;
}

export interface SyncRequired {
  reason: 'fanout_interrupted';
  spreadMs: number;
}

export type NotificationName = keyof NotificationPayloads;

export type ServerToClientEvents = {
  [K in NotificationName]: (payload: NotificationPayloads[K]) => void;
};

/** The namespace every client connects to. */
export const CHAT_NAMESPACE = '/chat';

/** Room every socket of a user joins; the only way events are addressed. */
export const userRoom = (userId: string) => `user:${userId}`;

/**
 * The version of this contract. It changes only when a change would break a client written for the previous one
 * (an event renamed or removed, a field's meaning changed); additions that old clients can ignore keep it. A client
 * sends the version it speaks in the handshake's `auth.protocol`, and a gateway that does not speak it refuses the
 * handshake with `UNSUPPORTED_PROTOCOL` instead of letting the client misread what follows.
 */
export const PROTOCOL_VERSION = 1;

/** What a client sends in the handshake's `auth`: its token, and the protocol version it speaks (none: version 1). */
export interface HandshakeAuth {
  token?: string;
  protocol?: number;
}

/** The connect_error `data` of a refused handshake. */
export type ConnectErrorData =
  | { code: 'UNAUTHORIZED' | 'TOKEN_EXPIRED' | 'TOO_MANY_CONNECTIONS' }
  /** `supported`: the protocol versions this gateway speaks. */
  | { code: 'UNSUPPORTED_PROTOCOL'; supported: number[] };
