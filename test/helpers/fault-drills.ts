// The fault drills, shared by the fault suite (test/faults, which asserts on their results) and `npm run
// bench:faults` (which reports them). Each drill starts from quiet users with tabs spread over the nodes, makes
// traffic, applies one fault through the nodes' proxies, a signal or a lock of its own, ends it, and then judges:
// how long each tab took to agree with the database after the fault ended, and whether anything acknowledged was
// lost or duplicated. Drills leave every node running and every proxy forwarding, so they can follow each other on
// one cluster. Fault durations are the drill's configuration; nothing here asserts on time.
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import type { MessageDto } from '../../src/sdk/index.ts';
import {
  awaitConvergence,
  checkIntegrity,
  closeTabs,
  follow,
  Ledger,
  openTab,
  setUpUsers,
  until,
  type Convergence,
  type FaultUser,
  type Integrity,
  type SendRecord,
  type SetupOptions,
  type Tab,
} from './convergence.ts';
import { FAULT_BOUNDS, type ExitInfo, type FaultCluster, type FaultNode } from './fault-cluster.ts';
import { startTcpProxy } from './tcp-proxy.ts';

export interface DrillResult {
  kind: string;
  /** From the fault's start to its end. */
  faultMs: number;
  convergence: Convergence;
  integrity: Integrity;
  /** What else the drill saw: latencies during the fault, readiness, exits, how the reply it aimed at ended. */
  observed: Record<string, unknown>;
}

interface DrillContext {
  cluster: FaultCluster;
  users: FaultUser[];
  ledger: Ledger;
}

interface FaultOutcome {
  /** performance.now() at the end of the fault: what each tab's convergence time is counted from. */
  faultEndedAt: number;
  faultMs: number;
  observed?: Record<string, unknown>;
  /** Runs once everything has converged (or not), to read how things ended. */
  after?: () => Promise<Record<string, unknown>>;
  /** Releases what the fault set up for the judging to use (a proxy the tabs reach a node through). */
  cleanup?: () => Promise<void>;
}

async function drill(
  cluster: FaultCluster,
  kind: string,
  setup: SetupOptions,
  fault: (ctx: DrillContext) => Promise<FaultOutcome>,
): Promise<DrillResult> {
  const ledger = new Ledger();
  const startedAt = Date.now();
  const users = await setUpUsers(cluster, ledger, setup);
  let outcome: FaultOutcome | undefined;
  try {
    outcome = await fault({ cluster, users, ledger });
    const convergence = await awaitConvergence(cluster.db, users, ledger, outcome.faultEndedAt);
    const integrity = await checkIntegrity(cluster.db, users, ledger);
    const observed: Record<string, unknown> = { ...outcome.observed, ...(await outcome.after?.()) };
    // The nodes' own word on lost fan-out: each time one told tabs to catch up (sync:required), by node.
    const catchUps = cluster.warnings(startedAt).filter((line) => line.includes('told to catch up'));
    if (catchUps.length > 0) observed.catchUpsAsked = catchUps;
    if (!convergence.converged || !integrity.ok) observed.nodeWarnings = cluster.warnings(startedAt).slice(-30);
    return { kind, faultMs: Math.round(outcome.faultMs), convergence, integrity, observed };
  } finally {
    closeTabs(users);
    await outcome?.cleanup?.();
    // Whatever happened, the next drill finds every node running and every dependency reachable.
    for (const node of cluster.nodes) {
      node.pg.restore();
      node.redis.restore();
      if (!node.child) await node.start();
    }
  }
}

// ---- helpers -------------------------------------------------------------------------------------------------

/** A message of `n` words; its echo reply streams for about n × ASSISTANT_DELAY_MS. */
export const words = (n: number, tag = 'w') => Array.from({ length: n }, (_, i) => `${tag}${i}`).join(' ');
const echoOf = (content: string) => `Echo: ${content}`;

const tabOn = (user: FaultUser, node: number): Tab => {
  const tab = user.tabs.find((t) => t.node === node);
  if (!tab) throw new Error(`${user.id} has no tab on node ${node}`);
  return tab;
};

function acked(record: SendRecord): NonNullable<SendRecord['acked']> {
  if (!record.acked)
    throw new Error(`send ${record.clientMessageId} was not acknowledged: ${record.attempts.map((a) => a.outcome).join(', ')}`);
  return record.acked;
}

