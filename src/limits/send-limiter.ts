import type { Redis } from 'ioredis';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import { ErrorCode, GatewayError } from '../shared/errors.ts';

export interface SendLimiter {
  /** Takes one send from the user's allowance; throws RATE_LIMITED when none is left. */
  consume(userId: string): Promise<void>;
  /** Gives one back: a retry that stored nothing must not cost the user a send. */
  refund(userId: string): Promise<void>;
}

/**
 * Per-user limit on message sends, shared by every node through Redis (in memory in the embedded mode).
 * While Redis is unreachable, each node falls back to its own in-memory limiter rather than refusing sends.
 */
export function createSendLimiter(options: { points: number; durationS: number; redis?: Redis; prefix: string }): SendLimiter {
  const memory = new RateLimiterMemory({ points: options.points, duration: options.durationS, keyPrefix: 'send' });
  const limiter = options.redis
    ? new RateLimiterRedis({
        storeClient: options.redis,
        points: options.points,
        duration: options.durationS,
        keyPrefix: `${options.prefix}:rl:send`,
        insuranceLimiter: memory,
      })
    : memory;
  return {
    async consume(userId) {
      try {
        await limiter.consume(userId);
      } catch (err) {
        if (err instanceof RateLimiterRes) {
          throw new GatewayError(ErrorCode.RATE_LIMITED, 'too many messages; slow down', {
            retryAfterMs: Math.max(1, Math.ceil(err.msBeforeNext)),
          });
        }
        throw err;
      }
    },
    async refund(userId) {
      await limiter.reward(userId, 1).catch(() => undefined);
    },
  };
}
