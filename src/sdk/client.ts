import type { CommandPayloads, CommandResults, ConversationDto, MessageDto } from '../shared/events.ts';
import { Connection } from './connection.ts';
import { Emitter } from './emitter.ts';
import { Sync } from './sync.ts';
import { randomId } from './token.ts';
import type { ChatClientEvents, ChatClientOptions, ChatSocket, ConnectionStatus, IncomingNotification } from './types.ts';

/**
 * A typed client of the chat gateway: commands as promises, and a local, consistent view of the conversations it
 * follows (deduplicated by `seq`, gaps repaired, caught up after reconnects). Create it with
 * {@link createChatClient}.
 *
 * @example
 * const chat = createChatClient({ url: 'http://localhost:3000', getToken: () => fetchToken() });
 * chat.on('message', (m) => render(chat.messages(m.conversationId)));
 * const { message } = await chat.send({ content: 'Hello' });
 */
export class ChatClient {
  /** The underlying socket, for debugging and tests (e.g. `chat.socket.io.engine.close()` to drop the connection). */
  readonly socket: ChatSocket;
  private readonly events: Emitter<ChatClientEvents>;
  private readonly connection: Connection;
  private readonly sync: Sync;
  private readonly filterIncoming?: (...notification: IncomingNotification) => boolean;

  constructor(options: ChatClientOptions) {
    this.events = new Emitter<ChatClientEvents>((err, event) => {
      // A listener that throws is reported to 'error' listeners; one that throws there is rethrown outside.
      if (event !== 'error' && this.events.has('error')) this.events.emit('error', err instanceof Error ? err : new Error(String(err)));
      else
        queueMicrotask(() => {
          throw err;
        });
    });
    this.connection = new Connection(options, this.events, (reconnected) => reconnected && this.sync.catchUp());
    this.sync = new Sync(this.connection, this.events, {
      staleStreamMs: options.staleStreamMs,
      online: () => this.connection.socket.connected,
    });
    this.filterIncoming = options.filterIncoming;
    this.socket = this.connection.socket;
    const s = this.socket;
    s.on('conversation:created', (p) => this.incoming('conversation:created', p));
    s.on('conversation:updated', (p) => this.incoming('conversation:updated', p));
    s.on('conversation:deleted', (p) => this.incoming('conversation:deleted', p));
    s.on('message:created', (p) => this.incoming('message:created', p));
    s.on('message:updated', (p) => this.incoming('message:updated', p));
    s.on('message:delta', (p) => this.incoming('message:delta', p));
    s.on('tool:updated', (p) => this.incoming('tool:updated', p));
    s.on('auth:expired', (p) => this.incoming('auth:expired', p));
    s.on('sync:required', (p) => this.incoming('sync:required', p));
    if (options.autoConnect !== false) this.connection.connect();
  }

  /** True while the socket is connected. */
  get connected(): boolean {
    return this.socket.connected;
  }

  /** The connection status, as last emitted with `status`. */
  get status(): ConnectionStatus {
    return this.connection.status;
  }

  /**
   * Subscribes to a client event; returns a function that unsubscribes.
   *
   * @example
   * const off = chat.on('status', (s) => (badge.textContent = s));
   */
  on<K extends keyof ChatClientEvents>(event: K, listener: ChatClientEvents[K]): () => void {
    return this.events.on(event, listener);
  }

  /**
   * Removes a listener added with `on`.
   *
   * @example
   * chat.off('message', onMessage);
   */
  off<K extends keyof ChatClientEvents>(event: K, listener: ChatClientEvents[K]): void {
    this.events.off(event, listener);
  }

  /**
   * Connects (again): after `autoConnect: false`, or after the server refused or let go of the socket.
   *
   * @example
   * chat.on('status', (s) => s === 'disconnected' && retryButton.show(() => chat.connect()));
   */
  connect(): void {
    this.connection.connect();
  }

