// assistant:stop from any tab on any node: the node running the reply ends it as `stopped`, keeps the text
// streamed so far, and every tab learns it. Also: a tab opening mid-reply continues from the saved text, and a reply
// whose row another node ended stops producing.
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { MessageDelta, MessageDto } from '../../src/shared/events.ts';
import { startCluster, type Cluster } from '../helpers/cluster.ts';
import { closeAllTabs, connectTab, joinDeltas, type Tab } from '../helpers/sockets.ts';

let cluster: Cluster;
let A: string;
let B: string;

beforeAll(async () => {
  // 100 ms a word: a 200-word reply streams for ~20 s; every test that starts one stops it (or has it ended) long before.
  cluster = await startCluster({ nodes: 2, env: { ASSISTANT: 'echo', ASSISTANT_DELAY_MS: '100' } });
  [A, B] = cluster.nodes.map((n) => n.url) as [string, string];
});
afterEach(() => closeAllTabs());
afterAll(async () => {
  closeAllTabs();
  await cluster?.close();
});

const LONG = Array.from({ length: 200 }, (_, i) => `word${i}`).join(' ');
const FULL = `Echo: ${LONG}`;

async function startLongReply(sender: Tab, clientMessageId: string) {
  const { message } = await sender.ok('message:send', { content: LONG, clientMessageId });
  const reply = await sender.replyStart(message.id);
  return { message, reply };
}

