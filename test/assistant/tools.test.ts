// Tools over MCP, end to end on real processes: two gateway nodes (ASSISTANT=openai) against the scripted
// OpenAI-compatible server, which streams tool calls as OpenAI does; the reference todo MCP server
// (examples/todo-mcp) as a child process on this file's database, and a small MCP server of the tests' own for
// tools the example has no reason to have (slow, failing, hanging, whoami). What is checked: the task is in the
// todo server's table for the right user only; every tab on both nodes sees each call start and end, then the
// text; the stored reply has toolsUsed, model, processingTimeMs and toolCalls; a tab opening mid-call sees the call
// from history; stop during a call; a failing tool; a tool past its timeout; a model looping past the step bound;
// one user's reply never touching another's tasks; the identity each call carried; the system prompt and the
// context window as the provider received them.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createChatClient, type ChatClient } from '../../src/sdk/index.ts';
import type { MessageDto, ToolCallDto, ToolUpdate } from '../../src/shared/events.ts';
import { eventually, spawnNode, startCluster, type ChildNode, type Cluster, type ClusterNode } from '../helpers/cluster.ts';
import { startLabMcp, type LabMcp } from '../helpers/lab-mcp.ts';
import { captureLog, type CapturedLog } from '../helpers/logs.ts';
import { closeAllTabs, connectTab, joinDeltas, type Tab } from '../helpers/sockets.ts';
import { startSseServer, toolResults, type SseRequest, type SseScript, type SseServer } from '../helpers/sse-server.ts';
import { startTodoMcp, type TodoMcpProcess } from '../helpers/todo-mcp.ts';

/** 48 bytes: above the 32-byte minimum of the gateway and of the MCP servers. */
const MCP_SECRET = 'mcp-tools-test-secret-0123456789abcdefghijklmnop';
const PROMPT = 'You keep the todo list of {{userId}}. Today is {{date}}.';
const TODO_TOOLS = ['add_task', 'complete_task', 'delete_task', 'list_tasks', 'update_task'];

let sse: SseServer;
let cluster: Cluster;
let todo: TodoMcpProcess;
let lab: LabMcp;
let logs: CapturedLog;
let A: ClusterNode;
let B: ClusterNode;
const clients = new Set<ChatClient>();
let victim: ChildNode | undefined;

beforeAll(async () => {
  sse = await startSseServer();
  lab = await startLabMcp({ secret: MCP_SECRET, slowMs: 15_000 });
  logs = captureLog('info');
  // No node yet: the todo server's table goes into this cluster's database, and the nodes need its address.
  cluster = await startCluster({
    nodes: 0,
    env: {
      ASSISTANT: 'openai',
      OPENAI_BASE_URL: sse.baseUrl,
      OPENAI_MODEL: 'tool-model',
      OPENAI_API_KEY: 'sk-provider-key',
      MCP_TOKEN_SECRET: MCP_SECRET,
      ASSISTANT_SYSTEM_PROMPT: PROMPT,
      ASSISTANT_CONTEXT_MESSAGES: '4',
      ASSISTANT_MAX_STEPS: '3',
      ASSISTANT_TOOL_TIMEOUT_MS: '1500',
      // A node killed mid-call has its replies swept within about 3 s.
      REPLY_STALE_MS: '2000',
    },
  });
  todo = await startTodoMcp({ MCP_TOKEN_SECRET: MCP_SECRET, DATABASE_URL: cluster.db.url, DATABASE_SCHEMA: 'todo' });
  const mcp = { MCP_SERVERS: `todo=${todo.url},lab=${lab.url}` };
  A = await cluster.addNode(mcp, { log: logs.log });
  B = await cluster.addNode(mcp, { log: logs.log });
});
afterEach(() => {
  closeAllTabs();
  for (const c of clients) c.close();
  clients.clear();
});
afterAll(async () => {
  closeAllTabs();
  await victim?.kill();
  await cluster?.close();
  await Promise.all([todo?.stop(), lab?.close(), sse?.close()]);
});

// ---------------------------------------------------------------------------------------------------------
// The scripted model: each test's requests are told apart by the marker its user's first message carries.

