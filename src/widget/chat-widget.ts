/**
 * `<chat-widget>`: the embeddable chat UI, a framework-free custom element on top of the client SDK.
 *
 * The SDK keeps the conversations consistent (dedupe by seq, gap repair, catch-up after reconnects, delta
 * ordering); this element only renders what the SDK holds and sends the user's commands.
 *
 * @example
 * <script type="module" src="https://chat.example.com/widget/chat-widget.js"></script>
 * <chat-widget server="https://chat.example.com"></chat-widget>
 * <script type="module">
 *   const widget = document.querySelector('chat-widget');
 *   widget.getToken = async () => (await fetch('/chat-token')).text(); // your backend signs the JWT
 * </script>
 */
import { ChatError, createChatClient, type ChatClient, type ConnectionStatus, type ConversationDto, type MessageDelta, type MessageDto } from '../sdk/index.ts';
import { isFinal } from '../sdk/conversation-view.ts';
import { randomId } from '../sdk/token.ts';
import { h, ICONS, jwtSub, storage } from './dom.ts';
import { describeError, statusLabel } from './messages.ts';
import { WIDGET_CSS } from './styles.ts';

/** Returns a JWT for the gateway (`sub` = the user id, `exp` required); called for every handshake and renewal. */
export type TokenGetter = () => string | Promise<string>;

/** Detail of the `chat-status` event the element dispatches. */
export interface ChatStatusDetail {
  status: ConnectionStatus;
}
/** Detail of the `chat-error` event: a refused handshake, an expired session, a failure nobody awaited. */
export interface ChatErrorDetail {
  code: string;
  message: string;
}

/** How many conversations one page of the list holds. */
const LIST_PAGE = 30;
/** Older pages load when the user scrolls within this many pixels of the top. */
const OLDER_THRESHOLD_PX = 80;
/** Within this many pixels of the bottom, new content keeps the view pinned to the bottom. */
const STICKY_BOTTOM_PX = 48;
const ANNOUNCE_MAX_CHARS = 400;

/** The origin this script was served from: the gateway, unless the bundle was copied elsewhere. */
const SCRIPT_ORIGIN = (() => {
  try {
    const url = new URL(import.meta.url);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.origin : undefined;
  } catch {
    return undefined;
  }
})();

const TEMPLATE = /* html */ `
<div class="root" part="root" data-pane="chat">
  <div class="layout">
    <nav class="side" part="sidebar" aria-labelledby="side-title">
      <div class="side-head">
        <h2 id="side-title">Conversations</h2>
        <button type="button" class="accent new" data-ref="newButton">New chat</button>
      </div>
      <ul class="convs" data-ref="convs"></ul>
      <div class="side-foot">
        <p data-ref="emptyConvs" hidden>No conversations yet.</p>
        <button type="button" data-ref="moreConvs" hidden>Show older conversations</button>
      </div>
    </nav>
    <section class="main" part="main" aria-labelledby="conv-title">
      <header class="main-head">
        <button type="button" class="icon back" data-ref="back" aria-label="Back to conversations">${ICONS.back}</button>
        <h2 id="conv-title" data-ref="title">New conversation</h2>
        <span class="status" data-ref="status" data-status="idle">Not signed in</span>
      </header>
      <div class="banner" data-ref="banner" role="status" hidden><span data-ref="bannerText"></span><button type="button" data-ref="bannerAction" hidden></button></div>
      <div class="scroller" data-ref="scroller" tabindex="0" role="region" aria-label="Messages">
        <button type="button" class="older" data-ref="older" hidden>Load older messages</button>
        <ol class="messages" data-ref="messages"></ol>
        <p class="placeholder" data-ref="placeholder">Type a message below to start a conversation.</p>
      </div>
      <div class="notice" data-ref="notice" role="alert" hidden><p data-ref="noticeText"></p><button type="button" class="icon" data-ref="noticeClose" aria-label="Dismiss">${ICONS.close}</button></div>
      <form class="composer" part="composer" data-ref="composer">
        <label class="sr-only" for="input">Message</label>
        <textarea id="input" data-ref="input" rows="1" placeholder="Type a message…" enterkeyhint="send" aria-describedby="hint"></textarea>
        <button type="button" class="danger" data-ref="stop" hidden>Stop</button>
        <button type="submit" class="accent" data-ref="send">Send</button>
      </form>
      <p class="hint" id="hint">Enter sends, Shift+Enter starts a new line, Esc stops a reply.</p>
    </section>
  </div>
  <div class="sr-only" data-ref="live" aria-live="polite" aria-relevant="additions"></div>
</div>`;

