// Where a run's CPU went, read from Linux /proc: per process (by pid) and per program (by command name, summed
// over its processes, e.g. every PostgreSQL backend). On a machine where the load generator, the nodes and the
// databases share the cores, this tells a slow gateway from a saturated machine.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

const TICKS_PER_S = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
  } catch {
    return 100;
  }
})();

/** User + system CPU milliseconds of one process so far (0 if it is gone or /proc is absent). */
export function cpuMsOfPid(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which is in parentheses and may contain spaces.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS_PER_S;
  } catch {
    return 0;
  }
}

/** User + system CPU milliseconds so far of every running process whose command name starts with `name`. */
export function cpuMsOfCommand(name: string): number {
  let total = 0;
  let pids: string[] = [];
  try {
    pids = readdirSync('/proc').filter((entry) => /^\d+$/.test(entry));
  } catch {
    return 0;
  }
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      if (stat.slice(stat.indexOf('(') + 1).startsWith(name)) total += cpuMsOfPid(Number(pid));
    } catch {
      // The process ended meanwhile.
    }
  }
  return total;
}

type CoreTicks = ReturnType<typeof coreTicks>;

/** Percent of the cores' time the host took (steal) between two coreTicks() readings (0 without /proc). */
function stolenPercent(from: CoreTicks, to: CoreTicks): number {
  return Math.round((1000 * (to.steal - from.steal)) / Math.max(1, to.total - from.total)) / 10;
}

/** Percent of the cores' time the host took (steal) since `since` was read with coreTicks(). */
export function stolenPercentSince(since: CoreTicks): number {
  return stolenPercent(since, coreTicks());
}

export interface CpuBudget {
  /** CPU milliseconds per acknowledged message, by part. */
  perMessageMs: { nodes: number; postgres: number; redis: number; generator: number };
  /** Cores all parts together need at the given rate: CPU per message × messages per second. */
  coresAtRate: number;
  /** Share of the cores' time a virtual machine's host gave to others over the window (steal), in percent. */
  stolenPercent: number;
}

/** Steal and total time of all cores so far, in ticks, from the `cpu` line of /proc/stat (zeros without it). */
export function coreTicks(): { steal: number; total: number } {
  try {
    const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1, 9).map(Number);
    return { steal: fields[7] ?? 0, total: fields.reduce((sum, n) => sum + n, 0) };
  } catch {
    return { steal: 0, total: 0 };
  }
}

/**
 * Starts counting. `stop()` ends the window (later calls change nothing); `result(messages, rate)` gives the CPU
 * per message of each part over the window, and the cores all of them need at `rate`.
 */
export function startCpuBudget(nodePids: number[]) {
  const read = () => ({
    nodes: nodePids.reduce((sum, pid) => sum + cpuMsOfPid(pid), 0),
    postgres: cpuMsOfCommand('postgres'),
    redis: cpuMsOfCommand('redis-server'),
    generator: cpuMsOfPid(process.pid),
    cores: coreTicks(),
  });
  const before = read();
  let after: ReturnType<typeof read> | undefined;
  return {
    stop() {
      after ??= read();
    },
    result(messages: number, ratePerS: number): CpuBudget {
      after ??= read();
      const per = (part: 'nodes' | 'postgres' | 'redis' | 'generator') => (after![part] - before[part]) / Math.max(1, messages);
      const perMessageMs = { nodes: per('nodes'), postgres: per('postgres'), redis: per('redis'), generator: per('generator') };
      const total = perMessageMs.nodes + perMessageMs.postgres + perMessageMs.redis + perMessageMs.generator;
      const round = (ms: number) => Math.round(ms * 100) / 100;
      return {
        perMessageMs: {
          nodes: round(perMessageMs.nodes),
          postgres: round(perMessageMs.postgres),
          redis: round(perMessageMs.redis),
          generator: round(perMessageMs.generator),
        },
        coresAtRate: round((total * ratePerS) / 1000),
        stolenPercent: stolenPercent(before.cores, after.cores),
      };
    },
  };
}