  /**
   * Disconnects for good: pending commands reject with `DISCONNECTED`, timers stop. The local view stays readable.
   *
   * @example
   * window.addEventListener('pagehide', () => chat.close());
   */
  close(): void {
    this.connection.close();
    this.sync.close();
  }

  // ---- commands: each resolves with its ack's data or rejects with a ChatError -------------------------------

  /**
   * Creates a conversation; with `reuse: 'latest'`, returns the user's most recently updated one instead when
   * there is one (`created: false`), so that every tab opening "the" conversation ends in the same one.
   *
   * @example
   * const { conversation } = await chat.createConversation({ title: 'Groceries' });
   * const { conversation: current, created } = await chat.createConversation({ reuse: 'latest' });
   */
  async createConversation(input: { title?: string | null; reuse?: 'latest' } = {}): Promise<CommandResults['conversation:create']> {
    const data = await this.connection.command('conversation:create', input);
    this.sync.conversation(data.conversation);
    return data;
  }

  /**
   * Lists conversations, most recently active first; page on with `nextCursor`.
   *
   * @example
   * const { conversations, nextCursor } = await chat.listConversations({ limit: 20 });
   */
  async listConversations(input: { limit?: number; cursor?: string | null } = {}): Promise<CommandResults['conversation:list']> {
    const data = await this.connection.command('conversation:list', input);
    for (const c of data.conversations) this.sync.conversation(c);
    return data;
  }

  /**
   * Renames a conversation (`null` clears the title).
   *
   * @example
   * await chat.renameConversation(id, 'Trip to Lisbon');
   */
  async renameConversation(conversationId: string, title: string | null): Promise<CommandResults['conversation:rename']> {
    const data = await this.connection.command('conversation:rename', { conversationId, title });
    this.sync.conversation(data.conversation);
    return data;
  }

  /**
   * Deletes a conversation and its messages.
   *
   * @example
   * await chat.deleteConversation(id);
   */
  async deleteConversation(conversationId: string): Promise<CommandResults['conversation:delete']> {
    const data = await this.connection.command('conversation:delete', { conversationId });
    this.sync.deleted(data.conversationId);
    return data;
  }

  /**
   * Sends a message; without `conversationId` it starts a new conversation. The conversation is followed from this
   * message on (its assistant reply arrives as `message`/`delta` events). A `clientMessageId` is generated when
   * absent; when no acknowledgement arrives (timeout, or the socket drops), the send is retried with the same id
   * after reconnecting, and when the gateway answers `UNAVAILABLE`, after the `retryAfterMs` it gives; up to
   * `sendAttempts` times in all — the server stores and answers a `clientMessageId` once.
   * A send made while the connection is down and coming back (`connecting`, `reconnecting`) waits for it, however
   * long, and then goes out: the time offline counts against neither `ackTimeoutMs` nor the attempts. While
   * `disconnected` (nothing reconnects by itself) it goes out at the next `connect()`, or fails after its timeouts;
   * `close()` fails it with `DISCONNECTED`.
   *
   * @example
   * const { message, conversation } = await chat.send({ content: 'What is on my list?' });
   * await chat.send({ conversationId: conversation.id, content: 'And tomorrow?' });
   */
  async send(input: {
    conversationId?: string | null;
    content: string;
    clientMessageId?: string;
  }): Promise<CommandResults['message:send']> {
    const clientMessageId = input.clientMessageId ?? randomId();
    const payload: CommandPayloads['message:send'] = { content: input.content, clientMessageId };
    if (input.conversationId) payload.conversationId = input.conversationId;
    this.sync.sending(clientMessageId, true);
    try {
      const data = await this.connection.retrying('message:send', payload);
      this.sync.conversation(data.conversation);
      this.sync.message(data.message, true);
      return data;
    } finally {
      this.sync.sending(clientMessageId, false);
    }
  }

  /**
   * Stops a streaming assistant reply (from any tab); the partial text is kept.
   *
   * @example
   * await chat.stop(conversationId, replyId);
   */
  async stop(conversationId: string, messageId: string): Promise<CommandResults['assistant:stop']> {
    const data = await this.connection.command('assistant:stop', { conversationId, messageId });
    this.sync.message(data.message, false);
    return data;
  }

