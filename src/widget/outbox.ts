/**
 * The messages this tab is sending, from the moment the user sends them until their reply shows: the message list
 * shows each at once (pending while the connection is away: the SDK sends it, with its clientMessageId, when the
 * connection is back), then a "thinking" row until the reply's own row arrives; and the composer holds the next
 * message back meanwhile, so that exchanges never interleave.
 */
import type { MessageDto } from '../sdk/index.ts';

/**
 * How long an acknowledged message waits for its reply's row. The reply is stored in the same transaction as the
 * message and broadcast right after the acknowledgement, so it comes at once; only a gateway with no assistant
 * (`ASSISTANT=none`) never sends one, and then the composer is free again after this.
 */
export const REPLY_WAIT_MS = 3000;

export interface Outgoing {
  clientMessageId: string;
  /** Null for the first message of a new conversation, until it is stored. */
  conversationId: string | null;
  content: string;
  /** When the user sent it (local time, for the row's timestamp). */
  sentAt: string;
  /** The stored message, once acknowledged (or seen in a broadcast first). */
  stored?: MessageDto;
  storedAt?: number;
}

export class Outbox {
  private readonly items = new Map<string, Outgoing>();
  private readonly onChange: () => void;
  private timer: ReturnType<typeof setTimeout> | undefined;

  /** `onChange` runs when an entry stops waiting for its reply by itself (REPLY_WAIT_MS passed). */
  constructor(onChange: () => void) {
    this.onChange = onChange;
  }

  add(clientMessageId: string, conversationId: string | null, content: string): void {
    this.items.set(clientMessageId, { clientMessageId, conversationId, content, sentAt: new Date().toISOString() });
  }

  /** The message is stored: from now on only its reply is awaited. */
  stored(message: MessageDto): void {
    const item = message.clientMessageId === null ? undefined : this.items.get(message.clientMessageId);
    if (!item || item.stored) return;
    item.stored = message;
    item.storedAt = Date.now();
    item.conversationId = message.conversationId;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.onChange(), REPLY_WAIT_MS + 50);
  }

  /** The send failed (or the widget moved on to another client): nothing is awaited any more. */
  remove(clientMessageId: string): void {
    this.items.delete(clientMessageId);
  }

  clear(): void {
    this.items.clear();
    clearTimeout(this.timer);
  }

  /** Whether something sent in this conversation (null: the new one) still awaits its reply. */
  busy(conversationId: string | null): boolean {
    const now = Date.now();
    for (const item of this.items.values()) if (item.conversationId === conversationId && !this.expired(item, now)) return true;
    return false;
  }

  /**
   * The entries of a conversation (null: the new one) still to show, given its messages: those stored (seen among
   * `messages`) are marked so, and those whose reply has arrived, or waited long enough, are dropped.
   */
  of(conversationId: string | null, messages: readonly MessageDto[]): Outgoing[] {
    const now = Date.now();
    const shown: Outgoing[] = [];
    for (const item of this.items.values()) {
      if (item.conversationId !== conversationId) continue;
      const mine = messages.find((m) => m.clientMessageId === item.clientMessageId);
      if (mine) this.stored(mine);
      const replied = item.stored && messages.some((m) => m.role === 'assistant' && m.metadata?.replyToId === item.stored!.id);
      if (replied || this.expired(item, now)) this.items.delete(item.clientMessageId);
      else shown.push(item);
    }
    return shown;
  }

  private expired(item: Outgoing, now: number): boolean {
    return item.storedAt !== undefined && now - item.storedAt > REPLY_WAIT_MS;
  }
}
