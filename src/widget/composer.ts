/**
 * The composer: the message box, Send and Stop. Keeps track of the messages this tab sent, so their broadcasts
 * are not announced as news, and of a first message still starting a new conversation. While an exchange of the
 * open conversation is under way (a send not yet answered, a reply streaming) the box waits: the user may type,
 * but Send holds the next message back until the reply has ended or been stopped, so exchanges never interleave.
 */
import { ChatError, randomId, type ChatClient, type MessageDto } from '../sdk/index.ts';
import type { Feedback } from './feedback.ts';
import type { Outbox } from './outbox.ts';
import type { WidgetRefs } from './template.ts';

/** What the composer needs from the element that holds it. */
export interface ComposerHost {
  client(): ChatClient | undefined;
  /** The open conversation; null for a new one not yet sent. */
  openConversationId(): string | null;
  open(conversationId: string, quiet: boolean): Promise<void>;
  renderMessages(): void;
  readonly outbox: Outbox;
}

type ComposerRefs = Pick<WidgetRefs, 'composer' | 'input' | 'stop' | 'send' | 'hint'>;

const HINT = 'Enter sends, Shift+Enter starts a new line, Esc stops a reply.';
const WAITING_HINT = 'The assistant is answering: your next message can be sent when it is done. Esc stops it.';

export class Composer {
  private readonly ui: ComposerRefs;
  private readonly host: ComposerHost;
  private readonly feedback: Feedback;
  private pendingSends = 0;
  private streaming: MessageDto | undefined;
  /** clientMessageIds this tab sent. */
  private readonly mySends = new Set<string>();
  /** clientMessageIds of first messages still starting a new conversation. */
  private readonly draftSends = new Set<string>();

  constructor(ui: ComposerRefs, host: ComposerHost, feedback: Feedback) {
    this.ui = ui;
    this.host = host;
    this.feedback = feedback;
    ui.composer.addEventListener('submit', (e) => {
      e.preventDefault();
      void this.send();
    });
    ui.input.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        void this.send();
      }
    });
    // Esc stops the reply from anywhere in the composer (the box, Send, Stop itself).
    ui.composer.addEventListener('keydown', (e) => {
      if (e.key === 'Escape' && !ui.stop.hidden) {
        e.preventDefault();
        void this.stopReply();
      }
    });
    ui.input.addEventListener('input', () => this.autosize());
    ui.stop.addEventListener('click', () => void this.stopReply());
  }

  /** A first message is on its way and its conversation does not exist yet. */
  get startingConversation(): boolean {
    return this.draftSends.size > 0;
  }

  reset(): void {
    this.pendingSends = 0;
    this.streaming = undefined;
    this.mySends.clear();
    this.draftSends.clear();
    this.host.outbox.clear();
  }

  sentHere(m: MessageDto): boolean {
    return m.clientMessageId !== null && this.mySends.has(m.clientMessageId);
  }

  /** True (once) when `m` is the first message of the conversation this tab is starting. */
  takeFirstMessage(m: MessageDto): boolean {
    return m.clientMessageId !== null && this.draftSends.delete(m.clientMessageId);
  }

  focus(options?: FocusOptions): void {
    this.ui.input.focus(options);
  }

  /** Shows Stop for the reply streaming in the open conversation, if any. */
  showStreaming(message: MessageDto | undefined): void {
    this.streaming = message;
    this.ui.stop.hidden = !message;
    if (message) this.ui.stop.dataset.messageId = message.id;
    else delete this.ui.stop.dataset.messageId;
    this.render();
  }

  render(): void {
    const waiting = this.waiting();
    this.ui.send.setAttribute('aria-disabled', String(waiting));
    this.ui.composer.setAttribute('aria-busy', String(this.pendingSends > 0));
    const hint = waiting && this.host.openConversationId() !== null ? WAITING_HINT : HINT;
    if (this.ui.hint.textContent !== hint) this.ui.hint.textContent = hint;
  }

  /** Whether Send holds back: the open conversation's last exchange has not ended (see the file's comment). */
  private waiting(): boolean {
    const id = this.host.openConversationId();
    // A second message before the first one of a new conversation is stored would start another conversation.
    if (id === null) return this.draftSends.size > 0;
    return this.streaming !== undefined || this.host.outbox.busy(id);
  }

  private async send(): Promise<void> {
    const chat = this.host.client();
    const input = this.ui.input;
    const content = input.value;
    if (!content.trim()) return;
    if (!chat) return this.feedback.showNotice('The chat is not connected yet: it needs a sign-in token.');
    if (this.waiting()) return;
    const conversationId = this.host.openConversationId();
    const clientMessageId = randomId();
    this.mySends.add(clientMessageId);
    if (conversationId === null) this.draftSends.add(clientMessageId);
    input.value = '';
    this.autosize();
    this.feedback.hideNotice();
    this.pendingSends++;
    // Shown at once, as pending while offline: the SDK sends it with this clientMessageId once connected.
    this.host.outbox.add(clientMessageId, conversationId, content);
    this.render();
    this.host.renderMessages();
    try {
      const { conversation, message } = await chat.send({ conversationId, content, clientMessageId });
      if (chat !== this.host.client()) return;
      this.host.outbox.stored(message);
      if (this.host.openConversationId() === null && this.draftSends.has(clientMessageId)) {
        void this.host.open(conversation.id, true);
      }
    } catch (err) {
      if (chat !== this.host.client()) return;
      this.host.outbox.remove(clientMessageId);
      // Give the text back, unless the user has started typing something else.
      if (!input.value) {
        input.value = content;
        this.autosize();
      }
      this.feedback.showError(err, 'send', content);
    } finally {
      this.draftSends.delete(clientMessageId);
      if (chat === this.host.client()) {
        this.pendingSends--;
        this.host.renderMessages();
        this.render();
      }
    }
  }

  private async stopReply(): Promise<void> {
    const chat = this.host.client();
    const id = this.host.openConversationId();
    const messageId = this.ui.stop.dataset.messageId;
    if (!chat || !id || !messageId) return;
    const hadFocus = (this.ui.stop.getRootNode() as ShadowRoot).activeElement === this.ui.stop;
    this.ui.stop.disabled = true;
    try {
      await chat.stop(id, messageId);
    } catch (err) {
      // Already over (complete, stopped elsewhere): nothing to tell.
      if (!(err instanceof ChatError && err.code === 'VALIDATION')) this.feedback.showError(err);
    } finally {
      this.ui.stop.disabled = false;
      this.host.renderMessages();
      if (hadFocus) this.ui.input.focus();
    }
  }

  private autosize(): void {
    const input = this.ui.input;
    input.style.height = 'auto';
    input.style.height = `${input.scrollHeight + 2}px`;
  }
}
