// What a fault drill judges: SDK tabs (real ChatClients) spread over a fault cluster's nodes, a ledger of every
// send and its acknowledgement, and two checks against what PostgreSQL holds, read directly:
// - convergence: each tab's view (the messages of every conversation it follows, and its conversation list)
//   equals the database, with no reply left streaming once its row is final; and how long each tab took to get
//   there after the fault ended;
// - integrity: no acknowledged message lost or duplicated, exactly one assistant reply row per user message, and
//   every reply in a final state.
import { setTimeout as sleep } from 'node:timers/promises';
import { ChatError, createChatClient, type ChatClient, type ChatClientOptions } from '../../src/sdk/index.ts';
import type { TestDatabase } from './db.ts';

/** How long every tab gets to agree with the database once the fault has ended (and the sends have settled). */
export const CONVERGE_MS = 20_000;
/** A reply quiet for this long is read again by the tab (far below the default: the drills are short). */
export const STALE_STREAM_MS = 1500;

/** What tabs need of a cluster (a fault cluster's processes, or in-process nodes): addresses, users, tokens, the database. */
export interface TabCluster {
  nodes: readonly { url: string }[];
  db: TestDatabase;
  user(label?: string): string;
  tokenFor(userId: string): string;
}

export interface FaultUser {
  id: string;
  token: string;
  tabs: Tab[];
  /** The user's conversations, in the order the drill made them. */
  conversations: string[];
}

export interface Tab {
  /** `<user>/t<i>@n<node>` */
  name: string;
  user: FaultUser;
  /** Index of the node it was opened on. */
  node: number;
  chat: ChatClient;
  /** Conversations whose messages it follows (opened, or started by one of its own sends). */
  follows: Set<string>;
  /** What the client reported to its 'error' listeners (failed fills and the like; repaired later or not). */
  errors: Error[];
}

export interface TabOptions {
  /** Connect here instead of the node's own URL (a proxy in front of the node). */
  url?: string;
  staleStreamMs?: number;
  socketOptions?: ChatClientOptions['socketOptions'];
}

/** Opens one tab for `user` on node `node` and waits until it is connected. */
export async function openTab(cluster: TabCluster, user: FaultUser, node: number, o: TabOptions = {}): Promise<Tab> {
  const chat = createChatClient({
    url: o.url ?? cluster.nodes[node]!.url,
    token: user.token,
    transports: ['websocket'],
    staleStreamMs: o.staleStreamMs ?? STALE_STREAM_MS,
    // Shorter than the default, so that a send lost with its node is retried within a drill, and longer than the
    // gateway's own bounds (the write bound, a stop's wait for the other nodes).
    ackTimeoutMs: 5000,
    // The ledger retries (with the same key, as the SDK would), so that each of the gateway's answers is recorded
    // as an attempt: what the drills assert is how the gateway answered, not what the SDK's retries ended with.
    sendAttempts: 1,
    socketOptions: o.socketOptions,
  });
  const tab: Tab = { name: `${user.id}/t${user.tabs.length}@n${node}`, user, node, chat, follows: new Set(), errors: [] };
  chat.on('error', (err) => tab.errors.push(err));
  user.tabs.push(tab);
  await until(() => chat.connected, `${tab.name} to connect`);
  return tab;
}

export interface SetupOptions {
  users?: number;
  tabsPerUser?: number;
  /** Conversations per user, each started with one message (and its reply) before the drill. */
  conversations?: number;
  /** The node of a user's tab; default: spread round-robin, each user starting one node further. */
  nodeOf?: (user: number, tab: number) => number;
  label?: string;
}

/**
 * Users with tabs spread over the nodes, each user with conversations that every one of its tabs has opened and
 * listed, and whose first replies have ended: the quiet state a drill starts from.
 */
