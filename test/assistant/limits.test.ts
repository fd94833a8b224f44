// The bounds on what a provider can make a reply (and a node) do, on two real nodes against the scripted
// OpenAI-compatible server: a reply past ASSISTANT_MAX_REPLY_CHARS ends failed with its text cut there; a step past
// ASSISTANT_STEP_TIMEOUT_MS and a reply past ASSISTANT_TIMEOUT_MS end PROVIDER_TIMEOUT; a line that never ends and
// a huge error page are read only up to their bounds; an unreachable provider is PROVIDER_UNREACHABLE. Tabs get
// the fixed text of each code, the provider's own words stay in the log.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type Cluster, type ClusterNode } from '../helpers/cluster.ts';
import { captureLog, type CapturedLog } from '../helpers/logs.ts';
import { closeAllTabs, connectTab, joinDeltas, type Tab } from '../helpers/sockets.ts';
import { startSseServer, type SseServer } from '../helpers/sse-server.ts';

let sse: SseServer;
let cluster: Cluster;
let logs: CapturedLog;
let A: ClusterNode;
let B: ClusterNode;

beforeAll(async () => {
  sse = await startSseServer();
  logs = captureLog('warn');
  cluster = await startCluster({
    nodes: 2,
    env: { ASSISTANT: 'openai', OPENAI_BASE_URL: sse.baseUrl, OPENAI_MODEL: 'bounded-model', ASSISTANT_MAX_REPLY_CHARS: '300' },
    nodeOptions: [{ log: logs.log }, { log: logs.log }],
  });
  [A, B] = cluster.nodes as [ClusterNode, ClusterNode];
});
afterEach(() => closeAllTabs());
afterAll(async () => {
  closeAllTabs();
  await cluster?.close();
  await sse?.close();
});

async function tabs(label: string, node = A) {
  const token = cluster.tokenFor(cluster.user(label));
  return {
    onNode: await connectTab(node.url, token, { name: `${label}@node` }),
    onB: await connectTab(B.url, token, { name: `${label}@B` }),
  };
}

async function send(tab: Tab, content: string) {
  const before = sse.requests.length;
  const { message } = await tab.ok('message:send', { content, clientMessageId: `${content}-${Date.now()}` });
  const reply = await tab.replyStart(message.id);
  return { reply, request: await sse.request(before) };
}

const loggedFor = (replyId: string) => logs.entries.filter((e) => e.messageId === replyId);

describe('a reply over ASSISTANT_MAX_REPLY_CHARS', () => {
  it('ends failed with REPLY_TOO_LONG, its text cut at exactly that many characters (code points), and upstream is closed', async () => {
    // 10 chunks of 50 code points each, an emoji (two UTF-16 units) in every one.
    const chunks = Array.from({ length: 10 }, (_, i) => `${String(i).repeat(48)}🙂 `);
    sse.setScript({ chunks, delayMs: 40 });
    const { onNode, onB } = await tabs('long');
    const { reply, request } = await send(onNode, 'talk a lot');
    const cut = [...chunks.join('')].slice(0, 300).join('');
    for (const tab of [onNode, onB]) {
      const end = await tab.replyEnd(reply.id);
      expect(end).toMatchObject({
        status: 'failed',
        content: cut,
        metadata: { error: { code: 'REPLY_TOO_LONG', message: 'the reply reached its length limit' } },
      });
      expect([...end.content]).toHaveLength(300);
      expect(joinDeltas(tab.deltas(reply.id))).toBe(cut);
    }
    expect(await request.ended).toBe('aborted');
  });

  it('a reply of exactly the limit completes', async () => {
    sse.setScript({ chunks: ['x'.repeat(150), 'y'.repeat(150)] });
    const { onNode } = await tabs('exact');
    const { reply } = await send(onNode, 'exactly enough');
    expect(await onNode.replyEnd(reply.id)).toMatchObject({ status: 'complete', content: `${'x'.repeat(150)}${'y'.repeat(150)}` });
  });
});

