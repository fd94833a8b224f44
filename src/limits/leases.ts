import { RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';

/** How often entries whose window has ended are dropped (a node sees many users come and go). */
const SWEEP_MS = 10_000;

/**
 * Points of a shared (Redis) allowance taken a few at a time and spent locally. Without it every send, read or
 * write waits for a Redis round trip before its work starts (in a profile of a node at 500 msg/s, the limiter was a
 * twelfth of the node's CPU); with it a node takes `lease` points of the user's allowance from Redis at once and
 * spends them without asking until they run out or the window ends.
 *
 * While Redis answers, the allowance is not exceeded across the nodes (leased points are counted in Redis as they
 * are taken). It can be reached early: points leased by one node and not spent there are not available to another node in the same
 * window, so a user whose tabs sit on several nodes may be refused up to (nodes - 1) × lease points early. With
 * user-affine routing a user's sockets share one node and nothing is lost. A lease never outlives its window.
 *
 * Near the end of an allowance a lease is cut to what is left (the excess handed back at once), so the last points
 * remain reachable; while handed back they briefly count against the user on the other nodes. Once Redis refuses,
 * the node refuses the user locally until the window ends (a flood of refused commands costs Redis nothing).
 */
export class LeasedLimiter {
  readonly #store: RateLimiterAbstract;
  readonly #points: number;
  readonly #lease: number;
  /** Points leased and not yet spent, until the end of the window they were taken in. */
  readonly #held = new Map<string, { left: number; until: number; exhausted: boolean }>();
  /** A lease being taken for a key. */
  readonly #taking = new Map<string, Promise<void>>();
  #nextSweep = 0;

  /** `store`: the shared allowance of `points` per window; `lease`: points taken from it at once (1: no leasing). */
  constructor(store: RateLimiterAbstract, points: number, lease: number) {
    this.#store = store;
    this.#points = points;
    this.#lease = Math.max(1, Math.floor(lease));
  }

  /** Spends `points` of `key`'s allowance; rejects with a RateLimiterRes (msBeforeNext) when too few are left. */
  async consume(key: string, points: number): Promise<void> {
    this.#sweep(Date.now());
    // Commands of one user arriving together wait for the lease one of them is taking, and spend from it: a burst
    // takes one lease, not one each.
    for (let taking = this.#taking.get(key); taking; taking = this.#taking.get(key)) await taking.catch(() => undefined);
    const now = Date.now();
    const held = this.#held.get(key);
    const current = held && held.until > now ? held : undefined;
    if (current) {
      if (current.left >= points) {
        current.left -= points;
        return;
      }
      // The allowance is spent until its window ends: refused here, without asking Redis again.
      if (current.exhausted) throw new RateLimiterRes(0, current.until - now, this.#points, false);
    }
    // What is left of this window's lease is spent first: only the rest is taken from Redis, so a command costing
    // more points than are left (a history page, an export) does not strand them.
    const taking = this.#take(key, points, current?.left ?? 0);
    this.#taking.set(key, taking);
    try {
      await taking;
    } finally {
      this.#taking.delete(key);
    }
  }

  /** Takes what `points` needs beyond `carried` (points of this window's lease not yet spent) from the store. */
  async #take(key: string, points: number, carried: number): Promise<void> {
    const need = points - carried;
    const want = Math.max(need, this.#lease);
    let granted = want;
    let res: RateLimiterRes;
    try {
      res = await this.#store.consume(key, want);
    } catch (err) {
      if (!(err instanceof RateLimiterRes)) throw err;
      // Refused for the whole lease: keep what still fits in the allowance (at least what is needed), return the rest.
      const fits = want - Math.max(0, err.consumedPoints - this.#points);
      if (fits < need) {
        // Refused outright: count what was needed, as a refused consume of it alone would, and no more. The points
        // carried stay this node's to spend on cheaper commands.
        if (want > need) await this.#store.reward(key, want - need).catch(() => undefined);
        this.#held.set(key, { left: carried, until: Date.now() + err.msBeforeNext, exhausted: true });
        throw err;
      }
      await this.#store.reward(key, want - fits).catch(() => undefined);
      granted = fits;
      res = err;
    }
    this.#held.set(key, { left: carried + granted - points, until: Date.now() + res.msBeforeNext, exhausted: false });
  }

  #sweep(now: number): void {
    if (now < this.#nextSweep) return;
    this.#nextSweep = now + SWEEP_MS;
    for (const [key, held] of this.#held) if (held.until <= now) this.#held.delete(key);
  }
}
