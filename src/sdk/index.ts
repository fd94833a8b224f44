/**
 * The chat gateway's client SDK: works in browsers and in Node (socket.io-client only, no Node built-ins).
 *
 * @example
 * import { createChatClient, ChatError } from '@chat-gateway/sdk';
 * const chat = createChatClient({ url: 'http://localhost:3000', token });
 * chat.on('message', (m) => console.log(m.seq, m.role, m.content));
 * const { conversation } = await chat.send({ content: 'Hello' });
 */
export { ChatClient, createChatClient } from './client.ts';
export type { ChatClientEvents, ChatClientOptions, ChatSocket, ConnectionStatus, IncomingNotification } from './types.ts';
export { isFinal } from './conversation-view.ts';
export { AFFINITY_PARAM, affinityKey, jwtSub, randomId } from './token.ts';
export { ChatError } from './errors.ts';
export type { ChatErrorCode } from './errors.ts';
export type {
  Ack,
  CommandPayloads,
  CommandResults,
  ConversationDto,
  MessageDelta,
  MessageDto,
  Role,
  Status,
  ToolCallDto,
  ToolUpdate,
} from '../shared/events.ts';
export type { ErrorCode, WireError } from '../shared/errors.ts';
/**
 * The version of the gateway's protocol this SDK speaks, sent in every handshake. A gateway that does not speak it
 * refuses the connection: the client's `error` listeners get a `ChatError` with code `UNSUPPORTED_PROTOCOL`, and it
 * does not retry.
 *
 * @example
 * import { PROTOCOL_VERSION } from '@chat-gateway/sdk';
 * console.log(`chat protocol v${PROTOCOL_VERSION}`);
 * chat.on('error', (err) => err instanceof ChatError && err.code === 'UNSUPPORTED_PROTOCOL' && askToReload());
 */
export { PROTOCOL_VERSION } from '../shared/events.ts';
export type { ConnectErrorData } from '../shared/events.ts';
