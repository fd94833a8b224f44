/**
 * What bench:scale reads around a measured window: each node's CPU (/proc) and chat_redis_* counters (/metrics),
 * and Redis's own byte counters (INFO stats); and the private redis-server whose counters hold only this run.
 */
import { spawn } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { stopChild, type Cleanup } from '../lib/cleanup.ts';
import { cpuMsOfPid } from '../lib/cpu.ts';

/** The node counters read (summed over their labels); absent ones (an older build) stay undefined. */
export const NODE_COUNTERS = [
  'chat_redis_messages_received_total',
  'chat_redis_bytes_received_total',
  'chat_redis_publishes_total',
  'chat_redis_resubscriptions_total',
] as const;
export type NodeCounter = (typeof NODE_COUNTERS)[number];

export interface NodeSample {
  cpuMs: number;
  counters: Partial<Record<NodeCounter, number>>;
  /** chat_redis_subscriptions (a gauge), when the build has it. */
  subscriptions?: number;
}

/** Sums every series of each wanted metric in a Prometheus text exposition. */
export function sumMetrics(text: string, names: readonly string[]): Map<string, number> {
  const sums = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line === '') continue;
    const match = /^([a-zA-Z_:][\w:]*)(?:\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!match || !names.includes(match[1]!)) continue;
    const value = Number(match[2]);
    if (Number.isFinite(value)) sums.set(match[1]!, (sums.get(match[1]!) ?? 0) + value);
  }
  return sums;
}

export async function sampleNode(node: { url: string; pid: number }): Promise<NodeSample> {
  const cpuMs = cpuMsOfPid(node.pid);
  const text = await fetch(`${node.url}/metrics`).then((r) => (r.ok ? r.text() : ''));
  const sums = sumMetrics(text, [...NODE_COUNTERS, 'chat_redis_subscriptions']);
  const counters: NodeSample['counters'] = {};
  for (const name of NODE_COUNTERS) if (sums.has(name)) counters[name] = sums.get(name);
  return { cpuMs, counters, subscriptions: sums.get('chat_redis_subscriptions') };
}

/** Redis's total_net_output_bytes and total_net_input_bytes (INFO stats). */
export async function redisBytes(redis: Redis): Promise<{ out: number; in: number }> {
  const info = await redis.info('stats');
  const field = (name: string) => Number(new RegExp(`^${name}:(\\d+)`, 'm').exec(info)?.[1] ?? Number.NaN);
  return { out: field('total_net_output_bytes'), in: field('total_net_input_bytes') };
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Starts `redis-server` on a free loopback port (no persistence), stopped by the run's cleanup; resolves its URL. */
export async function startPrivateRedis(cleanup: Cleanup): Promise<string> {
  const port = await freePort();
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: 'ignore',
  });
  cleanup.add(`redis-server (pid ${child.pid})`, () => stopChild(child));
  const url = `redis://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) throw new Error(`redis-server exited with ${child.exitCode}`);
    const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    // Refused while the server starts: the connect() below says so; the event would only be logged as unhandled.
    probe.on('error', () => undefined);
    const up = await probe.connect().then(
      () => probe.ping().then(() => true),
      () => false,
    );
    probe.disconnect();
    if (up) return url;
    await sleep(100);
  }
  throw new Error(`redis-server did not answer on ${url}`);
}
