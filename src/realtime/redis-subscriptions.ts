import type { Cluster, Redis } from 'ioredis';
import type { Logger } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import { waitAtMost } from '../shared/time-bounds.ts';

/** Channels re-subscribed per step after a reconnect; the event loop serves sockets between two steps. */
export const RESUBSCRIBE_BATCH = 500;

/** How soon a cluster client is sent again what it refused or could not take (a slot with no subscriber yet). */
const CLUSTER_RETRY_MS = 1000;

/** Refused subscription commands are logged at most this often, with how many there were. */
const REFUSAL_LOG_INTERVAL_MS = 10_000;

export interface ShardSubscriptions {
  /** Channels this node holds (or will hold once its subscriber is back). */
  readonly size: number;
  /** Resolves once every SSUBSCRIBE sent so far has been answered or has failed, and at most after `ms`. */
  settled(ms: number): Promise<void>;
  /**
   * Subscribes every held channel again, `RESUBSCRIBE_BATCH` at a time, yielding between steps. Resolves true once
   * all went through, false when the connection dropped meanwhile (the next `ready` starts over).
   */
  resubscribe(): Promise<boolean>;
}

/**
 * Takes over the sharded adapter's SSUBSCRIBE and SUNSUBSCRIBE on the subscriber connection. The adapter fires them
 * without awaiting (a rejection would end the process) and, in dynamic mode, once per room created or deleted, so
 * they are many: a connection that is away must neither queue them in memory without bound nor replay them all at
 * once when it is back. The set of channels wanted is kept here; a command is sent only while the connection is
 * ready, its failure is caught and counted, and after each (re)connect `resubscribe` sends the whole set again in
 * paced steps. A room deleted meanwhile is simply no longer in the set.
 */
export function guardShardSubscriptions(
  sub: Redis | Cluster,
  o: { metrics: Metrics; log: Logger; resubscribesItself?: boolean },
): ShardSubscriptions {
  const wanted = new Set<string>();
  // A cluster client keeps the channels it was sent and subscribes them again itself (redis-connect.ts): a pass
  // sends it only those that came while it was not ready.
  const unsent = new Set<string>();
  // Channels left while a cluster client was not ready: it would subscribe them again itself, so they are left then.
  const unleft = new Set<string>();
  let retry: NodeJS.Timeout | undefined;
  const pending = new Set<Promise<void>>();
  const ssubscribe = sub.ssubscribe.bind(sub) as (...channels: string[]) => Promise<unknown>;
  const sunsubscribe = sub.sunsubscribe.bind(sub) as (...channels: string[]) => Promise<unknown>;
  let passes = 0;
  let generation = 0;
  let refusals = 0;
  let lastRefusalLog = Number.NEGATIVE_INFINITY;

  const failed = (err: Error, channel: string) => {
    o.metrics.adapterErrors.inc({ client: 'sub' });
    // Redis answering with an error (a server without sharded pub/sub, an ACL without SSUBSCRIBE) leaves this node
    // deaf to other nodes for that room: said loudly. A connection lost meanwhile is reported as such elsewhere.
    if (err.name === 'ReplyError') {
      refusals++;
      // At most one line per interval: a refusal that holds (a missing permission) would repeat for every channel.
      if (performance.now() - lastRefusalLog >= REFUSAL_LOG_INTERVAL_MS) {
        lastRefusalLog = performance.now();
        o.log.warn({ err: err.message, channel, refusals }, 'redis refused subscription commands');
        refusals = 0;
      }
    } else {
      o.log.debug({ err: err.message }, 'redis subscription command dropped');
    }
    // A cluster client is not sent its channels again on the next ready: what it did not take is retried here.
    if (o.resubscribesItself && wanted.has(channel)) {
      unsent.add(channel);
      if (retry === undefined) {
        retry = setTimeout(() => {
          retry = undefined;
          if (sub.status === 'ready') void api.resubscribe();
        }, CLUSTER_RETRY_MS).unref();
      }
    }
    return false;
  };
  const send = (command: (...c: string[]) => Promise<unknown>, channel: string): Promise<boolean> => {
    const sent = command(channel).then(
      () => true,
      (err: Error) => failed(err, channel),
    );
    const tracked = sent.then(() => undefined);
    pending.add(tracked);
    void tracked.then(() => pending.delete(tracked));
    return sent;
  };
  const channelsOf = (args: unknown[]) => args.flat().filter((a): a is string => typeof a === 'string');

  // The adapter calls these with one channel (or an array to leave); what it awaits is only ever undefined.
  (sub as unknown as Record<string, unknown>).ssubscribe = (...args: unknown[]) => {
    const channels = channelsOf(args);
    for (const c of channels) {
      wanted.add(c);
      unleft.delete(c);
    }
    o.metrics.redisSubscriptions.set(wanted.size);
    if (sub.status !== 'ready') {
      for (const c of channels) unsent.add(c);
      return Promise.resolve();
    }
    return Promise.all(channels.map((c) => send(ssubscribe, c))).then(() => undefined);
  };
  (sub as unknown as Record<string, unknown>).sunsubscribe = (...args: unknown[]) => {
    const channels = channelsOf(args);
    for (const c of channels) {
      wanted.delete(c);
      unsent.delete(c);
    }
    o.metrics.redisSubscriptions.set(wanted.size);
    if (sub.status !== 'ready') {
      if (o.resubscribesItself) for (const c of channels) unleft.add(c);
      return Promise.resolve();
    }
    return Promise.all(channels.map((c) => send(sunsubscribe, c))).then(() => undefined);
  };

  /** A pass cut short: for a cluster client, what it was not sent yet waits for the next pass. */
  const stopped = (left: string[]) => {
    if (o.resubscribesItself) for (const c of left) if (wanted.has(c)) unsent.add(c);
    return false;
  };

  const api: ShardSubscriptions = {
    get size() {
      return wanted.size;
    },
    async settled(ms) {
      if (pending.size > 0) await waitAtMost(Promise.all([...pending]), ms);
    },
    async resubscribe() {
      const pass = ++generation;
      const again = passes++ > 0 && !o.resubscribesItself;
      const channels = [...(o.resubscribesItself ? unsent : wanted)];
      unsent.clear();
      const leaving = [...unleft];
      unleft.clear();
      for (const c of leaving) if (!wanted.has(c)) void send(sunsubscribe, c);
      let done = 0;
      for (let i = 0; i < channels.length; i += RESUBSCRIBE_BATCH) {
        // A newer pass (another reconnect) or a connection gone again: this one stops here.
        if (pass !== generation || sub.status !== 'ready') return stopped(channels.slice(i));
        const step = channels.slice(i, i + RESUBSCRIBE_BATCH).filter((c) => wanted.has(c));
        const results = await Promise.all(step.map((c) => send(ssubscribe, c)));
        if (results.includes(false)) return stopped(channels.slice(i));
        done += step.length;
        if (again) o.metrics.redisResubscriptions.inc(step.length);
        await new Promise((resolve) => setImmediate(resolve));
      }
      if (again && done > 0) o.log.info({ channels: done }, 'redis channels subscribed again');
      return pass === generation;
    },
  };
  return api;
}
