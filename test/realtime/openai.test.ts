// ASSISTANT=openai against a local OpenAI-compatible SSE server: what the tabs are streamed and what is stored
// is exactly what upstream sent; the request carries stream:true, the model and the conversation history; a
// stop from any node aborts the upstream request; upstream failures end the reply as failed with metadata.error,
// whose message is the fixed text of its code (upstream's own words go to the node's log, never to the tabs).
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type Cluster } from '../helpers/cluster.ts';
import { captureLog, type CapturedLog } from '../helpers/logs.ts';
import { closeAllTabs, connectTab, joinDeltas, type Tab } from '../helpers/sockets.ts';
import { startSseServer, type SseServer } from '../helpers/sse-server.ts';

let sse: SseServer;
let cluster: Cluster;
let A: string;
let B: string;
/** Both nodes log here (warnings and above). */
let logs: CapturedLog;

beforeAll(async () => {
  sse = await startSseServer();
  logs = captureLog('warn');
  cluster = await startCluster({
    nodes: 2,
    env: { ASSISTANT: 'openai', OPENAI_BASE_URL: sse.baseUrl, OPENAI_MODEL: 'test-model', OPENAI_API_KEY: 'sk-test-key' },
    nodeOptions: [{ log: logs.log }, { log: logs.log }],
  });
  [A, B] = cluster.nodes.map((n) => n.url) as [string, string];
});
afterEach(() => closeAllTabs());
afterAll(async () => {
  closeAllTabs();
  await cluster?.close();
  await sse?.close();
});

async function tabs(label: string) {
  const token = cluster.tokenFor(cluster.user(label));
  return { token, onA: await connectTab(A, token, { name: `${label}@A` }), onB: await connectTab(B, token, { name: `${label}@B` }) };
}

/** Sends through `tab` and returns the user message, the upstream request it caused, and the reply's start. */
async function send(tab: Tab, content: string, clientMessageId: string, conversationId?: string) {
  const before = sse.requests.length;
  const { message } = await tab.ok('message:send', { content, clientMessageId, ...(conversationId ? { conversationId } : {}) });
  const reply = await tab.replyStart(message.id);
  const request = await sse.request(before);
  return { message, reply, request };
}

