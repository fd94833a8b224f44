/**
 * `<chat-widget>`: the embeddable chat UI, a framework-free custom element on top of the client SDK.
 *
 * The SDK keeps the conversations consistent (dedupe by seq, gap repair, catch-up after reconnects, delta
 * ordering); this element only renders what the SDK holds and sends the user's commands. It owns the client's
 * life cycle and which conversation is open; the sidebar, the message list, the composer and the feedback
 * areas each keep their own state and are told what changed.
 *
 * @example
 * <script type="module" src="https://chat.example.com/widget/chat-widget.js"></script>
 * <chat-widget server="https://chat.example.com"></chat-widget>
 * <script type="module">
 *   const widget = document.querySelector('chat-widget');
 *   widget.getToken = async () => (await fetch('/chat-token')).text(); // your backend signs the JWT
 * </script>
 */
import { ChatError, type ChatClient, type ConversationDto, type MessageDto } from '../sdk/index.ts';
import { ClientSession, parseTransports, type TokenGetter } from './client-session.ts';
import { Composer } from './composer.ts';
import { ConversationSidebar, titleOf } from './conversation-sidebar.ts';
import { scriptOrigin, storage, upgradeProperties } from './dom.ts';
import { Feedback, type ChatErrorDetail, type ChatStatusDetail } from './feedback.ts';
import { MessageList, type ScrollIntent } from './message-list.ts';
import { Outbox } from './outbox.ts';
import { attachTemplate, type WidgetRefs } from './template.ts';

export type { ChatErrorDetail, ChatStatusDetail, TokenGetter };

/** The origin this script was served from: the gateway, unless the bundle was copied elsewhere. */
const SCRIPT_ORIGIN = scriptOrigin(import.meta.url);

/**
 * The chat widget element. Attributes: `server` (the gateway's base URL; default: the origin this script came
 * from), `transports` (comma list, default `websocket`; add `polling` for networks that block WebSockets, which
 * then needs sticky sessions at the load balancer). Properties: `token` or `getToken` (see {@link TokenGetter}).
 * Events (bubbling, composed): `chat-status` ({@link ChatStatusDetail}), `chat-error` ({@link ChatErrorDetail}).
 *
 * @example
 * const widget = document.createElement('chat-widget');
 * widget.token = jwt;
 * document.body.append(widget);
 */
export class ChatWidget extends HTMLElement {
  static observedAttributes = ['server', 'transports'];

  private readonly ui: Pick<WidgetRefs, 'root' | 'back' | 'title'>;
  private readonly feedback: Feedback;
  private readonly sidebar: ConversationSidebar;
  private readonly messageList: MessageList;
  private readonly composer: Composer;
  private readonly session = new ClientSession();
  private readonly outbox = new Outbox(() => this.scheduleRender());
  private restartQueued = false;
  private current: string | null = null;
  /** Bumped on every open: only the latest open's result is shown. */
  private openTicket = 0;
  private renderQueued = false;

  constructor() {
    super();
    const ui = attachTemplate(this);
    this.ui = ui;
    const host = {
      client: () => this.chat,
      openConversationId: () => this.current,
      open: (conversationId: string | null, quiet: boolean) => this.open(conversationId, quiet),
      focusComposer: (options?: FocusOptions) => this.composer.focus(options),
      firstPageListed: (conversations: ConversationDto[]) => this.restoreConversation(conversations),
      scheduleRender: () => this.scheduleRender(),
      renderMessages: () => this.messageList.render(),
      showStreaming: (message: MessageDto | undefined) => this.composer.showStreaming(message),
      outbox: this.outbox,
    };
    this.feedback = new Feedback(ui, this, () => ui.input.focus());
    this.sidebar = new ConversationSidebar(ui, host, this.feedback);
    this.messageList = new MessageList(ui, host, this.feedback);
    this.composer = new Composer(ui, host, this.feedback);
    ui.back.addEventListener('click', () => {
      this.setPane('list');
      this.sidebar.focus(this.current);
    });
    upgradeProperties(this, ['token', 'getToken']);
  }

