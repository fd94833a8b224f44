// Fan-out across nodes: every tab of a user, on either node, sees every event of that user (messages, the
// assistant's stream and end, renames, deletions) and nothing of anybody else's; idempotent retries are not
// broadcast or answered twice; writes made over REST reach the tabs exactly like socket writes.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ConversationDto, MessageDto } from '../../src/shared/events.ts';
import { startCluster, type Cluster } from '../helpers/cluster.ts';
import { closeAllTabs, connectTab, joinDeltas, type Tab } from '../helpers/sockets.ts';

let cluster: Cluster;
let A: string;
let B: string;

beforeAll(async () => {
  cluster = await startCluster({ nodes: 2, env: { ASSISTANT: 'echo', ASSISTANT_DELAY_MS: '2' } });
  [A, B] = cluster.nodes.map((n) => n.url) as [string, string];
});

afterEach(() => closeAllTabs());
afterAll(async () => {
  closeAllTabs();
  await cluster?.close();
});

/** Tabs of one user: one on each node (the first over polling then upgrade, as a browser does). */
async function tabsOf(userId: string) {
  const token = cluster.tokenFor(userId);
  const onA = await connectTab(A, token, { name: `${userId}@A`, transports: ['polling', 'websocket'] });
  const onB = await connectTab(B, token, { name: `${userId}@B` });
  return { token, onA, onB };
}

/** Every id of a user's conversations and messages that a tab of someone else might have seen. */
function idsIn(tab: Tab): string[] {
  return tab.events.flatMap((e) => {
    const p = e.payload ?? {};
    return [p.conversation?.id, p.message?.id, p.message?.conversationId, p.conversationId, p.messageId].filter(Boolean);
  });
}

function expectReplyComplete(reply: MessageDto, userMessage: MessageDto) {
  expect(reply).toMatchObject({
    role: 'assistant',
    status: 'complete',
    conversationId: userMessage.conversationId,
    content: `Echo: ${userMessage.content}`,
  });
  expect(reply.seq).toBe(userMessage.seq + 1);
  expect(reply.metadata).toMatchObject({ replyToId: userMessage.id, model: 'echo' });
  expect(typeof reply.metadata!.processingTimeMs).toBe('number');
  expect(reply.metadata!.processingTimeMs as number).toBeGreaterThanOrEqual(0);
  expect(reply.metadata!.error).toBeUndefined();
}

describe('two tabs of one user on two nodes', () => {
  it('both see the message, every delta and the final reply, renames and deletions; another user sees nothing', async () => {
    const alice = cluster.user('alice');
    const bob = cluster.user('bob');
    const { onA, onB } = await tabsOf(alice);
    const bobTabs = await tabsOf(bob);

    const content = 'the quick brown fox jumps over the lazy dog, twice over and then some more words';
    const sent = await onA.ok('message:send', { content, clientMessageId: 'fanout-1' });
    const { message: userMessage, conversation } = sent;
    expect(userMessage).toMatchObject({ role: 'user', status: 'complete', seq: 1, content, clientMessageId: 'fanout-1' });
    expect(conversation.lastSeq).toBe(1);

    for (const tab of [onA, onB]) {
      const created = await tab.waitFor<{ conversation: ConversationDto }>(
        'conversation:created',
        (p) => p.conversation.id === conversation.id,
      );
      expect(created.conversation.title).toBe(content);
      const echoed = await tab.waitFor<{ message: MessageDto }>('message:created', (p) => p.message.id === userMessage.id);
      expect(echoed.message).toEqual(userMessage);
    }

    const [startA, startB] = await Promise.all([onA.replyStart(userMessage.id), onB.replyStart(userMessage.id)]);
    expect(startA).toEqual(startB);
    expect(startA).toMatchObject({ status: 'streaming', content: '', seq: 2 });
    const [endA, endB] = await Promise.all([onA.replyEnd(startA.id), onB.replyEnd(startA.id)]);
    expect(endA).toEqual(endB);
    expectReplyComplete(endA, userMessage);
    for (const tab of [onA, onB]) {
      const deltas = tab.deltas(startA.id);
      expect(deltas.length).toBeGreaterThan(0);
      for (const d of deltas) expect(d.conversationId).toBe(conversation.id);
      // Every delta exactly once, indexes 0..n-1, and their text joined is the final text.
      expect(joinDeltas(deltas)).toBe(endA.content);
      expect(endA.metadata!.deltaIndex).toBe(deltas.length);
      // The stream ends before the end is announced (one publisher, one channel: order is kept).
      const lastDelta = tab.events.findLastIndex((e) => e.event === 'message:delta' && e.payload.messageId === startA.id);
      const endAt = tab.events.findIndex((e) => e.event === 'message:updated' && e.payload.message.id === startA.id);
      expect(lastDelta).toBeLessThan(endAt);
    }
    // Both tabs saw the same deltas in the same order.
    expect(onA.deltas(startA.id)).toEqual(onB.deltas(startA.id));

    // Rename from the tab on B: both tabs hear of it.
    const renamed = await onB.ok('conversation:rename', { conversationId: conversation.id, title: 'renamed on B' });
    expect(renamed.conversation.title).toBe('renamed on B');
    for (const tab of [onA, onB]) {
      const u = await tab.waitFor<{ conversation: ConversationDto }>('conversation:updated', (p) => p.conversation.id === conversation.id);
      expect(u.conversation).toEqual(renamed.conversation);
    }

    // Delete from the tab on A: both tabs hear of it, and history is gone.
    expect(await onA.ok('conversation:delete', { conversationId: conversation.id })).toEqual({ conversationId: conversation.id });
    for (const tab of [onA, onB])
      await tab.waitFor('conversation:deleted', (p: { conversationId: string }) => p.conversationId === conversation.id);
    const gone = await onB.request('history:get', { conversationId: conversation.id });
    expect(gone).toMatchObject({ ok: false, error: { code: 'NOT_FOUND' } });

    // Bob's own write is a barrier: once both his tabs have it, anything of Alice's would have arrived too.
    const barrier = await bobTabs.onB.ok('conversation:create', { title: 'bob barrier' });
    for (const tab of [bobTabs.onA, bobTabs.onB]) {
      await tab.waitFor('conversation:created', (p: { conversation: ConversationDto }) => p.conversation.id === barrier.conversation.id);
      expect(tab.events.map((e) => e.event)).toEqual(['conversation:created']);
      expect(idsIn(tab)).not.toContain(conversation.id);
    }
    // And Alice's tabs saw nothing of Bob's: a write of hers made after his, on the node his came from (one
    // publisher there, so its events keep their order on the way to either node), is the barrier for hers.
    const aliceBarrier = await onB.ok('conversation:create', { title: 'alice barrier' });
    for (const tab of [onA, onB]) {
      await tab.waitFor(
        'conversation:created',
        (p: { conversation: ConversationDto }) => p.conversation.id === aliceBarrier.conversation.id,
      );
      expect(idsIn(tab)).not.toContain(barrier.conversation.id);
    }
  });
});

