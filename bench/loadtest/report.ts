/**
 * The report of one run: the JSON document (what `runLoad()` returns and `loadtest-<run id>.json` holds) and the
 * table printed at the end. Latencies are milliseconds; rates are per second.
 */
import type { TabConvergence } from './converge.ts';
import type { DistributionBucket, LatencyStats, PercentilePoint } from './histograms.ts';
import type { LoadOptions } from './options.ts';
import type { Verification } from './verify.ts';

export const LATENCY_ROWS = [
  ['connect', 'connect (handshake)'],
  ['ack', 'ack (send → ack)'],
  ['ackFromSchedule', 'ack from schedule (+ generator lag)'],
  ['fanout', 'fan-out (send → each other tab)'],
  ['fanoutAll', 'fan-out (send → all other tabs)'],
  ['assistantFirstDelta', 'assistant first delta'],
  ['assistantComplete', 'assistant complete'],
  ['schedulerLag', 'scheduler lag (generator)'],
] as const;

export type LatencyName = (typeof LATENCY_ROWS)[number][0];

export interface LoadReport {
  tool: 'chat-gateway-loadtest';
  version: 1;
  runId: string;
  startedAt: string;
  finishedAt: string;
  options: Omit<LoadOptions, 'secret'>;
  environment: { node: string; host: string; cpus: number; loadavg: number[] };
  /** Seconds spent per phase (observe and converge: `converged` mode only). */
  phases: {
    connectS: number;
    conversationsS: number;
    observeS: number;
    sendS: number;
    drainS: number;
    convergeS: number;
    verifyS: number;
  };
  counts: {
    /** Messages the schedule offered. */
    scheduled: number;
    sent: number;
    /** Due but not emitted: none of the user's tabs was connected. */
    notSent: number;
    acked: number;
    refused: number;
    /** Emitted, never answered (socket dropped, or the drain timed out). */
    unknown: number;
    /** First `message:created` per (tab, message). */
    receipts: number;
    duplicateReceipts: number;
    /** `message:created` of messages this run did not send (other clients of the same users). */
    foreignReceipts: number;
    replies: number;
  };
  errorsByCode: Record<string, number>;
  connections: {
    tabs: number;
    disconnects: number;
    disconnectReasons: Record<string, number>;
    reconnects: number;
    tabsDisconnected: number;
  };
  latency: Record<LatencyName, LatencyStats>;
  throughput: {
    /** The peak offered rate (--rate). */
    offeredPeakPerS: number;
    /** Sent, acked and received over the whole send window, ramp included. */
    sentPerS: number;
    ackedPerS: number;
    receiptsPerS: number;
    /** Acks per second for messages sent after the ramp, and the rate offered then. */
    steadyAckedPerS: number | null;
    steadyOfferedPerS: number | null;
    sendWindowS: number;
  };
  /** Per second of the run (second 0 = first send); latencies by the second the message was sent. */
  series: {
    second: number[];
    offered: number[];
    sent: number[];
    acked: number[];
    received: number[];
    errors: number[];
    ackP50: (number | null)[];
    ackP99: (number | null)[];
    fanoutP50: (number | null)[];
    fanoutP99: (number | null)[];
  };
  distributions: Partial<Record<LatencyName, DistributionBucket[]>>;
  percentiles: Partial<Record<LatencyName, PercentilePoint[]>>;
  /** HdrHistogram compressed base64 (µs): decode with any HDR library to merge runs or re-plot. */
  hdr: Partial<Record<LatencyName, string>>;
  /** The load generator's own health: if it was starved, the latencies above include its delays. */
  generator: { cpuPercentOfOneCore: number; eventLoopDelayP99Ms: number; eventLoopDelayMaxMs: number; maxRssMB: number };
  verification: Verification;
  /** `--verify converged`: how the observer tabs converged on storage; null in `receipts` mode. */
  convergence: ConvergenceReport | null;
  cleanup: { requested: boolean; usersErased: number; failures: number } | null;
  /** Files written (empty when reportDir is null). */
  files: string[];
  /** 0 when verification passed, 1 otherwise. */
  exitCode: 0 | 1;
  notes: string[];
}

export interface ConvergenceReport {
  observerTabs: number;
  /** Observer tabs per user. */
  perUser: number;
  converged: number;
  notConverged: number;
  /** Over the converged tabs: from the end of the sending to matching storage for good. */
  afterLoadMs: { median: number; max: number } | null;
  /** How long the check waited after the drain (at most `timeoutS`), and the rounds of reads it took. */
  waitedMs: number;
  timeoutS: number;
  rounds: number;
  /** The bound passed with tabs not matching or storage still changing (replies streaming, replies not stored). */
  timedOut: boolean;
  /** The tabs that did not converge (the first 100), with their first differences. */
  notConvergedTabs: TabConvergence[];
  /** The observers' own connections, and the failures their SDK reported (a catch-up that failed while a node was away). */
  disconnects: number;
  reconnects: number;
  sdkErrors: number;
  firstSdkErrors: string[];
}

