/**
 * `runLoad(options) → report`: one load test, from connecting the tabs to verifying what was stored. The CLI
 * (cli.ts) and the bench orchestrator call it in-process. It never exits the process and prints nothing but the
 * progress line (unless `quiet`); usage errors throw UsageError, setup failures SetupError, and a run that
 * completes returns its report whatever the verification found (`report.exitCode`, `report.verification.ok`).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { awaitConvergence, type ConvergenceResult } from './converge.ts';
import { Fleet, pool, SetupError } from './fleet.ts';
import { Observers } from './observers.ts';
import { resolveOptions, UsageError, type LoadOptions } from './options.ts';
import { Progress, type ProgressSnapshot } from './progress.ts';
import type { LoadReport } from './report.ts';
import { buildReport } from './report-build.ts';
import { renderHtml } from './report-html.ts';
import { Schedule } from './schedule.ts';
import { readStored } from './stored.ts';
import { Outcome, Tracker } from './tracker.ts';
import { verify, type StoredConversation } from './verify.ts';

export { SetupError, UsageError };

/** What the run hands to hooks: the users, their conversations and a token minter per user. */
export interface RunContext {
  options: LoadOptions;
  users: { userId: string; conversationId: string; token: () => string }[];
}

export interface RunHooks {
  /** Called after the drain and before the stored messages are read back (tests plant a loss here). */
  beforeVerify?: (ctx: RunContext) => void | Promise<void>;
  /** Where the progress line goes (default process.stderr). */
  progressStream?: NodeJS.WriteStream;
  /** Aborting stops the sending early; the run then drains, verifies and reports what was sent (the CLI's Ctrl-C). */
  signal?: AbortSignal;
  /**
   * Called as each phase begins: connect, setup, observe (`converged` mode), send, drain, converge (`converged`
   * mode), verify, cleanup (a bench measures one phase; a fault drill in a test kills a node during `send`).
   */
  onPhase?: (phase: string) => void;
}

/** How often the scheduler wakes up; every message due by then is emitted, each stamped at its own emit. */
const TICK_MS = 5;
/** The loop-delay histogram records whole timer intervals (this resolution included): the delay is the excess. */
const ELD_RESOLUTION_MS = 5;
const loopDelayMs = (ns: number) => Math.max(0, Math.round((ns / 1e6 - ELD_RESOLUTION_MS) * 100) / 100);