/** A chat completions request body, as the scripted server parsed it. */
type Body = SseRequest['body'];
type Script = (body: Body, toolResultCount: number) => SseScript;
const scripts = new Map<string, Script>();

function script(marker: string, s: Script) {
  scripts.set(marker, s);
  sse.setScript((body) => {
    const firstUser = body?.messages?.find((m: { role: string }) => m.role === 'user')?.content ?? '';
    for (const [key, fn] of scripts) if (firstUser.includes(key)) return fn(body, toolResults(body).length);
    // A conversation whose marker has left the context window: answer the last message.
    return { chunks: [`re: ${lastUser(body)}`] };
  });
}

const lastUser = (body: Body): string => body?.messages?.findLast((m: { role: string }) => m.role === 'user')?.content;

/** The requests the provider got for a marker's conversation, in order. */
const requestsOf = (marker: string) =>
  sse.requests.filter((r) => r.body?.messages?.find((m: { role: string }) => m.role === 'user')?.content.includes(marker));

const tasksOf = (userId: string) =>
  cluster.db.query<{ id: number; title: string; completed: boolean }>(
    'select id, title, completed from todo.tasks where user_id = $1 order by id',
    [userId],
  );

async function tabsFor(label: string) {
  const userId = cluster.user(label);
  const token = cluster.tokenFor(userId);
  return {
    userId,
    token,
    onA: await connectTab(A.url, token, { name: `${label}@A` }),
    onB: await connectTab(B.url, token, { name: `${label}@B` }),
  };
}

async function send(tab: Tab, content: string, clientMessageId: string, conversationId?: string) {
  const { message } = await tab.ok('message:send', { content, clientMessageId, ...(conversationId ? { conversationId } : {}) });
  return { message, reply: await tab.replyStart(message.id) };
}

const toolEvents = (tab: Tab, replyId: string) => tab.all<ToolUpdate>('tool:updated', (u) => u.messageId === replyId).map((u) => u.call);

/** The tab's events about one reply, in the order they came: deltas, tool events and the end. */
function lifeOf(tab: Tab, replyId: string): string[] {
  return tab.events.flatMap((e) => {
    if (e.event === 'message:delta' && e.payload.messageId === replyId) return [`delta:${e.payload.text}`];
    if (e.event === 'tool:updated' && e.payload.messageId === replyId) return [`tool:${e.payload.call.name}:${e.payload.call.status}`];
    if (e.event === 'message:updated' && e.payload.message.id === replyId) return [`end:${e.payload.message.status}`];
    return [];
  });
}

const ended = (name: string, error: string | null = null): Partial<ToolCallDto> => ({
  id: expect.any(String),
  name,
  status: error ? 'failed' : 'complete',
  startedAt: expect.any(String),
  durationMs: expect.any(Number),
  error,
});

