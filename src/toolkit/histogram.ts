/**
 * A log-linear histogram of latencies in microseconds, in the manner of
 * HdrHistogram (http://hdrhistogram.org/): fixed memory, O(1) recording with no
 * allocation, and a bounded relative error for every percentile.
 *
 * Layout: values below 256 µs each get their own bucket (exact to the
 * microsecond). Above, every power of two [2^k, 2^(k+1)) is cut into 128 equal
 * buckets, so a bucket is at most 1/128 of its lower bound wide and its midpoint
 * is within 0.4 % of any value in it. Values from 2^32 µs (71 minutes) up land
 * in the last bucket; min, max, mean and count are kept exactly.
 */

/** Buckets per power of two above the exact range (2^7 = 128: ≤ 0.4 % error at the midpoint). */
const SUB_BITS = 7;
const SUB_COUNT = 1 << SUB_BITS;
/** Values below this get one bucket each. */
const EXACT_BELOW = SUB_COUNT * 2;
/** Largest value told apart from bigger ones: 2^32 - 1 µs, about 71 minutes. */
export const HISTOGRAM_HIGHEST_US = 2 ** 32 - 1;
/** 0–255 exact, then 24 powers of two (2^8 … 2^31) of 128 buckets each: 3,328 counters, 26 KiB. */
const BUCKETS = indexOf(HISTOGRAM_HIGHEST_US) + 1;

export class Histogram {
  /** Float64 rather than Uint32: a long run at high rate can pass 2^32 in one bucket. */
  private readonly counts = new Float64Array(BUCKETS);
  private total = 0;
  private sum = 0;
  private lowest = Infinity;
  private highest = -Infinity;

  /** Records one value in microseconds (fractions allowed; negative values count as 0). */
  record(us: number): void {
    const v = us > 0 ? us : 0;
    const whole = v < HISTOGRAM_HIGHEST_US ? Math.floor(v) : HISTOGRAM_HIGHEST_US;
    this.counts[indexOf(whole)]++;
    this.total++;
    this.sum += v;
    if (v < this.lowest) this.lowest = v;
    if (v > this.highest) this.highest = v;
  }

  /** Adds every value recorded in `other`. */
  add(other: Histogram): void {
    for (let i = 0; i < BUCKETS; i++) this.counts[i] += other.counts[i];
    this.total += other.total;
    this.sum += other.sum;
    if (other.lowest < this.lowest) this.lowest = other.lowest;
    if (other.highest > this.highest) this.highest = other.highest;
  }

  get count(): number {
    return this.total;
  }

  /** Smallest value recorded (exact); NaN when empty. */
  get min(): number {
    return this.total ? this.lowest : NaN;
  }

  /** Largest value recorded (exact); NaN when empty. */
  get max(): number {
    return this.total ? this.highest : NaN;
  }

  /** Mean of the values recorded (exact); NaN when empty. */
  get mean(): number {
    return this.total ? this.sum / this.total : NaN;
  }

  /**
   * The value at percentile `p` (0–100): the midpoint of the bucket holding the
   * value of rank ⌈p/100 · count⌉, clamped to [min, max], so percentiles never
   * decrease with `p`, `percentile(100)` is the exact max and `percentile(0)` the exact min.
   * NaN when empty.
   */
  percentile(p: number): number {
    if (!this.total) return NaN;
    if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile must be within 0–100, got ${p}`);
    if (p === 100) return this.highest;
    const rank = Math.max(1, Math.ceil((p / 100) * this.total));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i];
      if (seen >= rank) return Math.min(this.highest, Math.max(this.lowest, midpointOf(i)));
    }
    return this.highest;
  }
}

/** The bucket of a whole number of microseconds in [0, 2^32 - 1]. */
function indexOf(v: number): number {
  if (v < EXACT_BELOW) return v;
  // v >= 256, so the highest set bit is 8..31 and shift is 1..24.
  const shift = 31 - Math.clz32(v) - SUB_BITS;
  // v >>> shift is in [128, 256): the position inside this power of two, offset by 128.
  return shift * SUB_COUNT + (v >>> shift);
}

/** The middle of the values that fall in bucket `i`. */
function midpointOf(i: number): number {
  if (i < EXACT_BELOW) return i;
  const shift = Math.floor(i / SUB_COUNT) - 1;
  const width = 2 ** shift;
  const low = (i - shift * SUB_COUNT) * width;
  return low + (width - 1) / 2;
}
