/**
 * `runLoad(options) → report`: one load test, from connecting the tabs to verifying what was stored. The CLI
 * (cli.ts) and the bench orchestrator call it in-process. It never exits the process and prints nothing but the
 * progress line (unless `quiet`); usage errors throw UsageError, setup failures SetupError, and a run that
 * completes returns its report whatever the verification found (`report.exitCode`, `report.verification.ok`).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, hostname, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { Fleet, pool, SetupError } from './fleet.ts';
import type { Latency } from './histograms.ts';
import { publicOptions, resolveOptions, UsageError, type LoadOptions } from './options.ts';
import { Progress, type ProgressSnapshot } from './progress.ts';
import { LATENCY_ROWS, type LatencyName, type LoadReport } from './report.ts';
import { renderHtml } from './report-html.ts';
import { Schedule } from './schedule.ts';
import { Outcome, Tracker } from './tracker.ts';
import { readStored, verify, type StoredConversation } from './verify.ts';

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
  /** Called as each phase begins: connect, setup, send, drain, verify, cleanup (a bench measures one phase). */
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

  const times = { connectS: 0, conversationsS: 0, sendS: 0, drainS: 0, verifyS: 0 };
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
    times.sendS = lap();

    // ---- drain: wait for the answers, receipts and replies still in flight ----
    setPhase('drain');
    const drainDeadline = performance.now() + o.drainTimeoutS * 1000;
    const drained = () => tracker.pending === 0 && tracker.outstandingReceipts === 0 && (!o.assistant || tracker.outstandingEnds === 0);
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
    tracker.finishAssistant();

    // ---- verification ----
    const context: RunContext = {
      options: o,
      users: fleet.users.map((u) => ({ userId: u.userId, conversationId: u.conversationId, token: u.token })),
    };
    await hooks.beforeVerify?.(context);
    let stored: StoredConversation[] | undefined;
    if (o.verifyStorage) {
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
      replies: o.assistant ? tracker.replyObservations() : undefined,
      disconnectedTabs: [...fleet.disconnectedTabs],
      misrouted: tracker.misrouted,
      ackMismatches: tracker.ackMismatches.map((m) => ({ clientMessageId: tracker.clientMessageId(m.k), userId: userIds[m.k % o.users]!, detail: m.detail })),
    });
    times.verifyS = lap();

    let cleanup: LoadReport['cleanup'] = null;
    if (o.cleanup) {
      setPhase('cleanup', `erasing ${o.users} users`);
      cleanup = await eraseUsers(context.users, o.urls, o.verifyConcurrency);
    }

    const notes: string[] = [];
    if (scheduled < schedule.total) notes.push(`stopped early after ${sendWindowS.toFixed(1)} s: ${scheduled} of ${schedule.total} scheduled messages were due`);
    if (!o.verifyStorage) notes.push('storage was not checked (--skip-storage): only live delivery was verified');
    if (!fullyDrained) notes.push(`the drain timed out after ${o.drainTimeoutS} s with answers, receipts or replies outstanding`);
    if (generator.eventLoopDelayP99Ms > 50) {
      notes.push(`the generator's event loop lagged (p99 ${generator.eventLoopDelayP99Ms} ms): latencies include its own delays; run it on a machine of its own, or split the tabs over several processes`);
    }
    const lag = tracker.schedulerLag.stats();
    if (lag.p99Ms > 100) notes.push(`the generator emitted late (scheduler lag p99 ${lag.p99Ms} ms): the offered rate was not fully held`);
    if (o.assistant && tracker.repliesSeen === 0 && tracker.acked > 0) {
      notes.push('no assistant reply arrived at all: is the gateway running with ASSISTANT=none?');
    }
    const refusedRate = tracker.errorsByCode.get('RATE_LIMITED') ?? 0;
    if (refusedRate > 0) {
      notes.push(
        `${refusedRate} sends were RATE_LIMITED: each user sent ${(o.rate / o.users).toFixed(2)} msg/s; start the gateway with SEND_RATE_LIMIT above ` +
          `that × SEND_RATE_WINDOW_S with headroom (e.g. ${Math.ceil((o.rate / o.users) * 10 * 2)} for the default 10 s window)`,
      );
    }

    report = buildReport({ o, schedule, scheduled, sendWindowS, tracker, fleet, startedAt, times, generator, verification, cleanup, notes });
  } catch (err) {
    fleet.close();
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
    await writeFile(`${base}.json`, JSON.stringify(report, null, 2) + '\n');
    if (!o.jsonOnly) await writeFile(`${base}.html`, renderHtml(report));
  }
  return report;
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
        throw new SetupError(`${url} is not reachable: ${(err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message}`);
      }
      await res.arrayBuffer();
      if (res.status >= 502 && res.status <= 504) throw new SetupError(`${url}/healthz answered ${res.status}`);
    }),
  );
}

/** DELETE /api/me for every test user: their conversations and messages go with them. */
async function eraseUsers(users: RunContext['users'], urls: string[], concurrency: number): Promise<{ requested: true; usersErased: number; failures: number }> {
  let usersErased = 0;
  let failures = 0;
  await pool(users, concurrency, async (u, i) => {
    const url = urls[i % urls.length]!;
    try {
      const res = await fetch(`${url}/api/me`, { method: 'DELETE', headers: { authorization: `Bearer ${u.token()}` }, signal: AbortSignal.timeout(30_000) });
      await res.arrayBuffer();
      if (res.status === 204) usersErased++;
      else failures++;
    } catch {
      failures++;
    }
  });
  return { requested: true, usersErased, failures };
}

