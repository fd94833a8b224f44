// Concurrent sends from tabs on both nodes into one conversation: seq is gap-free commit order, every send is
// acknowledged after its commit, and every tab receives every message exactly once.
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import type { MessageDto } from '../../src/shared/events.ts';
import { startCluster, type Cluster } from '../helpers/cluster.ts';
import { closeAllTabs, connectTab } from '../helpers/sockets.ts';

let cluster: Cluster;

beforeAll(async () => {
  cluster = await startCluster({ nodes: 2, env: { ASSISTANT: 'none', SEND_RATE_LIMIT: '10000' } });
});
afterEach(() => closeAllTabs());
afterAll(async () => {
  closeAllTabs();
  await cluster?.close();
});

it('40 concurrent sends from four tabs on two nodes get seq 1..40 with no gap, and every tab receives all 40', async () => {
  const user = cluster.user('burst');
  const token = cluster.tokenFor(user);
  const [A, B] = cluster.nodes;
  const tabs = await Promise.all([
    connectTab(A!.url, token, { name: 'A1' }),
    connectTab(A!.url, token, { name: 'A2', transports: ['polling'] }),
    connectTab(B!.url, token, { name: 'B1' }),
    connectTab(B!.url, token, { name: 'B2', transports: ['polling', 'websocket'] }),
  ]);
  const { conversation } = await tabs[0]!.ok('conversation:create', { title: 'burst' });

  const acks = await Promise.all(
    Array.from({ length: 40 }, (_, i) =>
      tabs[i % 4]!.ok('message:send', { conversationId: conversation.id, content: `message ${i}`, clientMessageId: `burst-${i}` }),
    ),
  );
  // Acks: every seq once, 1..40, each message the one sent.
  expect(acks.map((a) => a.message.seq).sort((a, b) => a - b)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
  acks.forEach((a, i) => {
    expect(a.message).toMatchObject({ content: `message ${i}`, clientMessageId: `burst-${i}`, conversationId: conversation.id });
  });
  // The conversation returned with each ack is as committed with that message (appends that share a group
  // commit share its state): it already counts the message.
  for (const a of acks) expect(a.conversation.lastSeq).toBeGreaterThanOrEqual(a.message.seq);

  // The database: 40 rows, seq 1..40, last_seq 40, and seq order is commit order (created_at never goes back).
  const rows = await cluster.db.query<{ seq: string; client_message_id: string }>(
    'select seq, client_message_id from messages where conversation_id = $1 order by seq',
    [conversation.id],
  );
  expect(rows.map((r) => Number(r.seq))).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
  expect(new Set(rows.map((r) => r.client_message_id)).size).toBe(40);
  const [conv] = await cluster.db.query<{ last_seq: string }>('select last_seq from conversations where id = $1', [conversation.id]);
  expect(Number(conv!.last_seq)).toBe(40);

  // Every tab, on either node, received every message:created exactly once and matching the ack.
  const byId = new Map(acks.map((a) => [a.message.id, a.message]));
  for (const tab of tabs) {
    const created = await tab.waitForCount<{ message: MessageDto }>(
      'message:created',
      40,
      (p) => p.message.conversationId === conversation.id,
    );
    expect(created).toHaveLength(40);
    expect(new Set(created.map((p) => p.message.seq)).size).toBe(40);
    for (const p of created) expect(p.message).toEqual(byId.get(p.message.id));
  }

  // history:get agrees, in ascending seq, from either node.
  const page = await tabs[3]!.ok('history:get', { conversationId: conversation.id, limit: 200 });
  expect(page.messages.map((m) => m.seq)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
  expect(page.hasMore).toBe(false);
  const after = await tabs[0]!.ok('history:get', { conversationId: conversation.id, after: 30, limit: 5 });
  expect(after.messages.map((m) => m.seq)).toEqual([31, 32, 33, 34, 35]);
  expect(after.hasMore).toBe(true);
});

it("one user's unstorable message does not fail other users' sends committed at the same moment", async () => {
  const [A, B] = cluster.nodes;
  const good = cluster.user('good');
  const bad = cluster.user('bad');
  // A message the database itself refuses, past validation: a trigger installed in this cluster's database only.
  await cluster.db.query(`
    create or replace function refuse_poison() returns trigger language plpgsql as $$
    begin
      if new.content = 'poison' then raise exception 'poison refused by the test trigger' using errcode = 'check_violation'; end if;
      return new;
    end $$`);
  await cluster.db.query('create or replace trigger refuse_poison before insert on messages for each row execute function refuse_poison()');
  const goodTabs = [await connectTab(A!.url, cluster.tokenFor(good)), await connectTab(B!.url, cluster.tokenFor(good))];
  const badTab = await connectTab(A!.url, cluster.tokenFor(bad));
  const { conversation } = await goodTabs[0]!.ok('conversation:create', {});
  const { conversation: badConversation } = await badTab.ok('conversation:create', {});
  // Sent amid a burst of valid sends on the same node, so that it shares batches with them.
  const acks = await Promise.all([
    ...Array.from({ length: 10 }, (_, i) =>
      goodTabs[i % 2]!.request('message:send', { conversationId: conversation.id, content: `good ${i}`, clientMessageId: `g-${i}` }),
    ),
    badTab.request('message:send', { conversationId: badConversation.id, content: 'poison', clientMessageId: 'bad-1' }),
    ...Array.from({ length: 10 }, (_, i) =>
      goodTabs[i % 2]!.request('message:send', {
        conversationId: conversation.id,
        content: `good ${10 + i}`,
        clientMessageId: `g-${10 + i}`,
      }),
    ),
  ]);
  const badAck = acks.splice(10, 1)[0]!;
  // Its own error, the one for a failure that is not the client's and not an outage: retrying will not help.
  expect(badAck.ok ? 'ok' : badAck.error.code).toBe('INTERNAL');
  expect(acks.map((a) => (a.ok ? 'ok' : a.error.code))).toEqual(Array.from({ length: 20 }, () => 'ok'));
  // Each good send stored exactly once, seq 1..20 with no gap; nothing of the poison.
  const rows = await cluster.db.query<{ seq: string; client_message_id: string }>(
    'select seq, client_message_id from messages where conversation_id = $1 order by seq',
    [conversation.id],
  );
  expect(rows.map((r) => Number(r.seq))).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
  expect(rows.map((r) => r.client_message_id).sort()).toEqual(Array.from({ length: 20 }, (_, i) => `g-${i}`).sort());
  expect(await cluster.db.query('select 1 from messages where conversation_id = $1', [badConversation.id])).toEqual([]);
});
