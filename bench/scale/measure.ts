/**
 * One set of N fresh nodes with one adapter variant, measured with each placement of the tabs in turn: per-message
 * costs over the sending window (from the first send to the end of the drain), read from /proc, the nodes'
 * /metrics and Redis's INFO.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { startNode, type Node } from '../ceiling/nodes.ts';
import type { Cleanup } from '../lib/cleanup.ts';
import type { Placement } from '../loadtest/options.ts';
import type { LoadReport } from '../loadtest/report.ts';
import { runLoad } from '../loadtest/run.ts';
import { ADAPTERS, type AdapterVariant, type ScaleSettings } from './options.ts';
import { redisBytes, sampleNode, type NodeCounter, type NodeSample } from './probes.ts';

export interface ScaleContext {
  settings: ScaleSettings;
  secret: string;
  databaseUrl: string;
  redisUrl: string;
  cleanup: Cleanup;
  say: (line: string) => void;
}

export interface ScaleResult {
  /** `this` checkout, or the `baseline` of an A/B run. */
  checkout: 'this' | 'baseline';
  nodes: number;
  adapter: AdapterVariant;
  placement: Placement;
  offered: number;
  /** Acknowledged messages in the window, and per second once ramped. */
  messages: number;
  ackedPerS: number;
  /** Every acknowledged message reached every tab once and is stored once. */
  verified: boolean;
  ackP99Ms: number;
  fanoutP99Ms: number;
  /** CPU milliseconds per acknowledged message: each node's, and all nodes' together. */
  cpuMsPerMessage: { perNode: number[]; total: number };
  /** Publishes to Redis per acknowledged message, all nodes (null: the build has no chat_redis_publishes_total). */
  publishesPerMessage: number | null;
  /** Bytes one node receives from Redis per publish, the mean over the nodes (null without the metrics). */
  redisBytesInPerPublishPerNode: number | null;
  /** Messages one node receives from Redis per publish, the mean over the nodes (1: every node gets every publish). */
  redisMessagesInPerPublishPerNode: number | null;
  /** Bytes Redis sent (to every client) per acknowledged message. */
  redisBytesOutPerMessage: number;
  /** Channels the nodes' subscribers held at the end, summed (null without the metric). */
  subscriptions: number | null;
  resubscriptions: number | null;
}

function nodeEnv(ctx: ScaleContext, env: Record<string, string>): NodeJS.ProcessEnv {
  return {
    ...process.env,
    ...env,
    PORT: '0',
    HOST: '127.0.0.1',
    JWT_SECRET: ctx.secret,
    DATABASE_URL: ctx.databaseUrl,
    REDIS_URL: ctx.redisUrl,
    ASSISTANT: 'none',
    SEND_RATE_LIMIT: '1000000',
    HANDSHAKE_RATE_LIMIT: '1000000',
    READ_RATE_LIMIT: '1000000',
    MAX_SOCKETS_PER_USER: '50',
    // Four nodes on one PostgreSQL beside other work: a few connections each are plenty at these rates.
    DB_POOL_MAX: '6',
    LOG_LEVEL: 'info',
  };
}

export async function measureNodeSet(
  ctx: ScaleContext,
  count: number,
  adapter: AdapterVariant,
  checkout: ScaleResult['checkout'] = 'this',
): Promise<ScaleResult[]> {
  const { settings, say } = ctx;
  const prefix = `scale-${randomBytes(4).toString('hex')}`;
  say(`\n${count} nodes, ${adapter}${checkout === 'baseline' ? `, baseline ${settings.baseline}` : ''}`);
  const nodes: Node[] = [];
  // One after another: the first migrates, and four cold starts at once on two cores stall each other for long.
  for (let i = 0; i < count; i++) {
    nodes.push(
      await startNode('src/server.ts', nodeEnv(ctx, { NODE_ID: `scale-${i}`, REDIS_PREFIX: prefix, ...ADAPTERS[adapter] }), {
        nodeArgs: [],
        cleanup: ctx.cleanup,
        checkout: checkout === 'baseline' ? settings.baseline : undefined,
      }),
    );
  }
  const redis = new Redis(ctx.redisUrl, { maxRetriesPerRequest: 1 });
  try {
    const urls = nodes.map((n) => n.url);
    if (settings.warmupS > 0) {
      say(`  warm-up: ${settings.warmupS} s, not recorded`);
      await load(ctx, urls, 'spread', settings.warmupS);
    }
    const results: ScaleResult[] = [];
    for (const placement of settings.placements) {
      let before: Promise<Window> | undefined;
      let after: Promise<Window> | undefined;
      const report = await load(ctx, urls, placement, settings.durationS, (phase) => {
        if (phase === 'send') before = sampleWindow(nodes, redis);
        else if (phase !== 'drain' && before && !after) after = sampleWindow(nodes, redis);
      });
      const result = { checkout, ...resultOf(count, adapter, placement, ctx.settings.rate, report, await before!, await after!) };
      say(`  ${placement.padEnd(6)} ${formatResult(result)}`);
      results.push(result);
    }
    return results;
  } finally {
    redis.disconnect();
    await Promise.all(nodes.map((n) => n.stop()));
  }
}