describe('a retry with the same clientMessageId', () => {
  it('answers the same message, is broadcast once, and gets exactly one assistant reply', async () => {
    const user = cluster.user('retry');
    const { onA, onB } = await tabsOf(user);
    const { conversation } = await onA.ok('conversation:create', { title: 'retries' });
    const payload = { conversationId: conversation.id, content: 'say it once', clientMessageId: 'retry-1' };

    // A retry storm: the same send from both nodes at once (a lost ack retried on a reconnect to the other node).
    const acks = await Promise.all([onA.ok('message:send', payload), onB.ok('message:send', payload), onA.ok('message:send', payload)]);
    const original = acks[0]!.message;
    for (const ack of acks) expect(ack.message).toEqual(original);
    expect(original.seq).toBe(1);
    const reply = await onA.replyStart(original.id);
    await Promise.all([onA.replyEnd(reply.id), onB.replyEnd(reply.id)]);
    // And a late retry after the reply ended.
    const late = await onB.ok('message:send', payload);
    expect(late.message).toEqual(original);

    // Barrier: a later send through each node, answered and ended on both tabs.
    for (const [tab, id] of [
      [onA, 'retry-barrier-A'],
      [onB, 'retry-barrier-B'],
    ] as const) {
      const next = await tab.ok('message:send', { conversationId: conversation.id, content: id, clientMessageId: id });
      const r = await onA.replyStart(next.message.id);
      await Promise.all([onA.replyEnd(r.id), onB.replyEnd(r.id)]);
    }

    for (const tab of [onA, onB]) {
      expect(tab.all('message:created', (p: { message: MessageDto }) => p.message.id === original.id)).toHaveLength(1);
      const replies = tab.all('message:created', (p: { message: MessageDto }) => p.message.metadata?.replyToId === original.id);
      expect(replies).toHaveLength(1);
    }
    const rows = await cluster.db.query<{ seq: string; role: string; client_message_id: string | null; reply_to: string | null }>(
      `select seq, role, client_message_id, metadata->>'replyToId' as reply_to from messages where conversation_id = $1 order by seq`,
      [conversation.id],
    );
    expect(rows.filter((r) => r.client_message_id === 'retry-1')).toHaveLength(1);
    expect(rows.filter((r) => r.reply_to === original.id)).toHaveLength(1);
    expect(rows.map((r) => Number(r.seq))).toEqual([1, 2, 3, 4, 5, 6]);
    expect(rows.map((r) => r.role)).toEqual(['user', 'assistant', 'user', 'assistant', 'user', 'assistant']);
  });
});