export const fmtInt = (n: number) => Math.round(n).toLocaleString('en-US');

export function fmtMs(ms: number): string {
  if (ms >= 1000) return ms.toFixed(0);
  if (ms >= 100) return ms.toFixed(1);
  return ms.toFixed(2);
}

const pad = (s: string, n: number) => s.padStart(n);

/** The human summary printed at the end of a run. */
export function formatTable(r: LoadReport): string {
  const o = r.options;
  const lines: string[] = [];
  lines.push(
    `chat-gateway load test ${r.runId}: ${o.urls.length} node(s), ${fmtInt(o.users)} users × ${o.tabs} tabs` +
      (o.observers ? ` (+ ${o.observers} observer tabs)` : '') +
      `, offered ${fmtInt(o.rate)} msg/s ` +
      `(ramp ${o.rampS} s) for ${o.durationS} s, ${o.size} chars, assistant ${o.assistant ? 'measured' : 'not measured'}`,
  );
  lines.push('');
  lines.push(`${'latency (ms)'.padEnd(34)}${pad('count', 9)}${pad('p50', 9)}${pad('p95', 9)}${pad('p99', 9)}${pad('max', 9)}`);
  for (const [key, label] of LATENCY_ROWS) {
    const s = r.latency[key];
    if ((key === 'assistantFirstDelta' || key === 'assistantComplete') && !o.assistant) continue;
    if (key === 'fanoutAll' && o.tabs < 3) continue;
    if ((key === 'fanout' || key === 'fanoutAll') && o.tabs < 2) continue;
    lines.push(
      `${label.padEnd(34)}${pad(fmtInt(s.count), 9)}${pad(fmtMs(s.p50Ms), 9)}${pad(fmtMs(s.p95Ms), 9)}${pad(fmtMs(s.p99Ms), 9)}${pad(fmtMs(s.maxMs), 9)}`,
    );
  }
  lines.push('');
  const t = r.throughput;
  const c = r.counts;
  lines.push(
    `throughput   offered ${fmtInt(c.scheduled)} msgs in ${t.sendWindowS} s · sent ${fmtInt(t.sentPerS)}/s · acked ${fmtInt(t.ackedPerS)}/s` +
      (t.steadyAckedPerS !== null
        ? ` (after the ramp ${fmtInt(t.steadyAckedPerS)}/s of ${fmtInt(t.steadyOfferedPerS ?? 0)}/s offered)`
        : '') +
      ` · receipts ${fmtInt(t.receiptsPerS)}/s`,
  );
  lines.push(
    `messages     sent ${fmtInt(c.sent)} · acked ${fmtInt(c.acked)} · refused ${fmtInt(c.refused)} · no answer ${fmtInt(c.unknown)} · not sent ${fmtInt(c.notSent)}` +
      (o.assistant ? ` · replies ${fmtInt(c.replies)}` : ''),
  );
  const errors = Object.entries(r.errorsByCode).filter(([, n]) => n > 0);
  lines.push(`errors       ${errors.length ? errors.map(([code, n]) => `${code} ${fmtInt(n)}`).join(' · ') : 'none'}`);
  const cn = r.connections;
  const reasons = Object.entries(cn.disconnectReasons)
    .map(([why, n]) => `${why} ${n}`)
    .join(', ');
  lines.push(
    `connections  ${fmtInt(cn.tabs)} tabs · ${fmtInt(cn.disconnects)} disconnects${reasons ? ` (${reasons})` : ''} · ${fmtInt(cn.reconnects)} reconnects`,
  );
  const g = r.generator;
  lines.push(
    `generator    CPU ${g.cpuPercentOfOneCore.toFixed(0)} % of one core · event-loop delay p99 ${fmtMs(g.eventLoopDelayP99Ms)} ms, max ${fmtMs(g.eventLoopDelayMaxMs)} ms · RSS ${fmtInt(g.maxRssMB)} MB`,
  );
  for (const note of r.notes) lines.push(`note         ${note}`);
  lines.push('');
  const v = r.verification;
  const k = v.checked;
  if (r.convergence) lines.push(...convergedVerdict(r, r.convergence));
  else if (v.ok) {
    lines.push(
      `VERIFIED     ${fmtInt(k.acked)} acked messages each received exactly once by all ${o.tabs} tabs of their user (${fmtInt(k.receiptsExpected)} receipts)` +
        (k.conversations
          ? `, stored exactly once in ${fmtInt(k.conversations)} conversations with gap-free seqs (${fmtInt(k.storedMessages)} stored messages)`
          : '') +
        (o.assistant ? `; ${fmtInt(k.replies)} assistant replies seen start to end by every tab` : ''),
    );
    if (k.unknown > 0)
      lines.push(`             ${fmtInt(k.unknown)} sends had no answer; ${fmtInt(k.unknownStored)} of them are stored (once each)`);
  }
  if (!v.ok) {
    lines.push(
      `FAILED       ${fmtInt(v.totalProblems)} problem(s): ${Object.entries(v.problemCounts)
        .map(([kind, n]) => `${kind} ${fmtInt(n!)}`)
        .join(' · ')}`,
    );
    const shown = v.problems.slice(0, 25);
    for (const p of shown) {
      lines.push(
        `  ${p.kind.padEnd(24)} ${p.userId}${p.clientMessageId ? ` ${p.clientMessageId}` : ''}${p.seq !== undefined ? ` seq ${p.seq}` : ''}` +
          `${p.observer !== undefined ? ` observer ${p.observer}` : ''}: ${p.detail}`,
      );
    }
    if (v.totalProblems > shown.length)
      lines.push(`  … and ${fmtInt(v.totalProblems - shown.length)} more (the JSON report lists up to ${fmtInt(v.problems.length)})`);
  }
  if (r.cleanup)
    lines.push(`cleanup      erased ${fmtInt(r.cleanup.usersErased)} users${r.cleanup.failures ? `, ${r.cleanup.failures} failed` : ''}`);
  if (r.files.length) lines.push(`reports      ${r.files.join('  ')}`);
  return lines.join('\n');
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

/** The verdict of `--verify converged`: tabs converged, then what storage says, then what was seen live (not judged). */
function convergedVerdict(r: LoadReport, c: ConvergenceReport): string[] {
  const v = r.verification;
  const k = v.checked;
  const n = (kind: keyof typeof v.problemCounts) => fmtInt(v.problemCounts[kind] ?? 0);
  const word = v.ok ? 'CONVERGED' : c.notConverged > 0 ? 'NOT CONVERGED' : 'FAILED';
  const lines = [
    `verdict      ${word}: ${fmtInt(c.converged)} of ${fmtInt(c.observerTabs)} observer tabs (${c.perUser} per user) match storage, ` +
      `${fmtInt(c.notConverged)} do not (messages: ids, seq order, content, status; conversation list)`,
    `convergence  ${c.afterLoadMs ? `after the load stopped: median ${seconds(c.afterLoadMs.median)}, max ${seconds(c.afterLoadMs.max)}` : 'no tab converged'}` +
      ` · waited ${seconds(c.waitedMs)}${c.timedOut ? ` (the bound, --converge-timeout ${c.timeoutS})` : ` of at most ${c.timeoutS} s`}, ${fmtInt(c.rounds)} rounds of reads`,
    `storage      ${fmtInt(k.acked)} acked · lost ${n('stored-missing')} (acked, not stored) · duplicated ${n('stored-duplicate')} (stored twice) · ` +
      `replies not final ${n('reply-not-final')} · ${fmtInt(k.storedMessages)} stored messages in ${fmtInt(k.conversations)} conversations`,
  ];
  const replies = Object.entries(k.repliesByStatus);
  const failures = Object.entries(k.replyFailures)
    .map(([code, count]) => `${code} ${fmtInt(count)}`)
    .join(', ');
  if (replies.length) {
    lines.push(
      `replies      stored: ${replies.map(([status, count]) => `${status} ${fmtInt(count)}${status === 'failed' && failures ? ` (${failures})` : ''}`).join(' · ')}` +
        (r.options.assistant ? '' : ' · a reply that never came is not judged without --assistant'),
    );
  }
  if (k.unknown > 0)
    lines.push(
      `no answer    ${fmtInt(k.unknown)} send(s): ${fmtInt(k.unknownStored)} stored once, ${fmtInt(k.unknown - k.unknownStored)} not stored`,
    );
  lines.push(
    `live         ${fmtInt(k.liveReceiptsMissed)} of ${fmtInt(k.acked * r.options.tabs)} receipts missed by the load tabs, ${fmtInt(k.liveReceiptsDuplicated)} duplicated ` +
      `(not judged in this mode; ${fmtInt(r.connections.tabsDisconnected)} load tabs lost their connection)`,
  );
  lines.push(
    `observers    ${fmtInt(c.disconnects)} disconnects · ${fmtInt(c.reconnects)} reconnects · ${fmtInt(c.sdkErrors)} SDK errors` +
      (c.firstSdkErrors.length ? ` (first: ${c.firstSdkErrors[0]})` : ''),
  );
  return lines;
}
