import { Redis } from 'ioredis';
import type { Logger } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import { waitAtMost, withTimeout } from '../shared/time-bounds.ts';

export interface RedisClients {
  /** Publishes adapter broadcasts; never queues while Redis is away. */
  pub: Redis;
  /** Subscribes for the adapter; resubscribes by itself after a reconnect. */
  sub: Redis;
  /** Rate limits and readiness pings; fails fast while Redis is away. */
  commands: Redis;
  close(): Promise<void>;
}

/**
 * Redis connections for one node. While Redis is down, ioredis would buffer every command in memory without
 * bound; `enableOfflineQueue: false` makes commands fail at once instead, so an outage cannot eat the heap.
 * The adapter publishes without awaiting, so a failed publish must be caught here or it would be an unhandled
 * rejection that ends the process: local delivery goes on, and tabs on other nodes catch up by seq.
 */
export function createRedisClients(url: string, log: Logger, metrics: Metrics): RedisClients {
  const base = { maxRetriesPerRequest: 1, retryStrategy: (times: number) => Math.min(times * 200, 2000) };
  const pub = guardPublishes(new Redis(url, { ...base, enableOfflineQueue: false, connectionName: 'chat-pub' }), log, metrics);
  // The subscriber keeps its queue and waits for Redis however long it takes: it only ever holds the adapter's
  // few SUBSCRIBE commands of start-up (the sharded adapter runs in static mode for this), and dropping one
  // would leave the node deaf to the others for good, or end it (the adapter does not catch the rejection).
  const sub = new Redis(url, { ...base, maxRetriesPerRequest: null, connectionName: 'chat-sub' });
  const commands = new Redis(url, { ...base, enableOfflineQueue: false, connectionName: 'chat-cmd' });
  for (const [name, client] of Object.entries({ pub, sub, commands })) {
    let down = false;
    client.on('error', (err: Error) => {
      metrics.adapterErrors.inc({ client: name });
      if (!down) log.warn({ client: name, err: err.message }, 'redis connection error');
      down = true;
    });
    client.on('ready', () => {
      if (down) log.info({ client: name }, 'redis connection restored');
      down = false;
    });
  }
  return {
    pub,
    sub,
    commands,
    async close() {
      // QUIT waits for a connection; while Redis is away there is none to wait for, so the wait is bounded.
      await waitAtMost(Promise.allSettled([pub.quit(), sub.quit(), commands.quit()]), 1000);
      pub.disconnect();
      sub.disconnect();
      commands.disconnect();
    },
  };
}

function guardPublishes(client: Redis, log: Logger, metrics: Metrics): Redis {
  for (const method of ['publish', 'spublish'] as const) {
    const original = client[method].bind(client) as (...args: unknown[]) => Promise<number>;
    (client as unknown as Record<string, unknown>)[method] = (...args: unknown[]) =>
      original(...args).catch((err: Error) => {
        metrics.adapterErrors.inc({ client: 'pub' });
        log.debug({ err: err.message }, 'redis publish dropped');
        return 0;
      });
  }
  return client;
}

export async function pingRedis(client: Redis, timeoutMs = 1500): Promise<void> {
  await withTimeout(client.ping(), timeoutMs, () => new Error('redis ping timed out'));
}
