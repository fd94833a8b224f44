// Several real gateway nodes in one test process (different ports) sharing one fresh PostgreSQL database and
// the machine's Redis, plus a node in a child process for the tests that must kill one for real (SIGKILL).
//
// Isolation in Redis: each test file's nodes use a REDIS_PREFIX of their own (testRedisPrefix()), so their
// channels and rate-limit keys never meet another file's, and server-side requests (a stop forwarded between
// nodes) reach only that file's nodes.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import jwt from 'jsonwebtoken';
import { loadConfig, type GatewayConfig } from '../../src/config.ts';
import { createGateway, type Gateway, type GatewayOptions } from '../../src/gateway.ts';
import { createTestDatabase, type TestDatabase } from './db.ts';

/** 48 bytes: above the 32-byte minimum loadConfig enforces. */
export const CLUSTER_SECRET = 'realtime-cluster-test-secret-0123456789abcdefghij';
export const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export type Env = Record<string, string | undefined>;

export interface ClusterNode {
  /** `http://127.0.0.1:<port>` */
  url: string;
  port: number;
  gateway: Gateway;
  config: GatewayConfig;
  close(): Promise<void>;
}

export interface Cluster {
  db: TestDatabase;
  nodes: ClusterNode[];
  /** The environment every node of this cluster was started from (for spawning more nodes alike). */
  env: Env;
  /** A fresh, unique user id (isolates rooms and rate limits from every other test in the shared Redis). */
  user(label?: string): string;
  /** A valid HS256 token for `sub`; `expiresInS` may be negative (already expired). */
  tokenFor(sub: string, expiresInS?: number): string;
  /** Starts one more in-process node on the same database and Redis. */
  addNode(env?: Env, options?: GatewayOptions): Promise<ClusterNode>;
  close(): Promise<void>;
}

export interface ClusterOptions {
  nodes?: number;
  /** Shared by every node (overrides the defaults below). */
  env?: Env;
  /** Per node, on top of env. */
  nodeEnv?: Env[];
  /** Per node createGateway options (assistantTiming, provider). */
  nodeOptions?: GatewayOptions[];
}

/** One Redis prefix per test process (one test file per process): channels and keys no other file shares. */
const REDIS_PREFIX = `test-${process.pid}-${randomBytes(3).toString('hex')}`;
export const testRedisPrefix = () => REDIS_PREFIX;

/** Defaults: Redis fan-out, silent logs, a fast echo assistant, a generous send rate, small pools. */
export function clusterEnv(overrides: Env = {}): Env {
  return {
    JWT_SECRET: CLUSTER_SECRET,
    REDIS_URL,
    REDIS_PREFIX,
    LOG_LEVEL: 'silent',
    HOST: '127.0.0.1',
    PORT: '0',
    ASSISTANT: 'echo',
    ASSISTANT_DELAY_MS: '1',
    SEND_RATE_LIMIT: '10000',
    // Many tabs from one address, and many reads and writes by one user: the limits have tests of their own.
    HANDSHAKE_RATE_LIMIT: '100000',
    READ_RATE_LIMIT: '100000',
    WRITE_RATE_LIMIT: '100000',
    SEND_RATE_WINDOW_S: '60',
    // Two nodes per file, two files at a time, other suites alongside: stay well under max_connections.
    DB_POOL_MAX: '6',
    SHUTDOWN_TIMEOUT_MS: '3000',
    ...overrides,
  };
}

export async function startNode(env: Env, options: GatewayOptions = {}): Promise<ClusterNode> {
  const config = loadConfig(env);
  const gateway = await createGateway(config, options);
  let port: number;
  try {
    port = await gateway.listen(0, '127.0.0.1');
  } catch (err) {
    await gateway.close();
    throw err;
  }
  return { url: `http://127.0.0.1:${port}`, port, gateway, config, close: () => gateway.close() };
}

export function signToken(sub: string, expiresInS = 3600, secret = CLUSTER_SECRET): string {
  const now = Math.floor(Date.now() / 1000);
  return jwt.sign({ sub, exp: now + expiresInS, iat: Math.min(now, now + expiresInS - 1) }, secret, { algorithm: 'HS256' });
}

export async function startCluster(o: ClusterOptions = {}): Promise<Cluster> {
  const db = await createTestDatabase();
  const tag = randomBytes(3).toString('hex');
  const env = clusterEnv({ DATABASE_URL: db.url, ...o.env });
  const nodes: ClusterNode[] = [];
  let counter = 0;
  const addNode = async (extra: Env = {}, options: GatewayOptions = {}) => {
    const node = await startNode({ ...env, NODE_ID: `rt-${tag}-${counter++}`, ...extra }, options);
    nodes.push(node);
    return node;
  };
  const cluster: Cluster = {
    db,
    nodes,
    env,
    user: (label = 'u') => `${label}-${randomBytes(5).toString('hex')}`,
    tokenFor: (sub, expiresInS) => signToken(sub, expiresInS),
    addNode,
    async close() {
      await Promise.allSettled(nodes.map((n) => n.close()));
      await db.drop();
    },
  };
  try {
    // The first node migrates the fresh database; the others then find nothing pending.
    const count = o.nodes ?? 2;
    for (let i = 0; i < count; i++) await addNode(o.nodeEnv?.[i], o.nodeOptions?.[i]);
  } catch (err) {
    await cluster.close().catch(() => undefined);
    throw err;
  }
  return cluster;
}

export interface ChildNode {
  url: string;
  port: number;
  process: ChildProcess;
  /** Every JSON log line the child printed. */
  logs: Record<string, unknown>[];
  /** Resolves once the process has exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/**
 * Runs `node src/server.ts` in a child process (the same Node 24 as the tests) with exactly `env`, and resolves
 * once its 'listening' log line gives the port. LOG_LEVEL must let info lines through. PORT defaults to 0 (a free
 * port); a node restarted on the port it had keeps its address, as a replaced instance behind a balancer does.
 */
export async function spawnNode(env: Env, timeoutMs = 30_000): Promise<ChildNode> {
  const cleanEnv = Object.fromEntries(
    Object.entries({ PATH: process.env.PATH, LOG_LEVEL: 'info', REDIS_PREFIX, PORT: '0', HOST: '127.0.0.1', ...env }).filter(
      ([, v]) => v !== undefined,
    ),
  ) as NodeJS.ProcessEnv;
  const child = spawn(process.execPath, ['src/server.ts'], { cwd: ROOT, env: cleanEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  const logs: Record<string, unknown>[] = [];
  let stderr = '';
  child.stderr!.on('data', (b: Buffer) => {
    stderr = (stderr + b.toString()).slice(-4000);
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`child node did not listen in time; stderr: ${stderr}`)), timeoutMs);
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`child node exited (${code ?? signal}) before listening; stderr: ${stderr}`));
    });
    createInterface({ input: child.stdout! }).on('line', (line) => {
      let entry: Record<string, unknown>;
      try {
        entry = JSON.parse(line);
      } catch {
        return;
      }
      logs.push(entry);
      if (entry.msg === 'listening' && typeof entry.port === 'number') {
        clearTimeout(timer);
        resolve(entry.port);
      }
    });
  });
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    process: child,
    logs,
    exited,
    async kill(signal = 'SIGKILL') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
}

/** Re-evaluates `check` until it gives a value (polling the database or a server's state, never a timed assertion). */
export async function eventually<T>(
  check: () => Promise<T | undefined> | T | undefined,
  what: string,
  timeoutMs = 20_000,
  everyMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
