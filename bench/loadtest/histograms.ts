/**
 * Latency recording on HDR histograms (hdr-histogram-js, pure JS): values in microseconds, reported in
 * milliseconds. One histogram per metric for the whole run, and small ones per second for the charts.
 */
import { build, encodeIntoCompressedBase64, type Histogram, type JsHistogram } from 'hdr-histogram-js';

export interface LatencyStats {
  count: number;
  meanMs: number;
  minMs: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  maxMs: number;
}

export interface DistributionBucket {
  /** Lower bound (inclusive), ms. */
  fromMs: number;
  /** Upper bound (exclusive), ms. */
  toMs: number;
  count: number;
}

export interface PercentilePoint {
  percentile: number;
  ms: number;
}

/** One hour in µs: anything slower is clamped (and is a failure by any standard). */
const HIGHEST_US = 3_600_000_000;
const PERCENTILES = [0, 10, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 99.95, 99.99, 100];
const round3 = (n: number) => Math.round(n * 1000) / 1000;

export class Latency {
  readonly histogram: Histogram;

  /** `digits`: significant decimal digits (3 for the run's totals, 2 for per-second charts). */
  constructor(digits: 2 | 3 = 3) {
    this.histogram = build({
      lowestDiscernibleValue: 1,
      highestTrackableValue: HIGHEST_US,
      numberOfSignificantValueDigits: digits,
      useWebAssembly: false,
      autoResize: false,
    });
  }

  /** Records a latency given in ms (a difference of performance.now()); below 1 µs counts as 1 µs. */
  record(ms: number): void {
    const us = Math.round(ms * 1000);
    this.histogram.recordValue(us < 1 ? 1 : Math.min(us, HIGHEST_US));
  }

  get count(): number {
    return this.histogram.totalCount;
  }

  percentileMs(p: number): number {
    return this.histogram.totalCount === 0 ? 0 : round3(this.histogram.getValueAtPercentile(p) / 1000);
  }

  stats(): LatencyStats {
    const h = this.histogram;
    if (h.totalCount === 0) return { count: 0, meanMs: 0, minMs: 0, p50Ms: 0, p95Ms: 0, p99Ms: 0, maxMs: 0 };
    return {
      count: h.totalCount,
      meanMs: round3(h.mean / 1000),
      minMs: round3(h.minNonZeroValue / 1000),
      p50Ms: this.percentileMs(50),
      p95Ms: this.percentileMs(95),
      p99Ms: this.percentileMs(99),
      maxMs: round3(h.maxValue / 1000),
    };
  }

  /** Counts in log-spaced buckets (`perDecade` per factor of ten), for the histogram chart. Empty buckets at both ends are cut. */
  distribution(perDecade = 10): DistributionBucket[] {
    const h = this.histogram as unknown as JsHistogram;
    if (h.totalCount === 0) return [];
    const counts = new Map<number, number>();
    const iterator = h.recordedValuesIterator;
    iterator.reset();
    while (iterator.hasNext()) {
      const v = iterator.next();
      const index = Math.floor(Math.log10(Math.max(1, v.valueIteratedTo)) * perDecade);
      counts.set(index, (counts.get(index) ?? 0) + v.countAtValueIteratedTo);
    }
    const indexes = [...counts.keys()];
    const lo = Math.min(...indexes);
    const hi = Math.max(...indexes);
    const buckets: DistributionBucket[] = [];
    for (let i = lo; i <= hi; i++) {
      buckets.push({
        fromMs: round3(10 ** (i / perDecade) / 1000),
        toMs: round3(10 ** ((i + 1) / perDecade) / 1000),
        count: counts.get(i) ?? 0,
      });
    }
    return buckets;
  }

  /** Latency by percentile (the usual HDR plot). */
  percentileCurve(): PercentilePoint[] {
    if (this.histogram.totalCount === 0) return [];
    return PERCENTILES.map((p) => ({ percentile: p, ms: p === 0 ? round3(this.histogram.minNonZeroValue / 1000) : this.percentileMs(p) }));
  }

  /** The histogram in HdrHistogram's compressed base64 form: other HDR tools can decode, merge and re-plot it. */
  encoded(): string {
    return encodeIntoCompressedBase64(this.histogram);
  }
}

/** Per-second histograms (index = second of the run), created as seconds are reached. */
export class PerSecondLatency {
  private readonly seconds: (Latency | undefined)[] = [];

  record(second: number, ms: number): void {
    const s = Math.max(0, Math.floor(second));
    this.seconds[s] ??= new Latency(2);
    this.seconds[s].record(ms);
  }

  /** p50 and p99 (ms) per second for `n` seconds; null where nothing was recorded. */
  series(n: number): { p50: (number | null)[]; p99: (number | null)[]; count: number[] } {
    const p50: (number | null)[] = [];
    const p99: (number | null)[] = [];
    const count: number[] = [];
    for (let s = 0; s < n; s++) {
      const l = this.seconds[s];
      p50.push(l && l.count > 0 ? l.percentileMs(50) : null);
      p99.push(l && l.count > 0 ? l.percentileMs(99) : null);
      count.push(l?.count ?? 0);
    }
    return { p50, p99, count };
  }

  get length(): number {
    return this.seconds.length;
  }
}

/** Event counts per second of the run. */
export class PerSecondCount {
  private readonly counts: number[] = [];

  add(second: number, n = 1): void {
    const s = Math.max(0, Math.floor(second));
    while (this.counts.length <= s) this.counts.push(0);
    this.counts[s]! += n;
  }

  at(second: number): number {
    return this.counts[Math.floor(second)] ?? 0;
  }

  series(n: number): number[] {
    return Array.from({ length: n }, (_, s) => this.counts[s] ?? 0);
  }

  get length(): number {
    return this.counts.length;
  }
}
