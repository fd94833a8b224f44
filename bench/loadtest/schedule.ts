/**
 * The open-loop schedule: when each message is due, fixed before the run starts. The rate grows linearly from 0 to
 * `rate` over `rampS` seconds and then holds until `durationS`. The sender emits every message whose due time has
 * passed, whatever the gateway has answered so far, so a slow gateway cannot slow the offered load down (no
 * coordinated omission); how late the generator itself emitted is measured as the scheduler lag.
 */
export class Schedule {
  readonly rate: number;
  readonly rampS: number;
  readonly durationS: number;
  /** How many messages the whole schedule holds. */
  readonly total: number;
  /** Messages due by the end of the ramp. */
  private readonly rampCount: number;

  constructor(rate: number, rampS: number, durationS: number) {
    this.rate = rate;
    this.rampS = Math.min(rampS, durationS);
    this.durationS = durationS;
    this.rampCount = (rate * this.rampS) / 2;
    this.total = Math.floor(this.countAt(durationS));
  }

  /** Messages due by `t` seconds (fractional): the integral of the rate. */
  countAt(t: number): number {
    if (t <= 0) return 0;
    if (t < this.rampS) return (this.rate * t * t) / (2 * this.rampS);
    return this.rampCount + this.rate * (t - this.rampS);
  }

  /** When message `k` (0-based) is due, in seconds from the start: the inverse of countAt. */
  dueAt(k: number): number {
    if (k <= 0) return 0;
    if (k < this.rampCount) return Math.sqrt((2 * this.rampS * k) / this.rate);
    return this.rampS + (k - this.rampCount) / this.rate;
  }

  /** The offered rate at `t` seconds. */
  rateAt(t: number): number {
    if (t < 0 || t > this.durationS) return 0;
    return this.rampS > 0 && t < this.rampS ? (this.rate * t) / this.rampS : this.rate;
  }
}
