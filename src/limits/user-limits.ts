import type { Cluster, Redis } from 'ioredis';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import { ErrorCode, GatewayError } from '../shared/errors.ts';
import { LeasedLimiter } from './leases.ts';

/**
 * What a user spends, per kind of work. One user must not be able to slow the others down: every command and
 * route draws on one of these, and each has its own allowance per window.
 * - send: messages (each one also starts an assistant reply, the costliest thing the gateway does);
 * - write: creating, renaming and deleting conversations, erasing the account;
 * - read: lists, history pages (weighted by their size), exports;
 * - refresh: `auth:refresh`, a token verification each.
 */
export type Budget = 'send' | 'write' | 'read' | 'refresh';

export interface Allowance {
  points: number;
  durationS: number;
}

export interface UserLimits {
  /** Takes `points` from the user's allowance of `budget`; throws RATE_LIMITED (with retryAfterMs) when too few are left. */
  consume(userId: string, budget: Budget, points?: number): Promise<void>;
}

const REFUSALS: Record<Budget, string> = {
  send: 'too many messages; slow down',
  write: 'too many changes to conversations; slow down',
  read: 'too many reads; slow down',
  refresh: 'too many token refreshes; slow down',
};

/**
 * The most points a node leases at once, whatever the allowance: 20 already saves 95 % of the round trips, and a
 * lease counts in Redis before it is spent, so a big one would make the user look busier than they are to nodes
 * configured with a smaller allowance (during a rolling change of a limit) and strand more points on a node.
 */
export const MAX_LEASE = 20;

/**
 * Per-user allowances shared by every node through Redis (in memory in the embedded mode). While Redis is
 * unreachable or does not answer in time, each node falls back to an in-memory allowance of its own rather than
 * refusing (or holding) the user's work. With Redis, each node takes `leaseShare` of an allowance at once and
 * spends it locally (see leases.ts): one round trip per lease rather than per command.
 */
export function createUserLimits(o: {
  allowances: Record<Budget, Allowance>;
  redis?: Redis | Cluster;
  prefix: string;
  /** Share of each allowance a node takes from Redis at once (0: every point from Redis). */
  leaseShare?: number;
}): UserLimits {
  const limiters = Object.fromEntries(
    (Object.entries(o.allowances) as [Budget, Allowance][]).map(([budget, { points, durationS }]) => {
      const memory = new RateLimiterMemory({ points, duration: durationS, keyPrefix: budget });
      const limiter: RateLimiterAbstract | LeasedLimiter = o.redis
        ? new LeasedLimiter(
            new RateLimiterRedis({
              storeClient: o.redis,
              points,
              duration: durationS,
              keyPrefix: `${o.prefix}:rl:${budget}`,
              insuranceLimiter: memory,
            }),
            points,
            Math.min(MAX_LEASE, points * (o.leaseShare ?? 0)),
          )
        : memory;
      return [budget, limiter];
    }),
  ) as Record<Budget, RateLimiterAbstract | LeasedLimiter>;

  return {
    async consume(userId, budget, points = 1) {
      try {
        await limiters[budget].consume(userId, points);
      } catch (err) {
        if (err instanceof RateLimiterRes) {
          throw new GatewayError(ErrorCode.RATE_LIMITED, REFUSALS[budget], { retryAfterMs: Math.max(1, Math.ceil(err.msBeforeNext)) });
        }
        throw err;
      }
    },
  };
}

/** A history page costs one read point per 50 messages it may hold (the default page), so big pages cost more. */
export const historyCost = (limit: number) => Math.max(1, Math.ceil(limit / 50));
