import { Cluster } from 'ioredis';
import type { Logger } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import { waitAtMost, withTimeout } from '../shared/time-bounds.ts';
import { connectRedis, type RedisClient } from './redis-connect.ts';
import { guardShardSubscriptions } from './redis-subscriptions.ts';
import { parseRedisTarget } from './redis-target.ts';

type ClientName = 'pub' | 'sub' | 'commands';

/** A cluster subscriber's connection to one master lost: the subscriber is degraded though the cluster is ready. */
const SUBSCRIBER_NODE_LOST = new Error('a master of the Redis Cluster was lost to the subscriber');

/** A connection that lost traffic and is back: the subscriber missed what was published meanwhile; the publisher dropped `lostPublishes`. */
export interface Recovery {
  client: 'pub' | 'sub';
  lostPublishes: number;
}

export interface RedisClients {
  /** Publishes adapter broadcasts; never queues while Redis is away. */
  pub: RedisClient;
  /** Subscribes for the adapter; subscribes again after a reconnect (see redis-connect.ts). */
  sub: RedisClient;
  /** Rate limits; fails fast while Redis is away. */
  commands: RedisClient;
  /**
   * Resolves once the channels of the rooms joined so far are subscribed (bounded by the command timeout): a socket
   * let in only then misses nothing published for its rooms from its first moment on.
   */
  roomsSubscribed(): Promise<void>;
  /** True while any of the three is not connected: fan-out between nodes is degraded, local delivery goes on. */
  degraded(): boolean;
  /** Called when traffic was lost and the connection that lost it is back (see realtime/fanout.ts). */
  onRecovery(listener: (recovery: Recovery) => void): void;
  close(): Promise<void>;
}

export interface RedisClientOptions {
  commandTimeoutMs: number;
  /** The adapter's prefix (default `chat`): classic publishes are told apart by their channel. */
  prefix?: string;
  /** The sharded adapter subscribes with SSUBSCRIBE, per room in dynamic mode: guarded and re-subscribed here. */
  sharded?: boolean;
  log: Logger;
  metrics: Metrics;
}

/**
 * Redis connections for one node. While Redis is down, ioredis would buffer every command in memory without
 * bound; `enableOfflineQueue: false` makes commands fail at once instead, so an outage cannot eat the heap, and
 * `commandTimeout` makes a Redis that hangs (no answers, connection open) fail them too, so that it cannot hold a
 * send. The adapter publishes without awaiting, so a failed publish is caught here (else an unhandled rejection
 * would end the process) and counted: once the publisher works again, the tabs of every node are told to catch up.
 */
