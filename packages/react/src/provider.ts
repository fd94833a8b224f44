/**
 * The client a component tree talks to: given (`client`), or made and closed by the provider itself (`options`).
 * Written with createElement rather than JSX, so the package needs no JSX settings of its own.
 */
import { createChatClient, type ChatClient, type ChatClientOptions } from '@chat-gateway/sdk';
import { createContext, createElement, useContext, useEffect, useRef, useState, type ReactNode } from 'react';

const ChatContext = createContext<ChatClient | null>(null);

/**
 * Props of {@link ChatProvider}: either a `client` you made (and close) yourself, or the `options` of one the
 * provider makes when it mounts and closes when it unmounts.
 *
 * @example
 * const props: ChatProviderProps = { options: { url: 'https://chat.example.com', getToken }, children: <Chat /> };
 */
export type ChatProviderProps = { children?: ReactNode } & (
  | { client: ChatClient; options?: never; fallback?: never }
  | {
      client?: never;
      /**
       * Read when the client is made; a new `url` makes a new client. `getToken` may change between renders: the
       * client always calls the latest. Another user signing in: give the provider a new `key` (their id), so that
       * nothing of the previous user's client is kept.
       */
      options: ChatClientOptions;
      /** Rendered until the client exists (the first effect after mounting). Default: nothing. */
      fallback?: ReactNode;
    }
);

/**
 * Gives the components below it a chat client: the hooks of this package read it.
 *
 * @example
 * <ChatProvider key={user.id} options={{ url: 'https://chat.example.com', getToken: fetchChatToken }}>
 *   <ConversationList />
 *   <Conversation />
 * </ChatProvider>
 */
export function ChatProvider(props: ChatProviderProps): ReactNode {
  const owned = useOwnedClient(props.client ? undefined : props.options);
  const client = props.client ?? owned;
  if (!client) return props.fallback ?? null;
  return createElement(ChatContext.Provider, { value: client }, props.children);
}

/**
 * Makes a client in an effect, not during render: React may render a component and throw the result away (and
 * does so on purpose in StrictMode), and a client made there would stay connected with nobody to close it.
 */
function useOwnedClient(options: ChatClientOptions | undefined): ChatClient | null {
  const [client, setClient] = useState<ChatClient | null>(null);
  const latest = useRef(options);
  latest.current = options;
  const url = options?.url;
  useEffect(() => {
    const first = latest.current;
    if (url === undefined || !first) return;
    const getToken = first.getToken && (() => latest.current!.getToken!());
    const chat = createChatClient({ ...first, getToken });
    setClient(chat);
    return () => {
      chat.close();
      setClient(null);
    };
  }, [url]);
  return client;
}

/**
 * The client of the nearest {@link ChatProvider}, for what the hooks do not wrap (rename, delete, history, events).
 *
 * @example
 * const chat = useChatClient();
 * const rename = (id: string, title: string) => chat.renameConversation(id, title);
 */
export function useChatClient(): ChatClient {
  const client = useContext(ChatContext);
  if (!client) throw new Error('useChatClient: no <ChatProvider> above this component');
  return client;
}
