// PostgreSQL faults, through each node's proxy or a lock held by the test's own connection: unreachable for every
// node at a reply's start and at its end, unreachable for the reply's node only (a partition), and hung past the
// write bound (a row lock). Replies keep their whole text, sends answer UNAVAILABLE within the bound instead of
// hanging and are stored once when retried, other users are not held up, and every tab converges afterwards.
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { closeTabs, Ledger, setUpUsers } from '../helpers/convergence.ts';
import { eventually } from '../helpers/cluster.ts';
import { FAULT_BOUNDS, startFaultCluster, type FaultCluster } from '../helpers/fault-cluster.ts';
import { postgresDownAtReplyEnd, postgresDownAtReplyStart, postgresLocked, type DrillResult } from '../helpers/fault-drills.ts';
import { expectConvergedAndIntact } from '../helpers/fault-expect.ts';

let cluster: FaultCluster;
beforeAll(async () => {
  cluster = await startFaultCluster({ nodes: 3 });
});
afterAll(async () => {
  await cluster?.close();
});

function expectWholeReply(result: DrillResult) {
  expect(result.observed.reply, result.kind).toMatchObject({ status: 'complete', wholeText: true });
}

it('unreachable for every node as a reply starts: the reply ends complete with its whole text; sends meanwhile answer UNAVAILABLE at once', async () => {
  const result = await postgresDownAtReplyStart(cluster, 3000);
  expectConvergedAndIntact(result);
  expectWholeReply(result);
  const refused = result.observed.refusedDuring as string[];
  expect(refused.length).toBeGreaterThan(0);
  for (const attempt of refused) {
    const [code, ms] = attempt.split(' ');
    expect(code).toBe('UNAVAILABLE');
    expect(Number(ms)).toBeLessThan(FAULT_BOUNDS.WRITE_TIMEOUT_MS + 1000);
  }
});

it('unreachable for every node as a long reply ends: its end is saved with the whole text once the database is back', async () => {
  const result = await postgresDownAtReplyEnd(cluster, 2500, 'all');
  expectConvergedAndIntact(result);
  expectWholeReply(result);
});

it('unreachable for the reply’s node only, past REPLY_STALE_MS: the other nodes do not end a reply whose node lives', async () => {
  const result = await postgresDownAtReplyEnd(cluster, 2500, 'node');
  expectConvergedAndIntact(result);
  expectWholeReply(result);
});

it('hung past the write bound (a row lock): that conversation answers UNAVAILABLE within the bound, other users go on, /readyz says writes stall', async () => {
  const result = await postgresLocked(cluster, FAULT_BOUNDS.WRITE_TIMEOUT_MS * 3);
  expectConvergedAndIntact(result);
  const observed = result.observed as {
    lockedSendFirstAttempt: { outcome: string; ms: number };
    otherSends: string[];
    readiness: string[];
  };
  expect(observed.lockedSendFirstAttempt.outcome).toBe('UNAVAILABLE');
  expect(observed.lockedSendFirstAttempt.ms).toBeLessThan(FAULT_BOUNDS.WRITE_TIMEOUT_MS + 1000);
  // Another user on the same node: acknowledged at the first attempt, without waiting out the bound.
  expect(observed.otherSends.length).toBeGreaterThan(0);
  for (const send of observed.otherSends) {
    const [outcomes, ms] = send.split(' ');
    expect(outcomes).toBe('ok');
    expect(Number(ms)).toBeLessThan(FAULT_BOUNDS.WRITE_TIMEOUT_MS);
  }
  expect(observed.readiness).toContain('503 writes_stalled/ok');
  // Ready again once writes commit.
  await eventually(async () => ((await cluster.nodes[0]!.readyz()).status === 200 ? true : undefined), 'node 0 to be ready again');
});

it("a send that waited for another writer's lock does not move its conversation's updatedAt back", async () => {
  const ledger = new Ledger();
  const [user] = await setUpUsers(cluster, ledger, { users: 1, tabsPerUser: 1 });
  const conversationId = user!.conversations[0]!;
  const lock = new pg.Client({ connectionString: cluster.db.url, application_name: 'fault-test-lock' });
  await lock.connect();
  try {
    await lock.query('begin');
    await lock.query('select id from conversations where id = $1 for update', [conversationId]);
    // The send's time is taken now; its batch then waits for the lock.
    const send = ledger.send(user!.tabs[0]!, { conversationId, content: 'after the other writer' });
    await eventually(async () => {
      const waiting = await lock.query(
        "select 1 from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock' and pid <> pg_backend_pid()",
      );
      return waiting.rowCount ? true : undefined;
    }, 'the send to wait for the lock');
    // Another writer that got the lock first commits a later time (as a batch of another node would).
    const { rows } = await lock.query<{ at: Date }>(
      'update conversations set updated_at = clock_timestamp() where id = $1 returning updated_at as at',
      [conversationId],
    );
    await lock.query('commit');
    const record = await send;
    expect(record.acked).toBeDefined();
    const [row] = await cluster.db.query<{ updated_at: Date }>('select updated_at from conversations where id = $1', [conversationId]);
    expect(row!.updated_at.getTime()).toBeGreaterThanOrEqual(rows[0]!.at.getTime());
  } finally {
    await lock.end().catch(() => undefined);
    closeTabs([user!]);
  }
});
