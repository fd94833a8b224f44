/**
 * Everything the run observes, on the hot path: sends and their acks, every `message:created` per tab (receipts are
 * counted, never deduplicated — the SDK's local view would hide duplicates and repair losses, which is what this
 * tool must see), and, through replies.ts, the assistant's replies. Per message state lives in typed arrays indexed
 * by the message's number in the schedule, so a run of millions of messages stays a few hundred bytes per message
 * and no per-event allocation happens beyond what socket.io-client does.
 */
import type { Ack, CommandResults, MessageDelta, MessageDto } from '../../src/shared/events.ts';
import { Latency, PerSecondCount, PerSecondLatency } from './histograms.ts';
import { ReplyTracker } from './replies.ts';
import type { SentMessage } from './verify.ts';

export const Outcome = { UNSENT: 0, PENDING: 1, ACKED: 2, REFUSED: 3, UNKNOWN: 4, NOT_SENT: 5 } as const;

export interface TrackerOptions {
  users: number;
  tabs: number;
  total: number;
  /** clientMessageIds are `<idPrefix><k>`. */
  idPrefix: string;
  assistant: boolean;
}

export class Tracker {
  readonly users: number;
  readonly tabs: number;
  readonly total: number;
  readonly idPrefix: string;
  readonly assistant: boolean;
  /** performance.now() at the start of sending: second 0 of every series. */
  t0 = 0;

  // ---- per message (index k) ----
  readonly sentAt: Float64Array;
  /** When the schedule wanted k sent, ms from t0. */
  private readonly dueMs: Float64Array;
  readonly outcome: Uint8Array;
  readonly senderTab: Uint8Array;
  /** Receipt counts of `message:created`, index k * tabs + tab (saturating at 255). */
  readonly receipts: Uint8Array;
  /** Other tabs yet to receive k (for the all-tabs fan-out latency). */
  private readonly othersLeft: Uint8Array;
  readonly messageId: (string | undefined)[];
  readonly seq: Float64Array;
  readonly errorCode = new Map<number, string>();

  /** The assistant's replies (tracked with --assistant only). */
  readonly replies: ReplyTracker;

  // ---- per tab (index user * tabs + tab) ----
  private readonly pendingByTab: Set<number>[];

  // ---- counters ----
  sent = 0;
  acked = 0;
  refused = 0;
  unknown = 0;
  notSent = 0;
  pending = 0;
  receiptsFirst = 0;
  duplicateReceipts = 0;
  foreignReceipts = 0;
  /** Another user's message at this tab: an isolation breach. */
  misrouted: { user: number; tab: number; clientMessageId: string }[] = [];
  ackMismatches: { k: number; detail: string }[] = [];
  readonly errorsByCode = new Map<string, number>();
  /** Σ over acked messages of tabs that have not received it yet: 0 means every tab has every acked message. */
  outstandingReceipts = 0;

  // ---- latency ----
  readonly ack = new Latency();
  /** Ack latency from when the schedule wanted the message sent: includes the generator's own lateness. */
  readonly ackFromSchedule = new Latency();
  readonly fanout = new Latency();
  readonly fanoutAll = new Latency();
  readonly schedulerLag = new Latency();
  readonly ackPerSecond = new PerSecondLatency();
  readonly fanoutPerSecond = new PerSecondLatency();
  readonly sentPerSecond = new PerSecondCount();
  readonly ackedPerSecond = new PerSecondCount();
  readonly receivedPerSecond = new PerSecondCount();
  readonly errorsPerSecond = new PerSecondCount();

  constructor(o: TrackerOptions) {
    this.users = o.users;
    this.tabs = o.tabs;
    this.total = o.total;
    this.idPrefix = o.idPrefix;
    this.assistant = o.assistant;
    this.sentAt = new Float64Array(o.total).fill(Number.NaN);
    this.dueMs = new Float64Array(o.total);
    this.outcome = new Uint8Array(o.total);
    this.senderTab = new Uint8Array(o.total);
    this.receipts = new Uint8Array(o.total * o.tabs);
    this.othersLeft = new Uint8Array(o.total);
    this.messageId = new Array<string | undefined>(o.total);
    this.seq = new Float64Array(o.total).fill(Number.NaN);
    this.pendingByTab = Array.from({ length: o.users * o.tabs }, () => new Set<number>());
    const outcome = this.outcome;
    this.replies = new ReplyTracker(o.tabs, o.assistant ? o.total : 0, {
      isAcked: (k) => outcome[k] === Outcome.ACKED,
      senderTab: this.senderTab,
      sentAt: this.sentAt,
    });
  }