describe('time bounds', () => {
  it('a step past ASSISTANT_STEP_TIMEOUT_MS ends the reply PROVIDER_TIMEOUT, keeping its text, and closes upstream', async () => {
    const node = await cluster.addNode({ ASSISTANT_STEP_TIMEOUT_MS: '1000' }, { log: logs.log });
    sse.setScript({ chunks: ['early ', 'words ', 'then ', 'a ', 'stall'], delayMs: 400 });
    const { onNode, onB } = await tabs('step', node);
    const { reply, request } = await send(onNode, 'take your time');
    for (const tab of [onNode, onB]) {
      const end = await tab.replyEnd(reply.id);
      expect(end).toMatchObject({
        status: 'failed',
        metadata: { error: { code: 'PROVIDER_TIMEOUT', message: 'the assistant took too long to answer' } },
      });
      expect('early words then a stall'.startsWith(end.content)).toBe(true);
      expect(end.content.length).toBeGreaterThan(0);
    }
    expect(await request.ended).toBe('aborted');
  });

  it('a reply past ASSISTANT_TIMEOUT_MS ends PROVIDER_TIMEOUT, whatever its steps do', async () => {
    const node = await cluster.addNode({ ASSISTANT_TIMEOUT_MS: '1200' }, { log: logs.log });
    sse.setScript({ chunks: Array.from({ length: 30 }, (_, i) => `w${i} `), delayMs: 100 });
    const { onNode } = await tabs('total', node);
    const { reply, request } = await send(onNode, 'go on and on');
    const end = await onNode.replyEnd(reply.id);
    expect(end).toMatchObject({ status: 'failed', metadata: { error: { code: 'PROVIDER_TIMEOUT' } } });
    expect(end.content).toMatch(/^w0 w1 /);
    expect(await request.ended).toBe('aborted');
  });
});

describe('what a provider sends is read within bounds', () => {
  it('a line that never ends fails the reply (PROVIDER_ERROR) once it passes 1 MiB, instead of being buffered', async () => {
    sse.setScript({ hugeLineBytes: 4 * 1024 * 1024 });
    const { onNode } = await tabs('line');
    const { reply } = await send(onNode, 'send me a huge line');
    expect(await onNode.replyEnd(reply.id)).toMatchObject({
      status: 'failed',
      metadata: { error: { code: 'PROVIDER_ERROR', message: 'the assistant could not answer' } },
    });
    expect(
      loggedFor(reply.id)
        .map((e) => e.err)
        .join(' '),
    ).toMatch(/line over 1048576 bytes/);
  });

  it('an error page is read up to 4 KiB: its start reaches the log, the rest nothing, and tabs only the fixed text', async () => {
    const head = JSON.stringify({ error: { message: 'quota exceeded for key sk-…abcd' } });
    sse.setScript({ status: 429, errorBody: `${head}${' '.repeat(200_000)}TAIL-NEVER-READ` });
    const { onNode, onB } = await tabs('page');
    const { reply } = await send(onNode, 'over quota');
    for (const tab of [onNode, onB]) {
      expect(await tab.replyEnd(reply.id)).toMatchObject({
        status: 'failed',
        metadata: { error: { code: 'PROVIDER_ERROR', message: 'the assistant could not answer' } },
      });
    }
    const logged = loggedFor(reply.id)
      .map((e) => e.err)
      .join(' ');
    expect(logged).toContain('429');
    expect(logged).toContain('quota exceeded for key');
    expect(logged).not.toContain('TAIL-NEVER-READ');
    // Nothing of the provider's words went to the tabs.
    expect(JSON.stringify(onB.events)).not.toContain('exceeded');
  });

  it('a provider that cannot be reached ends the reply PROVIDER_UNREACHABLE', async () => {
    const node = await cluster.addNode({ OPENAI_BASE_URL: 'http://127.0.0.1:9/v1' }, { log: logs.log });
    const { onNode } = await tabs('unreachable', node);
    const { message } = await onNode.ok('message:send', { content: 'anyone?', clientMessageId: 'unreachable-1' });
    const reply = await onNode.replyStart(message.id);
    expect(await onNode.replyEnd(reply.id)).toMatchObject({
      status: 'failed',
      content: '',
      metadata: { error: { code: 'PROVIDER_UNREACHABLE', message: 'the assistant could not be reached' } },
    });
  });
});