interface Window {
  nodes: NodeSample[];
  redis: { out: number; in: number };
}

async function sampleWindow(nodes: Node[], redis: Redis): Promise<Window> {
  const [samples, bytes] = await Promise.all([Promise.all(nodes.map(sampleNode)), redisBytes(redis)]);
  return { nodes: samples, redis: bytes };
}

function resultOf(
  count: number,
  adapter: AdapterVariant,
  placement: Placement,
  offered: number,
  report: LoadReport,
  before: Window,
  after: Window,
): Omit<ScaleResult, 'checkout'> {
  const messages = Math.max(1, report.counts.acked);
  const perNode = after.nodes.map((a, i) => round((a.cpuMs - before.nodes[i]!.cpuMs) / messages, 4));
  // A counter's increase summed over the nodes; null when a node's build does not have it.
  const delta = (name: NodeCounter): number | null => {
    let sum = 0;
    for (const [i, a] of after.nodes.entries()) {
      const b = before.nodes[i]!.counters[name];
      const now = a.counters[name];
      if (b === undefined || now === undefined) return null;
      sum += now - b;
    }
    return sum;
  };
  const publishes = delta('chat_redis_publishes_total');
  const bytesIn = delta('chat_redis_bytes_received_total');
  const messagesIn = delta('chat_redis_messages_received_total');
  const perPublish = (n: number | null) => (n === null || !publishes ? null : round(n / count / publishes, 2));
  const subscriptions = after.nodes.every((n) => n.subscriptions !== undefined)
    ? after.nodes.reduce((s, n) => s + n.subscriptions!, 0)
    : null;
  return {
    nodes: count,
    adapter,
    placement,
    offered,
    messages: report.counts.acked,
    ackedPerS: round(report.throughput.steadyAckedPerS ?? report.throughput.ackedPerS, 0),
    verified: report.exitCode === 0,
    ackP99Ms: report.latency.ack.p99Ms,
    fanoutP99Ms: report.latency.fanout.p99Ms,
    cpuMsPerMessage: {
      perNode,
      total: round(
        perNode.reduce((s, n) => s + n, 0),
        4,
      ),
    },
    publishesPerMessage: publishes === null ? null : round(publishes / messages, 2),
    redisBytesInPerPublishPerNode: perPublish(bytesIn),
    redisMessagesInPerPublishPerNode: perPublish(messagesIn),
    redisBytesOutPerMessage: round((after.redis.out - before.redis.out) / messages, 0),
    subscriptions,
    resubscriptions: delta('chat_redis_resubscriptions_total'),
  };
}

const round = (n: number, digits: number) => Math.round(n * 10 ** digits) / 10 ** digits;
const na = (n: number | null, unit = '') => (n === null ? 'n/a' : `${n}${unit}`);

export function formatResult(r: ScaleResult): string {
  return (
    `${String(r.ackedPerS).padStart(5)} msg/s · CPU/msg per node ${r.cpuMsPerMessage.perNode.map((n) => n.toFixed(3)).join(' ')} ms ` +
    `(all ${r.cpuMsPerMessage.total.toFixed(3)}) · in from Redis per publish per node ${na(r.redisBytesInPerPublishPerNode, ' B')} ` +
    `(${na(r.redisMessagesInPerPublishPerNode, ' msg')}) · Redis out ${r.redisBytesOutPerMessage} B/msg · ` +
    `p99 ack ${r.ackP99Ms.toFixed(1)} / fan-out ${r.fanoutP99Ms.toFixed(1)} ms${r.verified ? '' : ' · NOT VERIFIED'}`
  );
}

function load(
  ctx: ScaleContext,
  urls: string[],
  placement: Placement,
  durationS: number,
  onPhase?: (phase: string) => void,
): Promise<LoadReport> {
  return runLoad(
    {
      urls,
      placement,
      users: ctx.settings.users,
      tabs: ctx.settings.tabs,
      rate: ctx.settings.rate,
      rampS: Math.min(1, durationS / 4),
      durationS,
      size: 64,
      secret: ctx.secret,
      reportDir: null,
      quiet: true,
      verifyStorage: true,
      drainTimeoutS: 10,
    },
    { onPhase },
  );
}