export async function setUpUsers(cluster: TabCluster, ledger: Ledger, o: SetupOptions = {}): Promise<FaultUser[]> {
  const nodes = cluster.nodes.length;
  const nodeOf = o.nodeOf ?? ((u: number, t: number) => (u + t) % nodes);
  const users: FaultUser[] = [];
  for (let u = 0; u < (o.users ?? 3); u++) {
    const id = cluster.user(o.label ?? 'drill');
    users.push({ id, token: cluster.tokenFor(id), tabs: [], conversations: [] });
  }
  // openTab files the tab under its user before it awaits anything: tab t of a user is user.tabs[t].
  await Promise.all(
    users.map((user, u) => Promise.all(Array.from({ length: o.tabsPerUser ?? 3 }, (_, t) => openTab(cluster, user, nodeOf(u, t))))),
  );
  await Promise.all(
    users.map(async (user) => {
      for (let c = 0; c < (o.conversations ?? 1); c++) {
        const sent = await ledger.send(user.tabs[0]!, { content: `hello ${c}` });
        if (!sent.acked) throw new Error(`setup send failed: ${sent.attempts.map((a) => a.outcome).join(', ')}`);
        user.conversations.push(sent.acked.conversationId);
      }
      for (const tab of user.tabs) {
        await tab.chat.listConversations();
        for (const id of user.conversations) await follow(tab, id);
      }
    }),
  );
  await waitForFinalReplies(cluster.db, users, 20_000);
  return users;
}

/** The tab opens the conversation (its latest page) and follows it from then on. */
export async function follow(tab: Tab, conversationId: string): Promise<void> {
  await tab.chat.open(conversationId);
  tab.follows.add(conversationId);
}

export function closeTabs(users: FaultUser[]): void {
  for (const user of users) for (const tab of user.tabs) tab.chat.close();
}