type Refs = {
  root: HTMLDivElement;
  newButton: HTMLButtonElement;
  convs: HTMLUListElement;
  emptyConvs: HTMLParagraphElement;
  moreConvs: HTMLButtonElement;
  back: HTMLButtonElement;
  title: HTMLHeadingElement;
  status: HTMLSpanElement;
  banner: HTMLDivElement;
  bannerText: HTMLSpanElement;
  bannerAction: HTMLButtonElement;
  scroller: HTMLDivElement;
  older: HTMLButtonElement;
  messages: HTMLOListElement;
  placeholder: HTMLParagraphElement;
  notice: HTMLDivElement;
  noticeText: HTMLParagraphElement;
  noticeClose: HTMLButtonElement;
  composer: HTMLFormElement;
  input: HTMLTextAreaElement;
  stop: HTMLButtonElement;
  send: HTMLButtonElement;
  live: HTMLDivElement;
};

let sharedSheet: CSSStyleSheet | undefined;

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

  private readonly ui: Refs;
  private chat: ChatClient | undefined;
  private offs: (() => void)[] = [];
  private tokenValue: string | undefined;
  private tokenGetter: TokenGetter | undefined;
  private userId: string | undefined;
  private restartQueued = false;
  /** Bumped on every (re)start: work begun for an older client ignores its results. */
  private generation = 0;

  private current: string | null = null;
  private opening = false;
  private openTicket = 0;
  private listed = false;
  private nextCursor: string | null = null;
  private everConnected = false;
  private editing: string | null = null;
  private confirming: string | null = null;
  private loadingOlder = false;
  private pendingSends = 0;
  private renderQueued = false;

  private readonly messageEls = new Map<string, HTMLLIElement>();
  private readonly conversationEls = new Map<string, HTMLLIElement>();
  /** The lastSeq of each conversation the user has seen; higher ones are marked unread. */
  private readonly seen = new Map<string, number>();
  /** clientMessageIds this tab sent (not announced as news), and those that start a new conversation. */
  private readonly mySends = new Set<string>();
  private readonly draftSends = new Set<string>();
  private readonly deletingHere = new Set<string>();
  private readonly announced = new Set<string>();
  private bannerTimer: ReturnType<typeof setTimeout> | undefined;

  constructor() {
    super();
    const shadow = this.attachShadow({ mode: 'open' });
    // A constructed sheet, shared by every instance: also allowed under a strict style-src CSP.
    if ('adoptedStyleSheets' in shadow && typeof CSSStyleSheet !== 'undefined' && 'replaceSync' in CSSStyleSheet.prototype) {
      sharedSheet ??= (() => {
        const sheet = new CSSStyleSheet();
        sheet.replaceSync(WIDGET_CSS);
        return sheet;
      })();
      shadow.adoptedStyleSheets = [sharedSheet];
      shadow.innerHTML = TEMPLATE;
    } else {
      shadow.innerHTML = `<style>${WIDGET_CSS}</style>${TEMPLATE}`;
    }
    const refs: Record<string, Element> = { root: shadow.querySelector('.root')! };
    for (const el of shadow.querySelectorAll('[data-ref]')) refs[(el as HTMLElement).dataset.ref!] = el;
    this.ui = refs as Refs;
    this.wireDom();
    // Properties set on the element before this class was defined shadow the accessors: re-apply them.
    for (const prop of ['token', 'getToken'] as const) {
      if (Object.prototype.hasOwnProperty.call(this, prop)) {
        const value = (this as Record<string, unknown>)[prop];
        delete (this as Record<string, unknown>)[prop];
        (this as Record<string, unknown>)[prop] = value;
      }
    }
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
    return this.tokenValue;
  }
  set token(value: string | null | undefined) {
    const next = value || undefined;
    if (next === this.tokenValue) return;
    const previous = this.tokenValue;
    this.tokenValue = next;
    const chat = this.chat;
    if (chat && next && previous && !this.tokenGetter && jwtSub(next) === jwtSub(previous)) {
      // Renewal: keep the socket and the view.
      chat.refreshToken(next).catch(() => this.restart());
      return;
    }
    this.restart();
  }

  /** Called for every handshake and ~30 s before each token expires; wins over `token`. */
  get getToken(): TokenGetter | undefined {
    return this.tokenGetter;
  }
  set getToken(fn: TokenGetter | null | undefined) {
    if ((fn ?? undefined) === this.tokenGetter) return;
    this.tokenGetter = fn ?? undefined;
    this.restart();
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
    this.stopClient();
    this.resetView();
    if (!this.isConnected || (!this.tokenValue && !this.tokenGetter)) {
      this.showStatus(undefined);
      return;
    }
    const generation = ++this.generation;
    const getter = this.tokenGetter;
    this.userId = this.tokenValue ? jwtSub(this.tokenValue) : undefined;
    const chat = createChatClient({
      url: this.server,
      token: this.tokenValue,
      getToken: getter
        ? async () => {
            const token = await getter();
            if (generation === this.generation) this.userId = jwtSub(token);
            return token;
          }
        : undefined,
      transports: this.transports(),
    });
    this.chat = chat;
    this.offs = [
      chat.on('status', (s) => this.onStatus(s)),
      chat.on('message', (m) => this.onMessage(m)),
      chat.on('delta', (d, m) => this.onDelta(d, m)),
      chat.on('conversation', (c) => this.onConversation(c)),
      chat.on('conversationDeleted', (id) => this.onConversationDeleted(id)),
      chat.on('authExpired', () => this.onAuthExpired()),
      chat.on('error', (err) => this.onClientError(err)),
    ];
    this.showStatus(chat.status);
  }

  private stopClient(): void {
    for (const off of this.offs) off();
    this.offs = [];
    this.chat?.close();
    this.chat = undefined;
    this.generation++;
  }

  private resetView(): void {
    this.current = null;
    this.opening = false;
    this.listed = false;
    this.nextCursor = null;
    this.everConnected = false;
    this.editing = this.confirming = null;
    this.pendingSends = 0;
    this.seen.clear();
    this.mySends.clear();
    this.draftSends.clear();
    this.announced.clear();
    this.messageEls.clear();
    this.conversationEls.clear();
    this.ui.messages.replaceChildren();
    this.ui.convs.replaceChildren();
    this.hideBanner();
    this.hideNotice();
    this.setPane('chat');
    this.renderAll();
  }

  private transports(): ('websocket' | 'polling')[] | undefined {
    const list = (this.getAttribute('transports') ?? '')
      .split(',')
      .map((t) => t.trim())
      .filter((t): t is 'websocket' | 'polling' => t === 'websocket' || t === 'polling');
    return list.length ? list : undefined;
  }

  // ---- SDK events -------------------------------------------------------------------------------------------

  private onStatus(status: ConnectionStatus): void {
    this.showStatus(status);
    this.dispatchEvent(new CustomEvent<ChatStatusDetail>('chat-status', { detail: { status }, bubbles: true, composed: true }));
    const chat = this.chat;
    if (status === 'connected') {
      if (this.everConnected) {
        this.showBanner('ok', 'Reconnected. Catching up…');
        const generation = this.generation;
        void chat?.synced().then(() => {
          if (generation !== this.generation || chat?.status !== 'connected') return;
          this.showBanner('ok', 'Back online. You are up to date.');
          this.announce('Connection restored.');
          this.bannerTimer = setTimeout(() => this.hideBanner(), 2500);
        });
      } else {
        this.hideBanner();
      }
      this.everConnected = true;
      if (!this.listed) void this.loadConversations(true);
    } else if (status === 'reconnecting') {
      this.showBanner('warn', 'Connection lost. Reconnecting… Messages you send now go out once it is back.');
      if (this.everConnected) this.announce('Connection lost. Reconnecting.');
    } else if (status === 'disconnected' && chat) {
      this.showBanner('error', this.everConnected ? 'Disconnected from the chat server.' : 'Could not connect to the chat server.', {
        label: 'Reconnect',
        run: () => this.chat?.connect(),
      });
    }
  }

  private onMessage(m: MessageDto): void {
    const mine = m.clientMessageId !== null && this.mySends.has(m.clientMessageId);
    // The first message of a conversation this tab started: show it as soon as the server has it.
    if (this.current === null && m.clientMessageId !== null && this.draftSends.has(m.clientMessageId)) {
      this.draftSends.delete(m.clientMessageId);
      void this.open(m.conversationId, true);
      return;
    }
    if (m.conversationId !== this.current) return;
    if (!this.announced.has(m.id)) {
      if (m.role === 'assistant' && isFinal(m)) {
        this.announced.add(m.id);
        const how = m.status === 'stopped' ? ' (stopped)' : m.status === 'failed' ? ' (failed)' : '';
        this.announce(`Assistant${how}: ${m.content}`);
      } else if (m.role === 'user' && !mine) {
        this.announced.add(m.id);
        this.announce(`You, in another window: ${m.content}`);
      } else if (m.role === 'user') {
        this.announced.add(m.id);
      }
    }
    this.scheduleRender();
  }

  private onDelta(_delta: MessageDelta, m: MessageDto): void {
    if (m.conversationId !== this.current) return;
    const el = this.messageEls.get(m.id);
    if (!el) return this.scheduleRender();
    const pinned = this.pinnedToBottom();
    this.updateMessageEl(el, m);
    if (pinned) this.scrollToBottom();
  }

  private onConversation(c: ConversationDto): void {
    // What it holds when first heard of counts as seen; later messages outside the open conversation are unread.
    if (c.id === this.current || !this.seen.has(c.id)) this.seen.set(c.id, c.lastSeq);
    this.scheduleRender();
  }

  private onConversationDeleted(conversationId: string): void {
    const here = this.deletingHere.delete(conversationId);
    if (conversationId === this.current) {
      void this.open(null, true);
      if (!here) this.showNotice('This conversation was deleted in another window.');
    }
    this.scheduleRender();
  }

  private onAuthExpired(): void {
    if (this.tokenGetter) return; // the SDK renews the token and reconnects by itself
    this.showNotice(describeError(new ChatError('TOKEN_EXPIRED', 'token expired')));
    this.emitError('TOKEN_EXPIRED', 'the token expired; set a new one');
  }

  private onClientError(err: Error): void {
    const code = err instanceof ChatError ? err.code : 'INTERNAL';
    // A refused handshake is the user's business; a failed background repair is retried by the SDK.
    if (code === 'UNAUTHORIZED' || code === 'TOKEN_EXPIRED' || code === 'TOO_MANY_CONNECTIONS') this.showNotice(describeError(err));
    else console.warn('[chat-widget]', err);
    this.emitError(code, err.message);
  }

  private emitError(code: string, message: string): void {
    this.dispatchEvent(new CustomEvent<ChatErrorDetail>('chat-error', { detail: { code, message }, bubbles: true, composed: true }));
  }

  // ---- commands ---------------------------------------------------------------------------------------------

  private async loadConversations(first: boolean): Promise<void> {
    const chat = this.chat;
    const generation = this.generation;
    if (!chat) return;
    this.ui.moreConvs.disabled = true;
    try {
      const page = await chat.listConversations({ limit: LIST_PAGE, cursor: first ? null : this.nextCursor });
      if (generation !== this.generation) return;
      this.nextCursor = page.nextCursor;
      // What existed before this page counts as read.
      for (const c of page.conversations) if (!this.seen.has(c.id)) this.seen.set(c.id, c.lastSeq);
      if (first && !this.listed) {
        this.listed = true;
        this.restoreConversation(page.conversations);
      }
    } catch (err) {
      if (generation === this.generation) this.showNotice(describeError(err));
    } finally {
      this.ui.moreConvs.disabled = false;
      if (generation === this.generation) this.scheduleRender();
    }
  }

  /** After the first listing: reopen the conversation open before a reload, else the most recent one. */
  private restoreConversation(conversations: ConversationDto[]): void {
    if (this.current !== null || this.draftSends.size > 0 || this.opening) return;
    const stored = storage.get(this.storageKey());
    const target = stored ?? conversations[0]?.id;
    if (target) void this.open(target, true);
  }

  private async open(conversationId: string | null, quiet: boolean): Promise<void> {
    const chat = this.chat;
    const previous = this.current;
    // Stop following the conversation left behind: the SDK then neither stores nor catches it up.
    if (chat && previous && previous !== conversationId && !this.hasStreaming(previous)) chat.forget(previous);
    this.current = conversationId;
    this.editing = this.confirming = null;
    this.messageEls.clear();
    this.ui.messages.replaceChildren();
    if (!quiet) this.hideNotice();
    this.setPane('chat');
    if (this.userId) storage.set(this.storageKey(), conversationId);
    const ticket = ++this.openTicket;
    this.opening = conversationId !== null;
    this.renderAll({ bottom: true });
    if (!conversationId || !chat) return;
    try {
      await chat.open(conversationId);
    } catch (err) {
      if (ticket !== this.openTicket || chat !== this.chat) return;
      this.opening = false;
      if (err instanceof ChatError && err.code === 'NOT_FOUND') {
        this.current = null;
        if (this.userId) storage.set(this.storageKey(), null);
        if (!quiet) this.showNotice(describeError(err));
      } else {
        this.showNotice(describeError(err));
      }
      this.renderAll({ bottom: true });
      return;
    }
    if (ticket !== this.openTicket || chat !== this.chat) return;
    this.opening = false;
    const conversation = chat.conversations().find((c) => c.id === conversationId);
    if (conversation) this.seen.set(conversationId, conversation.lastSeq);
    this.renderAll({ bottom: true });
    await this.fillViewport(conversationId);
  }

  /** Loads older pages until the list can scroll (scrolling up is what loads more). */
  private async fillViewport(conversationId: string): Promise<void> {
    for (let i = 0; i < 5; i++) {
      const sc = this.ui.scroller;
      if (this.current !== conversationId || !this.chat?.hasOlder(conversationId)) return;
      if (sc.scrollHeight > sc.clientHeight + 8) return;
      await this.loadOlder();
    }
  }

  private async loadOlder(): Promise<void> {
    const chat = this.chat;
    const id = this.current;
    if (!chat || !id || this.loadingOlder || this.opening || !chat.hasOlder(id)) return;
    this.loadingOlder = true;
    this.ui.older.textContent = 'Loading older messages…';
    this.ui.older.setAttribute('aria-disabled', 'true');
    const sc = this.ui.scroller;
    try {
      // Measured after the request: content may grow at the bottom meanwhile, the anchor is the top.
      await chat.loadOlder(id);
    } catch (err) {
      if (this.current === id) this.showNotice(describeError(err));
    } finally {
      this.loadingOlder = false;
      this.ui.older.textContent = 'Load older messages';
      this.ui.older.removeAttribute('aria-disabled');
    }
    if (this.current !== id || chat !== this.chat) return;
    const anchor = { height: sc.scrollHeight, top: sc.scrollTop };
    this.renderMessages({ anchor });
  }

  private async send(): Promise<void> {
    const chat = this.chat;
    const input = this.ui.input;
    const content = input.value;
    if (!content.trim()) return;
    if (!chat) return this.showNotice('The chat is not connected yet: it needs a sign-in token.');
    // A second message before the first one of a new conversation is stored would start another conversation.
    if (this.current === null && this.draftSends.size > 0) return;
    const conversationId = this.current;
    const clientMessageId = randomId();
    this.mySends.add(clientMessageId);
    if (conversationId === null) this.draftSends.add(clientMessageId);
    input.value = '';
    this.autosize();
    this.hideNotice();
    this.pendingSends++;
    this.renderComposer();
    try {
      const { conversation } = await chat.send({ conversationId, content, clientMessageId });
      if (chat === this.chat && this.current === null && this.draftSends.has(clientMessageId)) void this.open(conversation.id, true);
    } catch (err) {
      if (chat !== this.chat) return;
      // Give the text back, unless the user has started typing something else.
      if (!input.value) {
        input.value = content;
        this.autosize();
      }
      this.showNotice(describeError(err, 'send', content));
    } finally {
      this.draftSends.delete(clientMessageId);
      if (chat === this.chat) {
        this.pendingSends--;
        this.renderComposer();
      }
    }
  }

  private async stopReply(): Promise<void> {
    const chat = this.chat;
    const id = this.current;
    const messageId = this.ui.stop.dataset.messageId;
    if (!chat || !id || !messageId) return;
    const hadFocus = this.shadowRoot!.activeElement === this.ui.stop;
    this.ui.stop.disabled = true;
    try {
      await chat.stop(id, messageId);
    } catch (err) {
      // Already over (complete, stopped elsewhere): nothing to tell.
      if (!(err instanceof ChatError && err.code === 'VALIDATION')) this.showNotice(describeError(err));
    } finally {
      this.ui.stop.disabled = false;
      this.renderMessages();
      if (hadFocus) this.ui.input.focus();
    }
  }

  private async rename(conversationId: string, title: string): Promise<void> {
    const chat = this.chat;
    this.editing = null;
    this.renderConversations();
    this.focusConversation(conversationId);
    if (!chat) return;
    try {
      await chat.renameConversation(conversationId, title.trim() || null);
    } catch (err) {
      this.showNotice(describeError(err));
    }
  }

  private async deleteConversation(conversationId: string): Promise<void> {
    const chat = this.chat;
    if (!chat) return;
    const ids = chat.conversations().map((c) => c.id);
    const next = ids[ids.indexOf(conversationId) + 1] ?? ids[ids.indexOf(conversationId) - 1];
    this.confirming = null;
    this.deletingHere.add(conversationId);
    try {
      await chat.deleteConversation(conversationId);
      if (next) this.focusConversation(next);
      else this.ui.newButton.focus();
    } catch (err) {
      this.deletingHere.delete(conversationId);
      this.showNotice(describeError(err));
      this.renderConversations();
    }
  }

  // ---- rendering --------------------------------------------------------------------------------------------

  private scheduleRender(): void {
    if (this.renderQueued) return;
    this.renderQueued = true;
    queueMicrotask(() => {
      this.renderQueued = false;
      this.renderAll();
    });
  }

  private renderAll(options: { bottom?: boolean } = {}): void {
    this.renderConversations();
    this.renderMessages(options);
  }

  private renderConversations(): void {
    const conversations = this.chat?.conversations() ?? [];
    const ul = this.ui.convs;
    const focused = this.shadowRoot!.activeElement as HTMLElement | null;
    const focusedIn = focused?.closest<HTMLElement>('.conv')?.dataset.id;
    const focusedAction = focused?.dataset.action;
    const keep = new Set<string>();
    let prev: Element | null = null;
    for (const c of conversations) {
      if (c.id === this.current) this.seen.set(c.id, c.lastSeq);
      let li = this.conversationEls.get(c.id);
      if (!li) {
        li = h('li', { class: 'conv', attrs: { 'data-id': c.id } });
        this.conversationEls.set(c.id, li);
      }
      this.updateConversationEl(li, c);
      const expected: Element | null = prev ? prev.nextElementSibling : ul.firstElementChild;
      if (expected !== li) ul.insertBefore(li, expected);
      prev = li;
      keep.add(c.id);
    }
    for (const [id, li] of this.conversationEls) {
      if (keep.has(id)) continue;
      li.remove();
      this.conversationEls.delete(id);
    }
    // Moving a node drops its focus, and so does rebuilding a row: give it back.
    if (focused && this.shadowRoot!.activeElement !== focused) {
      if (focused.isConnected) focused.focus();
      else if (focusedIn && focusedAction) this.conversationEls.get(focusedIn)?.querySelector<HTMLElement>(`[data-action="${focusedAction}"]`)?.focus();
    }
    this.ui.emptyConvs.hidden = conversations.length > 0 || !this.listed;
    this.ui.moreConvs.hidden = !this.nextCursor;
    const open = conversations.find((c) => c.id === this.current);
    this.ui.title.textContent = this.current === null ? 'New conversation' : open ? titleOf(open) : 'Conversation';
  }

  private updateConversationEl(li: HTMLLIElement, c: ConversationDto): void {
    const mode = this.editing === c.id ? 'edit' : this.confirming === c.id ? 'confirm' : 'view';
    const title = titleOf(c);
    const isCurrent = c.id === this.current;
    li.setAttribute('aria-current', String(isCurrent));
    if (mode === 'view' && li.dataset.mode === 'view' && li.dataset.title !== title) {
      // A new title: changed in place, so a focused button keeps its focus.
      li.dataset.title = title;
      li.querySelector('.conv-title')!.textContent = title;
      li.querySelector('[data-action="rename"]')!.setAttribute('aria-label', `Rename “${title}”`);
      li.querySelector('[data-action="delete"]')!.setAttribute('aria-label', `Delete “${title}”`);
    } else if (li.dataset.mode !== mode || (mode === 'confirm' && li.dataset.title !== title)) {
      li.dataset.mode = mode;
      li.dataset.title = title;
      if (mode === 'view') {
        li.replaceChildren(
          h(
            'button',
            { class: 'conv-open', attrs: { type: 'button', 'data-action': 'open' } },
            h('span', { class: 'unread', attrs: { 'aria-hidden': 'true' } }),
            h('span', { class: 'conv-title', text: title }),
            h('span', { class: 'sr-only unread-label', text: ', new messages' }),
          ),
          h(
            'span',
            { class: 'conv-actions' },
            h('button', { class: 'icon', html: ICONS.pencil, attrs: { type: 'button', 'data-action': 'rename', 'aria-label': `Rename “${title}”`, title: 'Rename' } }),
            h('button', { class: 'icon', html: ICONS.trash, attrs: { type: 'button', 'data-action': 'delete', 'aria-label': `Delete “${title}”`, title: 'Delete' } }),
          ),
        );
      } else if (mode === 'edit') {
        const input = h('input', { attrs: { type: 'text', maxlength: '200', 'aria-label': 'New title', 'data-role': 'title-input' } });
        input.value = c.title ?? '';
        li.replaceChildren(
          h(
            'form',
            { class: 'conv-edit', attrs: { 'data-action': 'rename-form' } },
            input,
            h('button', { class: 'accent', text: 'Save', attrs: { type: 'submit' } }),
            h('button', { text: 'Cancel', attrs: { type: 'button', 'data-action': 'cancel' } }),
          ),
        );
      } else {
        li.replaceChildren(
          h(
            'div',
            { class: 'conv-confirm', attrs: { role: 'group', 'aria-label': `Delete “${title}”?` } },
            h('span', { text: `Delete “${title}”?` }),
            h('button', { class: 'danger', text: 'Delete', attrs: { type: 'button', 'data-action': 'confirm-delete' } }),
            h('button', { text: 'Cancel', attrs: { type: 'button', 'data-action': 'cancel' } }),
          ),
        );
      }
    }
    const open = li.querySelector<HTMLButtonElement>('.conv-open');
    if (open) {
      if (isCurrent) open.setAttribute('aria-current', 'true');
      else open.removeAttribute('aria-current');
      const unread = !isCurrent && c.lastSeq > (this.seen.get(c.id) ?? c.lastSeq);
      li.querySelector<HTMLElement>('.unread')!.hidden = !unread;
      li.querySelector<HTMLElement>('.unread-label')!.hidden = !unread;
    }
  }

  private renderMessages(options: { bottom?: boolean; anchor?: { height: number; top: number } } = {}): void {
    const id = this.current;
    const chat = this.chat;
    const messages = id && chat ? chat.messages(id) : [];
    const list = this.ui.messages;
    const sc = this.ui.scroller;
    const pinned = this.pinnedToBottom();
    const keep = new Set<string>();
    let prev: Element | null = null;
    let streaming: MessageDto | undefined;
    for (const m of messages) {
      let li = this.messageEls.get(m.id);
      if (!li) {
        li = h(
          'li',
          { class: 'msg' },
          h('div', { class: 'bubble' }, h('span', { class: 'sr-only who' }), h('span', { class: 'text' })),
          h('div', { class: 'msg-meta' }),
        );
        this.messageEls.set(m.id, li);
      }
      this.updateMessageEl(li, m);
      const expected: Element | null = prev ? prev.nextElementSibling : list.firstElementChild;
      if (expected !== li) list.insertBefore(li, expected);
      prev = li;
      keep.add(m.id);
      if (m.role === 'assistant' && m.status === 'streaming') streaming = m;
    }
    for (const [mid, li] of this.messageEls) {
      if (keep.has(mid)) continue;
      li.remove();
      this.messageEls.delete(mid);
    }
    const placeholder = this.ui.placeholder;
    placeholder.hidden = messages.length > 0;
    placeholder.textContent =
      id === null
        ? chat
          ? 'Type a message below to start a new conversation.'
          : 'Waiting for sign-in…'
        : this.opening
          ? 'Loading messages…'
          : 'No messages yet.';
    this.ui.older.hidden = !(id && chat?.hasOlder(id) && !this.opening);
    list.setAttribute('aria-busy', String(this.opening));
    this.ui.stop.hidden = !streaming;
    if (streaming) this.ui.stop.dataset.messageId = streaming.id;
    else delete this.ui.stop.dataset.messageId;
    this.renderComposer();
    if (options.anchor) sc.scrollTop = options.anchor.top + (sc.scrollHeight - options.anchor.height);
    else if (options.bottom || pinned) this.scrollToBottom();
  }

  private updateMessageEl(li: HTMLLIElement, m: MessageDto): void {
    li.dataset.id = m.id;
    li.dataset.seq = String(m.seq);
    li.dataset.role = m.role;
    li.dataset.status = m.status;
    li.setAttribute('aria-busy', String(m.status === 'streaming'));
    const who = li.querySelector('.who')!;
    const label = m.role === 'user' ? 'You: ' : m.role === 'assistant' ? 'Assistant: ' : 'System: ';
    if (who.textContent !== label) who.textContent = label;
    const text = li.querySelector('.text')!;
    if (text.textContent !== m.content) text.textContent = m.content;
    const bubble = li.firstElementChild as HTMLElement;
    bubble.title = new Date(m.createdAt).toLocaleString();
    const meta = li.querySelector<HTMLElement>('.msg-meta')!;
    const metaText = m.status === 'stopped' ? 'Stopped' : m.status === 'failed' ? failureText(m) : '';
    meta.textContent = metaText;
    meta.hidden = !metaText;
  }

  private renderComposer(): void {
    const blocked = this.current === null && this.draftSends.size > 0;
    this.ui.send.setAttribute('aria-disabled', String(blocked));
    this.ui.composer.setAttribute('aria-busy', String(this.pendingSends > 0));
  }

  private showStatus(status: ConnectionStatus | undefined): void {
    this.ui.status.dataset.status = status ?? 'idle';
    this.ui.status.textContent = status ? statusLabel(status) : 'Not signed in';
  }

  private showBanner(kind: 'ok' | 'warn' | 'error', text: string, action?: { label: string; run: () => void }): void {
    clearTimeout(this.bannerTimer);
    const b = this.ui.banner;
    b.dataset.kind = kind;
    this.ui.bannerText.textContent = text;
    this.ui.bannerAction.hidden = !action;
    if (action) {
      this.ui.bannerAction.textContent = action.label;
      this.ui.bannerAction.onclick = action.run;
    }
    b.hidden = false;
  }

  private hideBanner(): void {
    clearTimeout(this.bannerTimer);
    this.ui.banner.hidden = true;
  }

  private showNotice(text: string): void {
    this.ui.noticeText.textContent = text;
    this.ui.notice.hidden = false;
  }

  private hideNotice(): void {
    this.ui.notice.hidden = true;
    this.ui.noticeText.textContent = '';
  }

  /** Screen readers hear new messages from here (the message list itself stays quiet while replies stream). */
  private announce(text: string): void {
    const live = this.ui.live;
    const short = text.length > ANNOUNCE_MAX_CHARS ? `${text.slice(0, ANNOUNCE_MAX_CHARS)}…` : text;
    live.append(h('p', { text: short }));
    while (live.childElementCount > 3) live.firstElementChild!.remove();
  }

  private setPane(pane: 'list' | 'chat'): void {
    this.ui.root.dataset.pane = pane;
  }

  private pinnedToBottom(): boolean {
    const sc = this.ui.scroller;
    return sc.scrollHeight - sc.scrollTop - sc.clientHeight < STICKY_BOTTOM_PX;
  }

  private scrollToBottom(): void {
    const sc = this.ui.scroller;
    sc.scrollTop = sc.scrollHeight;
  }

  private autosize(): void {
    const input = this.ui.input;
    input.style.height = 'auto';
    input.style.height = `${input.scrollHeight + 2}px`;
  }

  private focusConversation(conversationId: string): void {
    this.conversationEls.get(conversationId)?.querySelector<HTMLElement>('.conv-open')?.focus();
  }

  private hasStreaming(conversationId: string): boolean {
    return this.chat?.messages(conversationId).some((m) => m.status === 'streaming') ?? false;
  }

  private storageKey(): string {
    return `chat-widget:${this.server}:${this.userId ?? ''}:conversation`;
  }

  // ---- DOM events -------------------------------------------------------------------------------------------

  private wireDom(): void {
    const ui = this.ui;
    ui.composer.addEventListener('submit', (e) => {
      e.preventDefault();
      void this.send();
    });
    ui.input.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        void this.send();
      } else if (e.key === 'Escape' && !ui.stop.hidden) {
        e.preventDefault();
        void this.stopReply();
      }
    });
    ui.input.addEventListener('input', () => this.autosize());
    ui.stop.addEventListener('click', () => void this.stopReply());
    ui.newButton.addEventListener('click', () => {
      void this.open(null, false);
      ui.input.focus();
    });
    ui.back.addEventListener('click', () => {
      this.setPane('list');
      (this.current ? this.conversationEls.get(this.current)?.querySelector<HTMLElement>('.conv-open') : ui.newButton)?.focus();
    });
    ui.moreConvs.addEventListener('click', () => void this.loadConversations(false));
    ui.older.addEventListener('click', () => void this.loadOlder());
    ui.noticeClose.addEventListener('click', () => {
      this.hideNotice();
      ui.input.focus();
    });
    ui.scroller.addEventListener('scroll', () => {
      if (ui.scroller.scrollTop < OLDER_THRESHOLD_PX) void this.loadOlder();
    }, { passive: true });

    ui.convs.addEventListener('click', (e) => {
      const target = (e.target as Element).closest<HTMLElement>('[data-action]');
      const id = target?.closest<HTMLElement>('.conv')?.dataset.id;
      if (!target || !id) return;
      switch (target.dataset.action) {
        case 'open':
          void this.open(id, false).then(() => {
            if (this.current === id) ui.input.focus({ preventScroll: true });
          });
          break;
        case 'rename':
          this.editing = id;
          this.confirming = null;
          this.renderConversations();
          {
            const input = this.conversationEls.get(id)?.querySelector<HTMLInputElement>('input');
            input?.focus();
            input?.select();
          }
          break;
        case 'delete':
          this.confirming = id;
          this.editing = null;
          this.renderConversations();
          this.conversationEls.get(id)?.querySelector<HTMLElement>('[data-action="cancel"]')?.focus();
          break;
        case 'confirm-delete':
          void this.deleteConversation(id);
          break;
        case 'cancel':
          this.editing = this.confirming = null;
          this.renderConversations();
          this.focusConversation(id);
          break;
      }
    });
    ui.convs.addEventListener('submit', (e) => {
      e.preventDefault();
      const form = e.target as HTMLFormElement;
      const id = form.closest<HTMLElement>('.conv')?.dataset.id;
      const input = form.querySelector('input');
      if (id && input) void this.rename(id, input.value);
    });
    ui.convs.addEventListener('keydown', (e) => {
      const target = e.target as HTMLElement;
      const id = target.closest<HTMLElement>('.conv')?.dataset.id;
      if (!id) return;
      if (e.key === 'Escape' && (this.editing === id || this.confirming === id)) {
        e.preventDefault();
        this.editing = this.confirming = null;
        this.renderConversations();
        this.focusConversation(id);
      } else if ((e.key === 'ArrowDown' || e.key === 'ArrowUp') && target.classList.contains('conv-open')) {
        // Arrow keys move between conversations; Tab reaches their rename and delete buttons.
        e.preventDefault();
        const buttons = [...ui.convs.querySelectorAll<HTMLElement>('.conv-open')];
        const i = buttons.indexOf(target) + (e.key === 'ArrowDown' ? 1 : -1);
        buttons[Math.max(0, Math.min(buttons.length - 1, i))]?.focus();
      }
    });
  }
}

function titleOf(c: ConversationDto): string {
  return c.title?.trim() || 'Untitled conversation';
}

function failureText(m: MessageDto): string {
  const error = m.metadata?.error as { code?: unknown; message?: unknown } | undefined;
  if (error?.code === 'INTERRUPTED') return 'The reply was interrupted.';
  return typeof error?.message === 'string' ? `The reply failed: ${error.message}` : 'The reply failed.';
}

declare global {
  interface HTMLElementTagNameMap {
    'chat-widget': ChatWidget;
  }
}
