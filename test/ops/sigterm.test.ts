// The real entry point as production runs it (`node src/server.ts`, no npm in between): it listens, and on
// SIGTERM stops accepting, lets in-flight requests commit and answer, and exits 0, losing nothing acknowledged.
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { api, createConversation } from '../helpers/api.ts';
import { CHECK_APP_NAME, createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { TEST_SECRET } from '../helpers/gateway.ts';
import { closeAllTabs, connectTab } from '../helpers/sockets.ts';
import { signToken } from '../../src/auth/jwt.ts';
import type { MessageDto } from '../../src/shared/events.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
let db: TestDatabase;
const children = new Set<ChildProcess>();
/** Connections holding row locks for a test; rolled back after it. */
const lockers = new Set<pg.Client>();

beforeAll(async () => {
  db = await createTestDatabase();
});

afterEach(async () => {
  // A test that failed before its child exited must not leave a server behind.
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  children.clear();
  closeAllTabs();
  for (const locker of lockers) await locker.end().catch(() => {});
  lockers.clear();
});

afterAll(async () => {
  await db?.drop();
});

interface Server {
  url: string;
  child: ChildProcess;
  logs: Array<Record<string, unknown>>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** `node src/server.ts` on Node 24 (vitest's own binary), with the test database and quiet defaults. */
function spawnServer(overrides: Record<string, string> = {}): ChildProcess {
  const child = spawn(process.execPath, ['src/server.ts'], {
    cwd: root,
    env: {
      PATH: process.env.PATH,
      DATABASE_URL: db.url,
      PORT: '0',
      HOST: '127.0.0.1',
      JWT_SECRET: TEST_SECRET,
      ASSISTANT: 'none',
      LOG_LEVEL: 'info',
      NODE_ID: 'sigterm-node',
      SEND_RATE_LIMIT: '100000',
      ...overrides,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  return child;
}

/** Spawns the server and waits for its 'listening' log line. */
function startServer(overrides: Record<string, string> = {}): Promise<Server> {
  const child = spawnServer(overrides);
  const logs: Array<Record<string, unknown>> = [];
  let stderr = '';
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  return new Promise((resolve, reject) => {
    let buffered = '';
    child.stderr!.on('data', (d) => (stderr += d));
    child.stdout!.on('data', (chunk) => {
      buffered += chunk;
      for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        let entry: Record<string, unknown>;
        try {
          entry = JSON.parse(line);
        } catch {
          continue; // not every line on stdout is ours (the migrator prints its own)
        }
        logs.push(entry);
        if (entry.msg === 'listening' && typeof entry.port === 'number') {
          resolve({ url: `http://127.0.0.1:${entry.port}`, child, logs, exited });
        }
      }
    });
    void exited.then(({ code, signal }) => reject(new Error(`server exited (${code ?? signal}) before listening:\n${stderr}`)));
  });
}

const SHUTTING_DOWN = 'shutting down: no new connections, finishing in-flight work';

function waitForLog(server: Server, msg: string): Promise<void> {
  return vi.waitFor(() => expect(server.logs.map((l) => l.msg)).toContain(msg), { timeout: 20_000, interval: 20 });
}

/** Locks a conversation's row from a connection of the test's own, as a long transaction elsewhere would. */
async function lockConversation(id: string): Promise<{ release(): Promise<void> }> {
  const client = new pg.Client({ connectionString: db.url, application_name: CHECK_APP_NAME });
  await client.connect();
  lockers.add(client);
  await client.query('begin');
  await client.query('select 1 from conversations where id = $1 for update', [id]);
  return { release: async () => void (await client.query('commit')) };
}

/** How many of the server's database connections wait for a lock. */
async function waitingForLocks(): Promise<number> {
  const [row] = await db.query<{ n: number }>(
    "select count(*)::int as n from pg_stat_activity where datname = $1 and application_name <> $2 and wait_event_type = 'Lock'",
    [db.name, CHECK_APP_NAME],
  );
  return row!.n;
}

/**
 * One HTTP request on node:http: on a connection of its own (no agent), or on the agent's kept-alive one. A
 * connection refused rejects with the socket error and its code (ECONNREFUSED).
 */
function rawRequest(
  baseUrl: string,
  method: string,
  path: string,
  token?: string,
  body?: unknown,
  agent: http.Agent | false = false,
): Promise<{ status: number; body: Record<string, unknown> | undefined }> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request(new URL(path, baseUrl), {
      method,
      agent,
      headers: {
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...(payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {}),
      },
    });
    req.on('error', reject);
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : undefined }));
      res.on('error', reject);
    });
    req.end(payload);
  });
}