describe('assistant:stop', () => {
  it('from a tab on the other node than the one running the reply: stopped everywhere, partial text kept', async () => {
    const user = cluster.user('stop');
    const token = cluster.tokenFor(user);
    const onA = await connectTab(A, token, { name: 'A' });
    const onB = await connectTab(B, token, { name: 'B' });
    const onB2 = await connectTab(B, token, { name: 'B2', transports: ['polling'] });
    // Sent through A: the reply runs on node A.
    const { reply } = await startLongReply(onA, 'stop-1');
    // Let a few deltas through, seen on node B.
    await onB.waitForCount('message:delta', 3, (d: { messageId: string }) => d.messageId === reply.id);
    expect(cluster.nodes[0]!.gateway.assistant.runningCount).toBe(1);
    expect(cluster.nodes[1]!.gateway.assistant.runningCount).toBe(0);

    const ack = await onB.request('assistant:stop', { conversationId: reply.conversationId, messageId: reply.id });
    if (!ack.ok) throw new Error(JSON.stringify(ack.error));
    const stopped = ack.data.message;
    expect(stopped).toMatchObject({ id: reply.id, status: 'stopped', role: 'assistant', seq: reply.seq });
    expect(stopped.content.length).toBeGreaterThan(0);
    expect(stopped.content.length).toBeLessThan(FULL.length);
    expect(FULL.startsWith(stopped.content)).toBe(true);
    expect(stopped.metadata).toMatchObject({ replyToId: reply.metadata!.replyToId, model: 'echo', deltaIndex: expect.any(Number) });
    expect(typeof stopped.metadata!.processingTimeMs).toBe('number');
    expect(stopped.metadata!.error).toBeUndefined();

    for (const tab of [onA, onB, onB2]) {
      const end = await tab.replyEnd(reply.id);
      expect(end).toEqual(stopped);
      // The kept text is exactly what the tabs were streamed, and the stream ends before the end is announced.
      expect(joinDeltas(tab.deltas(reply.id))).toBe(stopped.content);
      expect(tab.deltas(reply.id)).toHaveLength(stopped.metadata!.deltaIndex as number);
      expect(tab.all('message:updated', (p: { message: MessageDto }) => p.message.id === reply.id)).toHaveLength(1);
    }
    const [row] = await cluster.db.query<{ status: string; content: string }>('select status, content from messages where id = $1', [
      reply.id,
    ]);
    expect(row).toEqual({ status: 'stopped', content: stopped.content });
    await expectNotRunning();

    // A second stop (from either node) answers with the stopped message and changes nothing.
    const again = await onA.request('assistant:stop', { conversationId: reply.conversationId, messageId: reply.id });
    expect(again).toEqual({ ok: true, data: { message: stopped } });
    // The conversation goes on: the next message gets the next seq and its own reply.
    const next = await onB.ok('message:send', { conversationId: reply.conversationId, content: 'short', clientMessageId: 'stop-1b' });
    expect(next.message.seq).toBe(reply.seq + 1);
    const nextReply = await onA.replyEnd((await onA.replyStart(next.message.id)).id);
    expect(nextReply).toMatchObject({ status: 'complete', content: 'Echo: short' });
  });

  it('from a tab on the node running the reply', async () => {
    const user = cluster.user('stop-local');
    const token = cluster.tokenFor(user);
    const onA = await connectTab(A, token);
    const onB = await connectTab(B, token);
    const { reply } = await startLongReply(onB, 'stop-2');
    await onA.waitForCount('message:delta', 2, (d: { messageId: string }) => d.messageId === reply.id);
    const { message: stopped } = await onB.ok('assistant:stop', { conversationId: reply.conversationId, messageId: reply.id });
    expect(stopped.status).toBe('stopped');
    expect(FULL.startsWith(stopped.content)).toBe(true);
    for (const tab of [onA, onB]) {
      expect(await tab.replyEnd(reply.id)).toEqual(stopped);
      expect(joinDeltas(tab.deltas(reply.id))).toBe(stopped.content);
    }
  });

  it('takes ids written in upper case as the same conversation and reply', async () => {
    const tab = await connectTab(A, cluster.tokenFor(cluster.user('stop-case')));
    const { reply } = await startLongReply(tab, 'stop-case');
    const ids = { conversationId: reply.conversationId.toUpperCase(), messageId: reply.id.toUpperCase() };
    const { message: stopped } = await tab.ok('assistant:stop', ids);
    expect(stopped).toMatchObject({ id: reply.id, conversationId: reply.conversationId, status: 'stopped' });
    expect(await tab.replyEnd(reply.id)).toEqual(stopped);
    await expectNotRunning();
  });

  it("answers NOT_FOUND for a wrong conversation, a user message, another user's reply or an unknown id; a finished reply is answered as is", async () => {
    const user = cluster.user('stop-nf');
    const other = cluster.user('stop-other');
    const tab = await connectTab(A, cluster.tokenFor(user));
    const otherTab = await connectTab(B, cluster.tokenFor(other));
    const { message } = await tab.ok('message:send', { content: 'hi', clientMessageId: 'nf-1' });
    const reply = await tab.replyEnd((await tab.replyStart(message.id)).id);
    const { conversation: elsewhere } = await tab.ok('conversation:create', {});

    const stop = (t: Tab, conversationId: string, messageId: string) => t.request('assistant:stop', { conversationId, messageId });
    for (const ack of [
      await stop(tab, elsewhere.id, reply.id),
      await stop(tab, message.conversationId, message.id),
      await stop(otherTab, reply.conversationId, reply.id),
      await stop(tab, reply.conversationId, '01900000-0000-7000-8000-000000000000'),
    ]) {
      expect(ack).toEqual({ ok: false, error: { code: 'NOT_FOUND', message: expect.any(String) } });
    }
    expect(await stop(tab, reply.conversationId, reply.id)).toEqual({ ok: true, data: { message: reply } });
  });
});