/** The reply row of a user message, as stored now. */
async function replyRow(cluster: FaultCluster, userId: string, messageId: string) {
  const [row] = await cluster.db.query<{ id: string; status: string; content: string; metadata: Record<string, unknown> | null }>(
    'select id, status, content, metadata from messages where user_id = $1 and client_message_id = $2',
    [userId, `assistant:${messageId}`],
  );
  return row;
}

/** Waits until the reply to `messageId` has saved some of its text (it streams, and its node has written). */
async function replySaving(cluster: FaultCluster, userId: string, messageId: string): Promise<string> {
  const deadline = performance.now() + 20_000;
  for (;;) {
    const row = await replyRow(cluster, userId, messageId);
    if (row && row.content.length > 0 && row.status === 'streaming') return row.content;
    if (performance.now() > deadline) throw new Error(`the reply to ${messageId} saved no text while streaming (${row?.status})`);
    await sleep(50);
  }
}

/** The reply to `messageId` as `tab` holds it now. */
function replyIn(tab: Tab, conversationId: string, messageId: string): MessageDto | undefined {
  return tab.chat.messages(conversationId).find((m) => m.metadata?.replyToId === messageId);
}

/** How a reply ended, for the report. */
async function ending(cluster: FaultCluster, userId: string, messageId: string, expected: string) {
  const row = await replyRow(cluster, userId, messageId);
  return {
    status: row?.status,
    error: (row?.metadata?.error as { code?: string } | undefined)?.code,
    chars: row?.content.length,
    wholeText: row?.content === expected,
    expectedChars: expected.length,
  };
}

/** /readyz of a node, as a short string: `200 ok/degraded`. */
async function readiness(node: FaultNode): Promise<string> {
  try {
    const { status, body } = await node.readyz();
    return `${status} ${body.checks?.database}/${body.checks?.redis}`;
  } catch (err) {
    return `error ${(err as Error).message}`;
  }
}

/** Polls /readyz of `nodes` every `everyMs` until stopped; returns the answers seen per node, each once, in order. */
function watchReadiness(nodes: FaultNode[], everyMs = 200) {
  const seen = nodes.map(() => [] as string[]);
  let running = true;
  const loop = (async () => {
    while (running) {
      const answers = await Promise.all(nodes.map(readiness));
      answers.forEach((a, i) => {
        if (seen[i]!.at(-1) !== a) seen[i]!.push(a);
      });
      await sleep(everyMs);
    }
  })();
  return async () => {
    running = false;
    await loop;
    return Object.fromEntries(nodes.map((n, i) => [`node${n.index}`, seen[i]!]));
  };
}

const attemptsOf = (records: SendRecord[]) => records.flatMap((r) => r.attempts);
const maxMs = (records: SendRecord[], outcome?: string) =>
  Math.max(
    0,
    ...attemptsOf(records)
      .filter((a) => outcome === undefined || a.outcome === outcome)
      .map((a) => a.ms),
  );

/** Restarts a node and returns the moment it listens again. */
async function restart(node: FaultNode): Promise<number> {
  await node.start();
  return performance.now();
}

// ---- node kills ----------------------------------------------------------------------------------------------

/**
 * SIGKILL of the node running a long reply, while replies of other users stream too; an orchestrator starts it
 * again at once (same address). A surviving node marks the reply failed INTERRUPTED with the text it had saved.
 */
export function nodeKillMidReply(cluster: FaultCluster): Promise<DrillResult> {
  return drill(cluster, 'node SIGKILL mid-reply', {}, async ({ users, ledger }) => {
    const victim = cluster.nodes[0]!;
    const [first, ...others] = users;
    const long = words(80);
    const record = acked(await ledger.send(tabOn(first!, 0), { conversationId: first!.conversations[0], content: long }));
    // Other users' replies run too, on the victim and elsewhere.
    await Promise.all(
      others.flatMap((u) =>
        u.tabs.map((t) => ledger.send(t, { conversationId: u.conversations[0], content: words(30, t.name.slice(-4)) })),
      ),
    );
    const saved = await replySaving(cluster, first!.id, record.id);
    const killedAt = performance.now();
    const exit = await victim.stop('SIGKILL');
    const faultEndedAt = await restart(victim);
    return {
      faultEndedAt,
      faultMs: faultEndedAt - killedAt,
      observed: { exit, savedChars: saved.length },
      after: async () => ({ reply: await ending(cluster, first!.id, record.id, echoOf(long)) }),
    };
  });
}

