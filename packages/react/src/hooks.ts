/**
 * The hooks: each reads the SDK's own state through useSyncExternalStore, so a component renders exactly what the
 * client holds (ordered, deduplicated, repaired, caught up), never a copy that could drift from it.
 *
 * useSyncExternalStore wants a snapshot that stays the same object while nothing changed. The SDK's message list
 * of a conversation already is one (it rebuilds the array only on a change); its conversation list is sorted anew
 * on each call, so it is kept here until the client says it changed.
 */
import type { ChatClient, CommandResults, ConnectionStatus, ConversationDto, MessageDto } from '@chat-gateway/sdk';
import { useCallback, useEffect, useMemo, useState, useSyncExternalStore } from 'react';
import { useChatClient } from './provider.ts';

const NO_MESSAGES: readonly MessageDto[] = Object.freeze([]);

/**
 * The state of the client's connection: `connecting`, `connected`, `reconnecting` or `disconnected`.
 *
 * @example
 * const status = useConnectionStatus();
 * return status === 'connected' ? null : <p role="status">{status}…</p>;
 */
export function useConnectionStatus(): ConnectionStatus {
  const chat = useChatClient();
  const subscribe = useCallback((changed: () => void) => chat.on('status', changed), [chat]);
  const read = () => chat.status;
  return useSyncExternalStore(subscribe, read, read);
}

/** What {@link useConversations} returns. */
export interface ConversationsState {
  /** The conversations the client knows of, most recent activity first (the SDK's list). */
  conversations: readonly ConversationDto[];
  /** True while the first page is being read. */
  loading: boolean;
  /** Why the last page could not be read; cleared by the next success. */
  error: Error | undefined;
  /** Whether older conversations than those listed exist. */
  hasMore: boolean;
  /** Reads the next page of older conversations. */
  loadMore(): Promise<void>;
}

/** One list per client, kept until the client reports a change: listeners stay for the client's life. */
const lists = new WeakMap<ChatClient, { read(): readonly ConversationDto[]; subscribe(changed: () => void): () => void }>();

function listOf(chat: ChatClient) {
  let list = lists.get(chat);
  if (!list) {
    let held: readonly ConversationDto[] | undefined;
    const listeners = new Set<() => void>();
    // Subscribed once and for good (not only while a component listens): a change between a render and the
    // subscription of its effect must still drop what is held.
    const changed = () => {
      held = undefined;
      for (const listener of [...listeners]) listener();
    };
    chat.on('conversation', changed);
    chat.on('conversationDeleted', changed);
    list = {
      read: () => (held ??= chat.conversations()),
      subscribe(listener) {
        listeners.add(listener);
        return () => listeners.delete(listener);
      },
    };
    lists.set(chat, list);
  }
  return list;
}

/**
 * The user's conversations, live: created, renamed, deleted or moved up by a message in any tab. Reads the first
 * page when first used; the client refreshes the list by itself after a reconnect.
 *
 * @example
 * function ConversationList({ onOpen }: { onOpen: (id: string) => void }) {
 *   const { conversations, loading, hasMore, loadMore } = useConversations();
 *   if (loading) return <p>Loading…</p>;
 *   return (
 *     <ul>
 *       {conversations.map((c) => <li key={c.id} onClick={() => onOpen(c.id)}>{c.title ?? 'New conversation'}</li>)}
 *       {hasMore && <li><button onClick={() => void loadMore()}>More</button></li>}
 *     </ul>
 *   );
 * }
 */
export function useConversations(options: { pageSize?: number } = {}): ConversationsState {
  const chat = useChatClient();
  const list = listOf(chat);
  const conversations = useSyncExternalStore(list.subscribe, list.read, list.read);
  const [page, setPage] = useState<{ loading: boolean; error?: Error; cursor: string | null }>({ loading: true, cursor: null });
  const limit = options.pageSize;

  useEffect(() => {
    let current = true;
    setPage({ loading: true, cursor: null });
    chat.listConversations({ limit }).then(
      ({ nextCursor }) => current && setPage({ loading: false, cursor: nextCursor }),
      (error: Error) => current && setPage({ loading: false, error, cursor: null }),
    );
    return () => {
      current = false;
    };
  }, [chat, limit]);

  const cursor = page.cursor;
  const loadMore = useCallback(async () => {
    if (cursor === null) return;
    try {
      const { nextCursor } = await chat.listConversations({ limit, cursor });
      setPage({ loading: false, cursor: nextCursor });
    } catch (error) {
      setPage((p) => ({ ...p, error: error as Error }));
    }
  }, [chat, limit, cursor]);

  return { conversations, loading: page.loading, error: page.error, hasMore: cursor !== null, loadMore };
}

