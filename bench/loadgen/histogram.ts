/**
 * A fixed-size latency histogram in microseconds: exact below 1,024 µs, then 512 buckets per
 * power of two (relative error under 0.2%). Recording is an array increment, so it can take
 * every one of a million deliveries without sampling; the maximum is kept exactly.
 */
const EXACT = 1024;
const SUB_BITS = 9;
const SUB = 1 << SUB_BITS;
// Octaves from 2^10 µs to 2^31 µs (about 36 minutes): far beyond any step's length.
const OCTAVES = 31 - 10 + 1;

export class LatencyHistogram {
  private readonly counts = new Float64Array(EXACT + OCTAVES * SUB);
  count = 0;
  max = 0;
  private sum = 0;

  record(us: number): void {
    let v = us < 0 ? 0 : Math.round(us);
    if (v > 0x7fffffff) v = 0x7fffffff;
    this.counts[bucketOf(v)]! += 1;
    this.count++;
    this.sum += v;
    if (v > this.max) this.max = v;
  }

  /** Value at quantile q (0..1), in µs: the upper edge of the bucket holding it. */
  quantile(q: number): number {
    if (this.count === 0) return Number.NaN;
    const rank = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    for (let i = 0; i < this.counts.length; i++) {
      seen += this.counts[i]!;
      if (seen >= rank) return Math.min(upperEdge(i), this.max);
    }
    return this.max;
  }

  mean(): number {
    return this.count === 0 ? Number.NaN : this.sum / this.count;
  }

  merge(other: LatencyHistogram): void {
    for (let i = 0; i < this.counts.length; i++) this.counts[i]! += other.counts[i]!;
    this.count += other.count;
    this.sum += other.sum;
    if (other.max > this.max) this.max = other.max;
  }
}

function bucketOf(v: number): number {
  if (v < EXACT) return v;
  const exponent = 31 - Math.clz32(v); // >= 10
  const sub = (v >>> (exponent - SUB_BITS)) - SUB;
  return EXACT + (exponent - 10) * SUB + sub;
}

function upperEdge(index: number): number {
  if (index < EXACT) return index;
  const octave = Math.floor((index - EXACT) / SUB);
  const sub = (index - EXACT) % SUB;
  const exponent = octave + 10;
  return (SUB + sub + 1) * 2 ** (exponent - SUB_BITS) - 1;
}
