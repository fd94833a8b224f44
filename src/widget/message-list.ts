/**
 * The open conversation's messages: rendered from what the SDK holds, grown in place as replies stream, older
 * pages loaded when the user scrolls near the top, and the view kept at the bottom while the user is there.
 */
import type { ChatClient, MessageDto } from '../sdk/index.ts';
import { h } from './dom.ts';
import type { Feedback } from './feedback.ts';
import { KeyedList } from './keyed-list.ts';
import type { WidgetRefs } from './template.ts';

/** Older pages load when the user scrolls within this many pixels of the top. */
const OLDER_THRESHOLD_PX = 80;
/** Within this many pixels of the bottom, new content keeps the view pinned to the bottom. */
const STICKY_BOTTOM_PX = 48;
/** Older pages loaded at most this many times to make a short conversation scrollable (scrolling loads the rest). */
const FILL_PAGES = 5;

/** What the message list needs from the element that holds it. */
export interface MessageListHost {
  client(): ChatClient | undefined;
  /** The open conversation; null for a new one not yet sent. */
  openConversationId(): string | null;
  /** The reply streaming in the open conversation changed (undefined: none), for the Stop button. */
  showStreaming(message: MessageDto | undefined): void;
}

/** Where to leave the scroll position after a render; by default it follows the bottom only if it was there. */
export interface ScrollIntent {
  bottom?: boolean;
  /** The scroller's height and scrollTop before older messages were inserted above: keep what was on screen. */
  anchor?: { height: number; top: number };
}

type MessageListRefs = Pick<WidgetRefs, 'scroller' | 'older' | 'messages' | 'placeholder'>;

export class MessageList {
  private readonly ui: MessageListRefs;
  private readonly host: MessageListHost;
  private readonly feedback: Feedback;
  private readonly rows: KeyedList<MessageDto>;
  /** The open conversation's first page is on its way. */
  private opening = false;
  private loadingOlder = false;

  constructor(ui: MessageListRefs, host: MessageListHost, feedback: Feedback) {
    this.ui = ui;
    this.host = host;
    this.feedback = feedback;
    this.rows = new KeyedList(ui.messages, {
      key: (m) => m.id,
      create: () =>
        h(
          'li',
          { class: 'msg' },
          h('div', { class: 'bubble' }, h('span', { class: 'sr-only who' }), h('span', { class: 'text' })),
          h('div', { class: 'msg-meta' }),
        ),
      update: (li, m) => updateRow(li, m),
    });
    ui.older.addEventListener('click', () => void this.loadOlder());
    ui.scroller.addEventListener(
      'scroll',
      () => {
        if (ui.scroller.scrollTop < OLDER_THRESHOLD_PX) void this.loadOlder();
      },
      { passive: true },
    );
  }

  get loading(): boolean {
    return this.opening;
  }

  /** Empties the list for another conversation; `opening` while that one's first page is on its way. */
  reset(opening: boolean): void {
    this.opening = opening;
    this.rows.clear();
  }

  /** The open conversation's first page arrived (or will not). */
  opened(): void {
    this.opening = false;
  }

  render(scroll: ScrollIntent = {}): void {
    const id = this.host.openConversationId();
    const chat = this.host.client();
    const messages = id && chat ? chat.messages(id) : [];
    const pinned = this.pinnedToBottom();
    this.rows.render(messages);
    let streaming: MessageDto | undefined;
    for (const m of messages) if (m.role === 'assistant' && m.status === 'streaming') streaming = m;
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
    this.ui.messages.setAttribute('aria-busy', String(this.opening));
    this.host.showStreaming(streaming);
    const sc = this.ui.scroller;
    if (scroll.anchor) sc.scrollTop = scroll.anchor.top + (sc.scrollHeight - scroll.anchor.height);
    else if (scroll.bottom || pinned) sc.scrollTop = sc.scrollHeight;
  }

  /**
   * A reply of the open conversation grew: only its row changes, so a stream of deltas costs one text update
   * each. False when the message has no row yet: it needs a full render.
   */
  updateStreaming(m: MessageDto): boolean {
    const li = this.rows.get(m.id);
    if (!li) return false;
    const pinned = this.pinnedToBottom();
    updateRow(li, m);
    if (pinned) this.ui.scroller.scrollTop = this.ui.scroller.scrollHeight;
    return true;
  }

  /** Loads older pages until the list can scroll (scrolling up is what loads more). */
  async fillViewport(conversationId: string): Promise<void> {
    for (let i = 0; i < FILL_PAGES; i++) {
      const sc = this.ui.scroller;
      if (this.host.openConversationId() !== conversationId || !this.host.client()?.hasOlder(conversationId)) return;
      if (sc.scrollHeight > sc.clientHeight + 8) return;
      await this.loadOlder();
    }
  }

  private async loadOlder(): Promise<void> {
    const chat = this.host.client();
    const id = this.host.openConversationId();
    if (!chat || !id || this.loadingOlder || this.opening || !chat.hasOlder(id)) return;
    this.loadingOlder = true;
    this.ui.older.textContent = 'Loading older messages…';
    this.ui.older.setAttribute('aria-disabled', 'true');
    const sc = this.ui.scroller;
    try {
      await chat.loadOlder(id);
    } catch (err) {
      if (this.host.openConversationId() === id) this.feedback.showError(err);
    } finally {
      this.loadingOlder = false;
      this.ui.older.textContent = 'Load older messages';
      this.ui.older.removeAttribute('aria-disabled');
    }
    if (this.host.openConversationId() !== id || chat !== this.host.client()) return;
    // Measured after the request: content may grow at the bottom meanwhile, the anchor is the top.
    const anchor = { height: sc.scrollHeight, top: sc.scrollTop };
    this.render({ anchor });
  }

  private pinnedToBottom(): boolean {
    const sc = this.ui.scroller;
    return sc.scrollHeight - sc.scrollTop - sc.clientHeight < STICKY_BOTTOM_PX;
  }
}

function updateRow(li: HTMLLIElement, m: MessageDto): void {
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

function failureText(m: MessageDto): string {
  const error = m.metadata?.error as { code?: unknown; message?: unknown } | undefined;
  if (error?.code === 'INTERRUPTED') return 'The reply was interrupted.';
  return typeof error?.message === 'string' ? `The reply failed: ${error.message}` : 'The reply failed.';
}
