// The example MCP server (examples/todo-mcp) as the gateway will meet it: a real process started the way
// `npm start` starts it, spoken to with the MCP SDK's own client over Streamable HTTP, a token minted per
// connection as the identity contract says. The same tool contract runs on PostgreSQL and on PGlite.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport, StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import jwt from 'jsonwebtoken';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';

const exampleDir = fileURLToPath(new URL('../../examples/todo-mcp', import.meta.url));
/** 48 bytes: above the 32-byte minimum the server enforces. */
const SECRET = 'todo-mcp-test-secret-0123456789abcdefghijklmnopq';
const TOOLS = ['add_task', 'complete_task', 'delete_task', 'list_tasks', 'update_task'];

interface Claims {
  sub?: string;
  aud?: string;
  iss?: string;
  /** Seconds from now; negative for an expired token. */
  expiresInS?: number;
  secret?: string;
  algorithm?: jwt.Algorithm;
}

/** A token as the gateway mints it for one call, unless a claim is overridden. */
function mint(sub: string, claims: Omit<Claims, 'sub'> = {}): string {
  const now = Math.floor(Date.now() / 1000);
  return jwt.sign(
    { sub, aud: claims.aud ?? 'todo', iss: claims.iss ?? 'chat-gateway', iat: now, exp: now + (claims.expiresInS ?? 60) },
    claims.secret ?? SECRET,
    { algorithm: claims.algorithm ?? 'HS256' },
  );
}

// ---------------------------------------------------------------------------------------------------------
// The server process

interface RunningServer {
  url: string;
  child: ChildProcess;
  /** SIGTERM, then the exit code (the server exits 0 after a graceful shutdown). */
  stop(): Promise<number | null>;
}

const children = new Set<ChildProcess>();

