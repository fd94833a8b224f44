/**
 * The assistant's replies as the tabs see them (with --assistant): per reply and tab, its `message:created`, its
 * deltas in order, its end; which user message it answers (from `metadata.replyToId`, matched to a send by the id its
 * ack or a receipt gave); and, for the drain, how many reply ends the acknowledged messages still owe.
 */
import type { MessageDelta, MessageDto } from '../../src/shared/events.ts';
import { Latency } from './histograms.ts';
import type { ReplyObservation } from './verify.ts';

const FINAL = new Set(['complete', 'stopped', 'failed']);

/**
 * Per-tab fields of a reply, packed in one Float64Array (`field * tabs + tab`): one allocation per reply instead of
 * five keeps a long run with the assistant near 0.6 KB per message (about 0.1 KB without).
 */
const CREATED = 0;
const ENDED = 1;
const NEXT_DELTA = 2;
const FIRST_DELTA_AT = 3;
const END_AT = 4;
const FIELDS = 5;

interface ReplyTrack {
  id: string;
  user: number;
  replyToId: string | undefined;
  /** The schedule number of the user message it answers; -1 until known. */
  k: number;
  /** created / ended receipt counts, next delta index expected, first delta and end times, per tab. */
  perTab: Float64Array;
  deltaGaps: number;
  deltaDuplicates: number;
  finalStatus: string | null;
  finalDeltaIndex: number | null;
}

/** What the replies need to know of the user messages, owned by the Tracker (indexed by schedule number k). */
export interface SendsView {
  isAcked(k: number): boolean;
  senderTab: Uint8Array;
  sentAt: Float64Array;
}

export class ReplyTracker {
  /** Σ over acked messages of tabs that have not seen its reply end. */
  outstandingEnds = 0;
  repliesSeen = 0;
  readonly firstDelta = new Latency();
  readonly complete = new Latency();

  private readonly tabs: number;
  private readonly sends: SendsView;
  private readonly idToK = new Map<string, number>();
  private readonly replies = new Map<string, ReplyTrack>();
  private readonly replyOfK: Int32Array;
  private readonly replyList: ReplyTrack[] = [];
  /** Replies seen before the user message they answer could be matched to a send. */
  private readonly orphans = new Map<string, ReplyTrack[]>();

  /** `total`: messages in the schedule (0 without --assistant: nothing is tracked then). */
  constructor(tabs: number, total: number, sends: SendsView) {
    this.tabs = tabs;
    this.sends = sends;
    this.replyOfK = new Int32Array(total).fill(-1);
  }

  /** User message k was acknowledged as `messageId`: each of its tabs now owes the reply's end. */
  acked(k: number, messageId: string): void {
    this.link(k, messageId);
    const r = this.replyOfK[k]!;
    this.outstandingEnds += this.tabs - (r >= 0 ? this.endsSeen(this.replyList[r]!) : 0);
  }

  onCreated(user: number, tab: number, message: MessageDto): void {
    const r = this.reply(message.id, user);
    this.noteReplyTo(r, message);
    r.perTab[CREATED * this.tabs + tab]! += 1;
  }

  onDelta(user: number, tab: number, delta: MessageDelta, now: number): void {
    const r = this.reply(delta.messageId, user);
    const T = this.tabs;
    const p = r.perTab;
    if (Number.isNaN(p[FIRST_DELTA_AT * T + tab]!)) p[FIRST_DELTA_AT * T + tab] = now;
    const expected = p[NEXT_DELTA * T + tab]!;
    if (delta.index === expected) p[NEXT_DELTA * T + tab] = expected + 1;
    else if (delta.index < expected) r.deltaDuplicates++;
    else {
      r.deltaGaps++;
      p[NEXT_DELTA * T + tab] = delta.index + 1;
    }
  }

