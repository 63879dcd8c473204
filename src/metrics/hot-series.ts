/**
 * A counter and a histogram for the series updated on every request and
 * upgrade. prom-client's `inc()` and `observe()` check and hash the label
 * object on every call — through a child from `labels()` too, which only
 * binds the object — and a CPU profile of the gateway under the benchmark's
 * http workload put its label handling and histogram code at 2 % of the
 * gateway's CPU (BENCHMARKS.md, "The cost of metrics"). Here a label set is
 * found through nested maps and its figures are plain numbers; prom-client's
 * registry still renders them (`get()` returns the shape its own metrics
 * return), so the page reads exactly as before.
 */
import type { Metric, Registry } from 'prom-client';

type Labels = Record<string, string>;

interface Rendered {
  value: number;
  labels: Record<string, string | number>;
  metricName?: string;
  /** A histogram's own labels, apart from `le` (as prom-client renders them: `{le="0.1",app="x"}`). */
  sharedLabels?: Labels;
  exemplar?: null;
}

/** The series of a metric, one per set of label values, found without building a key. */
class LabelSets<T> {
  private root = new Map<string, unknown>();
  all: T[] = [];

  constructor(
    private readonly names: readonly string[],
    private readonly make: (labels: Labels) => T,
  ) {
    if (names.length < 1 || names.length > 3) throw new RangeError('1 to 3 labels');
  }

  /** The series of these label values, in the order of the label names (no array or key string is built: this runs per request). */
  get(a: string, b = '', c = ''): T {
    const depth = this.names.length;
    let level = this.root;
    if (depth > 1) level = LabelSets.below(level, a);
    if (depth > 2) level = LabelSets.below(level, b);
    const last = depth === 1 ? a : depth === 2 ? b : c;
    let s = level.get(last) as T | undefined;
    if (s === undefined) {
      const labels: Labels = {};
      [a, b, c].slice(0, depth).forEach((v, i) => (labels[this.names[i]] = v));
      s = this.make(labels);
      level.set(last, s);
      this.all.push(s);
    }
    return s;
  }

  private static below(level: Map<string, unknown>, value: string): Map<string, unknown> {
    let next = level.get(value) as Map<string, unknown> | undefined;
    if (!next) level.set(value, (next = new Map()));
    return next;
  }

  clear(): void {
    this.root = new Map();
    this.all = [];
  }
}

/** Registered as prom-client's own metrics are: the registry needs only name, help, type, aggregator, get() and reset(). */
abstract class HotMetric {
  readonly aggregator = 'sum';
  abstract readonly type: 'counter' | 'histogram';

  constructor(
    readonly name: string,
    readonly help: string,
    registry: Registry,
  ) {
    registry.registerMetric(this as unknown as Metric);
  }

  protected abstract values(): Rendered[];
  abstract reset(): void;

  /** The text page reads this. */
  async getForPromString(): Promise<{ name: string; help: string; type: string; aggregator: string; values: Rendered[] }> {
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values: this.values() };
  }

  /** `getMetricsAsJSON()` reads this: every label in `labels`, as prom-client gives it. */
  async get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: Rendered[] }> {
    const data = await this.getForPromString();
    data.values = data.values.map(({ sharedLabels, ...v }) => (sharedLabels ? { ...v, labels: { ...v.labels, ...sharedLabels } } : v));
    return data;
  }
}

export class HotCounter extends HotMetric {
  readonly type = 'counter';
  private readonly sets: LabelSets<{ labels: Labels; value: number }>;

  constructor(opts: { name: string; help: string; labelNames: readonly string[]; registry: Registry }) {
    super(opts.name, opts.help, opts.registry);
    this.sets = new LabelSets(opts.labelNames, (labels) => ({ labels, value: 0 }));
  }

  /** Adds `by` (default 1) to the series of these label values. */
  inc(a: string, b?: string, c?: string, by = 1): void {
    this.sets.get(a, b, c).value += by;
  }

  protected values(): Rendered[] {
    return this.sets.all.map((s) => ({ value: s.value, labels: s.labels }));
  }

  reset(): void {
    this.sets.clear();
  }
}

interface HistogramSeries {
  labels: Labels;
  /** Observations per bucket (not cumulative): `counts[i]` for values ≤ bounds[i] and > bounds[i - 1]. */
  counts: Float64Array;
  sum: number;
  count: number;
}

export class HotHistogram extends HotMetric {
  readonly type = 'histogram';
  private readonly bounds: readonly number[];
  private readonly sets: LabelSets<HistogramSeries>;

  constructor(opts: { name: string; help: string; labelNames: readonly string[]; buckets: readonly number[]; registry: Registry }) {
    super(opts.name, opts.help, opts.registry);
    this.bounds = [...opts.buckets].sort((x, y) => x - y);
    this.sets = new LabelSets(opts.labelNames, (labels) => ({ labels, counts: new Float64Array(this.bounds.length), sum: 0, count: 0 }));
  }

  observe(value: number, a: string, b?: string, c?: string): void {
    if (!Number.isFinite(value)) return;
    const s = this.sets.get(a, b, c);
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]) i++;
    if (i < bounds.length) s.counts[i]++;
    s.sum += value;
    s.count++;
  }

  protected values(): Rendered[] {
    const out: Rendered[] = [];
    const bucket = `${this.name}_bucket`;
    for (const s of this.sets.all) {
      let acc = 0;
      this.bounds.forEach((le, i) => {
        acc += s.counts[i];
        out.push({ labels: { le }, sharedLabels: s.labels, value: acc, metricName: bucket, exemplar: null });
      });
      out.push(
        { labels: { le: '+Inf' }, sharedLabels: s.labels, value: s.count, metricName: bucket, exemplar: null },
        { labels: {}, sharedLabels: s.labels, value: s.sum, metricName: `${this.name}_sum`, exemplar: undefined },
        { labels: {}, sharedLabels: s.labels, value: s.count, metricName: `${this.name}_count`, exemplar: undefined },
      );
    }
    return out;
  }

  reset(): void {
    this.sets.clear();
  }
}