describe('writes over REST reach the tabs on both nodes', () => {
  const http = async (base: string, token: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  };

  it('POST …/messages, PATCH and DELETE a conversation: the tabs see the message, the reply, the rename and the deletion', async () => {
    const user = cluster.user('rest');
    const { token, onA, onB } = await tabsOf(user);
    const created = await http(A, token, 'POST', '/api/conversations', { title: 'over rest' });
    expect(created.status).toBe(201);
    const conversation = created.body.conversation as ConversationDto;
    for (const tab of [onA, onB])
      await tab.waitFor('conversation:created', (p: { conversation: ConversationDto }) => p.conversation.id === conversation.id);

    const posted = await http(B, token, 'POST', `/api/conversations/${conversation.id}/messages`, { content: 'posted over http' });
    expect(posted.status).toBe(201);
    const message = posted.body.message as MessageDto;
    for (const tab of [onA, onB]) {
      const seen = await tab.waitFor<{ message: MessageDto }>('message:created', (p) => p.message.id === message.id);
      expect(seen.message).toEqual(message);
      const start = await tab.replyStart(message.id);
      const end = await tab.replyEnd(start.id);
      expectReplyComplete(end, message);
      expect(joinDeltas(tab.deltas(start.id))).toBe(end.content);
    }

    const patched = await http(A, token, 'PATCH', `/api/conversations/${conversation.id}`, { title: 'patched' });
    expect(patched.status).toBe(200);
    for (const tab of [onA, onB]) {
      const u = await tab.waitFor<{ conversation: ConversationDto }>('conversation:updated', (p) => p.conversation.id === conversation.id);
      expect(u.conversation.title).toBe('patched');
    }
    expect((await http(B, token, 'DELETE', `/api/conversations/${conversation.id}`)).status).toBe(204);
    for (const tab of [onA, onB])
      await tab.waitFor('conversation:deleted', (p: { conversationId: string }) => p.conversationId === conversation.id);
  });

  it('POST /api/chat waits for the reply and answers it; the tabs see the whole exchange; a repeat with the same Idempotency-Key answers the same', async () => {
    const user = cluster.user('chat');
    const { token, onA, onB } = await tabsOf(user);
    const res = await http(A, token, 'POST', '/api/chat', { message: 'hello over the waiting route' }, { 'Idempotency-Key': 'chat-1' });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ response: 'Echo: hello over the waiting route', conversation_id: expect.any(String) });
    const conversationId = res.body.conversation_id as string;
    for (const tab of [onA, onB]) {
      await tab.waitFor('conversation:created', (p: { conversation: ConversationDto }) => p.conversation.id === conversationId);
      const user = await tab.waitFor<{ message: MessageDto }>(
        'message:created',
        (p) => p.message.conversationId === conversationId && p.message.role === 'user',
      );
      const end = await tab.replyEnd((await tab.replyStart(user.message.id)).id);
      expect(end.content).toBe(res.body.response);
    }

    // Follow-up in the same conversation, through the path that names the user, on the other node.
    const next = await http(B, token, 'POST', `/api/${encodeURIComponent(user)}/chat`, {
      message: 'and again',
      conversation_id: conversationId,
    });
    expect(next.status).toBe(200);
    expect(next.body).toEqual({ response: 'Echo: and again', conversation_id: conversationId });

    // A client retry after a lost response: no second message, no second reply, and the same answer.
    const repeat = await http(B, token, 'POST', '/api/chat', { message: 'hello over the waiting route' }, { 'Idempotency-Key': 'chat-1' });
    const rows = await cluster.db.query<{ role: string }>('select role from messages where conversation_id = $1 order by seq', [
      conversationId,
    ]);
    expect(rows.map((r) => r.role)).toEqual(['user', 'assistant', 'user', 'assistant']);
    expect(repeat.status).toBe(200);
    expect(repeat.body).toEqual(res.body);
  });

  it('POST /api/<another user>/chat is 403 FORBIDDEN and stores nothing', async () => {
    const user = cluster.user('me');
    const other = cluster.user('other');
    const token = cluster.tokenFor(user);
    const res = await http(A, token, 'POST', `/api/${encodeURIComponent(other)}/chat`, { message: 'not mine' });
    expect(res.status).toBe(403);
    expect(res.body).toEqual({ error: { code: 'FORBIDDEN', message: expect.any(String) } });
    const rows = await cluster.db.query('select id from messages where user_id = any($1)', [[user, other]]);
    expect(rows).toEqual([]);
  });

  it('DELETE /api/me erases the user and disconnects their sockets on both nodes, and only theirs', async () => {
    const user = cluster.user('erase');
    const bystander = cluster.user('stays');
    const { token, onA, onB } = await tabsOf(user);
    const extraB = await connectTab(B, token, { name: 'erase@B2' });
    const others = await tabsOf(bystander);
    await onA.ok('message:send', { content: 'to be erased', clientMessageId: 'erase-1' });

    const res = await http(A, token, 'DELETE', '/api/me');
    expect(res.status).toBe(204);
    for (const tab of [onA, onB, extraB]) expect(await tab.disconnected()).toBe('io server disconnect');
    // The user's row stays only as a tombstone (erased_at set).
    const rows = await cluster.db.query(
      'select 1 from users where id = $1 and erased_at is null union all select 1 from conversations where user_id = $1 union all select 1 from messages where user_id = $1',
      [user],
    );
    expect(rows).toEqual([]);
    // The bystander's tabs still work on both nodes.
    const barrier = await others.onB.ok('conversation:create', { title: 'still here' });
    for (const tab of [others.onA, others.onB]) {
      await tab.waitFor('conversation:created', (p: { conversation: ConversationDto }) => p.conversation.id === barrier.conversation.id);
      expect(tab.connected).toBe(true);
    }
  });
});