/** What {@link useConversation} returns. */
export interface ConversationState {
  /** The conversation's messages as the SDK holds them: ascending `seq`, one per seq, replies growing as they stream. */
  messages: readonly MessageDto[];
  /** Whether older messages exist than those held: {@link ConversationState.loadOlder} reads them. */
  hasOlder: boolean;
  /** True while the latest page is being read. */
  loading: boolean;
  /** Why the conversation could not be opened (`NOT_FOUND` for one deleted or not the user's), if it could not. */
  error: Error | undefined;
  /** The assistant reply still streaming, if any (the latest). */
  streaming: MessageDto | undefined;
  /** True while a reply streams: show a Stop button. */
  isStreaming: boolean;
  /** True while a send of this hook waits for its acknowledgement. */
  sending: boolean;
  /**
   * Sends a message; without a conversation id it starts one (its id is in the result: show it next). Retried with
   * the same `clientMessageId` when no acknowledgement comes, so it is stored once. Rejects with a `ChatError`.
   */
  send(content: string): Promise<CommandResults['message:send']>;
  /** Stops the streaming reply (from any tab); its text so far is kept. Nothing to do when none streams. */
  stop(): Promise<void>;
  /** Reads the page before the oldest message held. */
  loadOlder(): Promise<void>;
}

/**
 * Tells the hooks of one client that its view changed in a way the SDK reports no event for (a page read by
 * `open` or `loadOlder`).
 */
const pokes = new WeakMap<ChatClient, Set<() => void>>();
const poke = (chat: ChatClient) => {
  for (const listener of [...(pokes.get(chat) ?? [])]) listener();
};

/**
 * One conversation, live: opens it (its latest page, then every change from any tab), and gives its messages, the
 * streaming state, and send / stop. `conversationId` null or undefined: no conversation yet, and `send` starts one.
 *
 * @example
 * function Conversation({ id, onStarted }: { id: string | null; onStarted: (id: string) => void }) {
 *   const { messages, isStreaming, send, stop } = useConversation(id);
 *   const submit = async (text: string) => {
 *     const { conversation } = await send(text);
 *     if (!id) onStarted(conversation.id);
 *   };
 *   return (
 *     <>
 *       {messages.map((m) => <p key={m.id} data-role={m.role}>{m.content}</p>)}
 *       {isStreaming ? <button onClick={() => void stop()}>Stop</button> : <Composer onSubmit={submit} />}
 *     </>
 *   );
 * }
 */
export function useConversation(conversationId: string | null | undefined): ConversationState {
  const chat = useChatClient();
  const id = conversationId ?? null;

  const store = useMemo(() => {
    let held = { messages: NO_MESSAGES, hasOlder: false };
    return {
      subscribe(changed: () => void) {
        const listeners = pokes.get(chat) ?? new Set();
        pokes.set(chat, listeners);
        listeners.add(changed);
        const offs = [
          chat.on('message', changed),
          chat.on('delta', changed),
          chat.on('tool', changed),
          chat.on('conversationDeleted', changed),
        ];
        return () => {
          listeners.delete(changed);
          for (const off of offs) off();
        };
      },
      // Read from the SDK each time; a new object only when the SDK holds something else.
      read() {
        const list = id === null ? NO_MESSAGES : chat.messages(id);
        const messages = list.length === 0 ? NO_MESSAGES : list;
        const hasOlder = id !== null && chat.hasOlder(id);
        if (messages !== held.messages || hasOlder !== held.hasOlder) held = { messages, hasOlder };
        return held;
      },
    };
  }, [chat, id]);
  const { messages, hasOlder } = useSyncExternalStore(store.subscribe, store.read, store.read);

  const [opened, setOpened] = useState<{ id: string | null; loading: boolean; error?: Error }>({ id, loading: id !== null });
  useEffect(() => {
    if (id === null) return setOpened({ id, loading: false });
    let current = true;
    setOpened({ id, loading: true });
    chat.open(id).then(
      () => {
        poke(chat);
        if (current) setOpened({ id, loading: false });
      },
      (error: Error) => current && setOpened({ id, loading: false, error }),
    );
    return () => {
      current = false;
    };
  }, [chat, id]);
  // Until the effect above has run for a new id, what was set for the previous one says nothing.
  const loading = opened.id === id ? opened.loading : id !== null;
  const error = opened.id === id ? opened.error : undefined;

  const streaming = useMemo(() => {
    for (let i = messages.length - 1; i >= 0; i--) {
      const m = messages[i]!;
      if (m.role === 'assistant' && m.status === 'streaming') return m;
    }
    return undefined;
  }, [messages]);

  const [pending, setPending] = useState(0);
  const send = useCallback(
    async (content: string) => {
      setPending((n) => n + 1);
      try {
        return await chat.send({ conversationId: id, content });
      } finally {
        setPending((n) => n - 1);
      }
    },
    [chat, id],
  );
  const streamingId = streaming?.id;
  const stop = useCallback(async () => {
    if (id !== null && streamingId !== undefined) await chat.stop(id, streamingId);
  }, [chat, id, streamingId]);
  const loadOlder = useCallback(async () => {
    if (id === null) return;
    await chat.loadOlder(id);
    poke(chat);
  }, [chat, id]);

  return {
    messages,
    hasOlder,
    loading,
    error,
    streaming,
    isStreaming: streaming !== undefined,
    sending: pending > 0,
    send,
    stop,
    loadOlder,
  };
}