describe('a reply that calls a tool', () => {
  it('adds the task for its own user through the real todo server; every tab on both nodes sees the call, then the text; the stored reply says which tools it used', async () => {
    script('[milk]', (_body, results) =>
      results === 0
        ? { chunks: ['Adding it.'], toolCalls: [{ name: 'add_task', arguments: { title: 'Buy milk' } }] }
        : { chunks: ['Added ', '"Buy milk".'] },
    );
    const { userId, token, onA, onB } = await tabsFor('todo');
    const other = await tabsFor('bystander');
    // The sender is the SDK, on node B; the reply runs on B, and its events reach A through Redis.
    const chat = createChatClient({ url: B.url, token, ackTimeoutMs: 5000 });
    clients.add(chat);
    const sdkTools: ToolUpdate[] = [];
    chat.on('tool', (u) => sdkTools.push(u));
    const { message } = await chat.send({ content: 'Remember to buy milk [milk]' });
    const reply = await onA.replyStart(message.id);

    const text = 'Adding it.\n\nAdded "Buy milk".';
    for (const tab of [onA, onB]) {
      const end = await tab.replyEnd(reply.id);
      expect(end).toMatchObject({ status: 'complete', content: text });
      expect(end.metadata).toEqual({
        replyToId: message.id,
        model: 'tool-model',
        deltaIndex: expect.any(Number),
        processingTimeMs: expect.any(Number),
        toolsUsed: ['add_task'],
        toolCalls: [ended('add_task')],
      });
      expect(joinDeltas(tab.deltas(reply.id))).toBe(text);
      // The call's start comes after the text before it, its end before the text after it, and all before the end.
      expect(lifeOf(tab, reply.id).filter((l) => !l.startsWith('delta:') || l === 'delta:Adding it.')).toEqual([
        'delta:Adding it.',
        'tool:add_task:running',
        'tool:add_task:complete',
        'end:complete',
      ]);
      expect(toolEvents(tab, reply.id).at(-1)).toEqual(end.metadata!.toolCalls && (end.metadata!.toolCalls as ToolCallDto[])[0]);
    }
    // Another user's tabs heard nothing of it.
    expect(other.onA.all('tool:updated')).toEqual([]);

    // The task is in the todo server's own table, for this user and no one else.
    expect(await tasksOf(userId)).toEqual([{ id: expect.any(Number), title: 'Buy milk', completed: false }]);
    expect(await cluster.db.query('select user_id from todo.tasks')).toEqual([{ user_id: userId }]);

    // The SDK applied both events to the reply it holds, and its final version has the same calls.
    await eventually(
      () => (chat.messages(message.conversationId).find((m) => m.id === reply.id)?.status === 'complete' ? true : undefined),
      'the SDK to hold the ended reply',
    );
    expect(sdkTools.map((u) => u.call.status)).toEqual(['running', 'complete']);
    expect(chat.messages(message.conversationId).find((m) => m.id === reply.id)!.metadata!.toolCalls).toEqual([ended('add_task')]);

    // What the provider was sent: the system prompt with this user's id and today's date, the todo and lab
    // tools, and in the second step the call and its result. Never a credential of the MCP servers.
    const [first, second] = requestsOf('[milk]');
    expect(first!.body.messages[0]).toEqual({
      role: 'system',
      content: `You keep the todo list of ${userId}. Today is ${new Date().toISOString().slice(0, 10)}.`,
    });
    expect(first!.body.tools.map((t: { function: { name: string } }) => t.function.name).sort()).toEqual(
      [...TODO_TOOLS, 'lab_fail', 'lab_hang', 'lab_slow', 'lab_whoami'].sort(),
    );
    expect(second!.body.messages.at(-2)).toMatchObject({ role: 'assistant', tool_calls: [{ function: { name: 'add_task' } }] });
    const result = second!.body.messages.at(-1);
    expect(result).toMatchObject({ role: 'tool' });
    expect(JSON.parse(result.content)).toMatchObject({ task: { title: 'Buy milk', completed: false } });
    const sent = JSON.stringify(requestsOf('[milk]').map((r) => r.body));
    expect(sent).not.toMatch(/eyJ[\w-]+\.[\w-]+\./);
    expect(sent).not.toContain(MCP_SECRET);
    expect(first!.headers.authorization).toBe('Bearer sk-provider-key');
  });

  it('every call carries a token for its own user only (sub, aud, iss, a 60 s life), and no token reaches the logs', async () => {
    script('[who]', (body, results) => {
      if (results === 0) return { toolCalls: [{ name: 'lab_whoami' }] };
      return { chunks: [`heard: ${toolResults(body)[0]!.content}`] };
    });
    const one = await tabsFor('who-one');
    const two = await tabsFor('who-two');
    const before = lab.claims.length;
    const [r1, r2] = await Promise.all([send(one.onA, 'who am I? [who]', 'who-1'), send(two.onB, 'and me? [who]', 'who-2')]);
    expect((await one.onB.replyEnd(r1.reply.id)).content).toBe(`heard: you are ${one.userId}`);
    expect((await two.onA.replyEnd(r2.reply.id)).content).toBe(`heard: you are ${two.userId}`);
    const calls = lab.calls.filter((c) => c.tool === 'lab_whoami');
    expect(calls.map((c) => c.sub).sort()).toEqual([one.userId, two.userId].sort());
    const now = Date.now() / 1000;
    for (const claims of lab.claims.slice(before)) {
      expect([one.userId, two.userId]).toContain(claims.sub);
      expect(claims).toMatchObject({ aud: 'lab', iss: 'chat-gateway' });
      expect(claims.exp - claims.iat).toBeLessThanOrEqual(60);
      expect(claims.exp - now).toBeLessThanOrEqual(60);
    }
    const logged = logs.lines.join('\n');
    for (const token of lab.tokens) expect(logged).not.toContain(token);
  });

  it("one user's reply cannot complete, delete or list another user's task: the todo server answers 'task not found' (and an empty list), and the model reads that", async () => {
    const owner = await tabsFor('owner');
    script('[owned]', (_b, results) =>
      results === 0 ? { toolCalls: [{ name: 'add_task', arguments: { title: 'Private plan' } }] } : { chunks: ['ok'] },
    );
    const own = await send(owner.onA, 'note my private plan [owned]', 'owned-1');
    await owner.onA.replyEnd(own.reply.id);
    const [task] = await tasksOf(owner.userId);
    expect(task).toMatchObject({ title: 'Private plan', completed: false });

    // The intruder's model names the owner's task id outright (two calls in one step), then lists; the last step
    // is for text only.
    script('[intrude]', (_b, results) =>
      results === 0
        ? {
            toolCalls: [
              { name: 'complete_task', arguments: { task_id: task!.id } },
              { name: 'delete_task', arguments: { task_id: task!.id } },
            ],
          }
        : results === 2
          ? { toolCalls: [{ name: 'list_tasks', arguments: {} }] }
          : { chunks: ['Nothing of yours by that id.'] },
    );
    const intruder = await tabsFor('intruder');
    const { reply } = await send(intruder.onB, `complete task ${task!.id} [intrude]`, 'intrude-1');
    const end = await intruder.onA.replyEnd(reply.id);
    expect(end).toMatchObject({ status: 'complete', content: 'Nothing of yours by that id.' });
    const calls = end.metadata!.toolCalls as ToolCallDto[];
    expect([...(end.metadata!.toolsUsed as string[])].slice(0, 2).sort()).toEqual(['complete_task', 'delete_task']);
    expect(end.metadata!.toolsUsed).toHaveLength(3);
    expect(calls.slice(0, 2).sort((a, b) => a.name.localeCompare(b.name))).toEqual([
      ended('complete_task', 'TOOL_ERROR'),
      ended('delete_task', 'TOOL_ERROR'),
    ]);
    expect(calls[2]).toEqual(ended('list_tasks'));
    const requests = requestsOf('[intrude]');
    expect(requests).toHaveLength(3);
    const refusals = toolResults(requests[1]!.body).map((r) => r.content);
    // An error result, as the AI SDK words it for the model.
    expect(refusals).toEqual(['Error: task not found', 'Error: task not found']);
    expect(JSON.parse(toolResults(requests[2]!.body).at(-1)!.content)).toEqual({ tasks: [], truncated: false });
    // The bound on steps: the last model call is asked for text only.
    expect(requests[2]!.body.tool_choice).toBe('none');
    expect(requests[1]!.body.tool_choice).toBe('auto');

    // The owner's task is untouched, and the intruder owns nothing.
    expect(await tasksOf(owner.userId)).toEqual([task]);
    expect(await tasksOf(intruder.userId)).toEqual([]);
  });
});