describe('a tab that opens mid-reply', () => {
  it('gets the saved partial text from history:get (metadata.deltaIndex deltas of it); the deltas from there continue it with no gap or overlap', async () => {
    const user = cluster.user('late');
    const token = cluster.tokenFor(user);
    const first = await connectTab(A, token, { name: 'first' });
    // 200 words at 100 ms: the reply streams for some 20 s, far longer than the steps below need; it is stopped.
    const content = Array.from({ length: 200 }, (_, i) => `w${i}`).join(' ');
    const { message } = await first.ok('message:send', { content, clientMessageId: 'late-1' });
    const start = await first.replyStart(message.id);
    const ofReply = (d: MessageDelta) => d.messageId === start.id;
    await first.waitForCount('message:delta', 1, ofReply);
    const late = await connectTab(B, token, { name: 'late' });
    // Every delta from the first one the late tab sees reaches it: it is in the user's room from then on.
    const [firstSeen] = await late.waitForCount('message:delta', 1, ofReply);

    // The text as saved once the late tab is in: it holds at least every delta before the first one the tab saw.
    let stored: MessageDto | undefined;
    await vi.waitFor(
      async () => {
        const page = await late.ok('history:get', { conversationId: message.conversationId });
        expect(page.messages.map((m) => m.seq)).toEqual([1, 2]);
        stored = page.messages[1]!;
        expect(stored.status).toBe('streaming');
        expect(stored.metadata!.deltaIndex as number).toBeGreaterThanOrEqual(firstSeen!.index);
      },
      { timeout: 20_000, interval: 100 },
    );
    const deltaIndex = stored!.metadata!.deltaIndex as number;
    expect(deltaIndex).toBeGreaterThan(0);
    // The stored text is exactly the first deltaIndex deltas (as the first tab, there from the start, received them).
    await first.waitForCount('message:delta', deltaIndex, ofReply);
    const streamed = [...first.deltas(start.id)].sort((a, b) => a.index - b.index);
    expect(streamed.slice(0, deltaIndex).map((d) => d.index)).toEqual(Array.from({ length: deltaIndex }, (_, i) => i));
    expect(stored!.content).toBe(
      streamed
        .slice(0, deltaIndex)
        .map((d) => d.text)
        .join(''),
    );

    const { message: stopped } = await late.ok('assistant:stop', { conversationId: message.conversationId, messageId: start.id });
    const end = await late.replyEnd(start.id);
    expect(end).toEqual(stopped);
    // What the late tab received from deltaIndex on continues the stored text to the end with no gap or overlap.
    const received = new Map(late.deltas(start.id).map((d) => [d.index, d.text]));
    const total = end.metadata!.deltaIndex as number;
    expect(total).toBeGreaterThan(deltaIndex);
    const rest = Array.from({ length: total - deltaIndex }, (_, i) => received.get(deltaIndex + i));
    expect(rest.filter((t) => t === undefined)).toEqual([]);
    expect(stored!.content + rest.join('')).toBe(end.content);
  });
});

async function expectNotRunning() {
  for (const node of cluster.nodes) expect(node.gateway.assistant.runningCount).toBe(0);
}

describe('a reply ended elsewhere while it runs', () => {
  it('stops producing at its next save, announces nothing more, and leaves the row as the other node ended it', async () => {
    const user = cluster.user('superseded');
    const tab = await connectTab(A, cluster.tokenFor(user));
    const { reply } = await startLongReply(tab, 'superseded-1');
    const ofReply = (d: { messageId: string }) => d.messageId === reply.id;
    await tab.waitForCount('message:delta', 2, ofReply);
    expect(cluster.nodes[0]!.gateway.assistant.runningCount).toBe(1);
    // What another node's sweeper writes for a reply it takes as interrupted (or a stop made through the database):
    // the row ends while the node running the reply goes on.
    await cluster.db.query(
      `update messages set status = 'failed', updated_at = now(),
         metadata = metadata || '{"error": {"code": "INTERRUPTED", "message": "ended elsewhere"}}'::jsonb
       where id = $1`,
      [reply.id],
    );
    // Its next save finds the row ended: the reply stops there.
    await vi.waitFor(() => expect(cluster.nodes[0]!.gateway.assistant.runningCount).toBe(0), { timeout: 20_000, interval: 20 });
    const deltas = tab.deltas(reply.id).length;
    expect(deltas).toBeLessThan(FULL.split(' ').length);

    // A later event of the same user is the barrier: nothing of the reply came after its end, and no end of the
    // node's own (whoever ended the reply announces its end; nothing may follow it).
    const barrier = await tab.ok('conversation:create', { title: 'after the end' });
    await tab.waitFor('conversation:created', (p: { conversation: { id: string } }) => p.conversation.id === barrier.conversation.id);
    expect(tab.deltas(reply.id)).toHaveLength(deltas);
    expect(tab.all('message:updated', (p: { message: MessageDto }) => p.message.id === reply.id)).toEqual([]);
    const [row] = await cluster.db.query<{ status: string; code: string }>(
      "select status, metadata->'error'->>'code' as code from messages where id = $1",
      [reply.id],
    );
    expect(row).toEqual({ status: 'failed', code: 'INTERRUPTED' });
  });
});
