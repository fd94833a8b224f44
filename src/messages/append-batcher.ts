import { DeadlockException, UniqueConstraintViolationException } from '@mikro-orm/core';
import type { Orm } from '../db/types.ts';
import { ErrorCode, GatewayError } from '../shared/errors.ts';
import { isDatabaseUnavailable } from '../shared/failures.ts';
import { findStored, keyOf, RepeatedKey, writeBatch, type Appended, type AppendRequest, type StoredAppend } from './append-write.ts';

export type { Appended, AppendRequest } from './append-write.ts';

interface Pending {
  request: AppendRequest;
  resolve: (result: Appended) => void;
  reject: (err: unknown) => void;
  queuedAt: number;
}

/** A batch sent to the database; `stalled` once it has run longer than STALL_SHARE of the write bound. */
interface Running {
  startedAt: number;
  stalled: boolean;
}

export interface BatcherOptions {
  /** Transactions in flight at once; each takes every append queued when it starts. */
  concurrency: number;
  /** Most appends in one transaction. */
  maxBatch: number;
  /** Most appends waiting for a transaction; past it a send is refused at once rather than queued for seconds. */
  maxQueued: number;
  /**
   * The write bound. An append still queued after this long is refused (it was never sent, so nothing of it is
   * stored). A batch that has run a fifth of it (see STALL_SHARE) stops holding its place, so the batches behind it
   * go on; PostgreSQL's own timeouts end it at the bound.
   */
  timeoutMs: number;
}

/** Stalled batches that may still be running: past this many, appends are refused at once. */
const MAX_STALLED = 4;

/**
 * A batch still running after this share of the write bound waits on something (a row lock held elsewhere, a
 * database that does not answer): a normal one commits in milliseconds. It stops holding its place then rather
 * than at the bound: with one place (the default), the sends queued behind a batch blocked by one locked
 * conversation would otherwise all wait out the bound and answer UNAVAILABLE, whoever they are.
 */
const STALL_SHARE = 1 / 5;

const MAX_ATTEMPTS = 4;

/**
 * Group commit: appends that arrive while earlier ones are committing are written together, in ONE
 * transaction: one multi-row insert, one seq update per conversation (APPEND). Every append still
 * gets its result only after the commit that made it durable, so ack-after-commit holds. Under light load a
 * batch is a single append and nothing waits; under heavy load batches grow and commits are shared.
 *
 * Seq: handed out under the conversation row's lock, so seq order is commit order and a failed batch leaves
 * no gap.
 * Idempotency: the same key twice in one batch is written once; a key already stored (or committed by another
 * node meanwhile) makes the insert fail on the unique index, and the batch is retried looking its keys up, so
 * those appends answer with the stored message.
 */
/** How each attempt at writing a batch ended (for the `chat_append_batches_total` metric). */
export type BatchOutcome = 'committed' | 'repeated_key' | 'conflict' | 'deadlock' | 'failed';

