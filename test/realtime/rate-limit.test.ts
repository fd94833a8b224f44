// The per-user send limit is shared by the nodes through Redis: two sends on one node and two on the other
// exhaust a limit of 3, whichever door (socket or REST) they came through.
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { startCluster, type Cluster } from '../helpers/cluster.ts';
import { closeAllTabs, connectTab } from '../helpers/sockets.ts';

let cluster: Cluster;

beforeAll(async () => {
  cluster = await startCluster({ nodes: 2, env: { ASSISTANT: 'none', SEND_RATE_LIMIT: '3', SEND_RATE_WINDOW_S: '60' } });
});
afterEach(() => closeAllTabs());
afterAll(async () => {
  closeAllTabs();
  await cluster?.close();
});

it('the 4th send within the window is RATE_LIMITED with retryAfterMs, counted across both nodes', async () => {
  const user = cluster.user('rl');
  const token = cluster.tokenFor(user);
  const [A, B] = cluster.nodes;
  const onA = await connectTab(A!.url, token);
  const onB = await connectTab(B!.url, token);
  const { conversation } = await onA.ok('conversation:create', {});
  const send = (tab: typeof onA, i: number) =>
    tab.request('message:send', { conversationId: conversation.id, content: `m${i}`, clientMessageId: `rl-${i}` });

  expect((await send(onA, 1)).ok).toBe(true);
  expect((await send(onB, 2)).ok).toBe(true);
  expect((await send(onA, 3)).ok).toBe(true);
  const refused = await send(onB, 4);
  expect(refused).toEqual({ ok: false, error: { code: 'RATE_LIMITED', message: expect.any(String), retryAfterMs: expect.any(Number) } });
  if (refused.ok) throw new Error('unreachable');
  expect(refused.error.retryAfterMs).toBeGreaterThan(0);
  expect(refused.error.retryAfterMs).toBeLessThanOrEqual(60_000);

  // Refused on the other node too, and over REST (same limiter), and nothing was stored for them.
  expect(await send(onA, 5)).toMatchObject({ ok: false, error: { code: 'RATE_LIMITED' } });
  const rest = await fetch(`${A!.url}/api/conversations/${conversation.id}/messages`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ content: 'over rest' }),
  });
  expect(rest.status).toBe(429);
  expect(Number(rest.headers.get('retry-after'))).toBeGreaterThan(0);
  const rows = await cluster.db.query<{ client_message_id: string }>(
    'select client_message_id from messages where conversation_id = $1 order by seq',
    [conversation.id],
  );
  expect(rows.map((r) => r.client_message_id)).toEqual(['rl-1', 'rl-2', 'rl-3']);

  // The limit is per user: another user is not affected.
  const other = cluster.user('rl-other');
  const otherTab = await connectTab(B!.url, cluster.tokenFor(other));
  expect((await otherTab.request('message:send', { content: 'hi', clientMessageId: 'x-1' })).ok).toBe(true);
});

it('four concurrent sends split over both nodes: exactly three are accepted', async () => {
  const user = cluster.user('rl-conc');
  const token = cluster.tokenFor(user);
  const [A, B] = cluster.nodes;
  const tabs = [await connectTab(A!.url, token), await connectTab(B!.url, token)];
  const { conversation } = await tabs[0]!.ok('conversation:create', {});
  const acks = await Promise.all(
    [0, 1, 2, 3].map((i) =>
      tabs[i % 2]!.request('message:send', { conversationId: conversation.id, content: `c${i}`, clientMessageId: `c-${i}` }),
    ),
  );
  expect(acks.filter((a) => a.ok)).toHaveLength(3);
  expect(acks.filter((a) => !a.ok && a.error.code === 'RATE_LIMITED')).toHaveLength(1);
});

it('a repeat of a stored message costs a send, on either node, and over the rate it is refused too, storing nothing twice', async () => {
  const user = cluster.user('rl-repeat');
  const token = cluster.tokenFor(user);
  const [A, B] = cluster.nodes;
  const onA = await connectTab(A!.url, token);
  const onB = await connectTab(B!.url, token);
  const { conversation } = await onA.ok('conversation:create', {});
  const payload = { conversationId: conversation.id, content: 'once', clientMessageId: 'rl-repeat-1' };

  const first = await onA.ok('message:send', payload);
  // Two repeats, one on each node: each answers with the stored message, and each is counted (README, Limits:
  // "a repeat counts"). Free repeats would be free work for a client that loops on one key.
  const again = await onB.ok('message:send', payload);
  const third = await onA.ok('message:send', payload);
  expect(again.message).toEqual(first.message);
  expect(third.message).toEqual(first.message);

  // The allowance of 3 is spent by the send and its two repeats: a new send is refused, and so is a repeat.
  expect(
    await onB.request('message:send', { conversationId: conversation.id, content: 'new', clientMessageId: 'rl-repeat-2' }),
  ).toMatchObject({
    ok: false,
    error: { code: 'RATE_LIMITED' },
  });
  expect(await onA.request('message:send', payload)).toMatchObject({ ok: false, error: { code: 'RATE_LIMITED' } });
  const rows = await cluster.db.query<{ client_message_id: string }>('select client_message_id from messages where conversation_id = $1', [
    conversation.id,
  ]);
  expect(rows.map((r) => r.client_message_id)).toEqual(['rl-repeat-1']);
});
