/**
 * When the client last heard of each streaming message it holds, so that ONE timer per client can re-read the
 * ones that went quiet. A streaming reply whose last deltas and final `message:updated` were lost (a broadcast
 * dropped between nodes) would otherwise stay `streaming` until something else happens in its conversation.
 * Pure bookkeeping like the conversation view: the caller passes the time and owns the timer.
 */
import type { MessageDto } from '../shared/events.ts';
import { isFinal } from './conversation-view.ts';

export class QuietStreams {
  /** By message id: a streaming message held in a followed view, and when it was last heard of. */
  private readonly heard = new Map<string, { conversationId: string; at: number }>();
  private readonly boundMs: number;

  /** `boundMs`: how long a streaming message may stay unheard of; `Infinity` tracks nothing. */
  constructor(boundMs: number) {
    // Zero or less would re-read every streaming reply in a loop.
    if (!(boundMs > 0)) throw new TypeError('staleStreamMs must be a positive number of milliseconds, or Infinity');
    this.boundMs = boundMs;
  }

  /** A held message was heard of (created, updated, a delta): its clock restarts while it streams; a final one leaves. */
  note(message: MessageDto, now: number): void {
    if (isFinal(message) || !Number.isFinite(this.boundMs)) this.heard.delete(message.id);
    else this.heard.set(message.id, { conversationId: message.conversationId, at: now });
  }

  /** The conversation is being read again now: what it holds streaming counts as heard of. */
  rereading(conversationId: string, now: number): void {
    for (const entry of this.heard.values()) if (entry.conversationId === conversationId) entry.at = now;
  }

  /** The conversation is no longer followed. */
  forget(conversationId: string): void {
    for (const [id, entry] of this.heard) if (entry.conversationId === conversationId) this.heard.delete(id);
  }

  /**
   * The conversations holding a message unheard of for the bound at `now`. Their clocks restart, so that a
   * conversation is named again only a bound later, whether or not the caller could read it.
   */
  due(now: number): string[] {
    const due = new Set<string>();
    for (const entry of this.heard.values()) if (now - entry.at >= this.boundMs) due.add(entry.conversationId);
    for (const conversationId of due) this.rereading(conversationId, now);
    return [...due];
  }

  /** When the next message goes quiet; undefined while nothing streams. */
  nextDue(): number | undefined {
    let first = Infinity;
    for (const entry of this.heard.values()) first = Math.min(first, entry.at);
    return first === Infinity ? undefined : first + this.boundMs;
  }
}