describe('node src/server.ts', () => {
  it('listens on the port it logs, and exits 0 on SIGTERM', async () => {
    const server = await startServer();
    expect((await api(server.url).get('/healthz')).status).toBe(200);
    const token = signToken(TEST_SECRET, 'sigterm-user');
    await createConversation(api(server.url, token), 'before shutdown');

    server.child.kill('SIGTERM');
    const { code, signal } = await server.exited;
    expect({ code, signal }).toEqual({ code: 0, signal: null });
    expect(server.logs.map((l) => l.msg)).toContain('shut down');
    // Nothing listens any more.
    await expect(fetch(`${server.url}/healthz`)).rejects.toThrow();
  });

  it('answers every request in flight at SIGTERM, over HTTP and over sockets: each commits, is acknowledged, and is stored once', {
    timeout: 60_000,
  }, async () => {
    const n = 8;
    const m = 6;
    // Each send its own batch on its own connection, and a write bound far off: the sends wait on the lock below
    // for as long as the test holds it, and each one waiting shows in pg_stat_activity.
    const server = await startServer({
      APPEND_CONCURRENCY: String(n + m + 2),
      DB_POOL_MAX: String(n + m + 4),
      WRITE_TIMEOUT_MS: '30000',
      SHUTDOWN_TIMEOUT_MS: '30000',
    });
    const token = signToken(TEST_SECRET, 'inflight-user');
    const client = api(server.url, token);
    const c = await createConversation(client, 'in flight');
    const tabs = [await connectTab(server.url, token), await connectTab(server.url, token)];
    const lock = await lockConversation(c.id);

    const sends = Array.from({ length: n }, (_, i) =>
      client
        .post(`/api/conversations/${c.id}/messages`, { content: `m${i}`, clientMessageId: `inflight-${i}` })
        .catch((err: unknown) => err as Error),
    );
    const tabSends = Array.from({ length: m }, (_, i) =>
      tabs[i % 2]!.request('message:send', { conversationId: c.id, content: `t${i}`, clientMessageId: `inflight-tab-${i}` }),
    );
    // Every request has reached the server and is mid-way: each holds a database connection waiting for the lock.
    await vi.waitFor(async () => expect(await waitingForLocks()).toBe(n + m), { timeout: 20_000, interval: 25 });
    server.child.kill('SIGTERM');
    await waitForLog(server, SHUTTING_DOWN);
    // A request made now finds nothing listening: refused before it is sent, so nothing of it can be stored.
    const late = await rawRequest(server.url, 'POST', `/api/conversations/${c.id}/messages`, token, {
      content: 'late',
      clientMessageId: 'inflight-late',
    }).catch((err: unknown) => err as Error & { code?: string });
    expect(late).toBeInstanceOf(Error);
    expect((late as Error & { code?: string }).code).toBe('ECONNREFUSED');
    await lock.release();

    const results = await Promise.all(sends);
    const acks = await Promise.all(tabSends);
    const { code, signal } = await server.exited;
    expect({ code, signal }).toEqual({ code: 0, signal: null });
    // Every request counted: each one answered, and answered with its message. An answer cut by the shutdown
    // (a socket closed before its ack, a response never written) fails here.
    expect(results.map((r) => (r instanceof Error ? `${r.message}: ${String((r as { cause?: unknown }).cause)}` : r.status))).toEqual(
      Array.from({ length: n }, () => 201),
    );
    expect(acks.map((a) => (a.ok ? 'ok' : a.error.code))).toEqual(Array.from({ length: m }, () => 'ok'));
    const rows = await db.query<{ id: string; seq: number; client_message_id: string }>(
      'select id, seq::int as seq, client_message_id from messages where conversation_id = $1 order by seq',
      [c.id],
    );
    // Stored once each, with no gap, the late one not at all; each acknowledged message is the stored one.
    const expected = [...Array.from({ length: n }, (_, i) => `inflight-${i}`), ...Array.from({ length: m }, (_, i) => `inflight-tab-${i}`)];
    expect(rows.map((r) => r.seq)).toEqual(Array.from({ length: n + m }, (_, i) => i + 1));
    expect(rows.map((r) => r.client_message_id).sort()).toEqual(expected.sort());
    const stored = new Map(rows.map((r) => [r.id, r]));
    const acknowledged = [
      ...(results as Array<{ body: { message: MessageDto } }>).map((r) => r.body.message),
      ...acks.map((a) => (a as { data: { message: MessageDto } }).data.message),
    ];
    for (const message of acknowledged) {
      expect(stored.get(message.id)).toMatchObject({ seq: message.seq, client_message_id: message.clientMessageId });
    }
  });

  it('while closing: readiness answers 503 "closing", a tab\'s message:send is refused UNAVAILABLE, work in flight still ends', {
    timeout: 60_000,
  }, async () => {
    const server = await startServer({ APPEND_CONCURRENCY: '4', WRITE_TIMEOUT_MS: '30000', SHUTDOWN_TIMEOUT_MS: '30000' });
    const token = signToken(TEST_SECRET, 'closing-user');
    const client = api(server.url, token);
    const first = await createConversation(client, 'first');
    const held = await createConversation(client, 'held');
    const tab = await connectTab(server.url, token);
    const lockFirst = await lockConversation(first.id);
    const lockHeld = await lockConversation(held.id);

    // One connection kept alive: after its request is answered, the next one goes on it while the node closes.
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const toFirst = rawRequest(
        server.url,
        'POST',
        `/api/conversations/${first.id}/messages`,
        token,
        { content: 'first', clientMessageId: 'closing-1' },
        agent,
      );
      // A second request in flight keeps the node draining after the first is answered.
      const toHeld = client.post(`/api/conversations/${held.id}/messages`, { content: 'held', clientMessageId: 'closing-2' });
      await vi.waitFor(async () => expect(await waitingForLocks()).toBe(2), { timeout: 20_000, interval: 25 });
      server.child.kill('SIGTERM');
      await waitForLog(server, SHUTTING_DOWN);

      // A tab still connected is told to send elsewhere, and nothing of that send is stored.
      const refused = await tab.request('message:send', {
        conversationId: first.id,
        content: 'while closing',
        clientMessageId: 'closing-tab',
      });
      expect(refused.ok ? 'sent' : refused.error.code).toBe('UNAVAILABLE');

      await lockFirst.release();
      expect((await toFirst).status).toBe(201);
      const ready = await rawRequest(server.url, 'GET', '/readyz', undefined, undefined, agent);
      expect({ status: ready.status, body: ready.body?.status }).toEqual({ status: 503, body: 'closing' });

      await lockHeld.release();
      expect((await toHeld).status).toBe(201);
      expect(await server.exited).toEqual({ code: 0, signal: null });
      const rows = await db.query<{ client_message_id: string }>(
        "select client_message_id from messages where client_message_id like 'closing-%' order by client_message_id",
      );
      expect(rows.map((r) => r.client_message_id)).toEqual(['closing-1', 'closing-2']);
    } finally {
      agent.destroy();
    }
  });

  it('ends a reply still streaming at the shutdown bound as failed INTERRUPTED, keeping the text it had', { timeout: 60_000 }, async () => {
    // A reply of 300 words at 100 ms a word outlasts a 3-second shutdown bound by far.
    const server = await startServer({ ASSISTANT: 'echo', ASSISTANT_DELAY_MS: '100', SHUTDOWN_TIMEOUT_MS: '3000' });
    const token = signToken(TEST_SECRET, 'reply-user');
    const tab = await connectTab(server.url, token);
    const words = Array.from({ length: 300 }, (_, i) => `w${i}`).join(' ');
    const sent = await tab.ok('message:send', { content: words, clientMessageId: 'long-reply' });
    // Some of the reply has streamed.
    await tab.waitForCount('message:delta', 3, (p: { conversationId?: string }) => p.conversationId === sent.conversation.id);
    server.child.kill('SIGTERM');
    expect(await server.exited).toEqual({ code: 0, signal: null });

    const [reply] = await db.query<{ status: string; content: string; metadata: { error?: { code?: string } } }>(
      "select status, content, metadata from messages where conversation_id = $1 and role = 'assistant'",
      [sent.conversation.id],
    );
    expect(reply).toMatchObject({ status: 'failed', metadata: { error: { code: 'INTERRUPTED' } } });
    const full = `Echo: ${words}`;
    // The text it had, cut at a word: more than nothing, less than the whole reply.
    expect(reply!.content.length).toBeGreaterThan('Echo: '.length);
    expect(reply!.content.length).toBeLessThan(full.length);
    expect(full.startsWith(reply!.content)).toBe(true);
  });

  it('that cannot start (its database does not exist) says why in one log line and exits 1', async () => {
    const child = spawnServer({ DATABASE_URL: db.url.replace(/\/[^/]+$/, '/no_such_database_here') });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    expect(code).toBe(1);
    expect(stderr).toBe('');
    const fatal = stdout
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as { level: number; msg: string })
      .find((entry) => entry.level === 60);
    expect(fatal?.msg).toMatch(/^could not start: .*no_such_database_here.*does not exist/);
  });
});