  clientMessageId(k: number): string {
    return this.idPrefix + k;
  }

  /** The schedule number of one of this run's clientMessageIds, else -1. */
  kOf(clientMessageId: string | null | undefined): number {
    if (!clientMessageId?.startsWith(this.idPrefix)) return -1;
    const k = Number(clientMessageId.slice(this.idPrefix.length));
    return Number.isInteger(k) && k >= 0 && k < this.total ? k : -1;
  }

  private second(now: number): number {
    return (now - this.t0) / 1000;
  }

  // ---- sending ---------------------------------------------------------------------------------------

  /** Message k is being emitted now from `tab` of its user; `dueMs` is when the schedule wanted it. */
  sending(k: number, tab: number, now: number, dueMs: number): void {
    this.sentAt[k] = now;
    this.dueMs[k] = dueMs;
    this.outcome[k] = Outcome.PENDING;
    this.senderTab[k] = tab;
    this.othersLeft[k] = this.tabs - 1;
    // Receipts that beat the emit cannot exist, but a reused id prefix could leave some: start clean.
    for (let t = 0; t < this.tabs; t++) {
      if (this.receipts[k * this.tabs + t]! > 0 && t !== tab) this.othersLeft[k]--;
    }
    this.pendingByTab[(k % this.users) * this.tabs + tab]!.add(k);
    this.pending++;
    this.sent++;
    this.sentPerSecond.add(this.second(now));
    this.schedulerLag.record(now - this.t0 - dueMs);
  }

  /** Message k could not be emitted: none of its user's tabs was connected. */
  notSendable(k: number, now: number): void {
    this.outcome[k] = Outcome.NOT_SENT;
    this.notSent++;
    this.countError('NO_CONNECTED_TAB', now);
  }

  onAck(k: number, ack: Ack<CommandResults['message:send']>, now: number): void {
    const tab = this.senderTab[k]!;
    const wasPending = this.outcome[k] === Outcome.PENDING;
    if (wasPending) {
      this.pendingByTab[(k % this.users) * this.tabs + tab]!.delete(k);
      this.pending--;
    } else if (this.outcome[k] === Outcome.UNKNOWN) {
      // Given up on (drain timed out) and answered after all: the outcome is known now.
      this.unknown--;
      const old = this.errorCode.get(k);
      if (old) this.errorsByCode.set(old, (this.errorsByCode.get(old) ?? 1) - 1);
      this.errorCode.delete(k);
    } else return;
    if (!ack || typeof ack !== 'object' || !ack.ok) {
      const code = ack && typeof ack === 'object' && !ack.ok ? String(ack.error?.code ?? 'INTERNAL') : 'MALFORMED_ACK';
      this.outcome[k] = Outcome.REFUSED;
      this.refused++;
      this.errorCode.set(k, code);
      this.countError(code, now);
      return;
    }
    const message = ack.data.message;
    this.outcome[k] = Outcome.ACKED;
    this.acked++;
    this.messageId[k] = message.id;
    this.seq[k] = message.seq;
    if (message.clientMessageId !== this.clientMessageId(k)) {
      this.ackMismatches.push({ k, detail: `ack carries clientMessageId ${JSON.stringify(message.clientMessageId)}` });
    }
    const latency = now - this.sentAt[k]!;
    this.ack.record(latency);
    this.ackFromSchedule.record(now - this.t0 - this.dueMs[k]!);
    this.ackPerSecond.record(this.second(this.sentAt[k]!), latency);
    this.ackedPerSecond.add(this.second(now));
    let received = 0;
    for (let t = 0; t < this.tabs; t++) if (this.receipts[k * this.tabs + t]! > 0) received++;
    this.outstandingReceipts += this.tabs - received;
    if (this.assistant) this.replies.acked(k, message.id);
  }

