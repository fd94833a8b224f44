/**
 * The convergence check of `--verify converged`: after the drain, every observer tab's SDK view — the messages of
 * its user's conversation (ids, seq order, content, status) and its conversation list — must equal what the gateway
 * stores, read through the REST API. The stored state is read again, and the views compared again, until every tab
 * matches a storage with nothing left streaming, or the bound passes; each tab's time to converge is when it first
 * matched for good, counted from the end of the sending.
 *
 * `compareMessages` and `compareList` are pure (tested on fabricated views); `awaitConvergence` does the polling.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { ConversationDto, MessageDto } from '../../src/shared/events.ts';
import type { ObserverTab } from './observers.ts';
import { readConversation, readConversationList } from './stored.ts';
import type { StoredConversation, StoredMessage } from './verify.ts';

/** A round of reads at most this often: storage only changes as replies end, and every round reads every user. */
const POLL_MS = 250;
/** Differences kept per tab: the first ones name the trouble; a tab that missed 500 messages needs no 500 lines. */
const KEPT_DIFFERENCES = 3;

const quote = (text: string, at: number) => {
  const from = Math.max(0, at - 8);
  const part = text.slice(from, at + 40);
  return JSON.stringify(`${from > 0 ? '…' : ''}${part}${at + 40 < text.length ? '…' : ''}`);
};

/** Where two texts first differ. */
function firstDifference(a: string, b: string): number {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
}

/**
 * How one tab's messages of a conversation differ from the stored ones, in seq order (empty when they are equal).
 * The view must hold exactly the stored messages: the same id at each seq, with the same role, status and content.
 */
export function compareMessages(view: readonly MessageDto[], stored: readonly StoredMessage[]): string[] {
  const out: string[] = [];
  const bySeq = new Map<number, MessageDto>();
  for (const m of view) {
    if (bySeq.has(m.seq)) out.push(`seq ${m.seq}: held twice in the tab (${bySeq.get(m.seq)!.id}, ${m.id})`);
    else bySeq.set(m.seq, m);
  }
  const storedSeqs = new Set<number>();
  for (const s of [...stored].sort((a, b) => a.seq - b.seq)) {
    storedSeqs.add(s.seq);
    const v = bySeq.get(s.seq);
    if (!v) {
      out.push(`seq ${s.seq} (${s.role}, ${s.status}): stored, missing from the tab`);
      continue;
    }
    if (v.id !== s.id) {
      out.push(`seq ${s.seq}: the tab holds ${v.id}, storage ${s.id}`);
      continue;
    }
    if (v.role !== s.role) out.push(`seq ${s.seq} (${s.id}): role ${v.role} in the tab, ${s.role} stored`);
    if (v.status !== s.status) out.push(`seq ${s.seq} (${s.role}): status ${v.status} in the tab, ${s.status} stored`);
    if (s.content !== undefined && v.content !== s.content) {
      const at = firstDifference(v.content, s.content);
      out.push(
        `seq ${s.seq} (${s.role}, ${s.status}): content differs at character ${at}: the tab has ${v.content.length} characters ` +
          `${quote(v.content, at)}, storage ${s.content.length} ${quote(s.content, at)}`,
      );
    }
  }
  for (const v of view) {
    if (!storedSeqs.has(v.seq)) out.push(`seq ${v.seq} (${v.role}, ${v.status}): in the tab, not stored`);
  }
  return out;
}

/** How one tab's conversation list differs from the stored list of its user (ids, titles, lastSeq). */
export function compareList(view: readonly ConversationDto[], stored: readonly ConversationDto[]): string[] {
  const out: string[] = [];
  const held = new Map(view.map((c) => [c.id, c]));
  for (const s of stored) {
    const v = held.get(s.id);
    if (!v) {
      out.push(`conversation list: ${s.id} stored, missing from the tab`);
      continue;
    }
    held.delete(s.id);
    if (v.lastSeq !== s.lastSeq) out.push(`conversation list: ${s.id} has lastSeq ${v.lastSeq} in the tab, ${s.lastSeq} stored`);
    if (v.title !== s.title)
      out.push(`conversation list: ${s.id} has title ${JSON.stringify(v.title)} in the tab, ${JSON.stringify(s.title)} stored`);
  }
  for (const id of held.keys()) out.push(`conversation list: ${id} in the tab, not stored`);
  return out;
}

export interface ConvergenceUser {
  userId: string;
  conversationId: string;
  token: () => string;
  observers: ObserverTab[];
  /** Acknowledged message ids whose reply must be stored before the user counts as settled (with --assistant). */
  replyTo?: readonly string[];
}

export interface ConvergenceInput {
  users: ConvergenceUser[];
  urls: string[];
  concurrency: number;
  timeoutMs: number;
  /** performance.now() when the sending stopped: times to converge count from there. */
  loadStoppedAt: number;
  /** Called after each round with the tabs matching so far. */
  onRound?: (matching: number, total: number) => void;
}

export interface TabConvergence {
  userId: string;
  user: number;
  observer: number;
  url: string;
  /** Ms after the sending stopped at which the tab matched storage for good; null if it never did. */
  convergedAfterMs: number | null;
  /** The first differences at the last comparison (empty when converged). */
  differences: string[];
  differenceCount: number;
}

export interface ConvergenceResult {
  observerTabs: number;
  converged: number;
  notConverged: number;
  /** Over the converged tabs: time from the end of the sending to matching storage for good. */
  afterLoadMs: { median: number; max: number } | null;
  /** How long the check waited after the drain, and in how many rounds of reads. */
  waitedMs: number;
  rounds: number;
  timedOut: boolean;
  /** Every observer tab, by user. */
  tabs: TabConvergence[];
  /** What was stored at each user's last read (index = user), for the storage checks. */
  stored: StoredConversation[];
}