export async function runLoad(input: Partial<LoadOptions>, hooks: RunHooks = {}): Promise<LoadReport> {
  const o = resolveOptions(input);
  const schedule = new Schedule(o.rate, o.rampS, o.durationS);
  if (schedule.total < 1) throw new UsageError('the schedule holds no message: raise --rate or --duration');
  const startedAt = new Date();
  const tracker = new Tracker({ users: o.users, tabs: o.tabs, total: schedule.total, idPrefix: `lt:${o.runId}:`, assistant: o.assistant });
  const fleet = new Fleet(o, tracker);
  const observers = o.verify === 'converged' ? new Observers(o, fleet.users) : undefined;

  let phase = 'preflight';
  let note: string | undefined = 'checking the nodes';
  const phaseStart = performance.now();
  let sending = false;
  const snapshot = (): ProgressSnapshot => {
    const now = performance.now();
    const elapsedS = sending || tracker.t0 > 0 ? (now - tracker.t0) / 1000 : (now - phaseStart) / 1000;
    const lastFull = Math.floor(elapsedS) - 1;
    return {
      phase,
      elapsedS,
      sent: tracker.sent,
      acked: tracker.acked,
      received: tracker.receiptsFirst,
      errors: [...tracker.errorsByCode.values()].reduce((a, b) => a + b, 0),
      pending: tracker.pending,
      rate: lastFull >= 0 ? tracker.ackedPerSecond.at(lastFull) : 0,
      offered: sending ? schedule.rateAt(elapsedS) : 0,
      note,
    };
  };
  const progress = o.quiet ? undefined : new Progress(snapshot, hooks.progressStream);
  const setPhase = (p: string, n?: string) => {
    phase = p;
    note = n;
    hooks.onPhase?.(p);
    progress?.print(true);
  };
  progress?.start();

  const times = { connectS: 0, conversationsS: 0, observeS: 0, sendS: 0, drainS: 0, convergeS: 0, verifyS: 0 };
  const lap = (() => {
    let at = performance.now();
    return () => {
      const now = performance.now();
      const s = (now - at) / 1000;
      at = now;
      return Math.round(s * 1000) / 1000;
    };
  })();

  let report: LoadReport;
  try {
    await preflight(o.urls);

    // ---- setup ----
    let opened = 0;
    setPhase('connect', `0 / ${fleet.tabCount} tabs`);
    lap();
    await fleet.open(() => {
      note = `${++opened} / ${fleet.tabCount} tabs`;
    });
    times.connectS = lap();
    let created = 0;
    setPhase('setup', `0 / ${o.users} conversations`);
    await fleet.createConversations(o.connectConcurrency, () => {
      note = `${++created} / ${o.users} conversations`;
    });
    times.conversationsS = lap();
    if (observers) {
      let watching = 0;
      setPhase('observe', `0 / ${observers.count} observer tabs`);
      await observers.open(() => {
        note = `${++watching} / ${observers.count} observer tabs`;
      });
      times.observeS = lap();
    }
    if (hooks.signal?.aborted) throw new SetupError('interrupted during the setup');

    // ---- open-loop sending ----
    const eld = monitorEventLoopDelay({ resolution: ELD_RESOLUTION_MS });
    eld.enable();
    const cpu0 = process.cpuUsage();
    const wall0 = performance.now();
    tracker.t0 = performance.now();
    sending = true;
    setPhase('send');
    let scheduled = 0;
    await new Promise<void>((done) => {
      const tick = () => {
        const elapsedMs = performance.now() - tracker.t0;
        const stop = hooks.signal?.aborted ?? false;
        while (!stop && scheduled < schedule.total) {
          const dueMs = schedule.dueAt(scheduled) * 1000;
          if (dueMs > elapsedMs) break;
          fleet.send(scheduled++, dueMs);
        }
        if (stop || scheduled >= schedule.total) {
          clearInterval(timer);
          done();
        }
      };
      const timer = setInterval(tick, TICK_MS);
      tick();
    });
    const sendWindowS = hooks.signal?.aborted ? Math.min(schedule.durationS, (performance.now() - tracker.t0) / 1000) : schedule.durationS;
    sending = false;
    const loadStoppedAt = performance.now();
    times.sendS = lap();

    // ---- drain: wait for the answers, receipts and replies still in flight ----
    setPhase('drain');
    const drainDeadline = performance.now() + o.drainTimeoutS * 1000;
    // A fault loses receipts and reply ends for good; in converged mode the observers' views are awaited instead.
    const drained = () =>
      tracker.pending === 0 &&
      (observers !== undefined || (tracker.outstandingReceipts === 0 && (!o.assistant || tracker.replies.outstandingEnds === 0)));
    while (!drained() && performance.now() < drainDeadline) await sleep(20);
    const fullyDrained = drained();
    tracker.giveUp(performance.now());
    times.drainS = lap();
    eld.disable();
    const cpu = process.cpuUsage(cpu0);
    const wallMs = performance.now() - wall0;
    const generator = {
      cpuPercentOfOneCore: Math.round(((cpu.user + cpu.system) / 1000 / wallMs) * 1000) / 10,
      eventLoopDelayP99Ms: loopDelayMs(eld.percentile(99)),
      eventLoopDelayMaxMs: loopDelayMs(eld.max),
      maxRssMB: Math.round(process.resourceUsage().maxRSS / 1024),
    };
    fleet.close();
    tracker.replies.finish();

    // ---- verification ----
    const context: RunContext = {
      options: o,
      users: fleet.users.map((u) => ({ userId: u.userId, conversationId: u.conversationId, token: u.token })),
    };
    await hooks.beforeVerify?.(context);
    let stored: StoredConversation[] | undefined;
    let convergence: ConvergenceResult | undefined;
    if (observers) {
      setPhase('converge', `comparing ${observers.count} observer tabs with storage`);
      const acked = o.assistant ? ackedIdsByUser(tracker, o.users) : undefined;
      convergence = await awaitConvergence({
        users: context.users.map((u, i) => ({ ...u, observers: observers.of(i), replyTo: acked?.[i] })),
        urls: o.urls,
        concurrency: o.verifyConcurrency,
        timeoutMs: o.convergeTimeoutS * 1000,
        loadStoppedAt,
        onRound: (matching, total) => {
          note = `${matching} / ${total} observer tabs match storage`;
        },
      });
      observers.close();
      stored = convergence.stored;
      times.convergeS = lap();
    } else if (o.verifyStorage) {
      setPhase('verify', `reading ${o.users} conversations back`);
      stored = await readStored(context.users, o.urls, o.verifyConcurrency, (n) => {
        note = `read ${n} / ${o.users} conversations`;
      });
    }
    const userIds = fleet.users.map((u) => u.userId);
    const verification = verify({
      tabs: o.tabs,
      users: context.users,
      sent: tracker.sentMessages(userIds),
      stored,
      assistant: o.assistant,
      replies: o.assistant ? tracker.replies.observations() : undefined,
      disconnectedTabs: [...fleet.disconnectedTabs],
      mode: o.verify,
      observerTabs: convergence?.tabs,
      misrouted: tracker.misrouted,
      ackMismatches: tracker.ackMismatches.map((m) => ({
        clientMessageId: tracker.clientMessageId(m.k),
        userId: userIds[m.k % o.users]!,
        detail: m.detail,
      })),
    });
    times.verifyS = lap();

    let cleanup: LoadReport['cleanup'] = null;
    if (o.cleanup) {
      setPhase('cleanup', `erasing ${o.users} users`);
      cleanup = await eraseUsers(context.users, o.urls, o.verifyConcurrency);
    }

    report = buildReport({
      o,
      schedule,
      scheduled,
      sendWindowS,
      fullyDrained,
      tracker,
      fleet,
      startedAt,
      times,
      generator,
      verification,
      convergence,
      observers,
      cleanup,
    });
  } catch (err) {
    fleet.close();
    observers?.close();
    throw err;
  } finally {
    progress?.stop();
  }

  if (o.reportDir !== null) {
    const dir = resolve(o.reportDir);
    await mkdir(dir, { recursive: true });
    const base = join(dir, `loadtest-${o.runId}`);
    report.files.push(`${base}.json`);
    if (!o.jsonOnly) report.files.push(`${base}.html`);
    await writeFile(`${base}.json`, `${JSON.stringify(report, null, 2)}\n`);
    if (!o.jsonOnly) await writeFile(`${base}.html`, renderHtml(report));
  }
  return report;
}