afterAll(() => {
  // A test that failed before stopping its server must not leave one behind.
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

/** `node src/main.ts` in the example's directory on vitest's own Node 24, exactly what `npm start` runs. */
function spawnServer(env: Record<string, string>, args: string[] = []): ChildProcess {
  const child = spawn(process.execPath, ['src/main.ts', ...args], {
    cwd: exampleDir,
    // Only what is given here: nothing of the shell's environment (a DATABASE_URL, say) leaks in.
    env: { PATH: process.env.PATH, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  return child;
}

function exitOf(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

/** Starts the server on a free port and waits for its `listening` log line. */
function startServer(env: Record<string, string>): Promise<RunningServer> {
  const child = spawnServer({ MCP_TOKEN_SECRET: SECRET, HOST: '127.0.0.1', PORT: '0', ...env });
  return new Promise((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    child.stdout!.on('data', (chunk) => {
      stdout += chunk;
      for (const line of stdout.split('\n')) {
        if (!line.startsWith('{')) continue;
        const entry = JSON.parse(line) as { msg?: string; port?: number };
        if (entry.msg === 'listening' && typeof entry.port === 'number') {
          resolve({
            url: `http://127.0.0.1:${entry.port}`,
            child,
            async stop() {
              const exited = exitOf(child);
              child.kill('SIGTERM');
              return exited;
            },
          });
        }
      }
    });
    void exitOf(child).then((code) => reject(new Error(`todo-mcp exited (${code}) before listening:\n${stdout}\n${stderr}`)));
  });
}

// ---------------------------------------------------------------------------------------------------------
// The MCP client

const clients: Client[] = [];

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
});

function transportFor(url: string, token: string | undefined) {
  return new StreamableHTTPClientTransport(new URL('/mcp', url), {
    requestInit: { headers: token === undefined ? {} : { Authorization: `Bearer ${token}` } },
  });
}

async function connect(url: string, token: string | undefined): Promise<Client> {
  const client = new Client({ name: 'todo-mcp-test', version: '0.0.0' });
  await client.connect(transportFor(url, token));
  clients.push(client);
  return client;
}

/** Connects as `userId` with a freshly minted token, as the gateway does for each tool call. */
function as(url: string, userId: string): Promise<Client> {
  return connect(url, mint(userId));
}

interface WireTask {
  id: number;
  title: string;
  description: string | null;
  completed: boolean;
  created_at: string;
  updated_at: string;
}

interface ToolResult {
  content: Array<{ type: string; text?: string }>;
  structuredContent?: Record<string, unknown>;
  isError?: boolean;
}

async function call(client: Client, name: string, args: Record<string, unknown> = {}): Promise<ToolResult> {
  const result = (await client.callTool({ name, arguments: args })) as ToolResult;
  if (!result.isError) {
    // The text repeats the structured content, for clients that hand only text to the model.
    expect(result.content).toEqual([{ type: 'text', text: JSON.stringify(result.structuredContent) }]);
  }
  return result;
}

async function taskOf(client: Client, name: string, args: Record<string, unknown>): Promise<WireTask> {
  const result = await call(client, name, args);
  expect(result.isError, JSON.stringify(result.content)).toBeFalsy();
  return (result.structuredContent as { task: WireTask }).task;
}

async function list(client: Client, status?: 'all' | 'pending' | 'completed'): Promise<WireTask[]> {
  const result = await call(client, 'list_tasks', status ? { status } : {});
  expect(result.isError, JSON.stringify(result.content)).toBeFalsy();
  expect(result.structuredContent).toMatchObject({ truncated: false });
  return (result.structuredContent as { tasks: WireTask[] }).tasks;
}

function expectToolError(result: ToolResult, text: string | RegExp): void {
  expect(result.isError).toBe(true);
  expect(result.structuredContent).toBeUndefined();
  expect(result.content).toHaveLength(1);
  expect(result.content[0]!.text).toMatch(text);
}

const notFound = (r: ToolResult) => expectToolError(r, /^task not found$/);

// ---------------------------------------------------------------------------------------------------------
// The tool contract, on each storage backend

interface Backend {
  url(): string;
  /** The task's row read straight from the database, where the test can reach it while the server runs. */
  row?(id: number): Promise<Record<string, unknown> | undefined>;
}

function toolContract(backend: Backend, prefix: string): void {
  const user = (name: string) => `${prefix}-${name}`;

  it('lists the five tools, with input schemas and descriptions for the model', async () => {
    const client = await as(backend.url(), user('lister'));
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name).sort()).toEqual(TOOLS);
    for (const tool of tools) {
      expect(tool.description?.length).toBeGreaterThan(20);
      expect(tool.inputSchema.type).toBe('object');
      expect(tool.outputSchema?.type).toBe('object');
      // No tool takes a user: it comes from the token alone.
      expect(Object.keys(tool.inputSchema.properties ?? {})).not.toContain('user_id');
    }
    const byName = Object.fromEntries(tools.map((t) => [t.name, t]));
    expect(byName.add_task!.inputSchema.required).toEqual(['title']);
    expect(Object.keys(byName.add_task!.inputSchema.properties!).sort()).toEqual(['description', 'title']);
    expect(byName.list_tasks!.inputSchema.required ?? []).toEqual([]);
    expect(byName.list_tasks!.annotations?.readOnlyHint).toBe(true);
    for (const name of ['complete_task', 'update_task', 'delete_task']) {
      expect(byName[name]!.inputSchema.required).toEqual(['task_id']);
    }
    expect(byName.delete_task!.annotations?.destructiveHint).toBe(true);
  });

  it('adds, lists, updates, completes and deletes a task', async () => {
    const client = await as(backend.url(), user('alice'));
    expect(await list(client)).toEqual([]);

    const milk = await taskOf(client, 'add_task', { title: '  Buy milk ', description: 'two litres' });
    expect(milk).toMatchObject({ title: 'Buy milk', description: 'two litres', completed: false });
    expect(milk.id).toBeGreaterThan(0);
    expect(new Date(milk.created_at).toISOString()).toBe(milk.created_at);
    const call_ = await taskOf(client, 'add_task', { title: 'Call mum' });
    expect(call_.description).toBeNull();

    expect((await list(client)).map((t) => t.title)).toEqual(['Buy milk', 'Call mum']);

    const renamed = await taskOf(client, 'update_task', { task_id: call_.id, title: 'Call mum tonight' });
    expect(renamed).toMatchObject({ id: call_.id, title: 'Call mum tonight', description: null, completed: false });
    const described = await taskOf(client, 'update_task', { task_id: call_.id, description: 'after 7' });
    expect(described).toMatchObject({ title: 'Call mum tonight', description: 'after 7' });
    const cleared = await taskOf(client, 'update_task', { task_id: call_.id, description: '' });
    expect(cleared.description).toBeNull();

    const done = await taskOf(client, 'complete_task', { task_id: milk.id });
    expect(done).toMatchObject({ id: milk.id, completed: true });
    expect(Date.parse(done.updated_at)).toBeGreaterThanOrEqual(Date.parse(milk.updated_at));
    // Completing again changes nothing.
    expect(await taskOf(client, 'complete_task', { task_id: milk.id })).toEqual(done);

    expect((await list(client, 'pending')).map((t) => t.id)).toEqual([call_.id]);
    expect((await list(client, 'completed')).map((t) => t.id)).toEqual([milk.id]);
    expect((await list(client, 'all')).map((t) => t.id)).toEqual([milk.id, call_.id]);

    const deleted = await taskOf(client, 'delete_task', { task_id: milk.id });
    expect(deleted).toEqual(done);
    expect((await list(client)).map((t) => t.id)).toEqual([call_.id]);
    notFound(await call(client, 'delete_task', { task_id: milk.id }));
    if (backend.row) expect(await backend.row(milk.id)).toBeUndefined();
  });

  it('answers "task not found" for an id that does not exist, and refuses invalid arguments', async () => {
    const client = await as(backend.url(), user('carol'));
    notFound(await call(client, 'complete_task', { task_id: 2_000_000_000 }));
    notFound(await call(client, 'update_task', { task_id: 2_000_000_000, title: 'x' }));
    notFound(await call(client, 'delete_task', { task_id: 2_000_000_000 }));

    expectToolError(await call(client, 'add_task', { title: '   ' }), /invalid arguments/i);
    expectToolError(await call(client, 'add_task', { title: 'x'.repeat(201) }), /invalid arguments/i);
    expectToolError(await call(client, 'complete_task', { task_id: 'one' }), /invalid arguments/i);
    expectToolError(await call(client, 'complete_task', { task_id: 3_000_000_000 }), /invalid arguments/i);
    expectToolError(await call(client, 'list_tasks', { status: 'done' }), /invalid arguments/i);
    const task = await taskOf(client, 'add_task', { title: 'Kept' });
    expectToolError(await call(client, 'update_task', { task_id: task.id }), /nothing to update/);
    expect(await list(client)).toEqual([task]);
  });

  it("never lets one user see, complete, update or delete another user's task", async () => {
    const alice = await as(backend.url(), user('owner'));
    const bob = await as(backend.url(), user('intruder'));
    const secret = await taskOf(alice, 'add_task', { title: 'Secret plan', description: 'for owner only' });
    const before = await backend.row?.(secret.id);

    expect(await list(bob)).toEqual([]);
    expect(await list(bob, 'pending')).toEqual([]);
    // Exactly the answer for an id that does not exist: Bob cannot even learn that the task exists.
    notFound(await call(bob, 'complete_task', { task_id: secret.id }));
    notFound(await call(bob, 'update_task', { task_id: secret.id, title: 'Hijacked', description: '' }));
    notFound(await call(bob, 'delete_task', { task_id: secret.id }));

    // The same user id with different letter case is another user.
    const ownerShouting = await as(backend.url(), user('owner').toUpperCase());
    notFound(await call(ownerShouting, 'delete_task', { task_id: secret.id }));

    expect(await list(alice)).toEqual([secret]);
    if (backend.row) {
      expect(before).toMatchObject({ user_id: user('owner'), title: 'Secret plan', description: 'for owner only', completed: false });
      expect(await backend.row(secret.id)).toEqual(before);
    }
    // And Bob's own tasks stay his.
    const mine = await taskOf(bob, 'add_task', { title: "Bob's" });
    expect(await list(bob)).toEqual([mine]);
    expect((await list(alice)).map((t) => t.id)).toEqual([secret.id]);
  });
}

// ---------------------------------------------------------------------------------------------------------

describe('todo-mcp on PostgreSQL', () => {
  let db: TestDatabase;
  let server: RunningServer;
  // A schema of its own, to prove DATABASE_SCHEMA is honoured; PGlite below uses the default (public).
  const schema = 'todo_mcp';

  beforeAll(async () => {
    db = await createTestDatabase();
    server = await startServer({ DATABASE_URL: db.url, DATABASE_SCHEMA: schema });
  });

  afterAll(async () => {
    if (server) expect(await server.stop()).toBe(0);
    await db?.drop();
  });

  it('creates its tasks table in the configured schema at start-up, and a second start changes nothing', async () => {
    const columns = await db.query<{ column_name: string }>(
      `select column_name from information_schema.columns where table_schema = $1 and table_name = 'tasks' order by ordinal_position`,
      [schema],
    );
    expect(columns.map((c) => c.column_name)).toEqual(['id', 'user_id', 'title', 'description', 'completed', 'created_at', 'updated_at']);
    // Two more instances starting at once on the same database: the schema step is idempotent and serialised.
    const [second, third] = await Promise.all([
      startServer({ DATABASE_URL: db.url, DATABASE_SCHEMA: schema }),
      startServer({ DATABASE_URL: db.url, DATABASE_SCHEMA: schema }),
    ]);
    expect(await Promise.all([second.stop(), third.stop()])).toEqual([0, 0]);
    const health = await fetch(`${server.url}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok' });
  });

  toolContract(
    {
      url: () => server.url,
      row: async (id) => (await db.query(`select * from ${schema}.tasks where id = $1`, [id]))[0],
    },
    'pg',
  );

  describe('identity', () => {
    /** What the SDK's client gets when connecting with this token (undefined: it connected). */
    async function refusal(token: string | undefined): Promise<unknown> {
      const client = new Client({ name: 'todo-mcp-test', version: '0.0.0' });
      try {
        await client.connect(transportFor(server.url, token));
      } catch (err) {
        return err;
      }
      clients.push(client);
      return undefined;
    }

    /** The raw HTTP answer to a tools/list request with this Authorization header. */
    async function post(authorization: string | undefined): Promise<Response> {
      return fetch(`${server.url}/mcp`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          ...(authorization === undefined ? {} : { authorization }),
        },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} }),
      });
    }

    const refused: Array<[string, () => string | undefined]> = [
      ['no token', () => undefined],
      ['a token signed with another secret', () => mint('victim', { secret: 'another-secret-of-enough-length-0123456789' })],
      ['a token for another audience', () => mint('victim', { aud: 'calendar' })],
      ['a token from another issuer', () => mint('victim', { iss: 'someone-else' })],
      ['an expired token', () => mint('victim', { expiresInS: -120 })],
      ['a token that lives for an hour', () => mint('victim', { expiresInS: 3600 })],
      ['an HS512 token with the right secret', () => mint('victim', { algorithm: 'HS512' })],
      ['a token without sub', () => jwt.sign({ aud: 'todo', iss: 'chat-gateway' }, SECRET, { algorithm: 'HS256', expiresIn: 60 })],
      ['a token without exp', () => jwt.sign({ sub: 'victim', aud: 'todo', iss: 'chat-gateway' }, SECRET, { algorithm: 'HS256' })],
      [
        'an unsigned token (alg none)',
        () => jwt.sign({ sub: 'victim', aud: 'todo', iss: 'chat-gateway' }, '', { algorithm: 'none', expiresIn: 60 }),
      ],
      ['a sub over 255 characters', () => mint('v'.repeat(256))],
    ];

    it.each(refused)('refuses %s with 401, to the SDK client and on the wire', async (_what, token) => {
      const t = token();
      const err = await refusal(t);
      expect(err).toBeInstanceOf(StreamableHTTPError);
      expect((err as StreamableHTTPError).code).toBe(401);

      const res = await post(t === undefined ? undefined : `Bearer ${t}`);
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer error="invalid_token"/);
      expect(await res.json()).toMatchObject({ error: 'invalid_token' });
    });

    it('says which rule an expired token broke, and never echoes the expected audience or issuer', async () => {
      const expired = await post(`Bearer ${mint('victim', { expiresInS: -120 })}`);
      expect(expired.headers.get('www-authenticate')).toContain('token expired');
      const wrongAudience = await post(`Bearer ${mint('victim', { aud: 'calendar' })}`);
      const body = await wrongAudience.text();
      expect(body).not.toContain('todo');
      expect(body).not.toContain('chat-gateway');
    });

    it('refuses a malformed Authorization header, and a Basic one', async () => {
      expect((await post('Bearer')).status).toBe(401);
      expect((await post(mint('victim'))).status).toBe(401);
      expect((await post(`Basic ${Buffer.from('victim:pw').toString('base64')}`)).status).toBe(401);
    });

    it('lets a valid token in; GET and DELETE on /mcp are 405 with a token and 401 without; /healthz needs none', async () => {
      const ok = await post(`Bearer ${mint('someone')}`);
      expect(ok.status).toBe(200);
      const answer = (await ok.json()) as { result: { tools: Array<{ name: string }> } };
      expect(answer.result.tools.map((t) => t.name).sort()).toEqual(TOOLS);

      for (const method of ['GET', 'DELETE']) {
        expect((await fetch(`${server.url}/mcp`, { method })).status).toBe(401);
        const res = await fetch(`${server.url}/mcp`, { method, headers: { authorization: `Bearer ${mint('someone')}` } });
        expect(res.status).toBe(405);
      }
      expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    });

    it('answers malformed JSON and an oversized body with JSON-RPC errors, not a page', async () => {
      const send = (body: string) =>
        fetch(`${server.url}/mcp`, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            accept: 'application/json, text/event-stream',
            authorization: `Bearer ${mint('someone')}`,
          },
          body,
        });
      const malformed = await send('{"jsonrpc":');
      expect(malformed.status).toBe(400);
      expect(await malformed.json()).toEqual({ jsonrpc: '2.0', error: { code: -32700, message: 'Parse error' }, id: null });
      const huge = {
        jsonrpc: '2.0',
        id: 1,
        method: 'tools/call',
        params: { name: 'add_task', arguments: { title: 'x', description: 'y'.repeat(70_000) } },
      };
      const tooLarge = await send(JSON.stringify(huge));
      expect(tooLarge.status).toBe(413);
      expect(await tooLarge.json()).toMatchObject({ error: { code: -32600 } });
    });
  });
});

describe('todo-mcp on PGlite (no DATABASE_URL)', () => {
  let dir: string;
  let server: RunningServer | undefined;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'todo-mcp-pglite-'));
    server = await startServer({ PGLITE_DIR: dir });
  });

  afterAll(async () => {
    if (server) await server.stop();
    await rm(dir, { recursive: true, force: true });
  });

  toolContract({ url: () => server!.url }, 'lite');

  it('keeps the tasks on disk across a restart', async () => {
    const before = await list(await as(server!.url, 'lite-alice'));
    expect(before.length).toBeGreaterThan(0);
    await Promise.all(clients.splice(0).map((c) => c.close()));
    expect(await server!.stop()).toBe(0);
    server = undefined;

    server = await startServer({ PGLITE_DIR: dir });
    expect(await list(await as(server.url, 'lite-alice'))).toEqual(before);
    expect(await list(await as(server.url, 'lite-intruder'))).toHaveLength(1);
  });
});

describe('todo-mcp start-up', () => {
  async function run(env: Record<string, string>, args: string[] = []) {
    const child = spawnServer(env, args);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    const code = await exitOf(child);
    return { code, stdout, stderr };
  }

  it('prints its usage for --help and exits 0', async () => {
    const { code, stdout } = await run({}, ['--help']);
    expect(code).toBe(0);
    expect(stdout).toContain('Usage:');
    for (const name of ['MCP_TOKEN_SECRET', 'MCP_AUDIENCE', 'PORT', 'HOST', 'DATABASE_URL', 'DATABASE_SCHEMA', 'PGLITE_DIR']) {
      expect(stdout).toContain(name);
    }
  });

  it('refuses to start without MCP_TOKEN_SECRET, or with one shorter than 32 bytes', async () => {
    const missing = await run({ PGLITE_DIR: '/nonexistent/never-opened' });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('MCP_TOKEN_SECRET: is required');
    const short = await run({ MCP_TOKEN_SECRET: 'x'.repeat(31), PGLITE_DIR: '/nonexistent/never-opened' });
    expect(short.code).toBe(2);
    expect(short.stderr).toContain('MCP_TOKEN_SECRET is 31 bytes; at least 32 are required');
  });

  it('refuses a DATABASE_SCHEMA that is not a plain identifier', async () => {
    const bad = await run({
      MCP_TOKEN_SECRET: SECRET,
      DATABASE_SCHEMA: 'x"; drop table tasks; --',
      PGLITE_DIR: '/nonexistent/never-opened',
    });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('DATABASE_SCHEMA');
  });
});