interface BuildInput {
  o: LoadOptions;
  schedule: Schedule;
  /** Messages that became due (all of the schedule, unless stopped early). */
  scheduled: number;
  sendWindowS: number;
  tracker: Tracker;
  fleet: Fleet;
  startedAt: Date;
  times: LoadReport['phases'];
  generator: LoadReport['generator'];
  verification: LoadReport['verification'];
  cleanup: LoadReport['cleanup'];
  notes: string[];
}

function buildReport(b: BuildInput): LoadReport {
  const { o, schedule, tracker: t, fleet } = b;
  const histograms: Record<LatencyName, Latency> = {
    connect: fleet.connect,
    ack: t.ack,
    ackFromSchedule: t.ackFromSchedule,
    fanout: t.fanout,
    fanoutAll: t.fanoutAll,
    assistantFirstDelta: t.firstDelta,
    assistantComplete: t.complete,
    schedulerLag: t.schedulerLag,
  };
  const latency = {} as LoadReport['latency'];
  const distributions: LoadReport['distributions'] = {};
  const percentiles: LoadReport['percentiles'] = {};
  const hdr: LoadReport['hdr'] = {};
  for (const [name] of LATENCY_ROWS) {
    const h = histograms[name];
    latency[name] = h.stats();
    if (h.count > 0) {
      distributions[name] = h.distribution();
      percentiles[name] = h.percentileCurve();
      hdr[name] = h.encoded();
    }
  }

  const n = Math.max(Math.ceil(b.sendWindowS), t.sentPerSecond.length, t.ackedPerSecond.length, t.receivedPerSecond.length, t.errorsPerSecond.length);
  const ack = t.ackPerSecond.series(n);
  const fan = t.fanoutPerSecond.series(n);
  const end = b.sendWindowS;
  const offered = Array.from({ length: n }, (_, s) => Math.round(schedule.countAt(Math.min(s + 1, end)) - schedule.countAt(Math.min(s, end))));

  // After the ramp: acks of messages sent in [ramp, duration], over that window.
  let steadyAcked = 0;
  let steadyScheduled = 0;
  const steadyS = b.sendWindowS - schedule.rampS;
  if (steadyS >= 1) {
    const fromMs = schedule.rampS * 1000;
    for (let k = 0; k < b.scheduled; k++) {
      if (schedule.dueAt(k) * 1000 < fromMs) continue;
      steadyScheduled++;
      if (t.outcome[k] === Outcome.ACKED) steadyAcked++;
    }
  }
  const window = Math.max(b.sendWindowS, 1e-3);
  const round1 = (x: number) => Math.round(x * 10) / 10;
  const disconnects = [...fleet.disconnectReasons.values()].reduce((a, c) => a + c, 0);

  return {
    tool: 'chat-gateway-loadtest',
    version: 1,
    runId: o.runId,
    startedAt: b.startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    options: publicOptions(o),
    environment: { node: process.version, host: hostname(), cpus: cpus().length, loadavg: loadavg().map((x) => Math.round(x * 100) / 100) },
    phases: b.times,
    counts: {
      scheduled: b.scheduled,
      sent: t.sent,
      notSent: t.notSent,
      acked: t.acked,
      refused: t.refused,
      unknown: t.unknown,
      receipts: t.receiptsFirst,
      duplicateReceipts: t.duplicateReceipts,
      foreignReceipts: t.foreignReceipts,
      replies: t.repliesSeen,
    },
    errorsByCode: Object.fromEntries([...t.errorsByCode].filter(([, c]) => c > 0).sort()),
    connections: {
      tabs: fleet.tabCount,
      disconnects,
      disconnectReasons: Object.fromEntries(fleet.disconnectReasons),
      reconnects: fleet.reconnects,
      tabsDisconnected: fleet.disconnectedTabs.size,
    },
    latency,
    throughput: {
      offeredPeakPerS: o.rate,
      sentPerS: round1(t.sent / window),
      ackedPerS: round1(t.acked / window),
      receiptsPerS: round1(t.receiptsFirst / window),
      steadyAckedPerS: steadyS >= 1 ? round1(steadyAcked / steadyS) : null,
      steadyOfferedPerS: steadyS >= 1 ? round1(steadyScheduled / steadyS) : null,
      sendWindowS: Math.round(window * 1000) / 1000,
    },
    series: {
      second: Array.from({ length: n }, (_, s) => s),
      offered,
      sent: t.sentPerSecond.series(n),
      acked: t.ackedPerSecond.series(n),
      received: t.receivedPerSecond.series(n),
      errors: t.errorsPerSecond.series(n),
      ackP50: ack.p50,
      ackP99: ack.p99,
      fanoutP50: fan.p50,
      fanoutP99: fan.p99,
    },
    distributions,
    percentiles,
    hdr,
    generator: b.generator,
    verification: b.verification,
    cleanup: b.cleanup,
    files: [],
    exitCode: b.verification.ok ? 0 : 1,
    notes: b.notes,
  };
}