/** Resolves once `check` is true, polled every 20 ms; a wait that is exceeded is a failure, not a measurement. */
export async function until(check: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!check()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

// ---- the ledger of sends -------------------------------------------------------------------------------------

export interface Attempt {
  /** 'ok' or the ChatError code. */
  outcome: string;
  ms: number;
  at: number;
}

export interface SendRecord {
  userId: string;
  tab: string;
  clientMessageId: string;
  content: string;
  attempts: Attempt[];
  /** Set once a send was acknowledged. */
  acked?: { id: string; seq: number; conversationId: string; at: number };
  /** Set when the ledger gave up (an error that a retry cannot fix, or the bound passed). */
  gaveUp?: string;
}

export interface SendOptions {
  /** How long to keep retrying (default 45 s). */
  boundMs?: number;
  /** Called as soon as the acknowledgement arrives, before anything else runs (a drill acts at that very moment). */
  onAck?: (record: SendRecord) => void;
}

/** Codes after which a client retries the same send (same clientMessageId), as the protocol says. */
const RETRY = new Set(['UNAVAILABLE', 'RATE_LIMITED', 'TIMEOUT', 'DISCONNECTED']);

/** Every send of a drill, retried as a well-behaved client does until acknowledged. */
export class Ledger {
  readonly records: SendRecord[] = [];
  private readonly inFlight = new Set<Promise<SendRecord>>();
  private counter = 0;

  /**
   * Sends from `tab` (a new conversation without `conversationId`), retrying with the same clientMessageId after
   * `retryAfterMs` on UNAVAILABLE, RATE_LIMITED, TIMEOUT or DISCONNECTED, for up to `boundMs`.
   */
  send(tab: Tab, input: { conversationId?: string; content: string }, o: SendOptions = {}): Promise<SendRecord> {
    const boundMs = o.boundMs ?? 45_000;
    const record: SendRecord = {
      userId: tab.user.id,
      tab: tab.name,
      clientMessageId: `drill-${process.pid}-${++this.counter}-${Math.random().toString(36).slice(2, 8)}`,
      content: input.content,
      attempts: [],
    };
    this.records.push(record);
    const run = (async () => {
      const startedAt = performance.now();
      for (;;) {
        const t0 = performance.now();
        try {
          const data = await tab.chat.send({
            conversationId: input.conversationId,
            content: input.content,
            clientMessageId: record.clientMessageId,
          });
          record.attempts.push({ outcome: 'ok', ms: Math.round(performance.now() - t0), at: Date.now() });
          record.acked = { id: data.message.id, seq: data.message.seq, conversationId: data.conversation.id, at: Date.now() };
          o.onAck?.(record);
          // The SDK follows the conversation a send started; the ledger's tabs say so too.
          tab.follows.add(data.conversation.id);
          return record;
        } catch (err) {
          const code = err instanceof ChatError ? err.code : 'ERROR';
          record.attempts.push({ outcome: code, ms: Math.round(performance.now() - t0), at: Date.now() });
          // A closed tab (the drill is over) or one the server let go cannot send any more.
          if (!RETRY.has(code) || tab.chat.status === 'disconnected' || performance.now() - startedAt > boundMs) {
            record.gaveUp = code;
            return record;
          }
          const wait = err instanceof ChatError && err.retryAfterMs !== undefined ? err.retryAfterMs : 250;
          await sleep(Math.min(Math.max(wait, 50), 2000));
        }
      }
    })();
    this.inFlight.add(run);
    void run.finally(() => this.inFlight.delete(run));
    return run;
  }

  get pending(): number {
    return this.inFlight.size;
  }

  /** Resolves once every send has been acknowledged or given up. */
  async settled(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.all([...this.inFlight]);
  }

  of(userIds: Set<string>): SendRecord[] {
    return this.records.filter((r) => userIds.has(r.userId));
  }
}

// ---- what the database holds ---------------------------------------------------------------------------------

export interface MessageRow {
  id: string;
  conversation_id: string;
  user_id: string;
  seq: number;
  role: string;
  status: string;
  content: string;
  metadata: Record<string, unknown> | null;
  client_message_id: string | null;
}

export interface ConversationRow {
  id: string;
  user_id: string;
  title: string | null;
  last_seq: number;
  updated_at: Date;
}

export interface DbState {
  conversations: ConversationRow[];
  /** By conversation, ascending seq. */
  messages: Map<string, MessageRow[]>;
  all: MessageRow[];
}

export async function readState(db: TestDatabase, userIds: string[]): Promise<DbState> {
  const [conversations, all] = await Promise.all([
    db.query<ConversationRow>(
      'select id, user_id, title, last_seq::int as last_seq, updated_at from conversations where user_id = any($1)',
      [userIds],
    ),
    db.query<MessageRow>(
      `select id, conversation_id, user_id, seq::int as seq, role, status, content, metadata, client_message_id
       from messages where user_id = any($1) order by conversation_id, seq`,
      [userIds],
    ),
  ]);
  const messages = new Map<string, MessageRow[]>();
  for (const m of all) {
    const list = messages.get(m.conversation_id) ?? [];
    list.push(m);
    messages.set(m.conversation_id, list);
  }
  return { conversations, messages, all };
}

const FINAL = new Set(['complete', 'stopped', 'failed']);

async function waitForFinalReplies(db: TestDatabase, users: FaultUser[], timeoutMs: number): Promise<void> {
  const ids = users.map((u) => u.id);
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const streaming = (await readState(db, ids)).all.filter((m) => !FINAL.has(m.status));
    if (streaming.length === 0) return;
    if (performance.now() > deadline) throw new Error(`replies still streaming: ${streaming.map((m) => m.id).join(', ')}`);
    await sleep(100);
  }
}

// ---- convergence ---------------------------------------------------------------------------------------------

const show = (m: { seq: number; role: string; status: string; content: string }) =>
  `#${m.seq} ${m.role} ${m.status} ${JSON.stringify(m.content.length > 40 ? `${m.content.slice(0, 40)}…(${m.content.length})` : m.content)}`;

