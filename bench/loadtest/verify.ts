/**
 * The verification after a run: every acknowledged message reached every tab of its user exactly once, and is
 * stored exactly once, under the id and seq its ack gave, in a conversation whose seqs are 1..lastSeq without a
 * gap; a refused send is not stored; with the assistant, every acknowledged message got exactly one reply, seen
 * start to end by every tab. `verify()` is a pure function of what was observed (so it can be tested on
 * fabricated observations); stored.ts reads what the gateway stored, through its REST API.
 *
 * In `converged` mode the live receipts are counted but not judged (a fault loses some by design, and the SDK
 * repairs them): what is judged instead is that every observer tab converged on storage (converge.ts), that
 * nothing acknowledged was lost or stored twice, and that no reply is left streaming.
 */
import type { VerifyMode } from './options.ts';

/** One emitted `message:send`, as the run observed it. */
export interface SentMessage {
  clientMessageId: string;
  /** Index of the user (0-based). */
  user: number;
  userId: string;
  /** The tab (0-based, within the user) that sent it. */
  tab: number;
  /** acked: `{ ok: true }`; refused: `{ ok: false }`; unknown: no answer (socket dropped, or drain timed out). */
  outcome: 'acked' | 'refused' | 'unknown';
  errorCode?: string;
  /** From the ack. */
  messageId?: string;
  seq?: number;
  /** `message:created` receipts per tab of the user. */
  receipts: number[];
}

/** One assistant reply, as the user's tabs saw it. */
export interface ReplyObservation {
  id: string;
  user: number;
  replyToId: string | undefined;
  /** `message:created` receipts per tab. */
  created: number[];
  /** Final `message:updated` receipts per tab. */
  ended: number[];
  finalStatus: string | null;
  /** Deltas that skipped indexes (some were lost) or repeated one, over all tabs. */
  deltaGaps: number;
  deltaDuplicates: number;
  /** Per tab: one past the highest delta index applied in order. */
  deltasSeen: number[];
  /** `metadata.deltaIndex` of the final message: how many deltas the reply had. */
  finalDeltaIndex: number | null;
}

export interface StoredMessage {
  id: string;
  seq: number;
  role: string;
  status: string;
  clientMessageId: string | null;
  replyToId?: string;
  /** Read only for the convergence check. */
  content?: string;
  /** `metadata.error.code` of a failed reply (e.g. INTERRUPTED: its node died). */
  errorCode?: string;
}

export type StoredConversation =
  | { conversationId: string; lastSeq: number; messages: StoredMessage[] }
  | { conversationId: string; error: string };

export interface VerifyInput {
  tabs: number;
  /** Index = user index. */
  users: { userId: string; conversationId: string }[];
  sent: SentMessage[];
  /** Index = user index; omit to skip the storage checks. */
  stored?: StoredConversation[];
  assistant: boolean;
  replies?: ReplyObservation[];
  /** Tabs (`"<user>:<tab>"`) that lost their connection during the run: named in the problems they explain. */
  disconnectedTabs?: string[];
  /** Another user's message received by a tab. */
  misrouted?: { user: number; tab: number; clientMessageId: string }[];
  ackMismatches?: { clientMessageId: string; userId: string; detail: string }[];
  /** Default `receipts`. */
  mode?: VerifyMode;
  /** `converged`: every observer tab, with what still differed from storage at the end (empty when it converged). */
  observerTabs?: { user: number; observer: number; url: string; differences: string[]; differenceCount: number }[];
}

export type ProblemKind =
  | 'nothing-acked'
  | 'receipt-missing'
  | 'receipt-duplicate'
  | 'misrouted'
  | 'ack-mismatch'
  | 'storage-unreadable'
  | 'stored-missing'
  | 'stored-duplicate'
  | 'stored-mismatch'
  | 'stored-despite-refusal'
  | 'stored-unexpected'
  | 'seq-gap'
  | 'last-seq-mismatch'
  | 'reply-missing'
  | 'reply-duplicate'
  | 'reply-receipt-missing'
  | 'reply-receipt-duplicate'
  | 'reply-end-missing'
  | 'reply-end-duplicate'
  | 'reply-not-complete'
  | 'reply-delta-lost'
  | 'reply-delta-duplicate'
  | 'reply-stored-missing'
  | 'reply-stored-duplicate'
  | 'reply-not-final'
  | 'not-converged';

