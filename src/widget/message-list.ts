/**
 * The open conversation's messages: rendered from what the SDK holds, grown in place as replies stream, older
 * pages loaded when the user scrolls near the top, and the view kept at the bottom while the user is there.
 */
import type { ChatClient, MessageDto } from '../sdk/index.ts';
import { copyText } from './dom.ts';
import type { Feedback } from './feedback.ts';
import { KeyedList } from './keyed-list.ts';
import { createRow, messageRow, pendingRow, showMarkdown, thinkingRow, updateRow, type RowModel } from './message-row.ts';
import type { Outbox } from './outbox.ts';
import type { WidgetRefs } from './template.ts';

/** Older pages load when the user scrolls within this many pixels of the top. */
const OLDER_THRESHOLD_PX = 80;
/** Within this many pixels of the bottom, new content keeps the view pinned to the bottom. */
const STICKY_BOTTOM_PX = 48;
/** Older pages loaded at most this many times to make a short conversation scrollable (scrolling loads the rest). */
const FILL_PAGES = 5;
/** How long a copy button says "Copied". */
const COPIED_LABEL_MS = 1500;

/** What the message list needs from the element that holds it. */
export interface MessageListHost {
  client(): ChatClient | undefined;
  /** The open conversation; null for a new one not yet sent. */
  openConversationId(): string | null;
  /** The reply streaming in the open conversation changed (undefined: none), for the Stop button. */
  showStreaming(message: MessageDto | undefined): void;
  /** This tab's sends, shown until their replies are. */
  readonly outbox: Outbox;
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
  private readonly rows: KeyedList<RowModel>;
  /** The open conversation's first page is on its way. */
  private opening = false;
  private loadingOlder = false;
  /** Replies that grew since the last frame, with their latest text: rendered once a frame, however many deltas. */
  private readonly growing = new Map<HTMLElement, string>();
  private frame = 0;

  constructor(ui: MessageListRefs, host: MessageListHost, feedback: Feedback) {
    this.ui = ui;
    this.host = host;
    this.feedback = feedback;
    this.rows = new KeyedList(ui.messages, {
      key: (row) => row.key,
      create: () => createRow(),
      update: (li, row) => this.update(li, row),
    });
    ui.messages.addEventListener('click', (e) => void this.copy(e));
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
    this.growing.clear();
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
    const rows = messages.map(messageRow);
    const online = chat?.status === 'connected';
    for (const item of this.host.outbox.of(id, messages)) {
      if (!item.stored) rows.push(pendingRow(item, online));
      // A send waiting for the connection has no reply coming yet.
      if (item.stored || online) rows.push(thinkingRow(item));
    }
    this.rows.render(rows);
    let streaming: MessageDto | undefined;
    for (const m of messages) if (m.role === 'assistant' && m.status === 'streaming') streaming = m;
    const placeholder = this.ui.placeholder;
    placeholder.hidden = rows.length > 0;
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
   * A reply of the open conversation grew, or called a tool: only its row changes, and its Markdown is rendered
   * once a frame however many deltas come. False when the message has no row yet: it needs a full render.
   */
  updateStreaming(m: MessageDto): boolean {
    const row = messageRow(m);
    const li = this.rows.get(row.key);
    if (!li) return false;
    // A tool chip appearing changes the height now; the text's growth is measured again on its frame.
    const pinned = this.pinnedToBottom();
    this.update(li, row);
    if (pinned) this.ui.scroller.scrollTop = this.ui.scroller.scrollHeight;
    return true;
  }

  /** A row brought up to date; a reply still growing gets its Markdown on the next frame, with whatever came by then. */
  private update(li: HTMLLIElement, row: RowModel): void {
    const grows = row.status === 'streaming' && li.isConnected;
    updateRow(li, row, !grows);
    const text = li.querySelector<HTMLElement>('.text')!;
    if (!grows) {
      this.growing.delete(text);
      return;
    }
    this.growing.set(text, row.content);
    this.frame ||= requestAnimationFrame(() => this.renderGrowing());
  }

  private renderGrowing(): void {
    this.frame = 0;
    const pinned = this.pinnedToBottom();
    for (const [text, content] of this.growing) showMarkdown(text, content);
    this.growing.clear();
    if (pinned) this.ui.scroller.scrollTop = this.ui.scroller.scrollHeight;
  }

  /** The copy buttons of replies and of their code blocks. */
  private async copy(e: Event): Promise<void> {
    const button = (e.target as Element).closest('button');
    const text = button ? this.textToCopy(button) : undefined;
    if (!button || text === undefined) return;
    const done = await copyText(text);
    button.textContent = done ? 'Copied' : 'Copy failed';
    this.feedback.say(done ? 'Copied to the clipboard.' : 'Could not copy to the clipboard.');
    setTimeout(() => (button.textContent = 'Copy'), COPIED_LABEL_MS);
  }

  /** A code block's code, or a reply as the assistant wrote it (its Markdown); undefined for other buttons. */
  private textToCopy(button: HTMLButtonElement): string | undefined {
    if (button.classList.contains('copy-code')) {
      return (button.closest('.code')?.querySelector('pre')?.textContent ?? '').replace(/\n$/, '');
    }
    if (!button.classList.contains('copy-reply')) return undefined;
    const id = button.closest<HTMLElement>('li.msg')?.dataset.id;
    const conversationId = this.host.openConversationId();
    if (!conversationId) return undefined;
    return this.host
      .client()
      ?.messages(conversationId)
      .find((m) => m.id === id)?.content;
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
