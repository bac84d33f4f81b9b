/**
 * Small statistics for evaluation and reports: means, medians, quantiles and seeded percentile-bootstrap
 * confidence intervals. All randomness comes from `Rng` (lib/rng.ts), so a CI is a pure function of
 * (values, options).
 * @module
 */
import { Rng } from "../rng.ts";

/** Arithmetic mean; NaN for an empty array. */
export function mean(values: ArrayLike<number>): number {
  if (values.length === 0) return NaN;
  let s = 0;
  for (let i = 0; i < values.length; i++) s += values[i];
  return s / values.length;
}

/**
 * Standard deviation with `ddof` delta degrees of freedom: ddof 1 (default) is the sample (unbiased-variance)
 * std, like torch.std; ddof 0 the population std, like numpy.std. 0 when fewer than ddof + 1 values.
 */
export function std(values: ArrayLike<number>, ddof = 1): number {
  const n = values.length;
  if (n - ddof <= 0) return 0;
  const m = mean(values);
  let s = 0;
  for (let i = 0; i < n; i++) s += (values[i] - m) ** 2;
  return Math.sqrt(s / (n - ddof));
}

/**
 * Quantile q in [0, 1] of an ascending-sorted array, by linear interpolation between closest ranks (numpy's
 * default "linear" method: position q * (n - 1)). NaN for an empty array.
 */