export interface Problem {
  kind: ProblemKind;
  userId: string;
  clientMessageId?: string;
  messageId?: string;
  seq?: number;
  /** The tab concerned (0-based, within the user). */
  tab?: number;
  /** The observer tab concerned (0-based, within the user; `converged` mode). */
  observer?: number;
  detail: string;
}

export interface Verification {
  ok: boolean;
  /** Every problem found, by kind. */
  problemCounts: Partial<Record<ProblemKind, number>>;
  totalProblems: number;
  /** The first `maxProblems` problems. */
  problems: Problem[];
  checked: {
    sent: number;
    acked: number;
    refused: number;
    unknown: number;
    /** Sends without an answer that turned out stored (fine: the outcome was unknown, and stored once). */
    unknownStored: number;
    tabs: number;
    receiptsExpected: number;
    conversations: number;
    storedMessages: number;
    replies: number;
    /** `converged`: live receipts the load tabs missed or got twice (counted, not judged in that mode). */
    liveReceiptsMissed: number;
    liveReceiptsDuplicated: number;
    /** `converged`: observer tabs compared with storage, and how many matched it. */
    observerTabs: number;
    observerTabsConverged: number;
    /** `converged`: stored assistant replies by final status (a reply interrupted by a fault ends `failed`). */
    repliesByStatus: Record<string, number>;
    /** `converged`: the failed ones by `metadata.error.code`. */
    replyFailures: Record<string, number>;
  };
}