  onUpdated(user: number, tab: number, message: MessageDto, now: number): void {
    if (message.role !== 'assistant' || !FINAL.has(message.status)) return;
    const r = this.reply(message.id, user);
    this.noteReplyTo(r, message);
    r.finalStatus = message.status;
    const d = message.metadata?.deltaIndex;
    if (typeof d === 'number') r.finalDeltaIndex = d;
    const i = ENDED * this.tabs + tab;
    const count = r.perTab[i]!;
    r.perTab[i] = count + 1;
    if (count > 0) return;
    r.perTab[END_AT * this.tabs + tab] = now;
    if (r.k >= 0 && this.sends.isAcked(r.k)) this.outstandingEnds--;
  }

  /** User message k has id `messageId` (from its ack or a receipt). */
  link(k: number, messageId: string): void {
    if (this.idToK.has(messageId)) return;
    this.idToK.set(messageId, k);
    const waiting = this.orphans.get(messageId);
    if (!waiting) return;
    this.orphans.delete(messageId);
    for (const r of waiting) this.attach(r, k);
  }

  private reply(id: string, user: number): ReplyTrack {
    let r = this.replies.get(id);
    if (!r) {
      const T = this.tabs;
      const perTab = new Float64Array(FIELDS * T);
      perTab.fill(Number.NaN, FIRST_DELTA_AT * T);
      r = {
        id,
        user,
        replyToId: undefined,
        k: -1,
        perTab,
        deltaGaps: 0,
        deltaDuplicates: 0,
        finalStatus: null,
        finalDeltaIndex: null,
      };
      this.replies.set(id, r);
      this.repliesSeen++;
    }
    return r;
  }

  /** Learns which user message a reply answers (from `metadata.replyToId`) and links the two when possible. */
  private noteReplyTo(r: ReplyTrack, message: MessageDto): void {
    if (r.replyToId !== undefined) return;
    const replyToId = message.metadata?.replyToId;
    if (typeof replyToId !== 'string') return;
    r.replyToId = replyToId;
    const k = this.idToK.get(replyToId);
    if (k !== undefined) this.attach(r, k);
    else {
      const list = this.orphans.get(replyToId);
      if (list) list.push(r);
      else this.orphans.set(replyToId, [r]);
    }
  }

  private attach(r: ReplyTrack, k: number): void {
    if (r.k >= 0) return;
    r.k = k;
    // A second reply to one message is a duplicate the verification reports; the first one stays linked.
    if (this.replyOfK[k]! >= 0) return;
    this.replyOfK[k] = this.replyList.length;
    this.replyList.push(r);
    if (this.sends.isAcked(k)) this.outstandingEnds -= this.endsSeen(r);
  }

  /** Tabs that have seen the reply end. */
  private endsSeen(r: ReplyTrack): number {
    let n = 0;
    for (let t = 0; t < this.tabs; t++) if (r.perTab[ENDED * this.tabs + t]! > 0) n++;
    return n;
  }

  /** Records the assistant latencies, measured at the tab that sent the message (what its user saw). */
  finish(): void {
    for (const r of this.replyList) {
      if (r.k < 0 || !this.sends.isAcked(r.k)) continue;
      const tab = this.sends.senderTab[r.k]!;
      const sentAt = this.sends.sentAt[r.k]!;
      const firstDeltaAt = r.perTab[FIRST_DELTA_AT * this.tabs + tab]!;
      const endAt = r.perTab[END_AT * this.tabs + tab]!;
      if (!Number.isNaN(firstDeltaAt)) this.firstDelta.record(firstDeltaAt - sentAt);
      if (!Number.isNaN(endAt)) this.complete.record(endAt - sentAt);
    }
  }

  /** Every reply seen, in the verifier's terms. */
  observations(): ReplyObservation[] {
    const T = this.tabs;
    const field = (r: ReplyTrack, f: number) => Array.from(r.perTab.subarray(f * T, (f + 1) * T));
    return [...this.replies.values()].map((r) => ({
      id: r.id,
      user: r.user,
      replyToId: r.replyToId,
      created: field(r, CREATED),
      ended: field(r, ENDED),
      finalStatus: r.finalStatus,
      deltaGaps: r.deltaGaps,
      deltaDuplicates: r.deltaDuplicates,
      deltasSeen: field(r, NEXT_DELTA),
      finalDeltaIndex: r.finalDeltaIndex,
    }));
  }
}
