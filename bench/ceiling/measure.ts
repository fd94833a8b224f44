/**
 * One mode's ceiling (transport or full gateway path): two fresh nodes, a warm-up, the offered rate stepped up until
 * a step fails twice or loses a message, then latency and CPU at the fixed rate.
 */
import { randomBytes } from 'node:crypto';
import { cpus } from 'node:os';
import { coreTicks, startCpuBudget, stolenPercentSince, type CpuBudget } from '../lib/cpu.ts';
import type { Cleanup } from '../lib/cleanup.ts';
import type { LoadReport } from '../loadtest/report.ts';
import { runLoad } from '../loadtest/run.ts';
import { startNode, type Node } from './nodes.ts';
import { FANOUT_P99_LIMIT_MS, FIXED_RATE, TABS, USERS, type Adapter, type BenchSettings } from './options.ts';

/** What every measurement works with, handed to each explicitly. */
export interface BenchContext {
  settings: BenchSettings;
  /** The nodes' JWT_SECRET; the load generator mints its tokens with it. */
  secret: string;
  databaseUrl: string;
  cleanup: Cleanup;
  say: (line: string) => void;
}

export interface Step {
  offered: number;
  acked: number;
  ackP99: number;
  fanoutP99: number;
  lost: boolean;
  passed: boolean;
  /** Share of the cores' time the host took during the step (a virtual machine's steal), in percent. */
  stolenPercent: number;
  /** 2 when the rate's first attempt failed and this is its second. */
  attempt: number;
  /** CPU milliseconds per acknowledged message, by part. */
  cpuPerMessageMs: CpuBudget['perMessageMs'];
}

export interface Ceiling {
  mode: string;
  ceilingMsgPerS: number;
  /** Every step passed: the real ceiling is higher than the last rate tried, so the figure is a lower bound. */
  capped: boolean;
  steps: Step[];
  fixed: { ackP50: number; ackP99: number; fanoutP50: number; fanoutP99: number; achieved: number; verified: boolean; cpu: CpuBudget };
}

export async function measure(
  ctx: BenchContext,
  mode: string,
  entry: string,
  adapter: Adapter,
  persistent: boolean,
  checkout?: string,
): Promise<Ceiling> {
  const { settings, say } = ctx;
  say(`\n${mode}`);
  const prefix = `bench-${randomBytes(4).toString('hex')}`;
  const nodes = await Promise.all(
    [0, 1].map((i) =>
      startNode(entry, nodeEnv(ctx, { NODE_ID: `bench-${i}`, REDIS_ADAPTER: adapter, REDIS_PREFIX: prefix }), {
        nodeArgs: settings.nodeArgs,
        cleanup: ctx.cleanup,
        checkout,
      }),
    ),
  );
  try {
    const urls = nodes.map((n) => n.url);
    if (settings.warmupS > 0) {
      // Fresh nodes compile their hot paths and open their pools during the first seconds of load; a stall
      // then would count against the first step, so the nodes get a short unrecorded run first.
      say(`  warm-up: ${settings.warmupS} s at ${settings.rates[0]} msg/s, not recorded`);
      await load(ctx, urls, settings.rates[0]!, false, { durationS: settings.warmupS });
    }
    const steps: Step[] = [];
    for (const rate of settings.rates) {
      let step = await runStep(ctx, nodes, rate, persistent, 1);
      steps.push(step);
      // On 2 shared cores one stall of a few hundred milliseconds (the host, a collector, the generator) sets a
      // whole step's p99, for either mode. So a step that failed on latency or throughput alone runs once more,
      // and the ceiling is the highest rate passed before one that failed both times. A loss is never run again:
      // it ends the search.
      if (!step.passed && !step.lost) {
        step = await runStep(ctx, nodes, rate, persistent, 2);
        steps.push(step);
      }
      if (!step.passed) break;
    }
    const { report: fixedReport, cpu } = await loadCounted(ctx, nodes, FIXED_RATE, persistent);
    const fixed = {
      ackP50: fixedReport.latency.ack.p50Ms,
      ackP99: fixedReport.latency.ack.p99Ms,
      fanoutP50: fixedReport.latency.fanout.p50Ms,
      fanoutP99: fixedReport.latency.fanout.p99Ms,
      achieved: fixedReport.throughput.steadyAckedPerS ?? fixedReport.throughput.ackedPerS,
      verified: fixedReport.exitCode === 0,
      cpu,
    };
    say(
      `  at ${FIXED_RATE} msg/s: ack p50 ${fixed.ackP50.toFixed(1)} / p99 ${fixed.ackP99.toFixed(1)} ms, fan-out p50 ${fixed.fanoutP50.toFixed(1)} / p99 ${fixed.fanoutP99.toFixed(1)} ms`,
    );
    const c = cpu.perMessageMs;
    say(
      `  CPU per message at ${FIXED_RATE} msg/s: nodes ${c.nodes} ms, PostgreSQL ${c.postgres}, Redis ${c.redis}, load generator ${c.generator}` +
        ` → about ${cpu.coresAtRate} of the machine's ${cpus().length} cores; the host took ${cpu.stolenPercent}% of their time meanwhile (steal)`,
    );
    const passing = steps.filter((s) => s.passed);
    const capped = passing.length === settings.rates.length;
    return { mode, ceilingMsgPerS: Math.max(0, ...passing.map((s) => s.acked)), capped, steps, fixed };
  } finally {
    await Promise.all(nodes.map((n) => n.stop()));
  }
}