/** Per user, the ids of its acknowledged messages: each must have a stored reply before storage counts as settled. */
function ackedIdsByUser(tracker: Tracker, users: number): string[][] {
  const out: string[][] = Array.from({ length: users }, () => []);
  for (let k = 0; k < tracker.total; k++) {
    const id = tracker.messageId[k];
    if (tracker.outcome[k] === Outcome.ACKED && id) out[k % users]!.push(id);
  }
  return out;
}

/**
 * Every node must answer HTTP before any socket is opened: a wrong URL fails in a second, not at a timeout. Any
 * answer will do (a bench-only transport server has no /healthz) except a proxy's 502/503/504 for a node that is down.
 */
async function preflight(urls: string[]): Promise<void> {
  await Promise.all(
    urls.map(async (url) => {
      let res: Response;
      try {
        res = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(5000) });
      } catch (err) {
        throw new SetupError(
          `${url} is not reachable: ${(err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message}`,
        );
      }
      await res.arrayBuffer();
      if (res.status >= 502 && res.status <= 504) throw new SetupError(`${url}/healthz answered ${res.status}`);
    }),
  );
}

/** DELETE /api/me for every test user: their conversations and messages go with them. */
async function eraseUsers(
  users: RunContext['users'],
  urls: string[],
  concurrency: number,
): Promise<{ requested: true; usersErased: number; failures: number }> {
  let usersErased = 0;
  let failures = 0;
  await pool(users, concurrency, async (u, i) => {
    const url = urls[i % urls.length]!;
    try {
      const res = await fetch(`${url}/api/me`, {
        method: 'DELETE',
        headers: { authorization: `Bearer ${u.token()}` },
        signal: AbortSignal.timeout(30_000),
      });
      await res.arrayBuffer();
      if (res.status === 204) usersErased++;
      else failures++;
    } catch {
      failures++;
    }
  });
  return { requested: true, usersErased, failures };
}