/**
 * SIGKILL of a node at the very moment it acknowledges a send (tabs of several users send through it at once): the
 * acknowledged message must keep exactly one reply, which ends (failed INTERRUPTED if it never ran); sends not yet
 * acknowledged are retried with their keys and stored once.
 */
export function nodeKillAfterAck(cluster: FaultCluster): Promise<DrillResult> {
  return drill(cluster, 'node SIGKILL right after an ack', {}, async ({ users, ledger }) => {
    const victim = cluster.nodes[0]!;
    let killedAt: number | undefined;
    let first: SendRecord | undefined;
    const kill = (record: SendRecord) => {
      if (killedAt !== undefined) return;
      killedAt = performance.now();
      first = record;
      victim.child?.process.kill('SIGKILL');
    };
    const sends = users.map((u) =>
      ledger.send(tabOn(u, 0), { conversationId: u.conversations[0], content: words(20, 'ack') }, { onAck: kill }),
    );
    await until(() => killedAt !== undefined, 'the first acknowledgement');
    const exit = await victim.stop('SIGKILL');
    const faultEndedAt = await restart(victim);
    await Promise.all(sends);
    return {
      faultEndedAt,
      faultMs: faultEndedAt - killedAt!,
      observed: { exit },
      after: async () => ({ firstAcked: await ending(cluster, first!.userId, first!.acked!.id, echoOf(first!.content)) }),
    };
  });
}

/**
 * A reconnect storm: `tabs` tabs on one node (and one tab per user on another), the node SIGKILLed and started
 * again while the users write from their other tab; every tab of the killed node reconnects at once and catches up.
 */
export function reconnectStorm(cluster: FaultCluster, o: { users?: number; tabsPerUser?: number } = {}): Promise<DrillResult> {
  const perUser = o.tabsPerUser ?? 5;
  return drill(
    cluster,
    `reconnect storm (${(o.users ?? 30) * perUser} tabs)`,
    { users: o.users ?? 30, tabsPerUser: perUser + 1, nodeOf: (_u, t) => (t < perUser ? 0 : 1), label: 'storm' },
    async ({ users, ledger }) => {
      const victim = cluster.nodes[0]!;
      const killedAt = performance.now();
      const exit = await victim.stop('SIGKILL');
      // While the node is down, every user writes from the tab it has elsewhere: the storm's tabs miss all of it.
      await Promise.all(users.map((u) => ledger.send(tabOn(u, 1), { conversationId: u.conversations[0], content: words(10, 'storm') })));
      const faultEndedAt = await restart(victim);
      const stormTabs = users.flatMap((u) => u.tabs.filter((t) => t.node === 0));
      await until(() => stormTabs.every((t) => t.chat.connected), 'every tab to reconnect', 30_000);
      return {
        faultEndedAt,
        faultMs: faultEndedAt - killedAt,
        observed: { exit, stormTabs: stormTabs.length, allReconnectedMs: Math.round(performance.now() - faultEndedAt) },
      };
    },
  );
}

// ---- Redis ---------------------------------------------------------------------------------------------------

/**
 * One node's Redis connections cut (its subscriber and its publisher), briefly, while replies stream across
 * nodes and every user writes from tabs on every node: that node hears nothing from the others and the others
 * nothing from it, including the end of a reply. They reconnect by themselves and tell the tabs to catch up.
 */
export function redisSubscriberCut(cluster: FaultCluster, cutMs = 3000): Promise<DrillResult> {
  return drill(cluster, 'Redis cut on one node', {}, async ({ users, ledger }) => {
    const node = cluster.nodes[1]!;
    // Replies that end during the cut: one on the cut node, one on another.
    const replies = await Promise.all([
      ledger.send(tabOn(users[0]!, 1), { conversationId: users[0]!.conversations[0], content: words(30, 'sub') }),
      ledger.send(tabOn(users[1]!, 0), { conversationId: users[1]!.conversations[0], content: words(30, 'sub') }),
    ]);
    for (const r of replies) await replySaving(cluster, r.userId, acked(r).id);
    const cutAt = performance.now();
    node.redis.cut();
    await sleep(cutMs / 3);
    await Promise.all(
      users.flatMap((u) =>
        u.tabs.map((t) => ledger.send(t, { conversationId: u.conversations[0], content: `during the cut from ${t.name}` })),
      ),
    );
    await sleep(Math.max(0, cutAt + cutMs - performance.now()));
    node.redis.restore();
    return { faultEndedAt: performance.now(), faultMs: performance.now() - cutAt };
  });
}

