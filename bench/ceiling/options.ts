/** `npm run bench`'s settings, read from the environment, its fixed shape, and its usage text. */
import { numberFromEnv, UsageError } from '../lib/cli.ts';

export type Adapter = 'classic' | 'sharded';

export interface BenchSettings {
  stepS: number;
  /** 0 skips the warm-up. */
  warmupS: number;
  rates: number[];
  sockets: number;
  adapters: Adapter[];
  skipMemory: boolean;
  /** Node options for the two nodes. */
  nodeArgs: string[];
  /** Where the bench database is created (and dropped). */
  adminUrl: string;
  redisUrl: string;
  /** Another checkout of the project whose gateway is measured too, before this one's (an A/B run). */
  baseline?: string;
}

/** A step fails when p99 fan-out passes this. */
export const FANOUT_P99_LIMIT_MS = 100;
/** The rate both modes are also measured at, for latency at the same load. */
export const FIXED_RATE = 500;
export const USERS = 200;
export const TABS = 2;

const DEFAULT_RATES = '250,500,1000,1500,2000,2500,3000,3500,4000,5000,6000,8000,10000,12000';
const DEFAULT_ADMIN_URL = 'postgres://postgres@127.0.0.1:5432/test';
const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';

/** Throws UsageError on a malformed value. */
export function readBenchSettings(env: NodeJS.ProcessEnv): BenchSettings {
  const rates = (env.BENCH_RATES || DEFAULT_RATES).split(',').map((r) => Number(r.trim()));
  if (rates.some((r) => !Number.isFinite(r) || r <= 0))
    throw new UsageError(`BENCH_RATES must be a comma list of positive rates, got ${env.BENCH_RATES}`);
  const adapters = (env.BENCH_ADAPTERS || 'classic').split(',').map((a) => a.trim());
  const unknown = adapters.filter((a) => a !== 'classic' && a !== 'sharded');
  if (unknown.length) throw new UsageError(`BENCH_ADAPTERS takes classic and/or sharded, got ${unknown.join(', ')}`);
  const stepS = numberFromEnv(env, 'BENCH_STEP_S', 8);
  if (stepS <= 0) throw new UsageError(`BENCH_STEP_S must be above 0, got ${env.BENCH_STEP_S}`);
  return {
    stepS,
    warmupS: numberFromEnv(env, 'BENCH_WARMUP_S', 4),
    rates,
    sockets: numberFromEnv(env, 'BENCH_SOCKETS', 19_000, { min: 1, integer: true }),
    adapters: adapters as Adapter[],
    skipMemory: Boolean(env.BENCH_SKIP_MEMORY),
    nodeArgs: (env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean),
    adminUrl: env.BENCH_ADMIN_URL ?? DEFAULT_ADMIN_URL,
    redisUrl: env.REDIS_URL ?? DEFAULT_REDIS_URL,
    baseline: env.BENCH_BASELINE ? `${env.BENCH_BASELINE.replace(/\/+$/, '')}/` : undefined,
  };
}

export const HELP = `Usage: npm run bench [-- --help]

Measures, in ONE run so that ratios hold on a noisy machine, with two nodes and ${USERS} users × ${TABS} tabs (one tab
on each node; the load generator shares the cores):
  (a) the transport ceiling: the same Socket.IO, handshake, validation and Redis adapter fan-out with persistence
      off (bench/transport-server.ts);
  (b) the full gateway path: JWT, validation, unit of work, seq, idempotency, commit, ack, Redis fan-out;
each by stepping the offered rate until p99 fan-out passes ${FANOUT_P99_LIMIT_MS} ms or fewer than 95 % of the messages are
acked (a rate gets a second attempt), or one is lost; then latency and CPU per message at a fixed ${FIXED_RATE} msg/s;
then heap and RSS per idle authenticated socket on one node. Starts PostgreSQL and Redis if they are down, creates
a database chat_bench_<ms> and drops it at the end, also on Ctrl-C, SIGTERM or a failure (the nodes and client
processes it started are stopped then too). Prints a summary; writes reports/bench-<time>.json.

Options
  -h, --help            this text

Environment
  BENCH_STEP_S          seconds per step (default 8)
  BENCH_WARMUP_S        unrecorded warm-up on fresh nodes, seconds (default 4; 0 skips it)
  BENCH_RATES           offered rates to step through, msg/s, comma list (default ${DEFAULT_RATES.split(',').slice(0, 3).join(',')},…,12000)
  BENCH_ADAPTERS        Redis adapters for the full path: classic, sharded, or classic,sharded (default classic)
  BENCH_SOCKETS         idle sockets in the memory stage (default 19000)
  BENCH_SKIP_MEMORY=1   skip the memory stage
  BENCH_NODE_ARGS       Node options for the two nodes, split on spaces (e.g. "--cpu-prof --cpu-prof-dir=prof";
                        a profiled node is slower, so its ceilings mean little)
  BENCH_BASELINE        another checkout of the project (npm ci done there), e.g. a worktree of the previous
                        commit: its gateway's full path is measured too, just before this one's, in the same
                        run (an A/B comparison)
  BENCH_ADMIN_URL       PostgreSQL database to create the bench database through (default ${DEFAULT_ADMIN_URL})
  REDIS_URL             Redis of the nodes (default ${DEFAULT_REDIS_URL})

Example
  BENCH_SKIP_MEMORY=1 BENCH_STEP_S=4 BENCH_RATES=250,500,1000 npm run bench
`;