/** How the tab's view differs from the database (empty when it agrees). */
export function differences(tab: Tab, state: DbState): string[] {
  const out: string[] = [];
  for (const conversationId of tab.follows) {
    const view = tab.chat.messages(conversationId);
    const rows = state.messages.get(conversationId) ?? [];
    // A view holds a window that starts at its oldest loaded message (open loads the latest page).
    const from = view[0]?.seq ?? 1;
    const stored = rows.filter((r) => r.seq >= from);
    const n = Math.max(view.length, stored.length);
    for (let i = 0; i < n && out.length < 6; i++) {
      const v = view[i];
      const r = stored[i];
      if (!v || !r || v.id !== r.id || v.seq !== r.seq || v.role !== r.role || v.status !== r.status || v.content !== r.content) {
        out.push(`${conversationId.slice(-6)}: tab ${v ? show(v) : '—'} / db ${r ? show(r) : '—'}`);
      }
    }
  }
  const listed = new Map(tab.chat.conversations().map((c) => [c.id, c]));
  for (const row of state.conversations.filter((c) => c.user_id === tab.user.id)) {
    const c = listed.get(row.id);
    listed.delete(row.id);
    if (!c) out.push(`list: ${row.id.slice(-6)} missing`);
    else if (c.lastSeq !== row.last_seq || c.title !== row.title || c.updatedAt !== row.updated_at.toISOString()) {
      out.push(`list: ${row.id.slice(-6)} tab lastSeq ${c.lastSeq} ${c.updatedAt} / db ${row.last_seq} ${row.updated_at.toISOString()}`);
    }
  }
  for (const id of listed.keys()) out.push(`list: ${id.slice(-6)} not in the database`);
  return out;
}

export interface Convergence {
  converged: boolean;
  /** Per tab: ms from the end of the fault until its view first equalled the settled database. */
  tabs: { tab: string; ms: number }[];
  /** Ms from the end of the fault until the database settled (every send answered, every reply final). */
  settledMs: number | undefined;
  /** For the tabs that did not converge in time: how they differ. */
  problems: string[];
}

/**
 * Waits until every tab agrees with the database, judged once the database has settled: every send of the ledger
 * answered and every reply final (a state that no longer changes). `faultEndedAt` (performance.now()) is when the
 * fault ended; each tab's time is counted from there. A tab that agreed once is checked again at the end.
 */
export async function awaitConvergence(
  db: TestDatabase,
  users: FaultUser[],
  ledger: Ledger,
  faultEndedAt: number,
  timeoutMs = CONVERGE_MS,
): Promise<Convergence> {
  const tabs = users.flatMap((u) => u.tabs);
  const ids = users.map((u) => u.id);
  const deadline = Math.max(performance.now(), faultEndedAt) + timeoutMs;
  const times = new Map<Tab, number>();
  let settledMs: number | undefined;
  let state: DbState | undefined;
  let waitingFor = 'the sends to be answered';
  while (performance.now() < deadline) {
    if (ledger.pending === 0) {
      state = await readState(db, ids);
      const streaming = state.all.filter((m) => !FINAL.has(m.status));
      if (streaming.length === 0) {
        settledMs ??= Math.round(performance.now() - faultEndedAt);
        for (const tab of tabs) {
          if (!times.has(tab) && differences(tab, state).length === 0) times.set(tab, Math.round(performance.now() - faultEndedAt));
        }
        if (times.size === tabs.length) break;
        waitingFor = 'the tabs to agree with the database';
      } else {
        waitingFor = `replies to end (${streaming.map((m) => `${m.id.slice(-6)} #${m.seq}`).join(', ')} streaming)`;
      }
    }
    await sleep(50);
  }
  const problems: string[] = [];
  if (settledMs === undefined) problems.push(`timed out waiting for ${waitingFor}`);
  if (state && settledMs !== undefined) {
    // A last look at every tab, those that agreed earlier included.
    state = await readState(db, ids);
    for (const tab of tabs) {
      const diff = differences(tab, state);
      if (diff.length > 0) problems.push(`${tab.name} (${tab.chat.status}): ${diff.join('; ')}`);
    }
  }
  return {
    converged: problems.length === 0,
    tabs: [...times].map(([tab, ms]) => ({ tab: tab.name, ms })),
    settledMs,
    problems,
  };
}