export function quantileSorted(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  if (n === 0) return NaN;
  const pos = Math.min(Math.max(q, 0), 1) * (n - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(lo + 1, n - 1);
  const f = pos - lo;
  return f === 0 ? sorted[lo] : sorted[lo] + (sorted[hi] - sorted[lo]) * f;
}

/** Quantile of unsorted values (copies and sorts). */
export function quantile(values: ArrayLike<number>, q: number): number {
  return quantileSorted(Float64Array.from(values).sort(), q);
}

/** Median (mean of the two middle values for an even count); NaN for an empty array. */
export function median(values: ArrayLike<number>): number {
  return quantile(values, 0.5);
}

/** Options of {@link bootstrapCi}. */
export interface BootstrapOptions {
  /** Number of bootstrap resamples (default 1000). */
  resamples?: number;
  /** Two-sided miss rate: the interval covers 1 - alpha (default 0.05, a 95% CI). */
  alpha?: number;
  /** Seed of the resampling `Rng` (default 0). */
  seed?: number;
  /** The statistic (default the mean). */
  statistic?: (sample: Float64Array) => number;
}

/**
 * Percentile bootstrap confidence interval of `statistic(values)`: draw `resamples` samples of size n with
 * replacement (seeded), evaluate the statistic on each, and return the alpha/2 and 1 - alpha/2 quantiles
 * (linear interpolation) of those. Constant data gives a zero-width interval at that constant; one value
 * gives [v, v]; an empty array gives [NaN, NaN].
 */
export function bootstrapCi(values: ArrayLike<number>, opts: BootstrapOptions = {}): [number, number] {
  const n = values.length;
  if (n === 0) return [NaN, NaN];
  const resamples = opts.resamples ?? 1000;
  const alpha = opts.alpha ?? 0.05;
  if (!(resamples >= 1)) throw new RangeError(`bootstrapCi: resamples must be >= 1, got ${resamples}`);
  if (!(alpha > 0 && alpha < 1)) throw new RangeError(`bootstrapCi: alpha must be in (0, 1), got ${alpha}`);
  const stat = opts.statistic ?? mean;
  const rng = new Rng(opts.seed ?? 0);
  const sample = new Float64Array(n);
  const stats = new Float64Array(resamples);
  for (let r = 0; r < resamples; r++) {
    for (let i = 0; i < n; i++) sample[i] = values[rng.int(n)];
    stats[r] = stat(sample);
  }
  stats.sort();
  return [quantileSorted(stats, alpha / 2), quantileSorted(stats, 1 - alpha / 2)];
}

/** Mean with its bootstrap CI, for comparison and sweep reports. */
export interface MeanCi {
  n: number;
  mean: number;
  lo: number;
  hi: number;
}

/**
 * Mean over replicates (e.g. one accuracy per seed) with a percentile-bootstrap CI of that mean, resampling
 * the replicates. With few replicates (3 seeds) the interval is narrow-biased (it cannot reach beyond the
 * observed range); one replicate gives lo = hi = mean. Empty input gives NaNs and n = 0.
 */
export function meanCi(values: ArrayLike<number>, opts: Omit<BootstrapOptions, "statistic"> = {}): MeanCi {
  const [lo, hi] = bootstrapCi(values, opts);
  return { n: values.length, mean: mean(values), lo, hi };
}

/** Options of {@link clusterBootstrapCi}. */
export type ClusterBootstrapOptions = BootstrapOptions;

/**
 * Cluster (block) percentile bootstrap CI of `statistic(values)`: the values are grouped by `clusters[i]`
 * (e.g. the held-out region cell of test example i), and each resample draws C whole clusters with
 * replacement (C = the number of distinct clusters) and evaluates the statistic on the concatenation of
 * their values. Examples of one cell share their cues, so they are not independent draws: resampling them
 * one by one (as {@link bootstrapCi} does) gives intervals that are too narrow.
 *
 * Clusters are numbered in order of first appearance, and each draw is `rng.int(C)`, so when every example
 * is its own cluster the result equals `bootstrapCi(values, opts)` draw for draw. One cluster gives a
 * zero-width interval at the statistic of all values; an empty array gives [NaN, NaN].
 */
export function clusterBootstrapCi(
  values: ArrayLike<number>,
  clusters: ArrayLike<string | number>,
  opts: ClusterBootstrapOptions = {},
): [number, number] {
  const n = values.length;
  if (clusters.length !== n) {
    throw new RangeError(`clusterBootstrapCi: ${n} values but ${clusters.length} cluster keys`);
  }
  if (n === 0) return [NaN, NaN];
  const resamples = opts.resamples ?? 1000;
  const alpha = opts.alpha ?? 0.05;
  if (!(resamples >= 1)) throw new RangeError(`clusterBootstrapCi: resamples must be >= 1, got ${resamples}`);
  if (!(alpha > 0 && alpha < 1)) {
    throw new RangeError(`clusterBootstrapCi: alpha must be in (0, 1), got ${alpha}`);
  }
  const stat = opts.statistic ?? mean;
  const groups = groupByCluster(values, clusters);
  const C = groups.length;
  const rng = new Rng(opts.seed ?? 0);
  const stats = new Float64Array(resamples);
  const buf = new Float64Array(n * 2);
  let sample = buf;
  for (let r = 0; r < resamples; r++) {
    let len = 0;
    for (let c = 0; c < C; c++) {
      const g = groups[rng.int(C)];
      if (len + g.length > sample.length) {
        const grown = new Float64Array(Math.max(sample.length * 2, len + g.length));
        grown.set(sample.subarray(0, len));
        sample = grown;
      }
      sample.set(g, len);
      len += g.length;
    }
    stats[r] = stat(sample.subarray(0, len));
  }
  stats.sort();
  return [quantileSorted(stats, alpha / 2), quantileSorted(stats, 1 - alpha / 2)];
}

/** The values of each cluster, clusters in order of first appearance. */
export function groupByCluster(
  values: ArrayLike<number>,
  clusters: ArrayLike<string | number>,
): Float64Array[] {
  const index = new Map<string | number, number[]>();
  for (let i = 0; i < values.length; i++) {
    let g = index.get(clusters[i]);
    if (!g) index.set(clusters[i], g = []);
    g.push(values[i]);
  }
  return [...index.values()].map((g) => Float64Array.from(g));
}

/** Number of distinct cluster keys. */
export function clusterCount(clusters: ArrayLike<string | number>): number {
  return new Set(Array.from(clusters)).size;
}