describe('tool calls that do not go well', () => {
  it('assistant:stop from the other node during a slow tool call stops the reply: the call is abandoned and its result never reaches the model; a tab opening mid-call saw it from history', async () => {
    script('[slow]', (_b, results) =>
      results === 0 ? { chunks: ['Working on it.'], toolCalls: [{ name: 'lab_slow', arguments: { label: 'x' } }] } : { chunks: ['never'] },
    );
    const { token, onA, onB } = await tabsFor('slow');
    const { reply } = await send(onA, 'do the slow thing [slow]', 'slow-1');
    const call = await lab.called('lab_slow');
    await onB.waitFor<ToolUpdate>('tool:updated', (u) => u.messageId === reply.id && u.call.status === 'running');

    // A tab that opens now gets the call as running from the stored reply.
    const late = await connectTab(B.url, token, { name: 'slow@late' });
    const seen = await eventually(async () => {
      const page = await late.ok('history:get', { conversationId: reply.conversationId });
      const stored = page.messages.find((m: MessageDto) => m.id === reply.id)!;
      return (stored.metadata?.toolCalls as ToolCallDto[] | undefined)?.length ? stored : undefined;
    }, 'the running call in the stored reply');
    expect(seen).toMatchObject({
      status: 'streaming',
      content: 'Working on it.',
      metadata: { toolCalls: [{ name: 'lab_slow', status: 'running', durationMs: null }] },
    });

    const { message: stopped } = await onB.ok('assistant:stop', { conversationId: reply.conversationId, messageId: reply.id });
    expect(stopped).toMatchObject({ status: 'stopped', content: 'Working on it.' });
    expect(stopped.metadata).toMatchObject({ toolsUsed: ['lab_slow'], toolCalls: [ended('lab_slow', 'STOPPED')] });
    for (const tab of [onA, onB, late]) {
      expect(await tab.replyEnd(reply.id)).toEqual(stopped);
      expect(toolEvents(tab, reply.id).at(-1)).toMatchObject({ status: 'failed', error: 'STOPPED' });
    }
    expect(lifeOf(onA, reply.id).slice(-2)).toEqual(['tool:lab_slow:failed', 'end:stopped']);
    // The MCP request was closed by the gateway, not answered; the model was never asked again.
    expect(await call.ended).toBe('closed');
    expect(requestsOf('[slow]')).toHaveLength(1);
  });

  it('a tool that answers with an error gives the model an error result to recover from', async () => {
    script('[fail]', (body, results) =>
      results === 0 ? { toolCalls: [{ name: 'lab_fail' }] } : { chunks: [`Sorry: ${toolResults(body)[0]!.content}`] },
    );
    const { onA, onB } = await tabsFor('fail');
    const { reply } = await send(onA, 'try the broken tool [fail]', 'fail-1');
    const end = await onB.replyEnd(reply.id);
    expect(end.status).toBe('complete');
    expect(end.content).toContain('the lab tool is broken today');
    expect(end.metadata).toMatchObject({ toolsUsed: ['lab_fail'], toolCalls: [ended('lab_fail', 'TOOL_ERROR')] });
    expect(toolEvents(onB, reply.id).map((c) => c.status)).toEqual(['running', 'failed']);
  });

  it('a tool that hangs past ASSISTANT_TOOL_TIMEOUT_MS is abandoned; the model is told it did not answer in time', async () => {
    script('[hang]', (body, results) =>
      results === 0 ? { toolCalls: [{ name: 'lab_hang' }] } : { chunks: [`Note: ${toolResults(body)[0]!.content}`] },
    );
    const { onA, onB } = await tabsFor('hang');
    const { reply } = await send(onB, 'wait forever [hang]', 'hang-1');
    const call = await lab.called('lab_hang');
    const end = await onA.replyEnd(reply.id);
    expect(end.status).toBe('complete');
    expect(end.content).toContain('did not answer in time');
    const [timedOut] = end.metadata!.toolCalls as ToolCallDto[];
    expect(timedOut).toMatchObject(ended('lab_hang', 'TOOL_TIMEOUT'));
    expect(timedOut!.durationMs).toBeGreaterThanOrEqual(1400);
    expect(await call.ended).toBe('closed');
  });

  it('a model that keeps calling tools stops at ASSISTANT_MAX_STEPS: failed, MAX_STEPS, and the calls of the last step are not run', async () => {
    script('[loop]', () => ({ toolCalls: [{ name: 'lab_whoami' }] }));
    const { userId, onA, onB } = await tabsFor('loop');
    const before = lab.calls.filter((c) => c.sub === userId).length;
    const { reply } = await send(onA, 'again and again [loop]', 'loop-1');
    const end = await onB.replyEnd(reply.id);
    expect(end).toMatchObject({ status: 'failed', metadata: { error: { code: 'MAX_STEPS', message: expect.any(String) } } });
    expect(end.metadata).toMatchObject({ toolsUsed: ['lab_whoami', 'lab_whoami'] });
    expect(requestsOf('[loop]')).toHaveLength(3);
    expect(requestsOf('[loop]')[2]!.body.tool_choice).toBe('none');
    expect(lab.calls.filter((c) => c.sub === userId).length - before).toBe(2);
  });

  it('a node killed during tool calls: its replies end INTERRUPTED on the survivors (or stopped, by a stop sent there), and no call is left shown as running', async () => {
    script('[killed]', () => ({ chunks: ['On it.'], toolCalls: [{ name: 'lab_slow' }] }));
    victim = await spawnNode({ ...cluster.env, MCP_SERVERS: `todo=${todo.url},lab=${lab.url}`, NODE_ID: 'victim', LOG_LEVEL: 'info' });
    const userId = cluster.user('killed');
    const token = cluster.tokenFor(userId);
    const onVictim = await connectTab(victim.url, token, { name: 'victim' });
    const onA = await connectTab(A.url, token, { name: 'survivor' });
    const swept = await send(onVictim, 'slow one [killed]', 'killed-1');
    const stoppedLater = await send(onVictim, 'slow two [killed]', 'killed-2');
    // Both calls running, and saved as running.
    for (const { reply } of [swept, stoppedLater]) {
      await eventually(async () => {
        const [row] = await cluster.db.query<{ metadata: { toolCalls?: ToolCallDto[] } }>('select metadata from messages where id = $1', [
          reply.id,
        ]);
        return row?.metadata.toolCalls?.[0]?.status === 'running' ? true : undefined;
      }, 'the running call to be saved');
    }
    await victim.kill('SIGKILL');

    const stop = await onA.ok('assistant:stop', { conversationId: stoppedLater.reply.conversationId, messageId: stoppedLater.reply.id });
    expect(stop.message).toMatchObject({
      status: 'stopped',
      metadata: { toolCalls: [{ name: 'lab_slow', status: 'failed', error: 'STOPPED' }] },
    });
    const end = await onA.replyEnd(swept.reply.id, 30_000);
    expect(end).toMatchObject({
      status: 'failed',
      content: 'On it.',
      metadata: {
        error: { code: 'INTERRUPTED', message: 'the reply was interrupted before it ended' },
        toolCalls: [{ name: 'lab_slow', status: 'failed', error: 'INTERRUPTED', durationMs: null }],
      },
    });
  });

  it('an MCP server that cannot be reached is left out: the reply goes on with the tools it has, or none', async () => {
    const lone = await cluster.addNode({ MCP_SERVERS: 'gone=http://127.0.0.1:9/mcp' }, { log: logs.log });
    script('[gone]', () => ({ chunks: ['fine without tools'] }));
    const userId = cluster.user('gone');
    const tab = await connectTab(lone.url, cluster.tokenFor(userId));
    const { reply } = await send(tab, 'anything [gone]', 'gone-1');
    expect(await tab.replyEnd(reply.id)).toMatchObject({ status: 'complete', content: 'fine without tools' });
    expect(requestsOf('[gone]')[0]!.body.tools).toBeUndefined();
    expect(logs.entries.some((e) => e.server === 'gone' && /could not list the tools/.test(e.msg))).toBe(true);
  });
});

describe('what the provider is given', () => {
  it('the system prompt, then only the last ASSISTANT_CONTEXT_MESSAGES messages before the reply', async () => {
    script('[ctx]', (body) => ({ chunks: [`re: ${lastUser(body)}`] }));
    const { userId, onA } = await tabsFor('ctx');
    const first = await send(onA, 'm1 [ctx]', 'ctx-1');
    await onA.replyEnd(first.reply.id);
    for (const i of [2, 3, 4]) {
      const next = await send(onA, `m${i}`, `ctx-${i}`, first.message.conversationId);
      await onA.replyEnd(next.reply.id);
    }
    // The fourth reply's request: the 4 messages before it, the first exchange and m2 left out.
    const last = sse.requests.at(-1)!.body;
    expect(last.messages).toEqual([
      { role: 'system', content: `You keep the todo list of ${userId}. Today is ${new Date().toISOString().slice(0, 10)}.` },
      { role: 'assistant', content: 're: m2' },
      { role: 'user', content: 'm3' },
      { role: 'assistant', content: 're: m3' },
      { role: 'user', content: 'm4' },
    ]);
  });
});
