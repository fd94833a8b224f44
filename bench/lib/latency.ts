import { constants, PerformanceObserver, type PerformanceEntry } from 'node:perf_hooks';
import { build, type Histogram } from 'hdr-histogram-js';

export interface LatencySummary {
  count: number;
  meanMs: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
}

/** Latencies in microseconds in an HDR histogram (3 significant digits), reported in milliseconds. */
export class LatencyRecorder {
  private readonly histogram: Histogram = build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 120_000_000,
    numberOfSignificantValueDigits: 3,
  });

  /** Records one latency given in milliseconds (e.g. a difference of performance.now()). */
  record(ms: number): void {
    this.histogram.recordValue(Math.max(1, Math.round(ms * 1000)));
  }

  get count(): number {
    return this.histogram.totalCount;
  }

  summary(): LatencySummary {
    const h = this.histogram;
    const ms = (us: number) => Math.round(us) / 1000;
    return {
      count: h.totalCount,
      meanMs: ms(h.mean),
      p50Ms: ms(h.getValueAtPercentile(50)),
      p90Ms: ms(h.getValueAtPercentile(90)),
      p99Ms: ms(h.getValueAtPercentile(99)),
      maxMs: ms(h.maxValue),
    };
  }
}

/** Times one async call into a recorder. */
export async function timed<T>(recorder: LatencyRecorder, fn: () => Promise<T>): Promise<T> {
  const t0 = performance.now();
  const result = await fn();
  recorder.record(performance.now() - t0);
  return result;
}

export function fmtMs(ms: number): string {
  return ms >= 100 ? ms.toFixed(0) : ms >= 10 ? ms.toFixed(1) : ms.toFixed(2);
}

export function fmtSummary(s: LatencySummary): string {
  return `p50 ${fmtMs(s.p50Ms)} ms · p99 ${fmtMs(s.p99Ms)} ms · max ${fmtMs(s.maxMs)} ms · mean ${fmtMs(s.meanMs)} ms (n=${s.count})`;
}

export interface GcSummary {
  pauses: number;
  totalMs: number;
  maxMs: number;
  /** Pauses by kind: minor (scavenge), major (mark-compact), incremental, weakcb. */
  byKind: Record<string, { pauses: number; totalMs: number }>;
}

const GC_KINDS: Record<number, string> = {
  [constants.NODE_PERFORMANCE_GC_MINOR]: 'minor',
  [constants.NODE_PERFORMANCE_GC_MAJOR]: 'major',
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
  [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weakcb',
};

/** Watches this process's garbage-collection pauses until stop() is called (tail latency often lives there). */
export function watchGc(): { stop: () => GcSummary } {
  const result: GcSummary = { pauses: 0, totalMs: 0, maxMs: 0, byKind: {} };
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      result.pauses++;
      result.totalMs += entry.duration;
      result.maxMs = Math.max(result.maxMs, entry.duration);
      const kind = GC_KINDS[(entry as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind ?? -1] ?? 'other';
      result.byKind[kind] ??= { pauses: 0, totalMs: 0 };
      const k = result.byKind[kind];
      k.pauses++;
      k.totalMs += entry.duration;
    }
  });
  observer.observe({ entryTypes: ['gc'] });
  return {
    stop() {
      observer.disconnect();
      const byKind = Object.fromEntries(
        Object.entries(result.byKind).map(([kind, k]) => [kind, { pauses: k.pauses, totalMs: Math.round(k.totalMs * 10) / 10 }]),
      );
      return { pauses: result.pauses, totalMs: Math.round(result.totalMs * 10) / 10, maxMs: Math.round(result.maxMs * 100) / 100, byKind };
    },
  };
}

export function fmtGc(g: GcSummary): string {
  const kinds = Object.entries(g.byKind)
    .map(([kind, k]) => `${kind} ${k.pauses}/${k.totalMs} ms`)
    .join(', ');
  return `GC ${g.pauses} pauses, ${g.totalMs} ms total, longest ${g.maxMs} ms${kinds ? ` (${kinds})` : ''}`;
}
