// The verdict every fault test asserts, with what a failure needs to be understood.
import { expect } from 'vitest';
import { median } from './convergence.ts';
import type { DrillResult } from './fault-drills.ts';

/**
 * Every send was acknowledged in the end (retried with its key), nothing acknowledged was lost or duplicated, every
 * message has exactly one reply and every reply ended, and every tab agreed with the database within the bound.
 */
export function expectConvergedAndIntact(result: DrillResult): void {
  const ms = result.convergence.tabs.map((t) => t.ms);
  // The record of the drill: how long the tabs took once the fault had ended.
  console.log(
    `${result.kind}: fault ${result.faultMs} ms; ${ms.length} tabs converged ${median(ms) ?? '-'} ms (median) / ${ms.length ? Math.max(...ms) : '-'} ms (max) after it ended; database settled after ${result.convergence.settledMs ?? '-'} ms`,
  );
  const context = JSON.stringify(result.observed);
  expect(result.integrity.problems, `${result.kind}: integrity; ${context}`).toEqual([]);
  expect(result.convergence.problems, `${result.kind}: convergence; ${context}`).toEqual([]);
  expect(result.integrity.counts.acked, `${result.kind}: sends acknowledged`).toBe(result.integrity.counts.sends);
}

/**
 * A drill with Redis hung (no answers): every tab converges, no send was refused, each send waited for one timed-out
 * Redis command at most (the limiter then counts in memory) rather than for the hang, and readiness stayed 200.
 */
export function expectServedThroughRedisHang(
  result: DrillResult,
  bounds: { REDIS_COMMAND_TIMEOUT_MS: number; WRITE_TIMEOUT_MS: number },
): void {
  expectConvergedAndIntact(result);
  const observed = result.observed as { maxAckMsDuring: number; refusedDuring: number; readiness: Record<string, string[]> };
  expect(observed.refusedDuring).toBe(0);
  expect(observed.maxAckMsDuring).toBeLessThan(bounds.REDIS_COMMAND_TIMEOUT_MS + bounds.WRITE_TIMEOUT_MS);
  for (const seen of Object.values(observed.readiness)) for (const answer of seen) expect(answer).toMatch(/^200 /);
}