/**
 * Redis unreachable for every node for `outageMs`: each node keeps serving its own tabs (and stays ready, saying
 * fan-out is degraded); cross-node delivery is lost meanwhile, including replies' ends and a new conversation; when
 * Redis is back every tab is told to catch up.
 */
export function redisUnreachable(cluster: FaultCluster, outageMs: number): Promise<DrillResult> {
  return drill(cluster, `Redis unreachable ${Math.round(outageMs / 1000)} s`, {}, async ({ users, ledger }) => {
    const proxies = cluster.proxies('redis');
    const stopWatching = watchReadiness(cluster.nodes);
    const cutAt = performance.now();
    for (const p of proxies) p.cut();
    const during: Promise<SendRecord>[] = [];
    // Early in the outage: a send from every tab, and a new conversation.
    await sleep(500);
    for (const u of users)
      for (const t of u.tabs) during.push(ledger.send(t, { conversationId: u.conversations[0], content: `early from ${t.name}` }));
    during.push(ledger.send(tabOn(users[0]!, 0), { content: 'a conversation started while Redis is away' }));
    // A stop, from a tab of another node than the one running the reply: no node can be asked, so the stop is
    // written to the database, and the running node learns of it at its next save.
    const stopper = users[2]!;
    const toStop = acked(await ledger.send(tabOn(stopper, 2), { conversationId: stopper.conversations[0], content: words(60, 'stop') }));
    const reply = await replyRow(cluster, stopper.id, toStop.id);
    const stopStarted = performance.now();
    const stop = await tabOn(stopper, 0)
      .chat.stop(stopper.conversations[0]!, reply!.id)
      .then(
        (r) => `${r.message.status} in ${Math.round(performance.now() - stopStarted)} ms`,
        (err: Error & { code?: string }) => `${err.code ?? err.message} after ${Math.round(performance.now() - stopStarted)} ms`,
      );
    // A reply that streams across the end of the outage.
    await sleep(Math.max(0, cutAt + outageMs - 2000 - performance.now()));
    during.push(ledger.send(tabOn(users[1]!, 2), { conversationId: users[1]!.conversations[0], content: words(60, 'across') }));
    for (const u of users) during.push(ledger.send(tabOn(u, 1), { conversationId: u.conversations[0], content: 'late in the outage' }));
    await Promise.all(during);
    await sleep(Math.max(0, cutAt + outageMs - performance.now()));
    for (const p of proxies) p.restore();
    const faultEndedAt = performance.now();
    return {
      faultEndedAt,
      faultMs: faultEndedAt - cutAt,
      observed: { maxAckMsDuring: maxMs(await Promise.all(during), 'ok'), stop },
      after: async () => ({
        readiness: await stopWatching(),
        stopped: await ending(cluster, stopper.id, toStop.id, echoOf(words(60, 'stop'))),
      }),
    };
  });
}

/**
 * Redis hung for every node (connections open, no answers) for `hangMs`: sends must not wait for it (the rate
 * limiter's command times out and falls back to memory), and what the hang held back must not leave a tab behind.
 */
export function redisHung(cluster: FaultCluster, hangMs = 4000): Promise<DrillResult> {
  return drill(cluster, `Redis hung ${Math.round(hangMs / 1000)} s`, {}, async ({ users, ledger }) => {
    const proxies = cluster.proxies('redis');
    const reply = await ledger.send(tabOn(users[0]!, 0), { conversationId: users[0]!.conversations[0], content: words(50, 'hung') });
    await replySaving(cluster, reply.userId, acked(reply).id);
    const stopWatching = watchReadiness(cluster.nodes);
    const pausedAt = performance.now();
    for (const p of proxies) p.pause();
    await sleep(300);
    const during = await Promise.all(
      users.flatMap((u) => u.tabs.map((t) => ledger.send(t, { conversationId: u.conversations[0], content: `hung from ${t.name}` }))),
    );
    await sleep(Math.max(0, pausedAt + hangMs - performance.now()));
    for (const p of proxies) p.restore();
    const faultEndedAt = performance.now();
    const readinessSeen = await stopWatching();
    return {
      faultEndedAt,
      faultMs: faultEndedAt - pausedAt,
      observed: {
        sendsDuring: during.length,
        maxAckMsDuring: maxMs(during, 'ok'),
        refusedDuring: attemptsOf(during).filter((a) => a.outcome !== 'ok').length,
        readiness: readinessSeen,
      },
    };
  });
}

// ---- PostgreSQL ----------------------------------------------------------------------------------------------