  /** A tab lost its connection: the acks of its sends in flight will never come (socket.io-client drops them). */
  onDisconnect(user: number, tab: number, now: number): void {
    const set = this.pendingByTab[user * this.tabs + tab]!;
    for (const k of set) {
      this.outcome[k] = Outcome.UNKNOWN;
      this.unknown++;
      this.pending--;
      this.errorCode.set(k, 'DISCONNECTED');
      this.countError('DISCONNECTED', now);
    }
    set.clear();
  }

  /** End of the drain: whatever is still unanswered has an unknown outcome. */
  giveUp(now: number): void {
    for (const set of this.pendingByTab) {
      for (const k of set) {
        this.outcome[k] = Outcome.UNKNOWN;
        this.unknown++;
        this.pending--;
        this.errorCode.set(k, 'TIMEOUT');
        this.countError('TIMEOUT', now);
      }
      set.clear();
    }
  }

  countError(code: string, now: number): void {
    this.errorsByCode.set(code, (this.errorsByCode.get(code) ?? 0) + 1);
    this.errorsPerSecond.add(this.second(now));
  }

  // ---- notifications ---------------------------------------------------------------------------------

  onCreated(user: number, tab: number, message: MessageDto, now: number): void {
    if (message.role === 'assistant') {
      if (this.assistant) this.replies.onCreated(user, tab, message);
      return;
    }
    const k = this.kOf(message.clientMessageId);
    if (k < 0 || this.outcome[k] === Outcome.UNSENT) {
      this.foreignReceipts++;
      return;
    }
    if (k % this.users !== user) {
      this.misrouted.push({ user, tab, clientMessageId: message.clientMessageId! });
      return;
    }
    const i = k * this.tabs + tab;
    const count = this.receipts[i]!;
    if (count < 255) this.receipts[i] = count + 1;
    if (count > 0) {
      this.duplicateReceipts++;
      return;
    }
    this.receiptsFirst++;
    this.receivedPerSecond.add(this.second(now));
    if (this.outcome[k] === Outcome.ACKED) this.outstandingReceipts--;
    if (this.assistant) this.replies.link(k, message.id);
    // The sender's own tab gets its broadcast too (it counts as a receipt), but fan-out is to the other tabs.
    if (tab !== this.senderTab[k]) {
      const latency = now - this.sentAt[k]!;
      this.fanout.record(latency);
      this.fanoutPerSecond.record(this.second(this.sentAt[k]!), latency);
      if (--this.othersLeft[k]! === 0) this.fanoutAll.record(latency);
    }
  }

  onDelta(user: number, tab: number, delta: MessageDelta, now: number): void {
    if (this.assistant) this.replies.onDelta(user, tab, delta, now);
  }

  onUpdated(user: number, tab: number, message: MessageDto, now: number): void {
    if (this.assistant) this.replies.onUpdated(user, tab, message, now);
  }

  // ---- after the run --------------------------------------------------------------------------------------

  /** Every message that was emitted, in the verifier's terms. */
  sentMessages(userIds: readonly string[]): SentMessage[] {
    const out: SentMessage[] = [];
    for (let k = 0; k < this.total; k++) {
      const o = this.outcome[k]!;
      if (o === Outcome.UNSENT || o === Outcome.NOT_SENT) continue;
      const receipts: number[] = [];
      for (let t = 0; t < this.tabs; t++) receipts.push(this.receipts[k * this.tabs + t]!);
      const seq = this.seq[k]!;
      out.push({
        clientMessageId: this.clientMessageId(k),
        user: k % this.users,
        userId: userIds[k % this.users]!,
        tab: this.senderTab[k]!,
        outcome: o === Outcome.ACKED ? 'acked' : o === Outcome.REFUSED ? 'refused' : 'unknown',
        errorCode: this.errorCode.get(k),
        messageId: this.messageId[k],
        seq: Number.isNaN(seq) ? undefined : seq,
        receipts,
      });
    }
    return out;
  }
}
