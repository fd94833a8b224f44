import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { RedisTarget } from './redis-target.ts';

/** One of a node's Redis connections: to a single server, or a client of a whole Redis Cluster. */
export type RedisClient = Redis | Cluster;

export type Role = 'pub' | 'sub' | 'commands';

const retry = (times: number) => Math.min(times * 200, 2000);

/**
 * The connection of one role. `pub` and `commands` never queue while Redis is away (a command fails at once, so
 * an outage cannot eat the heap) and give up on a Redis that hangs after `commandTimeoutMs`. `sub` depends on the
 * adapter: the classic one subscribes a few channels once, at start-up, and ioredis keeps them queued and
 * subscribes them again after a reconnect; the sharded one subscribes per room, so its subscriptions are held and
 * sent by redis-subscriptions.ts, and the connection neither queues nor replays anything by itself.
 *
 * On a Redis Cluster, the sharded subscriber keeps one connection per master (ioredis's `shardedSubscribers`),
 * where the SSUBSCRIBE of each channel goes to the master of the channel's slot, as SPUBLISH does: ioredis follows
 * slots that move and masters that fail over, and subscribes the channels of a new master again itself.
 */
export function connectRedis(target: RedisTarget, role: Role, o: { commandTimeoutMs: number; sharded: boolean }): RedisClient {
  const failFast = role !== 'sub' || o.sharded;
  const options: RedisOptions = {
    connectionName: `chat-${role === 'commands' ? 'cmd' : role}`,
    maxRetriesPerRequest: role === 'sub' && !o.sharded ? null : 1,
    retryStrategy: retry,
    // A peer gone without closing (host down, network cut) is noticed by TCP keep-alive.
    keepAlive: 10_000,
    enableOfflineQueue: !failFast,
    ...(role === 'sub' ? {} : { commandTimeout: o.commandTimeoutMs }),
    ...(role === 'sub' && o.sharded ? { autoResubscribe: false, autoResendUnfulfilledCommands: false } : {}),
  };
  if (target.kind === 'single') return new Redis(target.url, options);
  // The cluster client queues, retries and reconnects for its node connections itself.
  const { retryStrategy: _retry, enableOfflineQueue: _queue, ...nodeOptions } = options;
  return new Cluster(target.nodes, {
    enableOfflineQueue: !failFast,
    shardedSubscribers: role === 'sub' && o.sharded,
    clusterRetryStrategy: retry,
    // After a MOVED or a failover, the next try goes to the new owner of the slot soon, within the command timeout.
    retryDelayOnFailover: 100,
    retryDelayOnClusterDown: 100,
    redisOptions: {
      ...nodeOptions,
      username: target.username,
      password: target.password,
      tls: target.tls ? {} : undefined,
    },
  });
}