  /**
   * One raw `history:get` page (ascending `seq`). It does not touch the local view: use `open`/`loadOlder` for that.
   *
   * @example
   * const { messages, hasMore } = await chat.history({ conversationId, after: 41 });
   */
  history(input: CommandPayloads['history:get']): Promise<CommandResults['history:get']> {
    return this.connection.command('history:get', input);
  }

  /**
   * Renews the socket's token (`auth:refresh`, same `sub`) so the server does not expire it; the token is also used
   * for later handshakes, and reconnects a socket the server let go. Automatic when `getToken` was given.
   *
   * @example
   * chat.on('authExpired', async () => chat.refreshToken(await login()));
   */
  refreshToken(token: string): Promise<CommandResults['auth:refresh']> {
    return this.connection.refreshToken(token);
  }

  // ---- the local view ---------------------------------------------------------------------------------------

  /**
   * Loads the latest page of a conversation and follows it from then on; resolves with its messages (by seq).
   * Calling it again returns the followed messages without a new request.
   *
   * @example
   * const messages = await chat.open(conversationId);
   */
  open(conversationId: string): Promise<readonly MessageDto[]> {
    return this.sync.open(conversationId);
  }

  /**
   * Loads the page before the oldest followed message; resolves with the messages it added (by seq), empty when
   * there are no older ones. Opens the conversation first if needed.
   *
   * @example
   * if (chat.hasOlder(id)) await chat.loadOlder(id);
   */
  loadOlder(conversationId: string, limit?: number): Promise<readonly MessageDto[]> {
    return this.sync.loadOlder(conversationId, limit);
  }

  /**
   * The followed messages of a conversation, ascending by seq, one per seq (empty if not followed).
   *
   * @example
   * list.replaceChildren(...chat.messages(id).map(renderMessage));
   */
  messages(conversationId: string): readonly MessageDto[] {
    return this.sync.view(conversationId)?.messages() ?? [];
  }

  /**
   * Whether messages older than the followed ones exist.
   *
   * @example
   * loadMoreButton.hidden = !chat.hasOlder(id);
   */
  hasOlder(conversationId: string): boolean {
    return this.sync.view(conversationId)?.hasOlder ?? false;
  }

  /**
   * Stops following a conversation and drops its local messages.
   *
   * @example
   * chat.forget(closedTabConversationId);
   */
  forget(conversationId: string): void {
    this.sync.forget(conversationId);
  }

  /**
   * The conversations this client has heard of (listed, created, updated, messaged), most recent activity first.
   *
   * @example
   * sidebar.render(chat.conversations());
   */
  conversations(): ConversationDto[] {
    return this.sync.list.all();
  }

  /**
   * Resolves once the background work in flight (gap fills, reconnect catch-up, a catch-up the server asked for
   * with `sync:required`, including its random pause) has finished.
   *
   * @example
   * await chat.synced();
   * console.log(chat.messages(id).map((m) => m.seq));
   */
  synced(): Promise<void> {
    return this.sync.synced();
  }

  private incoming(...notification: IncomingNotification): void {
    if (this.connection.closed) return;
    if (this.filterIncoming && !this.filterIncoming(...notification)) return;
    const [event, payload] = notification;
    if (event === 'auth:expired') return this.connection.expired(payload.exp);
    this.sync.apply(notification);
  }
}

/**
 * Creates a chat client and connects it to `url + '/chat'`.
 *
 * @example
 * const chat = createChatClient({
 *   url: 'http://localhost:3000',
 *   getToken: async () => (await fetch('/token')).text(),
 * });
 * chat.on('delta', (_d, m) => renderMessage(m));
 * const messages = await chat.open(conversationId);
 */
export function createChatClient(options: ChatClientOptions): ChatClient {
  return new ChatClient(options);
}
