/**
 * From what a run observed to its report document: the latency histograms, the per-second series, the throughput
 * after the ramp, and the notes that tell a reader when the figures need a caveat.
 */
import { cpus, hostname, loadavg } from 'node:os';
import type { ConvergenceResult } from './converge.ts';
import type { Fleet } from './fleet.ts';
import type { Latency } from './histograms.ts';
import type { Observers } from './observers.ts';
import { publicOptions, type LoadOptions } from './options.ts';
import { LATENCY_ROWS, type LatencyName, type LoadReport } from './report.ts';
import type { Schedule } from './schedule.ts';
import { Outcome, type Tracker } from './tracker.ts';

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
  /** `converged` mode only. */
  convergence?: ConvergenceResult;
  observers?: Observers;
  cleanup: LoadReport['cleanup'];
  /** Whether every answer, receipt and reply came in before the drain timed out. */
  fullyDrained: boolean;
}

export function buildReport(b: BuildInput): LoadReport {
  const { o, schedule, tracker: t, fleet } = b;
  const histograms: Record<LatencyName, Latency> = {
    connect: fleet.connect,
    ack: t.ack,
    ackFromSchedule: t.ackFromSchedule,
    fanout: t.fanout,
    fanoutAll: t.fanoutAll,
    assistantFirstDelta: t.replies.firstDelta,
    assistantComplete: t.replies.complete,
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

  const n = Math.max(
    Math.ceil(b.sendWindowS),
    t.sentPerSecond.length,
    t.ackedPerSecond.length,
    t.receivedPerSecond.length,
    t.errorsPerSecond.length,
  );
  const ack = t.ackPerSecond.series(n);
  const fan = t.fanoutPerSecond.series(n);
  const end = b.sendWindowS;
  const offered = Array.from({ length: n }, (_, s) =>
    Math.round(schedule.countAt(Math.min(s + 1, end)) - schedule.countAt(Math.min(s, end))),
  );

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
      replies: t.replies.repliesSeen,
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
    convergence: convergenceReport(b),
    cleanup: b.cleanup,
    files: [],
    exitCode: b.verification.ok ? 0 : 1,
    notes: notesOf(b),
  };
}

/** Tabs described one by one in the report; the rest are counted. */
const KEPT_TABS = 100;

function convergenceReport(b: BuildInput): LoadReport['convergence'] {
  const c = b.convergence;
  const obs = b.observers;
  if (!c || !obs) return null;
  return {
    observerTabs: c.observerTabs,
    perUser: b.o.observers,
    converged: c.converged,
    notConverged: c.notConverged,
    afterLoadMs: c.afterLoadMs,
    waitedMs: c.waitedMs,
    timeoutS: b.o.convergeTimeoutS,
    rounds: c.rounds,
    timedOut: c.timedOut,
    notConvergedTabs: c.tabs.filter((t) => t.convergedAfterMs === null).slice(0, KEPT_TABS),
    disconnects: obs.disconnects,
    reconnects: obs.reconnects,
    sdkErrors: obs.errors,
    firstSdkErrors: obs.firstErrors,
  };
}

/** Caveats: an early stop, a skipped storage check, a timed-out drain, a lagging generator, refused sends. */
function notesOf(b: BuildInput): string[] {
  const { o, schedule, scheduled, sendWindowS, fullyDrained, generator, tracker } = b;
  const notes: string[] = [];
  if (scheduled < schedule.total)
    notes.push(`stopped early after ${sendWindowS.toFixed(1)} s: ${scheduled} of ${schedule.total} scheduled messages were due`);
  if (!o.verifyStorage) notes.push('storage was not checked (--skip-storage): only live delivery was verified');
  if (!fullyDrained) {
    notes.push(
      o.verify === 'converged'
        ? `the drain timed out after ${o.drainTimeoutS} s with answers outstanding`
        : `the drain timed out after ${o.drainTimeoutS} s with answers, receipts or replies outstanding`,
    );
  }
  if (b.convergence?.timedOut) {
    notes.push(
      `convergence was still awaited when --converge-timeout ${o.convergeTimeoutS} s passed (tabs not matching, or replies still streaming or not stored): the verdict is what held then`,
    );
  }
  if (generator.eventLoopDelayP99Ms > 50) {
    notes.push(
      `the generator's event loop lagged (p99 ${generator.eventLoopDelayP99Ms} ms): latencies include its own delays; run it on a machine of its own, or split the tabs over several processes`,
    );
  }
  const lag = tracker.schedulerLag.stats();
  if (lag.p99Ms > 100) notes.push(`the generator emitted late (scheduler lag p99 ${lag.p99Ms} ms): the offered rate was not fully held`);
  if (o.assistant && tracker.replies.repliesSeen === 0 && tracker.acked > 0) {
    notes.push('no assistant reply arrived at all: is the gateway running with ASSISTANT=none?');
  }
  const refusedRate = tracker.errorsByCode.get('RATE_LIMITED') ?? 0;
  if (refusedRate > 0) {
    notes.push(
      `${refusedRate} sends were RATE_LIMITED: each user sent ${(o.rate / o.users).toFixed(2)} msg/s; start the gateway with SEND_RATE_LIMIT above ` +
        `that × SEND_RATE_WINDOW_S with headroom (e.g. ${Math.ceil((o.rate / o.users) * 10 * 2)} for the default 10 s window)`,
    );
  }
  return notes;
}