/**
 * PostgreSQL unreachable for every node right as a send is acknowledged, so its reply starts (reads its context,
 * saves its first text) without a database; more sends during the outage answer UNAVAILABLE and are retried. The
 * reply must end complete, with its whole text.
 */
export function postgresDownAtReplyStart(cluster: FaultCluster, outageMs = 3000): Promise<DrillResult> {
  return drill(cluster, 'PostgreSQL unreachable at a reply start', {}, async ({ users, ledger }) => {
    const proxies = cluster.proxies('pg');
    let cutAt: number | undefined;
    const content = words(30, 'start');
    const record = acked(
      await ledger.send(
        tabOn(users[0]!, 0),
        { conversationId: users[0]!.conversations[0], content },
        {
          onAck: () => {
            cutAt = performance.now();
            for (const p of proxies) p.cut();
          },
        },
      ),
    );
    const during = [
      ...users
        .slice(1)
        .map((u) => ledger.send(tabOn(u, 1), { conversationId: u.conversations[0], content: 'sent while the database is away' })),
      ledger.send(tabOn(users[1]!, 2), { content: 'a conversation started while the database is away' }),
    ];
    await sleep(Math.max(0, cutAt! + outageMs - performance.now()));
    for (const p of proxies) p.restore();
    const faultEndedAt = performance.now();
    const records = await Promise.all(during);
    return {
      faultEndedAt,
      faultMs: faultEndedAt - cutAt!,
      observed: {
        refusedDuring: attemptsOf(records)
          .filter((a) => a.outcome !== 'ok')
          .map((a) => `${a.outcome} ${a.ms} ms`),
      },
      after: async () => ({ reply: await ending(cluster, users[0]!.id, record.id, echoOf(content)) }),
    };
  });
}

/**
 * PostgreSQL unreachable for every node while a long reply ends: the tabs have been shown its whole text, and its
 * end (saved with that text) must be stored once the database is back, not replaced by an interrupted version.
 */
export function postgresDownAtReplyEnd(cluster: FaultCluster, afterEndMs = 2500, scope: 'all' | 'node' = 'all'): Promise<DrillResult> {
  return drill(
    cluster,
    `PostgreSQL unreachable at a reply end${scope === 'node' ? ' (its node only)' : ''}`,
    {},
    async ({ users, ledger }) => {
      const proxies = scope === 'all' ? cluster.proxies('pg') : [cluster.nodes[0]!.pg];
      const user = users[0]!;
      const tab = tabOn(user, 0);
      const content = words(80, 'end');
      const whole = echoOf(content);
      const record = acked(await ledger.send(tab, { conversationId: user.conversations[0], content }));
      const conversationId = user.conversations[0]!;
      // Cut while the last deltas stream: the end, with its whole text, is the write that meets the outage.
      await until(
        () => (replyIn(tab, conversationId, record.id)?.content.length ?? 0) >= whole.length * 0.85,
        'the reply to be nearly done',
        30_000,
      );
      const cutAt = performance.now();
      for (const p of proxies) p.cut();
      await until(() => replyIn(tab, conversationId, record.id)?.content === whole, 'the whole text to stream', 30_000);
      await sleep(afterEndMs);
      for (const p of proxies) p.restore();
      const faultEndedAt = performance.now();
      return {
        faultEndedAt,
        faultMs: faultEndedAt - cutAt,
        after: async () => ({ reply: await ending(cluster, user.id, record.id, whole) }),
      };
    },
  );
}

/**
 * PostgreSQL hung past the write bound: a conversation's row locked by another connection. A send to it answers
 * UNAVAILABLE within about the bound (and is retried until the lock goes), other users' sends on the same node go
 * on, and /readyz says writes stall.
 */
