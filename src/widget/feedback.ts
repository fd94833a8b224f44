/**
 * What the widget tells its user besides the conversation itself: the status pill, the connection banner, the
 * error notice, and what screen readers hear through the live region; and what it tells the embedding page, as
 * `chat-status` and `chat-error` events.
 */
import { ChatError, isFinal, type ChatClient, type ConnectionStatus, type MessageDto, type ToolCallDto } from '../sdk/index.ts';
import { h } from './dom.ts';
import { plainText } from './markdown.ts';
import { describeError, statusLabel, toolLabel } from './wording.ts';
import type { WidgetRefs } from './template.ts';

/** A long reply is cut for the live region: a screen reader reads it whole in the message list on request. */
const ANNOUNCE_MAX_CHARS = 400;
/** How long the "back online" banner stays before it hides itself. */
const BACK_ONLINE_BANNER_MS = 2500;

/** Detail of the `chat-status` event the element dispatches. */
export interface ChatStatusDetail {
  status: ConnectionStatus;
}
/** Detail of the `chat-error` event: a refused handshake, an expired session, a failure nobody awaited. */
export interface ChatErrorDetail {
  code: string;
  message: string;
}

type FeedbackRefs = Pick<
  WidgetRefs,
  'status' | 'banner' | 'bannerText' | 'bannerAction' | 'notice' | 'noticeText' | 'noticeClose' | 'live'
>;

export class Feedback {
  private readonly ui: FeedbackRefs;
  private readonly element: HTMLElement;
  /** A first connection says nothing; after that, losing and regaining it is news. */
  private everConnected = false;
  private bannerTimer: ReturnType<typeof setTimeout> | undefined;
  /** Messages already read out: each is announced once, however often the SDK reports it changed. */
  private readonly announced = new Set<string>();

  /** `element` dispatches the events; `onDismiss` runs when the user closes the notice, to move the focus on. */
  constructor(ui: FeedbackRefs, element: HTMLElement, onDismiss: () => void) {
    this.ui = ui;
    this.element = element;
    ui.noticeClose.addEventListener('click', () => {
      this.hideNotice();
      onDismiss();
    });
  }

  /** Forgets everything shown for the previous client (the status pill is set by whoever starts the next). */
  reset(): void {
    this.everConnected = false;
    this.announced.clear();
    this.hideBanner();
    this.hideNotice();
  }

  /** The status pill; undefined while there is no client (no token yet). */
  showStatus(status: ConnectionStatus | undefined): void {
    this.ui.status.dataset.status = status ?? 'idle';
    this.ui.status.textContent = status ? statusLabel(status) : 'Not signed in';
  }

  /**
   * The status pill, the `chat-status` event, banners and announcements for a change of `chat`'s connection.
   * `stale` turns true once the widget has moved on to another client, whose own banners must not be overwritten
   * by this one's late catch-up.
   */
  connectionChanged(status: ConnectionStatus, chat: ChatClient, stale: () => boolean): void {
    this.showStatus(status);
    this.emit<ChatStatusDetail>('chat-status', { status });
    if (status === 'connected') {
      if (this.everConnected) {
        this.showBanner('ok', 'Reconnected. Catching up…');
        void chat.synced().then(() => {
          if (stale() || chat.status !== 'connected') return;
          this.showBanner('ok', 'Back online. You are up to date.');
          this.announce('Connection restored.');
          this.bannerTimer = setTimeout(() => this.hideBanner(), BACK_ONLINE_BANNER_MS);
        });
      } else {
        this.hideBanner();
      }
      this.everConnected = true;
    } else if (status === 'reconnecting') {
      this.showBanner('warn', 'Connection lost. Reconnecting… Messages you send now go out once it is back.');
      if (this.everConnected) this.announce('Connection lost. Reconnecting.');
    } else if (status === 'disconnected') {
      this.showBanner('error', this.everConnected ? 'Disconnected from the chat server.' : 'Could not connect to the chat server.', {
        label: 'Reconnect',
        run: () => {
          if (!stale()) chat.connect();
        },
      });
    }
  }

  /**
   * Reads out a message of the open conversation, once: the assistant's reply when it is over (the message list
   * itself stays quiet while replies stream), and the user's own messages only when sent from another window.
   */
  announceMessage(m: MessageDto, sentHere: boolean): void {
    if (this.announced.has(m.id)) return;
    if (m.role === 'assistant' && isFinal(m)) {
      this.announced.add(m.id);
      const how = m.status === 'stopped' ? ' (stopped)' : m.status === 'failed' ? ' (failed)' : '';
      const calls = m.metadata?.toolCalls;
      const tools = Array.isArray(calls) ? (calls as ToolCallDto[]).map(toolLabel).join(', ') : '';
      // The words, not the Markdown's marks (a screen reader would read every asterisk).
      this.announce(`Assistant${how}: ${tools ? `${tools}. ` : ''}${plainText(m.content)}`);
    } else if (m.role === 'user') {
      this.announced.add(m.id);
      if (!sentHere) this.announce(`You, in another window: ${m.content}`);
    }
  }

  /** The token expired and nothing will renew it: the page has to set a new one. */
  tokenExpired(): void {
    this.showError(new ChatError('TOKEN_EXPIRED', 'token expired'));
    this.emit<ChatErrorDetail>('chat-error', { code: 'TOKEN_EXPIRED', message: 'the token expired; set a new one' });
  }

  /** A failure nobody awaited (the SDK's `error` event). */
  clientError(err: Error): void {
    const code = err instanceof ChatError ? err.code : 'INTERNAL';
    // A refused handshake is the user's business; a failed background repair is retried by the SDK.
    if (code === 'UNAUTHORIZED' || code === 'TOKEN_EXPIRED' || code === 'TOO_MANY_CONNECTIONS') this.showError(err);
    else console.warn('[chat-widget]', err);
    this.emit<ChatErrorDetail>('chat-error', { code, message: err.message });
  }

  /** The notice for a failed command, in words (see `describeError`). */
  showError(err: unknown, action?: 'send' | 'other', content?: string): void {
    this.showNotice(describeError(err, action, content));
  }

  showNotice(text: string): void {
    this.ui.noticeText.textContent = text;
    this.ui.notice.hidden = false;
  }

  hideNotice(): void {
    this.ui.notice.hidden = true;
    this.ui.noticeText.textContent = '';
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

  private emit<T>(type: string, detail: T): void {
    this.element.dispatchEvent(new CustomEvent<T>(type, { detail, bubbles: true, composed: true }));
  }

  /** Reads `text` out through the live region (a copy done, …). */
  say(text: string): void {
    this.announce(text);
  }

  private announce(text: string): void {
    const live = this.ui.live;
    const short = text.length > ANNOUNCE_MAX_CHARS ? `${text.slice(0, ANNOUNCE_MAX_CHARS)}…` : text;
    live.append(h('p', { text: short }));
    // Only additions are read out (aria-relevant), so older lines would just pile up in the DOM.
    while (live.childElementCount > 3) live.firstElementChild!.remove();
  }
}
