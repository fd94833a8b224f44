/**
 * The client's list of conversations it has heard of (listed, created, updated), newest activity first.
 * Pure bookkeeping like the conversation view: acks and broadcasts of the same change dedupe here.
 */
import type { ConversationDto, MessageDto } from '../shared/events.ts';

const time = (iso: string) => Date.parse(iso);

/** Whether `incoming` is a newer state of the same conversation than `stored`. */
export function conversationSupersedes(incoming: ConversationDto, stored: ConversationDto): boolean {
  const newer = time(incoming.updatedAt) - time(stored.updatedAt);
  return newer > 0 || (newer === 0 && (incoming.lastSeq > stored.lastSeq || incoming.title !== stored.title));
}

export class ConversationList {
  private readonly byId = new Map<string, ConversationDto>();
  /** Deleted ids, so a late `conversation:updated` cannot resurrect one and a deletion is reported once. */
  private readonly deleted = new Set<string>();

  get(id: string): ConversationDto | undefined {
    return this.byId.get(id);
  }

  /** Newest activity first. */
  all(): ConversationDto[] {
    return [...this.byId.values()].sort((a, b) => time(b.updatedAt) - time(a.updatedAt) || (a.id < b.id ? 1 : -1));
  }

  /** Stores a conversation if new or newer; returns it when something changed, null otherwise. */
  upsert(c: ConversationDto): ConversationDto | null {
    if (this.deleted.has(c.id)) return null;
    const stored = this.byId.get(c.id);
    if (stored && !conversationSupersedes(c, stored)) return null;
    this.byId.set(c.id, c);
    return c;
  }

  /**
   * A new message moves its conversation's `lastSeq` and `updatedAt` (the server changes both in the message's
   * unit of work but broadcasts only the message). Returns the updated conversation, or null if unknown/unchanged.
   */
  bump(message: MessageDto): ConversationDto | null {
    const stored = this.byId.get(message.conversationId);
    if (!stored || message.seq <= stored.lastSeq) return null;
    const updatedAt = time(message.createdAt) > time(stored.updatedAt) ? message.createdAt : stored.updatedAt;
    const next = { ...stored, lastSeq: message.seq, updatedAt };
    this.byId.set(next.id, next);
    return next;
  }

  /** Forgets a deleted conversation; true the first time, false when already known to be deleted. */
  remove(id: string): boolean {
    this.byId.delete(id);
    if (this.deleted.has(id)) return false;
    this.deleted.add(id);
    return true;
  }

  /** A copy of the current entries, taken before a refresh is requested (see `reconcile`). */
  snapshot(): Map<string, ConversationDto> {
    return new Map(this.byId);
  }

  /**
   * Reconciles with a freshly fetched FIRST page of `conversation:list` (after a reconnect): stores what is newer,
   * and returns as removed the conversations it should have contained but did not — those deleted while this
   * client was away. Only entries unchanged since `before` (the snapshot taken when the request was sent) are
   * candidates, so one created or updated by a live event while the request was in flight is not mistaken.
   */
  reconcile(
    before: Map<string, ConversationDto>,
    page: { conversations: ConversationDto[]; nextCursor: string | null },
  ): { changed: ConversationDto[]; removed: string[] } {
    const changed = page.conversations.map((c) => this.upsert(c)).filter((c) => c !== null);
    const inPage = new Set(page.conversations.map((c) => c.id));
    const oldest = page.conversations.reduce((min, c) => Math.min(min, time(c.updatedAt)), Infinity);
    const removed: string[] = [];
    for (const [id, was] of before) {
      if (inPage.has(id) || this.byId.get(id) !== was) continue;
      // A page with a next cursor only covers conversations at least as recent as its oldest entry.
      if (page.nextCursor === null || time(was.updatedAt) > oldest) {
        if (this.remove(id)) removed.push(id);
      }
    }
    return { changed, removed };
  }
}
