// The real entry point as production runs it (`node src/server.ts`, no npm in between): it listens, and on
// SIGTERM stops accepting, lets in-flight requests commit and answer, and exits 0, losing nothing acknowledged.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { api, createConversation } from '../helpers/api.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { TEST_SECRET } from '../helpers/gateway.ts';
import { signToken } from '../../src/auth/jwt.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
let db: TestDatabase;
const children = new Set<ChildProcess>();

beforeAll(async () => {
  db = await createTestDatabase();
});

afterEach(() => {
  // A test that failed before its child exited must not leave a server behind.
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  children.clear();
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
function startServer(): Promise<Server> {
  const child = spawnServer();
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

  it('answers requests already in flight at SIGTERM and loses none that it acknowledged', async () => {
    const server = await startServer();
    const token = signToken(TEST_SECRET, 'inflight-user');
    const client = api(server.url, token);
    const c = await createConversation(client, 'in flight');

    let signalled = false;
    const sends = Array.from({ length: 40 }, (_, i) =>
      client.post(`/api/conversations/${c.id}/messages`, { content: `m${i}`, clientMessageId: `inflight-${i}` }).then(
        (res) => {
          // SIGTERM as soon as the first answer arrives: the others are mid-way.
          if (!signalled) {
            signalled = true;
            server.child.kill('SIGTERM');
          }
          return res;
        },
        (err: unknown) => err as Error,
      ),
    );
    const results = await Promise.all(sends);
    const { code, signal } = await server.exited;
    expect({ code, signal }).toEqual({ code: 0, signal: null });

    const acked = results.flatMap((r) => (r instanceof Error ? [] : [r]));
    // Whatever was answered was answered properly: 201 with the message, or 503 while closing.
    for (const r of acked) expect([201, 503], r.text).toContain(r.status);
    const committed = acked.filter((r) => r.status === 201).map((r) => r.body.message);
    expect(committed.length).toBeGreaterThan(0);

    const rows = await db.query<{ id: string; seq: number; client_message_id: string }>(
      'select id, seq::int as seq, client_message_id from messages where conversation_id = $1 order by seq',
      [c.id],
    );
    const stored = new Map(rows.map((r) => [r.id, r]));
    for (const m of committed)
      expect(stored.get(m.id), `acked message ${m.seq} lost`).toMatchObject({ seq: m.seq, client_message_id: m.clientMessageId });
    // And the seq stayed gap-free through the shutdown.
    expect(rows.map((r) => r.seq)).toEqual(rows.map((_, i) => i + 1));
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