  private get chat(): ChatClient | undefined {
    return this.session.client;
  }

  // ---- public API -------------------------------------------------------------------------------------------

  /** The gateway's base URL (the `server` attribute); defaults to the origin this script was served from. */
  get server(): string {
    return this.getAttribute('server') || SCRIPT_ORIGIN || location.origin;
  }
  set server(value: string) {
    this.setAttribute('server', value);
  }

  /** A fixed JWT. A new token of the same user is renewed on the open socket; another user's restarts the widget. */
  get token(): string | undefined {
    return this.session.token;
  }
  set token(value: string | null | undefined) {
    if (this.session.setToken(value || undefined, () => this.restart())) this.restart();
  }

  /** Called for every handshake and ~30 s before each token expires; wins over `token`. */
  get getToken(): TokenGetter | undefined {
    return this.session.getToken;
  }
  set getToken(fn: TokenGetter | null | undefined) {
    if (this.session.setGetter(fn ?? undefined)) this.restart();
  }

  /** The SDK client in use (for debugging and tests), undefined until a token is given. */
  get client(): ChatClient | undefined {
    return this.chat;
  }

  /** The id of the open conversation; null for a new one not yet sent. */
  get conversationId(): string | null {
    return this.current;
  }

  /** Opens a conversation by id, or a new empty one with null. */
  async openConversation(conversationId: string | null): Promise<void> {
    await this.open(conversationId, false);
  }

  connectedCallback(): void {
    this.restart();
  }

  disconnectedCallback(): void {
    this.restart();
  }

  attributeChangedCallback(_name: string, oldValue: string | null, newValue: string | null): void {
    if (oldValue !== newValue) this.restart();
  }

  // ---- life cycle -------------------------------------------------------------------------------------------

  /** (Re)starts on the next microtask, so setting `server` and `token` together starts one client, not two. */
  private restart(): void {
    if (this.restartQueued) return;
    this.restartQueued = true;
    queueMicrotask(() => {
      this.restartQueued = false;
      this.start();
    });
  }

  private start(): void {
    this.session.stop();
    this.resetView();
    const chat = this.isConnected
      ? this.session.start(this.server, parseTransports(this.getAttribute('transports')), (c) => [
          c.on('status', (status) => {
            this.feedback.connectionChanged(status, c, () => c !== this.chat);
            if (status === 'connected' && !this.sidebar.hasListed) void this.sidebar.load(true);
            // A send shown as waiting for the connection is now on its way, or waits again.
            this.scheduleRender();
          }),
          c.on('message', (m) => this.onMessage(m)),
          c.on('delta', (_d, m) => this.onDelta(m)),
          c.on('tool', (_u, m) => this.onDelta(m)),
          c.on('conversation', (conversation) => this.onConversation(conversation)),
          c.on('conversationDeleted', (id) => this.onConversationDeleted(id)),
          c.on('authExpired', () => {
            // With a getter, the SDK renews the token and reconnects by itself.
            if (!this.session.getToken) this.feedback.tokenExpired();
          }),
          c.on('error', (err) => this.feedback.clientError(err)),
        ])
      : undefined;
    this.feedback.showStatus(chat?.status);
  }

  private resetView(): void {
    this.current = null;
    this.sidebar.reset();
    this.messageList.reset(false);
    this.composer.reset();
    this.feedback.reset();
    this.setPane('chat');
    this.renderAll();
  }

  // ---- SDK events -------------------------------------------------------------------------------------------

  private onMessage(m: MessageDto): void {
    // The first message of a conversation this tab started: show it as soon as the server has it.
    if (this.current === null && this.composer.takeFirstMessage(m)) {
      void this.open(m.conversationId, true);
      return;
    }
    if (m.conversationId !== this.current) return;
    this.feedback.announceMessage(m, this.composer.sentHere(m));
    this.scheduleRender();
  }