export function postgresLocked(cluster: FaultCluster, lockMs = FAULT_BOUNDS.WRITE_TIMEOUT_MS * 3): Promise<DrillResult> {
  return drill(cluster, `PostgreSQL row lock ${(lockMs / 1000).toFixed(1)} s`, {}, async ({ users, ledger }) => {
    const node = cluster.nodes[0]!;
    const [locked, free] = users;
    const lock = new pg.Client({ connectionString: cluster.db.url, application_name: 'fault-drill-lock' });
    await lock.connect();
    try {
      await lock.query('begin');
      await lock.query('select id from conversations where id = $1 for update', [locked!.conversations[0]]);
      const lockedAt = performance.now();
      const stopWatching = watchReadiness([node], 50);
      const blocked = ledger.send(tabOn(locked!, 0), { conversationId: locked!.conversations[0], content: 'into the locked conversation' });
      // Another user on the same node sends every half second for as long as the lock holds.
      const others: SendRecord[] = [];
      let locking = true;
      const beside = (async () => {
        while (locking) {
          others.push(
            await ledger.send(tabOn(free!, 0), { conversationId: free!.conversations[0], content: `beside the lock ${others.length}` }),
          );
          await sleep(500);
        }
      })();
      await sleep(lockMs);
      await lock.query('rollback');
      const faultEndedAt = performance.now();
      locking = false;
      await beside;
      const blockedRecord = await blocked;
      return {
        faultEndedAt,
        faultMs: faultEndedAt - lockedAt,
        observed: {
          lockedSendFirstAttempt: blockedRecord.attempts[0],
          lockedSendAttempts: blockedRecord.attempts.length,
          otherSends: others.map((r) => `${r.attempts.map((a) => a.outcome).join('>')} ${r.attempts.reduce((s, a) => s + a.ms, 0)} ms`),
          readiness: (await stopWatching()).node0,
        },
      };
    } finally {
      await lock.end().catch(() => undefined);
    }
  });
}

// ---- SIGTERM -------------------------------------------------------------------------------------------------

/**
 * SIGTERM while the messages table is locked by another connection (every write and read of messages waits): a
 * reply streams on the node and a send is in flight. The node must exit 0 within SHUTDOWN_TIMEOUT_MS.
 */
export function sigtermLockedTable(cluster: FaultCluster): Promise<DrillResult> {
  return drill(cluster, 'SIGTERM with a locked table', {}, async ({ users, ledger }) => {
    const node = cluster.nodes[0]!;
    const record = acked(
      await ledger.send(tabOn(users[0]!, 0), { conversationId: users[0]!.conversations[0], content: words(80, 'term') }),
    );
    await replySaving(cluster, users[0]!.id, record.id);
    const lock = new pg.Client({ connectionString: cluster.db.url, application_name: 'fault-drill-lock' });
    await lock.connect();
    let exit: ExitInfo;
    const lockedAt = performance.now();
    try {
      await lock.query('begin');
      await lock.query('lock table messages in access exclusive mode');
      // A send in flight: it reaches the node and waits on the lock (the ledger retries it until it is stored).
      void ledger.send(tabOn(users[1]!, 0), { conversationId: users[1]!.conversations[0], content: 'sent into the lock' });
      await sleep(300);
      exit = await node.stop('SIGTERM');
    } finally {
      await lock.query('rollback').catch(() => undefined);
      await lock.end().catch(() => undefined);
    }
    const faultEndedAt = await restart(node);
    return {
      faultEndedAt,
      faultMs: faultEndedAt - lockedAt,
      observed: { exit },
      after: async () => ({ reply: await ending(cluster, users[0]!.id, record.id, echoOf(words(80, 'term'))) }),
    };
  });
}

/**
 * SIGTERM while a client has stopped reading its socket (behind a proxy that holds every byte): the WebSocket close
 * handshake can never complete, and the node must still exit 0 within SHUTDOWN_TIMEOUT_MS. The client reconnects
 * once its network is back and catches up like the others.
 */
export function sigtermStalledClient(cluster: FaultCluster): Promise<DrillResult> {
  return drill(cluster, 'SIGTERM with a client that stopped reading', {}, async ({ users, ledger }) => {
    const node = cluster.nodes[0]!;
    const user = users[0]!;
    const front = await startTcpProxy({ host: '127.0.0.1', port: node.port });
    try {
      const stalled = await openTab(cluster, user, 0, { url: front.wrap(node.url) });
      await stalled.chat.listConversations();
      await follow(stalled, user.conversations[0]!);
      const stalledAt = performance.now();
      front.pause();
      // Traffic for the stalled tab (long words, short replies): the node keeps writing to a socket nobody reads.
      const long = (i: number) => Array.from({ length: 20 }, (_, w) => `${i}-${w}-${'x'.repeat(100)}`).join(' ');
      await Promise.all(
        Array.from({ length: 6 }, (_, i) => ledger.send(tabOn(user, 1), { conversationId: user.conversations[0], content: long(i) })),
      );
      const exit = await node.stop('SIGTERM');
      front.restore();
      const faultEndedAt = await restart(node);
      return { faultEndedAt, faultMs: faultEndedAt - stalledAt, observed: { exit }, cleanup: () => front.close() };
    } catch (err) {
      await front.close();
      throw err;
    }
  });
}