interface UserState {
  stored?: StoredConversation;
  list?: ConversationDto[];
  listError?: string;
  settled: boolean;
}

/**
 * Reads one user's conversation list and conversation (with content) from the nodes in turn. `failing`: nodes whose
 * last read failed; they are tried last, since each failure costs the retries of a read, and a node killed for a
 * drill (and not yet back) would slow every round down by that much.
 */
async function readUser(
  u: ConvergenceUser,
  i: number,
  urls: string[],
  failing: Set<string>,
): Promise<Pick<UserState, 'stored' | 'list' | 'listError'>> {
  const errors: string[] = [];
  const order = urls.map((_, n) => urls[(i + n) % urls.length]!);
  for (const url of [...order.filter((x) => !failing.has(x)), ...order.filter((x) => failing.has(x))]) {
    try {
      const token = u.token();
      const [list, stored] = await Promise.all([
        readConversationList(url, token),
        readConversation(url, token, u.conversationId, undefined, true),
      ]);
      failing.delete(url);
      return { list, stored };
    } catch (err) {
      failing.add(url);
      errors.push(`${url}: ${(err as Error).message}`);
    }
  }
  const error = errors.join('; ');
  return { stored: { conversationId: u.conversationId, error }, listError: error };
}

/** Polls storage and compares every observer tab until all match a settled storage or the bound passes. */
export async function awaitConvergence(input: ConvergenceInput): Promise<ConvergenceResult> {
  const started = performance.now();
  const deadline = started + input.timeoutMs;
  const users = input.users;
  const state: UserState[] = users.map(() => ({ settled: false }));
  const tabs = users.flatMap((u, user) =>
    u.observers.map((o) => ({ user, tab: o, matchedAt: undefined as number | undefined, differences: [] as string[] })),
  );
  const byUser = users.map((_, user) => tabs.filter((t) => t.user === user));
  const failing = new Set<string>();
  let rounds = 0;
  for (;;) {
    const roundStart = performance.now();
    rounds++;
    const pending = users.map((_, i) => i).filter((i) => !state[i]!.settled);
    let next = 0;
    await Promise.all(
      Array.from({ length: Math.min(input.concurrency, pending.length) }, async () => {
        while (next < pending.length) {
          const i = pending[next++]!;
          const read = await readUser(users[i]!, i, input.urls, failing);
          const s = state[i]!;
          Object.assign(s, read);
          const now = performance.now();
          let allMatch = true;
          for (const t of byUser[i]!) {
            t.differences = differencesOf(t.tab, users[i]!.conversationId, s);
            if (t.differences.length === 0) t.matchedAt ??= now;
            else {
              t.matchedAt = undefined;
              allMatch = false;
            }
          }
          s.settled = allMatch && isSettled(s, users[i]!.replyTo);
        }
      }),
    );
    const matching = tabs.filter((t) => t.matchedAt !== undefined).length;
    input.onRound?.(matching, tabs.length);
    const now = performance.now();
    if (state.every((s) => s.settled) || now >= deadline) break;
    await sleep(Math.min(Math.max(0, roundStart + POLL_MS - now), deadline - now));
  }

  const times = tabs
    .filter((t) => t.matchedAt !== undefined)
    .map((t) => t.matchedAt! - input.loadStoppedAt)
    .sort((a, b) => a - b);
  const notConverged = tabs.filter((t) => t.matchedAt === undefined);
  const round = (ms: number) => Math.round(ms);
  return {
    observerTabs: tabs.length,
    converged: times.length,
    notConverged: notConverged.length,
    afterLoadMs: times.length ? { median: round(median(times)), max: round(times[times.length - 1]!) } : null,
    waitedMs: round(performance.now() - started),
    rounds,
    timedOut: !state.every((s) => s.settled),
    tabs: tabs.map((t) => ({
      userId: users[t.user]!.userId,
      user: t.user,
      observer: t.tab.index,
      url: t.tab.url,
      convergedAfterMs: t.matchedAt === undefined ? null : round(t.matchedAt - input.loadStoppedAt),
      differences: t.differences.slice(0, KEPT_DIFFERENCES),
      differenceCount: t.differences.length,
    })),
    stored: state.map((s, i) => s.stored ?? { conversationId: users[i]!.conversationId, error: 'never read' }),
  };
}

function differencesOf(tab: ObserverTab, conversationId: string, s: UserState): string[] {
  const stored = s.stored;
  if (!stored || 'error' in stored) return [`storage unreadable: ${stored && 'error' in stored ? stored.error : 'not read'}`];
  const out = compareMessages(tab.chat.messages(conversationId), stored.messages);
  if (s.list) out.push(...compareList(tab.chat.conversations(), s.list));
  else out.push(`conversation list unreadable: ${s.listError ?? 'not read'}`);
  return out;
}

/** Nothing stored will change by itself any more: no message still streaming, every awaited reply stored. */
function isSettled(s: UserState, replyTo: readonly string[] | undefined): boolean {
  const stored = s.stored;
  if (!stored || 'error' in stored || !s.list) return false;
  if (stored.messages.some((m) => m.status === 'streaming')) return false;
  if (!replyTo?.length) return true;
  const answered = new Set(stored.messages.map((m) => m.replyToId).filter((id) => id !== undefined));
  return replyTo.every((id) => answered.has(id));
}

function median(sorted: number[]): number {
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}