describe('ASSISTANT=openai', () => {
  it('streams exactly what upstream sent to the tabs on both nodes, stores it, and sends the history with stream:true and the model', async () => {
    const chunks = ['Hel', 'lo', ' there', ', ', 'frie', 'nd', ' — ', 'ünïcødé ', '🙂', '!'];
    sse.setScript({ chunks, delayMs: 60 });
    const { onA, onB } = await tabs('oa');
    const first = await send(onA, 'Hi, who are you?', 'oa-1');
    expect(first.reply).toMatchObject({ status: 'streaming', content: '', metadata: { model: 'test-model', replyToId: first.message.id } });
    for (const tab of [onA, onB]) {
      const end = await tab.replyEnd(first.reply.id);
      expect(end).toMatchObject({ status: 'complete', content: chunks.join(''), role: 'assistant' });
      expect(end.metadata).toMatchObject({ model: 'test-model', replyToId: first.message.id, processingTimeMs: expect.any(Number) });
      expect(end.metadata!.error).toBeUndefined();
      expect(joinDeltas(tab.deltas(first.reply.id))).toBe(chunks.join(''));
    }
    expect(first.request.body).toEqual({ model: 'test-model', stream: true, messages: [{ role: 'user', content: 'Hi, who are you?' }] });
    expect(first.request.headers.authorization).toBe('Bearer sk-test-key');
    expect(first.request.headers['content-type']).toMatch(/application\/json/);
    expect(await first.request.ended).toBe('completed');

    // The next turn, sent through the other node, carries the whole conversation so far, in order.
    sse.setScript({ chunks: ['Second', ' answer'] });
    const second = await send(onB, 'And then?', 'oa-2', first.message.conversationId);
    expect(second.request.body.messages).toEqual([
      { role: 'user', content: 'Hi, who are you?' },
      { role: 'assistant', content: chunks.join('') },
      { role: 'user', content: 'And then?' },
    ]);
    expect(second.request.body).toMatchObject({ model: 'test-model', stream: true });
    const end = await onA.replyEnd(second.reply.id);
    expect(end.content).toBe('Second answer');
    const [row] = await cluster.db.query<{ content: string; status: string }>('select content, status from messages where id = $1', [
      second.reply.id,
    ]);
    expect(row).toEqual({ content: 'Second answer', status: 'complete' });
  });

  it('assistant:stop from the other node aborts the upstream request and keeps the text received so far', async () => {
    const chunks = Array.from({ length: 200 }, (_, i) => `c${i} `);
    sse.setScript({ chunks, delayMs: 50 });
    const { onA, onB } = await tabs('oa-stop');
    const { reply, request } = await send(onA, 'talk for a long time', 'oa-stop-1');
    await onB.waitForCount('message:delta', 3, (d: { messageId: string }) => d.messageId === reply.id);
    const { message: stopped } = await onB.ok('assistant:stop', { conversationId: reply.conversationId, messageId: reply.id });
    expect(stopped.status).toBe('stopped');
    expect(stopped.content.length).toBeGreaterThan(0);
    expect(chunks.join('').startsWith(stopped.content)).toBe(true);
    // Upstream saw its connection closed before the end of the stream.
    expect(await request.ended).toBe('aborted');
    expect(request.written).toBeLessThan(chunks.length);
    for (const tab of [onA, onB]) {
      expect(await tab.replyEnd(reply.id)).toEqual(stopped);
      expect(joinDeltas(tab.deltas(reply.id))).toBe(stopped.content);
    }
  });

  it('an upstream 500 ends the reply as failed with metadata.error, on every tab; its detail only in the log', async () => {
    sse.setScript({ status: 500, errorBody: JSON.stringify({ error: { message: 'upstream exploded' } }) });
    const { onA, onB } = await tabs('oa-500');
    const { message, reply } = await send(onA, 'fail please', 'oa-500-1');
    for (const tab of [onA, onB]) {
      const end = await tab.replyEnd(reply.id);
      expect(end).toMatchObject({ status: 'failed', content: '' });
      expect(end.metadata).toMatchObject({
        replyToId: message.id,
        model: 'test-model',
        error: { code: 'PROVIDER_ERROR', message: 'the assistant could not answer' },
      });
    }
    // One attempt, as before: the gateway does not retry upstream by itself.
    expect(sse.requests.filter((r) => r.body.messages?.at(-1)?.content === 'fail please')).toHaveLength(1);
    const logged = logs.entries.find((e) => e.messageId === reply.id && e.msg === 'assistant reply failed');
    expect(logged).toMatchObject({ code: 'PROVIDER_ERROR', err: expect.stringContaining('500') });
    expect(logged!.err).toContain('upstream exploded');
    // The conversation goes on once upstream is back.
    sse.setScript({ chunks: ['back'] });
    const next = await send(onB, 'again', 'oa-500-2', message.conversationId);
    expect(await onA.replyEnd(next.reply.id)).toMatchObject({ status: 'complete', content: 'back' });
    // The failed, empty reply is not sent upstream as history.
    expect(next.request.body.messages).toEqual([
      { role: 'user', content: 'fail please' },
      { role: 'user', content: 'again' },
    ]);
  });

  it('an error event or a dropped connection mid-stream ends the reply as failed, keeping the partial text', async () => {
    const { onA, onB } = await tabs('oa-mid');
    sse.setScript({ chunks: ['partial ', 'text'], delayMs: 30, errorEvent: 'overloaded' });
    const a = await send(onA, 'one', 'oa-mid-1');
    const endA = await onB.replyEnd(a.reply.id);
    expect(endA).toMatchObject({
      status: 'failed',
      content: 'partial text',
      metadata: { error: { code: 'PROVIDER_ERROR', message: 'the assistant could not answer' } },
    });
    expect(logs.entries.find((e) => e.messageId === a.reply.id && e.msg === 'assistant reply failed')?.err).toContain('overloaded');
    expect(joinDeltas(onB.deltas(a.reply.id))).toBe('partial text');

    sse.setScript({ chunks: ['some ', 'words ', 'then ', 'nothing'], delayMs: 60, dropAfter: 2 });
    const b = await send(onB, 'two', 'oa-mid-2', a.message.conversationId);
    const endB = await onA.replyEnd(b.reply.id);
    expect(endB.status).toBe('failed');
    expect('some words '.startsWith(endB.content)).toBe(true);
    expect(endB.metadata!.error).toMatchObject({ code: expect.any(String), message: expect.any(String) });
  });

  it('POST /api/chat answers with the upstream text', async () => {
    sse.setScript({ chunks: ['via ', 'rest'] });
    const token = cluster.tokenFor(cluster.user('oa-rest'));
    const res = await fetch(`${B}/api/chat`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ message: 'over http' }),
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ response: 'via rest', conversation_id: expect.any(String) });
  });
});

describe('a live reply whose upstream is slow to start', () => {
  let slow: Cluster;
  afterAll(async () => {
    await slow?.close();
  });

  it('is not swept as interrupted while its node is alive (REPLY_STALE_MS=3000, 6 s to the first token)', async () => {
    // The node running the reply saves a heartbeat every 100 ms (30 to a staleness bound, so a busy machine cannot
    // make it look dead), and a sweeping node also asks the others which replies they run. The first token comes
    // two staleness bounds later, when a sweep would long have ended a reply that neither kept alive (seen failing
    // with the heartbeat at 60 s and the question to the other nodes left out).
    const timing = { assistantTiming: { heartbeatMs: 100 } };
    slow = await startCluster({
      nodes: 2,
      env: { ASSISTANT: 'openai', OPENAI_BASE_URL: sse.baseUrl, OPENAI_MODEL: 'slow-model', REPLY_STALE_MS: '3000' },
      nodeOptions: [timing, timing],
    });
    sse.setScript({ chunks: ['finally'], firstDelayMs: 6000 });
    const token = slow.tokenFor(slow.user('slow'));
    const onA = await connectTab(slow.nodes[0]!.url, token);
    const onB = await connectTab(slow.nodes[1]!.url, token);
    const { message } = await onA.ok('message:send', { content: 'think first', clientMessageId: 'slow-1' });
    const reply = await onA.replyStart(message.id);
    for (const tab of [onA, onB]) {
      const end = await tab.replyEnd(reply.id);
      expect({ status: end.status, content: end.content, error: end.metadata?.error }).toEqual({
        status: 'complete',
        content: 'finally',
        error: undefined,
      });
    }
  });
});
