// A cluster for fault drills: 2 or 3 real gateway processes (`node src/server.ts`), each reaching PostgreSQL and
// Redis through proxies of its own (tcp-proxy.ts), so that a fault hits one node, or all of them when a drill acts
// on every node's proxy, while the machine's shared servers are never touched. One fresh database and one Redis
// prefix per cluster; short bounds through the environment so that every recovery fits in a test.
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { ADMIN_URL, createTestDatabase, type TestDatabase } from './db.ts';
import { CLUSTER_SECRET, REDIS_URL, signToken, spawnNode, testRedisPrefix, type ChildNode, type Env } from './cluster.ts';
import { startTcpProxy, type TcpProxy } from './tcp-proxy.ts';

/**
 * The bounds a drill runs with: short, so that each recovery takes seconds, and in the same proportions as the
 * defaults (the sweeper's staleness above the save interval, the write bound above a normal commit).
 */
export const FAULT_BOUNDS = {
  REPLY_STALE_MS: 3000,
  WRITE_TIMEOUT_MS: 1500,
  SYNC_SPREAD_MS: 300,
  SHUTDOWN_TIMEOUT_MS: 3000,
  REDIS_COMMAND_TIMEOUT_MS: 500,
} as const;

/** Echo replies paced at 50 ms a word: a reply of n words streams for about n × 50 ms. */
export const ECHO_DELAY_MS = 50;

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** From the signal to the exit. */
  ms: number;
}

export interface FaultNode {
  readonly index: number;
  readonly name: string;
  /** The port it listens on; a restarted node listens on the same one. */
  readonly port: number;
  readonly url: string;
  /** This node's way to PostgreSQL, and to Redis. */
  readonly pg: TcpProxy;
  readonly redis: TcpProxy;
  /** The running process; undefined while the node is down. */
  readonly child: ChildNode | undefined;
  readonly pid: number | undefined;
  /** Every log line of every process this node has run, oldest first. */
  logs(): Record<string, unknown>[];
  /** Sends `signal` and resolves once the process has exited. */
  stop(signal: NodeJS.Signals): Promise<ExitInfo>;
  /** Starts the node again (same port, same proxies), as an orchestrator replaces an instance. */
  start(): Promise<void>;
  readyz(): Promise<{ status: number; body: { status?: string; checks?: Record<string, string> } }>;
}

export interface FaultCluster {
  db: TestDatabase;
  nodes: FaultNode[];
  /** The environment shared by every node. */
  env: Env;
  /** A fresh user id (rooms and rate limits of its own). */
  user(label?: string): string;
  tokenFor(userId: string): string;
  /** Every node's proxy of one kind: a fault on all of them is a fault of the dependency itself. */
  proxies(kind: 'pg' | 'redis'): TcpProxy[];
  /** Warnings and errors logged by the nodes since `sinceMs` (epoch ms), for failure messages and reports. */
  warnings(sinceMs?: number): string[];
  close(): Promise<void>;
}

export interface FaultClusterOptions {
  nodes?: number;
  /** On top of the defaults, for every node. */
  env?: Env;
}

const targetOf = (url: string, defaultPort: number) => {
  const u = new URL(url);
  return { host: u.hostname, port: Number(u.port || defaultPort) };
};

export async function startFaultCluster(o: FaultClusterOptions = {}): Promise<FaultCluster> {
  const db = await createTestDatabase();
  const tag = randomBytes(3).toString('hex');
  const env: Env = {
    JWT_SECRET: CLUSTER_SECRET,
    REDIS_PREFIX: testRedisPrefix(),
    // Info lines carry the 'listening' line (and the port) that spawnNode waits for.
    LOG_LEVEL: 'info',
    ASSISTANT: 'echo',
    ASSISTANT_DELAY_MS: String(ECHO_DELAY_MS),
    SEND_RATE_LIMIT: '100000',
    // Many tabs from one address, and many reads and writes by one user: the limits have tests of their own.
    HANDSHAKE_RATE_LIMIT: '100000',
    READ_RATE_LIMIT: '100000',
    WRITE_RATE_LIMIT: '100000',
    SEND_RATE_WINDOW_S: '60',
    // Three nodes per file, two files at a time, on a PostgreSQL other work shares.
    DB_POOL_MAX: '4',
    // The reconnect storm puts many tabs of one user on one node.
    MAX_SOCKETS_PER_USER: '50',
    ...Object.fromEntries(Object.entries(FAULT_BOUNDS).map(([k, v]) => [k, String(v)])),
    ...o.env,
  };
  const nodes: FaultNode[] = [];
  const cluster: FaultCluster = {
    db,
    nodes,
    env,
    user: (label = 'u') => `${label}-${randomBytes(5).toString('hex')}`,
    tokenFor: (userId) => signToken(userId, 4 * 3600),
    proxies: (kind) => nodes.map((n) => n[kind]),
    warnings(sinceMs = 0) {
      return nodes.flatMap((n) =>
        n
          .logs()
          .filter((l) => Number(l.level) >= 40 && Number(l.time ?? 0) >= sinceMs)
          .map((l) => `${n.name}: ${l.msg}${l.err ? ` (${typeof l.err === 'object' ? JSON.stringify(l.err) : l.err})` : ''}`),
      );
    },
    async close() {
      await Promise.allSettled(nodes.map((n) => (n.child ? n.stop('SIGKILL') : undefined)));
      await Promise.allSettled(nodes.flatMap((n) => [n.pg.close(), n.redis.close()]));
      await db.drop();
    },
  };
  try {
    // One after another: the first migrates the fresh database, and two cores are better spent one start at a time.
    for (let i = 0; i < (o.nodes ?? 3); i++) nodes.push(await startFaultNode(i, `fault-${tag}-${i}`, db, env));
  } catch (err) {
    await cluster.close().catch(() => undefined);
    throw err;
  }
  return cluster;
}

async function startFaultNode(index: number, name: string, db: TestDatabase, env: Env): Promise<FaultNode> {
  const pg = await startTcpProxy(targetOf(ADMIN_URL, 5432));
  const redis = await startTcpProxy(targetOf(REDIS_URL, 6379));
  const nodeEnv = { ...env, NODE_ID: name, DATABASE_URL: pg.wrap(db.url), REDIS_URL: redis.wrap(REDIS_URL) };
  const history: Record<string, unknown>[][] = [];
  let child: ChildNode | undefined = await spawnNode(nodeEnv);
  history.push(child.logs);
  const port = child.port;

  return {
    index,
    name,
    port,
    url: `http://127.0.0.1:${port}`,
    pg,
    redis,
    get child() {
      return child;
    },
    get pid() {
      return child?.process.pid;
    },
    logs: () => history.flat(),
    async stop(signal) {
      const running = child;
      if (!running) throw new Error(`${name} is not running`);
      const startedAt = performance.now();
      running.process.kill(signal);
      const { code, signal: by } = await running.exited;
      child = undefined;
      return { code, signal: by, ms: Math.round(performance.now() - startedAt) };
    },
    async start() {
      if (child) throw new Error(`${name} is already running`);
      // The exit freed the port; should anything still hold it for a moment (the start fails), try again shortly.
      for (let attempt = 1; ; attempt++) {
        try {
          child = await spawnNode({ ...nodeEnv, PORT: String(port) });
          break;
        } catch (err) {
          if (attempt >= 3) throw err;
          await sleep(250);
        }
      }
      history.push(child.logs);
    },
    async readyz() {
      const res = await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(5000) });
      return { status: res.status, body: (await res.json()) as { status?: string; checks?: Record<string, string> } };
    },
  };
}