export function createAppendBatcher(orm: Orm, options: BatcherOptions, counted: (outcome: BatchOutcome) => void = () => undefined) {
  const queue: Pending[] = [];
  /** Batches holding one of the `concurrency` places. */
  let inFlight = 0;
  const running = new Set<Running>();
  let stalled = 0;
  /** When a write last ran into the bound, until the next commit (see writesStalled). */
  let boundHitAt: number | undefined;
  let watchdog: NodeJS.Timeout | undefined;
  // What every batch's statement runs on. It maps no entities and starts no transaction, so one fork serves every
  // batch and never grows; a fork, not the root manager, which would run the statement in whatever transaction
  // the caller that started the pump happens to be in.
  const writer = orm.em.fork();

  function append(request: AppendRequest): Promise<Appended> {
    if (queue.length >= options.maxQueued || stalled >= MAX_STALLED) {
      // Overloaded, or the database is not committing: a client waiting past its ack timeout would retry on top of
      // the backlog, and work piled up here would all fail together anyway.
      return Promise.reject(new GatewayError(ErrorCode.UNAVAILABLE, 'the gateway is overloaded; retry shortly', { retryAfterMs: 1000 }));
    }
    return new Promise((resolve, reject) => {
      queue.push({ request, resolve, reject, queuedAt: performance.now() });
      pump();
      watch();
    });
  }

  function pump() {
    while (inFlight < options.concurrency && queue.length > 0) {
      const batch = queue.splice(0, options.maxBatch);
      const run: Running = { startedAt: performance.now(), stalled: false };
      running.add(run);
      inFlight++;
      void commit(batch, run.startedAt + options.timeoutMs).finally(() => {
        running.delete(run);
        if (run.stalled) stalled--;
        else inFlight--;
        pump();
      });
    }
  }

  /** Enforces the write bound; runs only while there is work. */
  function watch() {
    watchdog ??= setInterval(
      () => {
        const now = performance.now();
        // First in, first out: the appends waiting longest are at the head.
        while (queue.length > 0 && now - queue[0]!.queuedAt > options.timeoutMs) {
          boundHitAt = now;
          queue
            .shift()!
            .reject(
              new GatewayError(ErrorCode.UNAVAILABLE, 'the database did not take the write in time; retry shortly', { retryAfterMs: 1000 }),
            );
        }
        for (const run of running) {
          if (!run.stalled && now - run.startedAt > options.timeoutMs * STALL_SHARE) {
            run.stalled = true;
            inFlight--;
            stalled++;
          }
        }
        pump();
        if (queue.length === 0 && running.size === 0) {
          clearInterval(watchdog);
          watchdog = undefined;
        }
      },
      Math.max(25, Math.floor((options.timeoutMs * STALL_SHARE) / 4)),
    );
    watchdog.unref();
  }

  /** How long the oldest batch in flight has been running (0 when none is): a hung database shows here first. */
  function oldestWriteMs(): number {
    let oldest = 0;
    const now = performance.now();
    for (const run of running) oldest = Math.max(oldest, now - run.startedAt);
    return oldest;
  }

  /**
   * Whether writes stall past the bound: one is running past it, or the last one to end ran into it (a lock held
   * elsewhere, a database that does not answer) and nothing has committed since, for up to twice the bound. The
   * outcome is what tells: PostgreSQL's statement timeout is the bound itself and ends a blocked write right there,
   * so a write in flight is hardly ever seen past it.
   */
  function writesStalled(): boolean {
    if (oldestWriteMs() > options.timeoutMs) return true;
    return boundHitAt !== undefined && performance.now() - boundHitAt < 2 * options.timeoutMs;
  }

  async function commit(batch: Pending[], deadline: number) {
    // Optimistic about idempotency keys: repeats are rare, so a batch first writes without looking them up (the
    // statement itself checks them, and writes nothing when one is stored). It is then written again, looking
    // its keys up first. One round trip less per batch in the usual case.
    let lookUpKeys = false;
    for (let attempt = 1; ; attempt++) {
      try {
        const results = await attemptBatch(
          batch.map((p) => p.request),
          lookUpKeys,
        );
        counted('committed');
        boundHitAt = undefined;
        batch.forEach((p, i) => {
          p.resolve(results[i]!);
        });
        return;
      } catch (err) {
        counted(
          err instanceof RepeatedKey
            ? 'repeated_key'
            : err instanceof UniqueConstraintViolationException
              ? 'conflict'
              : err instanceof DeadlockException
                ? 'deadlock'
                : 'failed',
        );
        if (ranIntoTheBound(err)) boundHitAt = performance.now();
        // A lock that was not granted within the bound (lock_timeout) would not be granted on a retry either. A key
        // stored by another node between the statement's check and its insert fails on the unique index instead.
        const retryable =
          err instanceof RepeatedKey || err instanceof UniqueConstraintViolationException || err instanceof DeadlockException;
        if (err instanceof RepeatedKey || err instanceof UniqueConstraintViolationException) lookUpKeys = true;
        if (retryable && attempt < MAX_ATTEMPTS && performance.now() < deadline) continue;
        if (batch.length > 1 && !isDatabaseUnavailable(err)) {
          // One append's failure must not fail the others: commit each on its own, so only the culprit fails.
          await Promise.all(batch.map((p) => commit([p], deadline)));
        } else {
          for (const p of batch) p.reject(err);
        }
        return;
      }
    }
  }

  async function attemptBatch(requests: AppendRequest[], lookUpKeys: boolean): Promise<Appended[]> {
    const results: (Appended | undefined)[] = new Array(requests.length);
    const stored = lookUpKeys ? await findStored(orm.em.fork(), requests) : new Map<string, StoredAppend>();

    // The first request of each key writes; the others answer with what it wrote.
    const leaders = new Map<string, number>();
    const followers: [index: number, leader: number][] = [];
    const toWrite: number[] = [];
    requests.forEach((r, i) => {
      const key = keyOf(r);
      const existing = key ? stored.get(key) : undefined;
      if (existing) {
        results[i] = { kind: 'duplicate', ...existing };
      } else if (key && leaders.has(key)) {
        followers.push([i, leaders.get(key)!]);
      } else {
        if (key) leaders.set(key, i);
        toWrite.push(i);
      }
    });

    if (toWrite.length > 0) await writeBatch(writer, requests, toWrite, results);
    for (const [i, leader] of followers) {
      const first = results[leader]!;
      results[i] = first.kind === 'stored' ? { kind: 'duplicate', message: first.message, conversation: first.conversation } : first;
    }
    return results as Appended[];
  }

  return { append, oldestWriteMs, writesStalled };
}

/** A write PostgreSQL ended at the bound (statement or lock timeout), or whose answer the driver stopped waiting for. */
function ranIntoTheBound(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown } | undefined;
  return e?.code === '57014' || e?.code === '55P03' || (typeof e?.message === 'string' && /Query read timeout/i.test(e.message));
}

export type AppendBatcher = ReturnType<typeof createAppendBatcher>;