  /** A reply of the open conversation grew or called a tool: only its row changes. */
  private onDelta(m: MessageDto): void {
    if (m.conversationId !== this.current) return;
    if (!this.messageList.updateStreaming(m)) this.scheduleRender();
  }

  private onConversation(c: ConversationDto): void {
    this.sidebar.conversationChanged(c);
    this.scheduleRender();
  }

  private onConversationDeleted(conversationId: string): void {
    const here = this.sidebar.deleted(conversationId);
    if (conversationId === this.current) {
      void this.open(null, true);
      if (!here) this.feedback.showNotice('This conversation was deleted in another window.');
    }
    this.scheduleRender();
  }

  // ---- the open conversation --------------------------------------------------------------------------------

  /** After the first listing: reopen the conversation open before a reload, else the most recent one. */
  private restoreConversation(conversations: ConversationDto[]): void {
    if (this.current !== null || this.composer.startingConversation || this.messageList.loading) return;
    const target = storage.get(this.storageKey()) ?? conversations[0]?.id;
    if (target) void this.open(target, true);
  }

  private async open(conversationId: string | null, quiet: boolean): Promise<void> {
    const chat = this.chat;
    const previous = this.current;
    // Stop following the conversation left behind: the SDK then neither stores nor catches it up. One still
    // streaming a reply stays followed, so the reply is complete when the user comes back.
    if (chat && previous && previous !== conversationId && !chat.messages(previous).some((m) => m.status === 'streaming')) {
      chat.forget(previous);
    }
    this.current = conversationId;
    this.sidebar.closeEditors();
    this.messageList.reset(conversationId !== null);
    if (!quiet) this.feedback.hideNotice();
    this.setPane('chat');
    if (this.session.userId) storage.set(this.storageKey(), conversationId);
    const ticket = ++this.openTicket;
    this.renderAll({ bottom: true });
    if (!conversationId || !chat) return;
    try {
      await chat.open(conversationId);
    } catch (err) {
      if (ticket !== this.openTicket || chat !== this.chat) return;
      this.messageList.opened();
      if (err instanceof ChatError && err.code === 'NOT_FOUND') {
        this.current = null;
        if (this.session.userId) storage.set(this.storageKey(), null);
        if (!quiet) this.feedback.showError(err);
      } else {
        this.feedback.showError(err);
      }
      this.renderAll({ bottom: true });
      return;
    }
    if (ticket !== this.openTicket || chat !== this.chat) return;
    this.messageList.opened();
    const conversation = chat.conversations().find((c) => c.id === conversationId);
    if (conversation) this.sidebar.markRead(conversationId, conversation.lastSeq);
    this.renderAll({ bottom: true });
    await this.messageList.fillViewport(conversationId);
  }

  private storageKey(): string {
    return `chat-widget:${this.server}:${this.session.userId ?? ''}:conversation`;
  }

  // ---- rendering --------------------------------------------------------------------------------------------

  /** Many SDK events arrive in one task (a page of history, a catch-up): they share one render. */
  private scheduleRender(): void {
    if (this.renderQueued) return;
    this.renderQueued = true;
    queueMicrotask(() => {
      this.renderQueued = false;
      this.renderAll();
    });
  }

  private renderAll(scroll: ScrollIntent = {}): void {
    this.sidebar.render();
    const open = this.chat?.conversations().find((c) => c.id === this.current);
    this.ui.title.textContent = this.current === null ? 'New conversation' : open ? titleOf(open) : 'Conversation';
    this.messageList.render(scroll);
  }

  private setPane(pane: 'list' | 'chat'): void {
    this.ui.root.dataset.pane = pane;
  }
}

declare global {
  interface HTMLElementTagNameMap {
    'chat-widget': ChatWidget;
  }
}
