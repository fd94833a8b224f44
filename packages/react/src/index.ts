/**
 * React bindings of the chat gateway's SDK: a provider that gives a component tree its client, and hooks that render
 * exactly what the client holds.
 *
 * @example
 * import { ChatProvider, useConversation, useConversations } from '@chat-gateway/react';
 *
 * export function App({ user }: { user: { id: string } }) {
 *   return (
 *     <ChatProvider key={user.id} options={{ url: 'https://chat.example.com', getToken: fetchChatToken }}>
 *       <Chat />
 *     </ChatProvider>
 *   );
 * }
 */
export { ChatProvider, useChatClient, type ChatProviderProps } from './provider.ts';
export {
  useConnectionStatus,
  useConversation,
  useConversations,
  type ConversationState,
  type ConversationsState,
} from './hooks.ts';
// What a component built on the hooks needs, so that it can import it from here.
export { ChatError, isFinal } from '@chat-gateway/sdk';
export type { ChatClient, ChatClientOptions, ConnectionStatus, ConversationDto, MessageDto, ToolCallDto } from '@chat-gateway/sdk';
