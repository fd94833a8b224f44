import type { ServiceDeps } from '../db/types.ts';
import type { Logger } from '../observability/logger.ts';
import type { Broadcast } from '../shared/broadcast.ts';

/** Key of the advisory lock that lets one node at a time sweep (a constant no other lock of the gateway uses). */
const RETENTION_LOCK_KEY = 7_346_112_902;

export interface Expired {
  userId: string;
  conversationId: string;
  updatedAt: string;
}

const expired = (r: { id: string; user_id: string; updated_at: unknown }): Expired => ({
  userId: String(r.user_id),
  conversationId: String(r.id),
  updatedAt: (r.updated_at instanceof Date ? r.updated_at : new Date(String(r.updated_at))).toISOString(),
});

/**
 * Deletes conversations with no activity for `days` (their messages go by cascade), in batches of `batchSize`, each
 * its own short transaction: no long lock on the table, and the open tabs keep being served meanwhile. One node
 * sweeps at a time (a transaction-scoped advisory lock per batch); the others skip the round.
 */
export function createRetention({ orm, log, audit }: ServiceDeps, o: { days: number; batchSize: number }) {
  /** Deletes what has expired; `onBatch` gets each batch's notifications for the owners' tabs. `busy`: another node sweeps. */
  async function sweep(onBatch: (broadcasts: Broadcast[]) => void = () => undefined): Promise<{ removed: Expired[]; busy: boolean }> {
    const removed: Expired[] = [];
    for (;;) {
      const batch = await orm.em.fork().transactional(async (tx) => {
        const [lock] = await tx.execute<{ locked: boolean }[]>('select pg_try_advisory_xact_lock(?) as locked', [RETENTION_LOCK_KEY]);
        if (!lock?.locked) return undefined;
        return tx.execute<{ id: string; user_id: string; updated_at: unknown }[]>(
          `delete from conversations where id in (
             select id from conversations where updated_at < now() - make_interval(days => ?)
             order by updated_at limit ? for update skip locked
           ) returning id, user_id, updated_at`,
          [o.days, o.batchSize],
        );
      });
      if (batch === undefined) return { removed, busy: true };
      const rows = batch.map(expired);
      removed.push(...rows);
      if (rows.length > 0) {
        for (const r of rows) audit({ userId: r.userId, op: 'conversation.expire', outcome: 'ok', conversationId: r.conversationId });
        onBatch(rows.map((r) => ({ userId: r.userId, event: 'conversation:deleted', payload: { conversationId: r.conversationId } })));
        log.info({ batch: rows.length, total: removed.length, days: o.days }, 'retention: expired conversations deleted');
      }
      if (rows.length < o.batchSize) return { removed, busy: false };
    }
  }

  /** What a sweep would delete now: how many, and the first `limit` of them, oldest first. Deletes nothing. */
  async function preview(limit: number): Promise<{ total: number; first: Expired[] }> {
    const em = orm.em.fork();
    const [count] = await em.execute<{ n: string }[]>(
      'select count(*) as n from conversations where updated_at < now() - make_interval(days => ?)',
      [o.days],
    );
    const rows = await em.execute<{ id: string; user_id: string; updated_at: unknown }[]>(
      'select id, user_id, updated_at from conversations where updated_at < now() - make_interval(days => ?) order by updated_at limit ?',
      [o.days, limit],
    );
    return { total: Number(count?.n ?? 0), first: rows.map(expired) };
  }

  return { sweep, preview };
}

export type Retention = ReturnType<typeof createRetention>;

/**
 * Runs the sweep on this node every `intervalMs` (the first one at a random moment of the first minute, so that
 * nodes started together do not all try at once: one sweeps, the others find it busy). `deleted` gets each batch's
 * notifications for the owners' tabs. Returns a stop that waits for a sweep in progress.
 */
export function scheduleRetention(
  retention: Retention,
  o: { intervalMs: number; deleted: (broadcasts: Broadcast[]) => void; log: Logger },
): () => Promise<void> {
  let running: Promise<unknown> = Promise.resolve();
  let stopped = false;
  let timer: NodeJS.Timeout;
  const run = () => {
    running = retention
      .sweep(o.deleted)
      .catch((err: Error) => o.log.warn({ err: err.message }, 'retention sweep failed; the next one tries again'))
      .finally(() => {
        if (stopped) return;
        timer = setTimeout(run, o.intervalMs);
        timer.unref();
      });
  };
  timer = setTimeout(run, Math.random() * Math.min(60_000, o.intervalMs));
  timer.unref();
  return async () => {
    stopped = true;
    clearTimeout(timer);
    await running;
  };
}
