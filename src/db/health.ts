import type { Logger } from '../observability/logger.ts';
import { pingDatabase } from './orm.ts';
import type { Orm } from './types.ts';

export interface DatabaseHealth {
  /** Whether the last ping answered in time. */
  readonly up: boolean;
  /** How long the database has answered every ping without a break (0 while it does not). */
  healthyForMs(): number;
  stop(): void;
}

/**
 * Pings the database on a schedule, so readiness answers from what is known rather than making a round trip per
 * probe, and so the sweeper of interrupted replies can tell "its node died" from "the database was away" (see
 * assistant.ts). Logs once when the database goes away and once when it is back.
 */
export function watchDatabase(orm: Orm, o: { intervalMs: number; timeoutMs: number; log: Logger }): DatabaseHealth {
  let up = true;
  let since = performance.now();
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;

  async function tick() {
    try {
      await pingDatabase(orm, o.timeoutMs);
      if (!up) o.log.warn({ downForMs: Math.round(performance.now() - since) }, 'database reachable again');
      if (!up) since = performance.now();
      up = true;
    } catch (err) {
      if (up) {
        o.log.warn({ err: (err as Error).message }, 'database unreachable');
        since = performance.now();
      }
      up = false;
    }
    if (!stopped) {
      timer = setTimeout(tick, o.intervalMs);
      timer.unref();
    }
  }
  timer = setTimeout(tick, 0);
  timer.unref();

  return {
    get up() {
      return up;
    },
    healthyForMs: () => (up ? performance.now() - since : 0),
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