// ---- integrity -----------------------------------------------------------------------------------------------

export interface Integrity {
  ok: boolean;
  problems: string[];
  counts: { sends: number; acked: number; userMessages: number; replies: Record<string, number> };
}

/**
 * No acknowledged message lost or duplicated, no message the drill did not send, exactly one reply row per user
 * message (right after it), every reply final, and seqs gap-free with each conversation's last_seq at its top.
 */
export async function checkIntegrity(db: TestDatabase, users: FaultUser[], ledger: Ledger): Promise<Integrity> {
  const ids = new Set(users.map((u) => u.id));
  const state = await readState(db, [...ids]);
  const problems: string[] = [];
  const records = ledger.of(ids);
  const sentKeys = new Map(records.map((r) => [`${r.userId}/${r.clientMessageId}`, r]));
  const userRows = state.all.filter((m) => m.role === 'user');
  const byKey = new Map<string, MessageRow[]>();
  for (const m of userRows) {
    const key = `${m.user_id}/${m.client_message_id}`;
    byKey.set(key, [...(byKey.get(key) ?? []), m]);
    if (!sentKeys.has(key)) problems.push(`message ${m.id} (${key}) was never sent`);
  }
  for (const r of records) {
    const rows = byKey.get(`${r.userId}/${r.clientMessageId}`) ?? [];
    if (rows.length > 1) problems.push(`send ${r.clientMessageId} stored ${rows.length} times`);
    if (r.acked && rows.length === 0) problems.push(`acknowledged send ${r.clientMessageId} (${r.acked.id}) lost`);
    if (r.acked && rows.length === 1 && rows[0]!.id !== r.acked.id)
      problems.push(`send ${r.clientMessageId} acknowledged as ${r.acked.id}, stored as ${rows[0]!.id}`);
    if (r.acked && rows[0] && rows[0].content !== r.content) problems.push(`send ${r.clientMessageId} stored with other content`);
  }
  const replies = state.all.filter((m) => m.role === 'assistant');
  const repliesTo = new Map<string, MessageRow[]>();
  for (const m of replies) {
    const to = m.client_message_id?.replace(/^assistant:/, '') ?? '';
    repliesTo.set(to, [...(repliesTo.get(to) ?? []), m]);
    if (m.metadata?.replyToId !== to) problems.push(`reply ${m.id}: replyToId ${String(m.metadata?.replyToId)} ≠ its key's ${to}`);
    if (!FINAL.has(m.status)) problems.push(`reply ${m.id} still ${m.status}`);
  }
  for (const m of userRows) {
    const mine = repliesTo.get(m.id) ?? [];
    if (mine.length !== 1) problems.push(`message ${m.id} has ${mine.length} replies`);
    else if (mine[0]!.seq !== m.seq + 1 || mine[0]!.conversation_id !== m.conversation_id)
      problems.push(`the reply to ${m.id} is not right after it`);
    repliesTo.delete(m.id);
  }
  for (const [to, orphans] of repliesTo) problems.push(`${orphans.length} reply rows to ${to}, which is not a stored user message`);
  for (const c of state.conversations) {
    const seqs = (state.messages.get(c.id) ?? []).map((m) => m.seq);
    if (seqs.some((s, i) => s !== i + 1) || (seqs.at(-1) ?? 0) !== c.last_seq)
      problems.push(`conversation ${c.id}: seqs ${seqs.join(',')} with last_seq ${c.last_seq}`);
  }
  const statuses: Record<string, number> = {};
  for (const m of replies) statuses[m.status] = (statuses[m.status] ?? 0) + 1;
  return {
    ok: problems.length === 0,
    problems,
    counts: { sends: records.length, acked: records.filter((r) => r.acked).length, userMessages: userRows.length, replies: statuses },
  };
}

// ---- figures -------------------------------------------------------------------------------------------------

export function median(values: number[]): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : Math.round((sorted[mid - 1]! + sorted[mid]!) / 2);
}
