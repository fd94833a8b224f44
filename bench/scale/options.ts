/** `npm run bench:scale`'s settings, from its command line, and its usage text. */
import { parseArgs } from 'node:util';
import { UsageError } from '../lib/cli.ts';
import type { Placement } from '../loadtest/options.ts';

/** The Redis fan-out variants measured: the adapter and, for the sharded one, how its subscriber subscribes. */
export const ADAPTERS = {
  classic: { REDIS_ADAPTER: 'classic' },
  'sharded-static': { REDIS_ADAPTER: 'sharded', REDIS_SUBSCRIPTION_MODE: 'static' },
  'sharded-dynamic': { REDIS_ADAPTER: 'sharded', REDIS_SUBSCRIPTION_MODE: 'dynamic' },
} as const satisfies Record<string, Record<string, string>>;
export type AdapterVariant = keyof typeof ADAPTERS;

export interface ScaleSettings {
  nodes: number[];
  adapters: AdapterVariant[];
  placements: Placement[];
  users: number;
  tabs: number;
  /** Offered messages per second over all users. */
  rate: number;
  /** Seconds of recorded sending per configuration (a 1 s ramp included). */
  durationS: number;
  /** Unrecorded load on each fresh set of nodes before its first recorded run; 0 skips it. */
  warmupS: number;
  /** Redis to use; undefined starts a private redis-server, so that its byte counters hold this run's traffic only. */
  redisUrl?: string;
  adminUrl: string;
  /** Print the report as JSON (and nothing else) on stdout. */
  json: boolean;
  /** Another checkout of the project, measured alternately with this one (A/B), each configuration `rounds` times. */
  baseline?: string;
  rounds: number;
}

const DEFAULT_ADMIN_URL = 'postgres://postgres@127.0.0.1:5432/test';

export const HELP = `Usage: npm run bench:scale [-- options]

Measures what adding gateway nodes costs per message, with N gateway nodes (child processes on this machine, one
PostgreSQL database, one Redis) for every combination of:
  nodes       2 and 4
  adapters    classic, sharded-static (REDIS_ADAPTER=sharded REDIS_SUBSCRIPTION_MODE=static),
              sharded-dynamic (REDIS_SUBSCRIPTION_MODE=dynamic: per-room channels)
  placements  spread (a user's tabs on different nodes) and affine (every tab of a user on one node, as behind
              deploy/nginx hashing on the SDK's affinity key)
and prints for each: CPU per message of each node (from /proc), bytes received from Redis per publish per node and
publishes (from the nodes' chat_redis_* metrics; n/a on a build without them), Redis bytes out per message
(INFO stats total_net_output_bytes), ack and fan-out p99, and whether every message was delivered and stored once.
Redis is a private redis-server on a free loopback port unless --redis-url is given (a shared Redis's byte
counters would count other traffic). Creates a database chat_bench_<ms> and drops it at the end, also on Ctrl-C,
SIGTERM or a failure. Writes reports/bench-scale-<time>.json. The defaults take about 5 to 8 minutes here.

Options
  --nodes LIST          node counts, comma list (default 2,4)
  --adapters LIST       classic, sharded-static, sharded-dynamic (default: all three)
  --placements LIST     spread, affine (default: both)
  --users N             users (default 300)
  --tabs N              tabs per user (default 2)
  --rate R              offered msg/s (default 600)
  --duration S          recorded seconds per configuration (default 8)
  --warmup S            unrecorded seconds on each fresh set of nodes (default 3; 0 skips it)
  --redis-url URL       use this Redis instead of a private one
  --admin-url URL       PostgreSQL database to create the bench database through (default ${DEFAULT_ADMIN_URL})
  --baseline DIR        another checkout of the project (npm ci done there): every configuration is measured
                        on its gateway too, alternately with this one's (A B, then B A, …): an A/B comparison
  --rounds N            with --baseline: how many times each side runs each configuration (default 2)
  --json                print the report as JSON only
  -h, --help            this text

Example
  npm run bench:scale -- --nodes 2 --adapters classic,sharded-dynamic --placements affine
`;

function list<T extends string>(raw: string | undefined, allowed: readonly T[], name: string): T[] | undefined {
  if (raw === undefined) return undefined;
  const items = raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const unknown = items.filter((i) => !allowed.includes(i as T));
  if (unknown.length || items.length === 0) throw new UsageError(`--${name} takes ${allowed.join(', ')}; got ${raw}`);
  return [...new Set(items)] as T[];
}

function positive(raw: string | undefined, name: string, def: number, { integer = false, zero = false } = {}): number {
  if (raw === undefined) return def;
  const n = Number(raw.replace(/(?<=\d)s$/i, ''));
  if (raw.trim() === '' || !Number.isFinite(n) || (integer && !Number.isInteger(n)) || n < 0 || (n === 0 && !zero)) {
    throw new UsageError(`--${name} must be a ${integer ? 'whole ' : ''}number above ${zero ? 'or equal to ' : ''}0, got ${raw}`);
  }
  return n;
}

/** Throws UsageError on an unknown option or a malformed value; returns null for --help. */
export function readScaleSettings(argv: string[]): ScaleSettings | null {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        nodes: { type: 'string' },
        adapters: { type: 'string' },
        placements: { type: 'string' },
        users: { type: 'string' },
        tabs: { type: 'string' },
        rate: { type: 'string' },
        duration: { type: 'string' },
        warmup: { type: 'string' },
        'redis-url': { type: 'string' },
        'admin-url': { type: 'string' },
        json: { type: 'boolean' },
        baseline: { type: 'string' },
        rounds: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (values.help) return null;
  const nodes = (values.nodes ?? '2,4').split(',').map((n) => positive(n.trim(), 'nodes', 0, { integer: true }));
  if (nodes.some((n) => n < 2 || n > 8)) throw new UsageError(`--nodes takes counts from 2 to 8, got ${values.nodes}`);
  return {
    nodes: [...new Set(nodes)],
    adapters: list(values.adapters, Object.keys(ADAPTERS) as AdapterVariant[], 'adapters') ?? (Object.keys(ADAPTERS) as AdapterVariant[]),
    placements: list(values.placements, ['spread', 'affine'] as const, 'placements') ?? ['spread', 'affine'],
    users: positive(values.users, 'users', 300, { integer: true }),
    tabs: positive(values.tabs, 'tabs', 2, { integer: true }),
    rate: positive(values.rate, 'rate', 600),
    durationS: positive(values.duration, 'duration', 8),
    warmupS: positive(values.warmup, 'warmup', 3, { zero: true }),
    redisUrl: values['redis-url'],
    adminUrl: values['admin-url'] ?? DEFAULT_ADMIN_URL,
    json: values.json ?? false,
    baseline: values.baseline ? `${values.baseline.replace(/\/+$/, '')}/` : undefined,
    rounds: positive(values.rounds, 'rounds', 2, { integer: true }),
  };
}