export function createRedisClients(url: string, o: RedisClientOptions): RedisClients {
  const target = parseRedisTarget(url);
  const sharded = o.sharded ?? false;
  const [pub, sub, commands] = (['pub', 'sub', 'commands'] as const).map((role) =>
    connectRedis(target, role, { commandTimeoutMs: o.commandTimeoutMs, sharded }),
  ) as [RedisClient, RedisClient, RedisClient];
  // A cluster client subscribes the channels of a failed-over master again itself; on one server it is done here.
  const subscriptions = sharded ? guardShardSubscriptions(sub, { ...o, resubscribesItself: target.kind === 'cluster' }) : undefined;
  // Answered once every channel is subscribed again after a (re)connect: from then on nothing is missed.
  let caughtUp: Promise<boolean> = Promise.resolve(false);
  sub.on('ready', () => {
    if (!subscriptions) {
      caughtUp = new Promise<void>((resolve) => setImmediate(resolve)).then(() => sub.ping().then(() => true)).catch(() => false);
    } else if (sub instanceof Cluster) {
      // A cluster client is ready before its per-master subscribers are: they connect and subscribe the channels it
      // kept afterwards, then say subscribersReady (or nothing, when nothing changed: bounded by a wait). What came
      // while it was not ready is sent at once (retried if a slot has no subscriber yet); the tabs are told to catch
      // up only once the subscribers are there too.
      const sent = subscriptions.resubscribe();
      caughtUp = Promise.all([sent, nextSubscribersReady(sub, 2 * o.commandTimeoutMs)]).then(([complete]) => complete);
    } else {
      caughtUp = subscriptions.resubscribe();
    }
  });
  countReceived(sub, o.metrics);
  if (!subscriptions) countClassicChannels(sub, o.metrics);
  const listeners: ((r: Recovery) => void)[] = [];
  const recovered = (r: Recovery) => {
    for (const listener of listeners) listener(r);
  };

  const clients: Record<ClientName, RedisClient> = { pub, sub, commands };
  const down = new Map<ClientName, number>();
  let lostPublishes = 0;
  for (const [name, client] of Object.entries(clients) as [ClientName, RedisClient][]) {
    o.metrics.redisConnected.set({ client: name }, 0);
    const lost = (err?: Error) => {
      if (err) o.metrics.adapterErrors.inc({ client: name });
      // A cluster client reports a node's error while it goes on through the others (a failed master's slots move
      // to its replica); one server's connection that fails is closed, and reported again then.
      if (client.status === 'ready' && !(name === 'sub' && err === SUBSCRIBER_NODE_LOST)) return;
      o.metrics.redisConnected.set({ client: name }, 0);
      if (down.has(name) || client.status === 'wait') return;
      down.set(name, performance.now());
      o.log.warn({ client: name, err: err?.message }, 'redis connection lost: fan-out between nodes is degraded, local delivery goes on');
    };
    client.on('error', lost);
    client.on('close', () => lost());
    const back = () => {
      o.metrics.redisConnected.set({ client: name }, 1);
      const since = down.get(name);
      if (since === undefined) return;
      down.delete(name);
      const lostNow = name === 'pub' ? takeLost() : 0;
      o.log.warn({ client: name, downForMs: Math.round(performance.now() - since), publishesLost: lostNow }, 'redis connection restored');
      if (name === 'sub') {
        caughtUp.then(
          (complete) => complete && recovered({ client: 'sub', lostPublishes: 0 }),
          () => undefined,
        );
      } else if (name === 'pub' && lostNow > 0) {
        recovered({ client: 'pub', lostPublishes: lostNow });
      }
    };
    client.on('ready', back);
    if (name === 'sub' && client instanceof Cluster && sharded) {
      // One of the masters' subscriber connections lost (the master failed): what was published to its slots
      // meanwhile went unheard. ioredis subscribes its channels again on the master that takes over the slots, and
      // says so with subscribersReady; the tabs are told to catch up then.
      // The subscriber group's connections name their node; the cluster's own pool (slot lookups, replicas, idle
      // connections the server closed) reports its nodes without one, and those do not concern the subscriber.
      client.on('-node', (_redis: unknown, nodeKey?: string) => {
        if (nodeKey !== undefined) lost(SUBSCRIBER_NODE_LOST);
      });
      client.on('subscribersReady', () => {
        if (!down.has('sub')) return;
        o.metrics.redisResubscriptions.inc(subscriptions?.size ?? 0);
        caughtUp = Promise.resolve(true);
        back();
      });
    }
  }

  function takeLost() {
    const n = lostPublishes;
    lostPublishes = 0;
    return n;
  }

  for (const method of ['publish', 'spublish'] as const) {
    const original = pub[method].bind(pub) as (...args: unknown[]) => Promise<number>;
    (pub as unknown as Record<string, unknown>)[method] = (...args: unknown[]) => {
      // The sharded adapter's publishes are counted by kind where it tells them apart (socket-server.ts).
      if (method === 'publish') o.metrics.redisPublishes.inc({ kind: classicKind(String(args[0]), o.prefix ?? 'chat') });
      return original(...args).then(
        (n) => {
          // A publisher that timed out without losing its connection (a Redis that hung, then answered again).
          if (lostPublishes > 0 && !down.has('pub')) {
            const lostNow = takeLost();
            o.log.warn({ client: 'pub', publishesLost: lostNow }, 'redis publishes go through again');
            recovered({ client: 'pub', lostPublishes: lostNow });
          }
          return n;
        },
        (err: Error) => {
          lostPublishes++;
          o.metrics.adapterErrors.inc({ client: 'pub' });
          o.metrics.redisPublishesLost.inc();
          o.log.debug({ err: err.message }, 'redis publish dropped');
          return 0;
        },
      );
    };
  }

  return {
    pub,
    sub,
    commands,
    roomsSubscribed: () => subscriptions?.settled(o.commandTimeoutMs) ?? Promise.resolve(),
    degraded: () => Object.values(clients).some((c) => c.status !== 'ready'),
    onRecovery(listener) {
      listeners.push(listener);
    },
    async close() {
      // QUIT waits for a connection; while Redis is away there is none to wait for, so the wait is bounded.
      await waitAtMost(Promise.allSettled([pub.quit(), sub.quit(), commands.quit()]), 1000);
      pub.disconnect();
      sub.disconnect();
      commands.disconnect();
    },
  };
}

/** Resolves at the cluster client's next subscribersReady, or after `ms`. */
function nextSubscribersReady(sub: Cluster, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      sub.off('subscribersReady', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    sub.once('subscribersReady', done);
  });
}

export async function pingRedis(client: RedisClient, timeoutMs = 1500): Promise<void> {
  await withTimeout(client.ping(), timeoutMs, () => new Error('redis ping timed out'));
}

/** What a classic adapter's publish is, by its channel: `<prefix>-request#…`, `<prefix>-response#…` or `<prefix>#…`. */
function classicKind(channel: string, prefix: string): string {
  if (channel.startsWith(`${prefix}-request#`)) return 'request';
  if (channel.startsWith(`${prefix}-response#`)) return 'response';
  return 'broadcast';
}

/** Counts the classic adapter's channels (a pattern counts as one); the sharded ones are counted as they are held. */
function countClassicChannels(sub: RedisClient, metrics: Metrics) {
  const held = new Set<string>();
  for (const [method, kind, holds] of [
    ['subscribe', 'channel', true],
    ['psubscribe', 'pattern', true],
    ['unsubscribe', 'channel', false],
    ['punsubscribe', 'pattern', false],
  ] as const) {
    const original = sub[method].bind(sub) as (...args: unknown[]) => Promise<unknown>;
    (sub as unknown as Record<string, unknown>)[method] = (...args: unknown[]) => {
      for (const c of args.flat()) if (typeof c === 'string') holds ? held.add(`${kind}:${c}`) : held.delete(`${kind}:${c}`);
      metrics.redisSubscriptions.set(held.size);
      return original(...args);
    };
  }
}

/** Counts what the subscriber receives from Redis, whichever adapter listens (one listener per node, not per room). */
function countReceived(sub: RedisClient, metrics: Metrics) {
  const count = (message: Buffer) => {
    metrics.redisMessagesReceived.inc();
    metrics.redisBytesReceived.inc(message.length);
  };
  sub.on('messageBuffer', (_channel: Buffer, message: Buffer) => count(message));
  sub.on('pmessageBuffer', (_pattern: Buffer, _channel: Buffer, message: Buffer) => count(message));
  sub.on('smessageBuffer', (_channel: Buffer, message: Buffer) => count(message));
}
