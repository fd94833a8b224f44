// A real Redis Cluster on this machine for one test file: Debian's redis-server, three masters with a replica
// each, on free loopback ports, in a temporary directory, created with `redis-cli --cluster create`. Nodes time
// out after one second, so that killing a master makes its replica take over within a test. Every server is
// started as a child process of the test and stopped by its pid.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { eventually } from './cluster.ts';

const run = promisify(execFile);

export interface ClusterServer {
  port: number;
  process: ChildProcess;
  /** Resolves once the process has exited. */
  exited: Promise<void>;
}

export interface LocalRedisCluster {
  servers: ClusterServer[];
  /** `redis+cluster://127.0.0.1:<port>,…`: every server, as REDIS_URL. */
  url: string;
  /** The port of the master serving `slot` now, as the servers still running see it. */
  masterOf(slot: number): Promise<number>;
  /** The slot of a key or channel. */
  slotOf(key: string): Promise<number>;
  /** A command on the server at `port`. */
  call(port: number, ...args: string[]): Promise<unknown>;
  /** SIGKILL of the server at `port`; resolves once it has exited. */
  kill(port: number): Promise<void>;
  stop(): Promise<void>;
}

/** A port free on 127.0.0.1 whose cluster bus port (+10000) is free too. */
async function freePortPair(taken: Set<number>): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = await listenOnce(0);
    if (port + 10_000 > 65_535 || taken.has(port)) continue;
    try {
      await listenOnce(port + 10_000);
      taken.add(port);
      return port;
    } catch {
      // the bus port is in use: another try
    }
  }
  throw new Error('no free pair of ports for a Redis Cluster node');
}

function listenOnce(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      const bound = (server.address() as { port: number }).port;
      server.close(() => resolve(bound));
    });
  });
}

/** `eventually`, with a check that fails (a server not up yet, a cluster not formed) counting as not yet. */
export function untilOk<T>(check: () => Promise<T | undefined>, what: string, timeoutMs = 30_000): Promise<T> {
  return eventually(() => check().catch(() => undefined), what, timeoutMs, 100);
}

export async function startRedisCluster(o: { masters?: number; replicas?: number } = {}): Promise<LocalRedisCluster> {
  const masters = o.masters ?? 3;
  const replicas = o.replicas ?? 1;
  const dir = mkdtempSync(join(tmpdir(), 'redis-cluster-'));
  const taken = new Set<number>();
  const servers: ClusterServer[] = [];
  const clients = new Map<number, Redis>();
  const client = (port: number) => {
    let c = clients.get(port);
    if (!c) {
      c = new Redis({ host: '127.0.0.1', port, maxRetriesPerRequest: 0, retryStrategy: () => 100 });
      c.on('error', () => undefined);
      clients.set(port, c);
    }
    return c;
  };
  const call = (port: number, ...args: string[]) => client(port).call(args[0]!, ...args.slice(1));

  const stop = async () => {
    for (const c of clients.values()) c.disconnect();
    for (const s of servers) if (s.process.exitCode === null && s.process.signalCode === null) s.process.kill('SIGKILL');
    await Promise.all(servers.map((s) => s.exited));
    rmSync(dir, { recursive: true, force: true });
  };

  try {
    for (let i = 0; i < masters * (1 + replicas); i++) {
      const port = await freePortPair(taken);
      const child = spawn(
        process.env.REDIS_SERVER_PATH ?? 'redis-server',
        [
          '--port',
          String(port),
          '--bind',
          '127.0.0.1',
          '--dir',
          dir,
          '--cluster-enabled',
          'yes',
          '--cluster-config-file',
          `nodes-${port}.conf`,
          '--cluster-node-timeout',
          '1000',
          // A replica takes over however long it was cut from its master; the other masters' slots serve on meanwhile.
          '--cluster-replica-validity-factor',
          '0',
          '--cluster-require-full-coverage',
          'no',
          '--save',
          '',
          '--appendonly',
          'no',
        ],
        { stdio: 'ignore' },
      );
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      servers.push({ port, process: child, exited });
    }
    await Promise.all(
      servers.map((s) => untilOk(async () => ((await call(s.port, 'PING')) === 'PONG' ? true : undefined), `redis ${s.port}`)),
    );
    await run('redis-cli', [
      '--cluster',
      'create',
      ...servers.map((s) => `127.0.0.1:${s.port}`),
      '--cluster-replicas',
      String(replicas),
      '--cluster-yes',
    ]);
    // Every node agrees that every slot is served and knows every other node.
    for (const s of servers) {
      await untilOk(async () => {
        const info = String(await call(s.port, 'CLUSTER', 'INFO'));
        return info.includes('cluster_state:ok') && info.includes(`cluster_known_nodes:${servers.length}`) ? true : undefined;
      }, `node ${s.port} to see the cluster`);
    }
  } catch (err) {
    await stop();
    throw err;
  }

  const running = () => servers.filter((s) => s.process.exitCode === null && s.process.signalCode === null);
  return {
    servers,
    url: `redis+cluster://${servers.map((s) => `127.0.0.1:${s.port}`).join(',')}`,
    call,
    async slotOf(key) {
      return Number(await call(running()[0]!.port, 'CLUSTER', 'KEYSLOT', key));
    },
    async masterOf(slot) {
      const ranges = (await call(running()[0]!.port, 'CLUSTER', 'SLOTS')) as [number, number, [string, number, ...unknown[]]][];
      const range = ranges.find(([from, to]) => slot >= from && slot <= to);
      if (!range) throw new Error(`no master serves slot ${slot}`);
      return Number(range[2][1]);
    },
    async kill(port) {
      const server = servers.find((s) => s.port === port);
      if (!server) throw new Error(`no server on ${port}`);
      clients.get(port)?.disconnect();
      clients.delete(port);
      server.process.kill('SIGKILL');
      await server.exited;
    },
    stop,
  };
}