export function verify(input: VerifyInput, maxProblems = 10_000): Verification {
  const problems: Problem[] = [];
  const counts: Partial<Record<ProblemKind, number>> = {};
  let total = 0;
  const add = (p: Problem) => {
    counts[p.kind] = (counts[p.kind] ?? 0) + 1;
    total++;
    if (problems.length < maxProblems) problems.push(p);
  };
  const T = input.tabs;
  const converged = input.mode === 'converged';
  const disconnected = new Set(input.disconnectedTabs ?? []);
  const tabNote = (user: number, tab: number) =>
    disconnected.has(`${user}:${tab}`) ? ' (this tab lost its connection during the run)' : '';
  const checked: Verification['checked'] = {
    sent: input.sent.length,
    acked: 0,
    refused: 0,
    unknown: 0,
    unknownStored: 0,
    tabs: input.users.length * T,
    receiptsExpected: 0,
    conversations: 0,
    storedMessages: 0,
    replies: 0,
    liveReceiptsMissed: 0,
    liveReceiptsDuplicated: 0,
    observerTabs: input.observerTabs?.length ?? 0,
    observerTabsConverged: 0,
    repliesByStatus: {},
    replyFailures: {},
  };

  // ---- live delivery ----
  for (const m of input.sent) {
    if (m.outcome === 'acked') checked.acked++;
    else if (m.outcome === 'refused') checked.refused++;
    else checked.unknown++;
    const ref = { userId: m.userId, clientMessageId: m.clientMessageId, messageId: m.messageId, seq: m.seq };
    for (let t = 0; t < T; t++) {
      const n = m.receipts[t] ?? 0;
      if (converged) {
        if (n > 1) checked.liveReceiptsDuplicated += n - 1;
        if (m.outcome === 'acked' && n === 0) checked.liveReceiptsMissed++;
        continue;
      }
      if (n > 1) add({ kind: 'receipt-duplicate', ...ref, tab: t, detail: `tab ${t} received message:created ${n} times` });
      if (m.outcome !== 'acked') continue;
      checked.receiptsExpected++;
      if (n === 0) {
        const who = t === m.tab ? 'the sending tab' : `tab ${t}`;
        add({ kind: 'receipt-missing', ...ref, tab: t, detail: `acked, never received by ${who}${tabNote(m.user, t)}` });
      }
    }
  }
  if (checked.acked === 0) add({ kind: 'nothing-acked', userId: '*', detail: 'no message was acknowledged: nothing was verified' });
  for (const r of input.misrouted ?? []) {
    add({
      kind: 'misrouted',
      userId: input.users[r.user]?.userId ?? String(r.user),
      tab: r.tab,
      clientMessageId: r.clientMessageId,
      detail: `tab ${r.tab} received another user's message`,
    });
  }
  for (const a of input.ackMismatches ?? [])
    add({ kind: 'ack-mismatch', userId: a.userId, clientMessageId: a.clientMessageId, detail: a.detail });

  // ---- storage ----
  const byUser: SentMessage[][] = input.users.map(() => []);
  for (const m of input.sent) byUser[m.user]?.push(m);
  const storedReplies = new Map<string, StoredMessage[]>();
  if (input.stored) {
    input.users.forEach((u, i) => {
      const conv = input.stored![i];
      if (!conv) return;
      checked.conversations++;
      if ('error' in conv) {
        add({ kind: 'storage-unreadable', userId: u.userId, detail: `conversation ${conv.conversationId}: ${conv.error}` });
        return;
      }
      checked.storedMessages += conv.messages.length;
      const messages = [...conv.messages].sort((a, b) => a.seq - b.seq);
      let expected = 1;
      for (const s of messages) {
        if (s.seq > expected) {
          const range = s.seq - 1 === expected ? `${expected}` : `${expected}..${s.seq - 1}`;
          add({
            kind: 'seq-gap',
            userId: u.userId,
            seq: expected,
            detail: `conversation ${conv.conversationId}: seq ${range} missing (gap before ${s.seq})`,
          });
        } else if (s.seq < expected) {
          add({
            kind: 'seq-gap',
            userId: u.userId,
            seq: s.seq,
            messageId: s.id,
            detail: `conversation ${conv.conversationId}: seq ${s.seq} stored twice`,
          });
        }
        expected = Math.max(expected, s.seq + 1);
      }
      const maxSeq = messages.length ? messages[messages.length - 1]!.seq : 0;
      if (conv.lastSeq !== maxSeq) {
        add({
          kind: 'last-seq-mismatch',
          userId: u.userId,
          detail: `conversation ${conv.conversationId}: lastSeq ${conv.lastSeq}, highest stored seq ${maxSeq}`,
        });
      }
      const byClientId = new Map<string, StoredMessage[]>();
      for (const s of messages) {
        // Once the run has converged nothing may be left streaming: a reply whose end no node will write.
        if (converged && s.status === 'streaming') {
          add({
            kind: 'reply-not-final',
            userId: u.userId,
            messageId: s.id,
            seq: s.seq,
            detail: `conversation ${conv.conversationId}: ${s.role} message ${s.id} is still stored as streaming`,
          });
        }
        if (s.role === 'assistant') {
          if (converged) {
            checked.repliesByStatus[s.status] = (checked.repliesByStatus[s.status] ?? 0) + 1;
            if (s.status === 'failed') {
              const code = s.errorCode ?? 'no code';
              checked.replyFailures[code] = (checked.replyFailures[code] ?? 0) + 1;
            }
          }
          if (s.replyToId) {
            const list = storedReplies.get(s.replyToId);
            if (list) list.push(s);
            else storedReplies.set(s.replyToId, [s]);
          }
          continue;
        }
        const key = s.clientMessageId ?? `(no clientMessageId: ${s.id})`;
        const list = byClientId.get(key);
        if (list) list.push(s);
        else byClientId.set(key, [s]);
      }
      const ours = new Set<string>();
      for (const m of byUser[i]!) {
        ours.add(m.clientMessageId);
        const found = byClientId.get(m.clientMessageId) ?? [];
        const ref = { userId: u.userId, clientMessageId: m.clientMessageId, messageId: m.messageId, seq: m.seq };
        if (m.outcome === 'acked') {
          if (found.length === 0) add({ kind: 'stored-missing', ...ref, detail: `acked as seq ${m.seq}, not stored` });
          else if (found.length > 1)
            add({ kind: 'stored-duplicate', ...ref, detail: `stored ${found.length} times (seqs ${found.map((f) => f.seq).join(', ')})` });
          else if (found[0]!.id !== m.messageId || found[0]!.seq !== m.seq) {
            add({
              kind: 'stored-mismatch',
              ...ref,
              detail: `acked as ${m.messageId} seq ${m.seq}, stored as ${found[0]!.id} seq ${found[0]!.seq}`,
            });
          }
        } else if (m.outcome === 'refused') {
          if (found.length > 0)
            add({ kind: 'stored-despite-refusal', ...ref, detail: `refused with ${m.errorCode}, yet stored as seq ${found[0]!.seq}` });
        } else {
          if (found.length === 1) checked.unknownStored++;
          if (found.length > 1)
            add({ kind: 'stored-duplicate', ...ref, detail: `no answer (${m.errorCode}), stored ${found.length} times` });
        }
      }
      for (const [clientMessageId, found] of byClientId) {
        if (ours.has(clientMessageId)) continue;
        for (const s of found) {
          add({
            kind: 'stored-unexpected',
            userId: u.userId,
            messageId: s.id,
            seq: s.seq,
            detail: `stored user message ${JSON.stringify(clientMessageId)} that this run did not send`,
          });
        }
      }
    });
  }

  // ---- assistant replies ----
  if (input.assistant) {
    const byReplyTo = new Map<string, ReplyObservation[]>();
    for (const r of input.replies ?? []) {
      if (!r.replyToId) continue;
      const list = byReplyTo.get(r.replyToId);
      if (list) list.push(r);
      else byReplyTo.set(r.replyToId, [r]);
    }
    for (const m of input.sent) {
      if (m.outcome !== 'acked' || !m.messageId) continue;
      const ref = { userId: m.userId, clientMessageId: m.clientMessageId, messageId: m.messageId, seq: m.seq };
      const seen = byReplyTo.get(m.messageId) ?? [];
      if (input.stored && !('error' in (input.stored[m.user] ?? { error: '' }))) {
        const stored = storedReplies.get(m.messageId) ?? [];
        if (stored.length === 0) add({ kind: 'reply-stored-missing', ...ref, detail: 'no stored assistant reply' });
        else if (stored.length > 1) add({ kind: 'reply-stored-duplicate', ...ref, detail: `${stored.length} stored replies` });
        else if (stored[0]!.status !== 'complete' && !converged)
          add({ kind: 'reply-not-complete', ...ref, detail: `stored reply ${stored[0]!.id} is ${stored[0]!.status}` });
      }
      // What each tab saw live is the receipts mode's question; the converged mode judged the observers' views.
      if (converged) {
        if (storedReplies.has(m.messageId)) checked.replies++;
        continue;
      }
      if (seen.length === 0) {
        add({ kind: 'reply-missing', ...ref, detail: 'no tab saw an assistant reply' });
        continue;
      }
      if (seen.length > 1) add({ kind: 'reply-duplicate', ...ref, detail: `${seen.length} replies: ${seen.map((r) => r.id).join(', ')}` });
      const r = seen[0]!;
      checked.replies++;
      if (r.finalStatus !== null && r.finalStatus !== 'complete')
        add({ kind: 'reply-not-complete', ...ref, detail: `reply ${r.id} ended ${r.finalStatus}` });
      for (let t = 0; t < T; t++) {
        const note = tabNote(m.user, t);
        const created = r.created[t] ?? 0;
        const ended = r.ended[t] ?? 0;
        if (created === 0) add({ kind: 'reply-receipt-missing', ...ref, tab: t, detail: `tab ${t} never received reply ${r.id}${note}` });
        if (created > 1)
          add({ kind: 'reply-receipt-duplicate', ...ref, tab: t, detail: `tab ${t} received reply ${r.id} ${created} times` });
        if (ended === 0) add({ kind: 'reply-end-missing', ...ref, tab: t, detail: `tab ${t} never saw reply ${r.id} end${note}` });
        if (ended > 1) add({ kind: 'reply-end-duplicate', ...ref, tab: t, detail: `tab ${t} saw reply ${r.id} end ${ended} times` });
        if (r.finalDeltaIndex !== null && (r.deltasSeen[t] ?? 0) < r.finalDeltaIndex && ended > 0) {
          add({
            kind: 'reply-delta-lost',
            ...ref,
            tab: t,
            detail: `tab ${t} applied ${r.deltasSeen[t] ?? 0} of ${r.finalDeltaIndex} deltas of reply ${r.id}${note}`,
          });
        }
      }
      if (r.deltaGaps > 0)
        add({ kind: 'reply-delta-lost', ...ref, detail: `reply ${r.id}: ${r.deltaGaps} delta(s) arrived after a skipped index` });
      if (r.deltaDuplicates > 0)
        add({ kind: 'reply-delta-duplicate', ...ref, detail: `reply ${r.id}: ${r.deltaDuplicates} delta(s) repeated an index` });
    }
  }

  // ---- convergence of the observer tabs ----
  for (const t of input.observerTabs ?? []) {
    if (t.differenceCount === 0) {
      checked.observerTabsConverged++;
      continue;
    }
    const more = t.differenceCount > t.differences.length ? `; … ${t.differenceCount - t.differences.length} more` : '';
    add({
      kind: 'not-converged',
      userId: input.users[t.user]?.userId ?? String(t.user),
      observer: t.observer,
      detail: `observer ${t.observer} (${t.url}), ${t.differenceCount} difference(s): ${t.differences.join('; ')}${more}`,
    });
  }

  return { ok: total === 0, problemCounts: counts, totalProblems: total, problems, checked };
}