function nodeEnv(ctx: BenchContext, env: Record<string, string>): NodeJS.ProcessEnv {
  return {
    ...process.env,
    ...env,
    PORT: '0',
    HOST: '127.0.0.1',
    JWT_SECRET: ctx.secret,
    DATABASE_URL: ctx.databaseUrl,
    REDIS_URL: ctx.settings.redisUrl,
    ASSISTANT: 'none',
    SEND_RATE_LIMIT: '1000000',
    // Every tab connects from this machine's one address, and catches up with reads: the per-address and per-user
    // budgets, meant for one client, are raised out of the way.
    HANDSHAKE_RATE_LIMIT: '1000000',
    READ_RATE_LIMIT: '1000000',
    MAX_SOCKETS_PER_USER: '50',
    LOG_LEVEL: 'info',
  };
}

async function runStep(ctx: BenchContext, nodes: Node[], rate: number, persistent: boolean, attempt: number): Promise<Step> {
  const ticks = coreTicks();
  const { report, cpu } = await loadCounted(ctx, nodes, rate, persistent);
  const step = { ...stepOf(rate, report, stolenPercentSince(ticks)), attempt, cpuPerMessageMs: cpu.perMessageMs };
  ctx.say(
    `  ${String(rate).padStart(5)} msg/s offered: ${Math.round(step.acked).toString().padStart(5)} acked/s, ` +
      `p99 ack ${step.ackP99.toFixed(1)} ms, p99 fan-out ${step.fanoutP99.toFixed(1)} ms${step.lost ? ', LOSS' : ''}, steal ${step.stolenPercent}%, ` +
      `CPU/msg nodes ${cpu.perMessageMs.nodes} PG ${cpu.perMessageMs.postgres} ms → ${step.passed ? 'ok' : step.lost || attempt > 1 ? 'past the limit' : 'failed, once more'}`,
  );
  return step;
}

/** A load run, with the CPU each part spent from its first send to its last answer (connecting and reading back left out). */
async function loadCounted(
  ctx: BenchContext,
  nodes: Node[],
  rate: number,
  persistent: boolean,
): Promise<{ report: LoadReport; cpu: CpuBudget }> {
  let cpuBudget: ReturnType<typeof startCpuBudget> | undefined;
  const report = await load(
    ctx,
    nodes.map((n) => n.url),
    rate,
    persistent,
    {
      onPhase: (phase) => {
        if (phase === 'send') cpuBudget = startCpuBudget(nodes.map((n) => n.pid));
        else if (phase !== 'drain') cpuBudget?.stop();
      },
    },
  );
  return { report, cpu: cpuBudget!.result(report.counts.acked, rate) };
}

function load(
  ctx: BenchContext,
  urls: string[],
  rate: number,
  persistent: boolean,
  { onPhase, durationS = ctx.settings.stepS }: { onPhase?: (phase: string) => void; durationS?: number } = {},
): Promise<LoadReport> {
  return runLoad(
    {
      urls,
      users: USERS,
      tabs: TABS,
      rate,
      rampS: Math.min(2, durationS / 4),
      durationS,
      size: 64,
      secret: ctx.secret,
      reportDir: null,
      quiet: true,
      verifyStorage: persistent,
      drainTimeoutS: 10,
    },
    { onPhase },
  );
}

function stepOf(rate: number, r: LoadReport, stolenPercent: number): Omit<Step, 'attempt' | 'cpuPerMessageMs'> {
  const lost = r.exitCode !== 0;
  const acked = r.throughput.steadyAckedPerS ?? r.throughput.ackedPerS;
  // Keeping up matters as much as latency: a server that answers fast but only half of what is offered is past it.
  const keptUp = acked >= rate * 0.95;
  const fanoutP99 = r.latency.fanout.p99Ms;
  return {
    offered: rate,
    acked,
    ackP99: r.latency.ack.p99Ms,
    fanoutP99,
    lost,
    passed: !lost && keptUp && fanoutP99 <= FANOUT_P99_LIMIT_MS,
    stolenPercent,
  };
}
