// A node killed mid-reply (SIGKILL, a real child process): the surviving node's sweeper ends the reply as
// failed with metadata.error.code INTERRUPTED, keeping the partial text that had been saved, and every tab left
// (on the surviving node) learns it. Nothing acknowledged is lost, and the conversation goes on.
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { CLUSTER_SECRET, REDIS_URL, eventually, spawnNode, startCluster, type ChildNode, type Cluster } from '../helpers/cluster.ts';
import { closeAllTabs, connectTab } from '../helpers/sockets.ts';

let cluster: Cluster;
let victim: ChildNode | undefined;

beforeAll(async () => {
  // The survivor, in process: REPLY_STALE_MS=2000, so its sweeper runs about every 700 ms.
  cluster = await startCluster({ nodes: 1, env: { ASSISTANT: 'echo', ASSISTANT_DELAY_MS: '200', REPLY_STALE_MS: '2000' } });
});
afterEach(async () => {
  closeAllTabs();
  await victim?.kill();
});
afterAll(async () => {
  closeAllTabs();
  await cluster?.close();
});

const LONG = Array.from({ length: 60 }, (_, i) => `token${i}`).join(' ');
const FULL = `Echo: ${LONG}`;

it('a reply whose node is SIGKILLed ends as failed INTERRUPTED on the surviving node, keeping its saved text', async () => {
  victim = await spawnNode({
    DATABASE_URL: cluster.db.url,
    REDIS_URL,
    JWT_SECRET: CLUSTER_SECRET,
    ASSISTANT: 'echo',
    ASSISTANT_DELAY_MS: '200',
    REPLY_STALE_MS: '2000',
    NODE_ID: 'victim',
    DB_POOL_MAX: '4',
  });
  const survivor = cluster.nodes[0]!;
  const user = cluster.user('killed');
  const token = cluster.tokenFor(user);
  const onVictim = await connectTab(victim.url, token, { name: 'victim-tab' });
  const onSurvivor = await connectTab(survivor.url, token, { name: 'survivor-tab' });

  // Two replies run on the victim: one is left to the sweeper, the other gets a stop after the kill.
  const first = await onVictim.ok('message:send', { content: LONG, clientMessageId: 'kill-1' });
  const second = await onVictim.ok('message:send', { content: LONG, clientMessageId: 'kill-2' });
  const reply = await onSurvivor.replyStart(first.message.id);
  const reply2 = await onSurvivor.replyStart(second.message.id);
  // Wait until some partial text of the first reply is saved in the database (it is saved about once a second).
  const saved = await eventually(async () => {
    const [row] = await cluster.db.query<{ content: string }>('select content from messages where id = $1', [reply.id]);
    return row && row.content.length > 0 ? row.content : undefined;
  }, 'partial text to be saved');
  expect(FULL.startsWith(saved)).toBe(true);

  await victim.kill('SIGKILL');
  expect(await onVictim.disconnected()).toBe('transport close');

  // A stop for the other reply, sent to the survivor: no node runs it any more; answered (not hung), and ended.
  const stopAck = await onSurvivor.request('assistant:stop', { conversationId: reply2.conversationId, messageId: reply2.id });
  if (!stopAck.ok) throw new Error(JSON.stringify(stopAck.error));
  expect(['stopped', 'failed']).toContain(stopAck.data.message.status);
  expect(FULL.startsWith(stopAck.data.message.content)).toBe(true);

  // Within the bound (30 s by contract; ~2-3 s with REPLY_STALE_MS=2000), the survivor's tab learns of the failure.
  const failed = await onSurvivor.replyEnd(reply.id, 30_000);
  expect(failed).toMatchObject({ id: reply.id, status: 'failed', role: 'assistant', seq: reply.seq });
  expect(failed.metadata).toMatchObject({
    replyToId: first.message.id,
    model: 'echo',
    error: { code: 'INTERRUPTED', message: expect.any(String) },
  });
  // The partial text it had saved is kept (at least what was saved before the kill; it may have saved more).
  expect(failed.content.startsWith(saved)).toBe(true);
  expect(FULL.startsWith(failed.content)).toBe(true);
  expect(failed.content.length).toBeLessThan(FULL.length);
  // And it is exactly the first metadata.deltaIndex deltas the tabs were streamed.
  const deltaIndex = failed.metadata!.deltaIndex as number;
  expect(joinFirst(onSurvivor.deltas(reply.id), deltaIndex)).toBe(failed.content);
  const [row] = await cluster.db.query<{ status: string; content: string }>('select status, content from messages where id = $1', [
    reply.id,
  ]);
  expect(row).toEqual({ status: 'failed', content: failed.content });
  const end2 = await onSurvivor.replyEnd(reply2.id, 30_000);
  expect(end2).toEqual(stopAck.data.message);

  // The victim's tab reconnects to the survivor and catches up by seq: nothing acknowledged was lost.
  const back = await connectTab(survivor.url, token, { name: 'reconnected' });
  const page = await back.ok('history:get', { conversationId: first.message.conversationId, after: 0 });
  expect(page.messages.map((m) => [m.seq, m.role, m.status])).toEqual([
    [1, 'user', 'complete'],
    [2, 'assistant', 'failed'],
  ]);
  // The conversation goes on, answered by the survivor.
  const next = await back.ok('message:send', {
    conversationId: first.message.conversationId,
    content: 'still there?',
    clientMessageId: 'kill-3',
  });
  expect(next.message.seq).toBe(3);
  const nextReply = await back.replyEnd((await back.replyStart(next.message.id)).id);
  expect(nextReply).toMatchObject({ status: 'complete', content: 'Echo: still there?' });
});

function joinFirst(deltas: { index: number; text: string }[], n: number): string {
  const byIndex = new Map(deltas.map((d) => [d.index, d.text]));
  return Array.from({ length: n }, (_, i) => {
    const text = byIndex.get(i);
    if (text === undefined) throw new Error(`delta ${i} was never received`);
    return text;
  }).join('');
}
