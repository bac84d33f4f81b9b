/**
 * Aggregation of per-example evaluation results into the `StageEval` blocks of eval.json. The evaluation
 * loop generates completions, scores each with lib/reward (`accuracyReward`, `parseCompletion`,
 * `completionDistanceKm`) and hands the per-item results here.
 *
 * Conventions: an empty item list gives n = 0 with 0 for rates and [0, 0] intervals (JSON has no NaN);
 * bootstrap CIs use independent child seeds `deriveSeed(seed, "<task>/<metric>")`, so adding a metric does
 * not move the others. When every item carries a `cluster` (the region cell of its test view), CIs are
 * cluster bootstraps over whole cells (`bootstrap: "cluster"` in the block); otherwise example bootstraps.
 * @module
 */
import type { StageEval } from "../run/records.ts";
import { deriveSeed } from "../rng.ts";
import { GEO_THRESHOLDS_KM, type LatLon, MAX_DISTANCE_KM } from "./geo.ts";
import {
  bootstrapCi,
  type BootstrapOptions,
  clusterBootstrapCi,
  clusterCount,
  mean,
  median,
} from "./stats.ts";

/** Bootstrap settings of the metrics (statistic is always the mean). */
export type MetricBootstrapOptions = Omit<BootstrapOptions, "statistic">;

/** One evaluated pairing example. */
export interface PairingItem {
  correct: boolean;
  /** Completion length in tokens. */
  tokens: number;
  formatOk: boolean;
  /** Difficulty label for the breakdown, e.g. the hardest negative tier of the example ("near"). */
  tier: string;
  /**
   * Whether the answer is the candidate the think block names as the match (`statedMatch`); null (or
   * absent) when the think block names no single match.
   */
  followsMatch?: boolean | null;
  /** Region cell of the example's test view: CIs resample whole cells when every item has one. */
  cluster?: string;
}

/** One evaluated geolocation example. */
export interface GeolocateItem {
  /** Great-circle error in km; Infinity (or NaN) when the completion is malformed or unparseable. */
  km: number;
  tokens: number;
  /** Region cell of the test view: CIs resample whole cells when every item has one. */
  cluster?: string;
  /**
   * The completion has the think/answer format and its answer is a well-formed `lat, lon` in range (absent:
   * whether `km` is finite, which is the same thing for completions scored by completionDistanceKm).
   */
  parsed?: boolean;
  /** The completion repeats some n-gram of tokens ({@link hasRepeatedNgram}); absent: false. */
  repeated?: boolean;
  /** The predicted point (null when unparseable); absent: answer diversity is not reported. */
  point?: LatLon | null;
}

/** Token n-gram length of the degenerate-repetition metric. */
export const REPEAT_NGRAM = 6;

/**
 * True when some n consecutive tokens of `ids` occur twice or more (occurrences may overlap: seven equal
 * tokens in a row repeat the 6-gram of them). Fewer than n + 1 tokens never repeat.
 */
export function hasRepeatedNgram(ids: ArrayLike<number>, n = REPEAT_NGRAM): boolean {
  if (!(n >= 1)) throw new RangeError(`hasRepeatedNgram: n must be >= 1, got ${n}`);
  const seen = new Set<string>();
  for (let i = 0; i + n <= ids.length; i++) {
    let key = "";
    for (let j = i; j < i + n; j++) key += `${ids[j]},`;
    if (seen.has(key)) return true;
    seen.add(key);
  }
  return false;
}

/** One evaluated geo-qa example. */
export interface GeoqaItem {
  kind: string;
  correct: boolean;
}

const safeMean = (xs: number[]) => (xs.length ? mean(xs) : 0);

/** The cluster keys of items when every item has one, else null (example bootstrap). */
function clustersOf(items: readonly { cluster?: string }[]): string[] | null {
  return items.length && items.every((x) => typeof x.cluster === "string")
    ? items.map((x) => x.cluster!)
    : null;
}

/** A CI function over the items' values: cluster bootstrap when `clusters`, else example bootstrap. */
function ciFor(clusters: string[] | null, o: MetricBootstrapOptions) {
  return (xs: number[], name: string): [number, number] => {
    if (!xs.length) return [0, 0];
    const opts = { ...o, seed: deriveSeed(o.seed ?? 0, name) };
    return clusters ? clusterBootstrapCi(xs, clusters, opts) : bootstrapCi(xs, opts);
  };
}

/** The `bootstrap` and `clusters` fields of a metrics block. */
function bootstrapKind(clusters: string[] | null): { bootstrap: "cluster" | "example"; clusters?: number } {
  return clusters ? { bootstrap: "cluster", clusters: clusterCount(clusters) } : { bootstrap: "example" };
}

/**
 * Pairing accuracy with a bootstrap CI, mean completion length (tokens) with its CI, format rate, by tier,
 * and reasoning faithfulness: the share of completions whose think block names a single match
 * (`namedMatchRate`) and, among those, the share whose answer is that match (`answerFollowsMatch`; 0 when
 * none names one). Accuracy can be low for two different reasons, wrong verdicts or an answer that ignores
 * right ones, and only these two numbers tell them apart.
 */
export function pairingMetrics(
  items: readonly PairingItem[],
  opts: MetricBootstrapOptions = {},
): NonNullable<StageEval["pairing"]> {
  const acc = items.map((x) => (x.correct ? 1 : 0));
  const len = items.map((x) => x.tokens);
  const named = items.filter((x) => typeof x.followsMatch === "boolean");
  const byTier: Record<string, { n: number; accuracy: number }> = {};
  const hits: Record<string, number> = {};
  for (const x of items) {
    byTier[x.tier] ??= { n: 0, accuracy: 0 };
    byTier[x.tier].n++;
    hits[x.tier] = (hits[x.tier] ?? 0) + (x.correct ? 1 : 0);
  }
  for (const k in byTier) byTier[k].accuracy = hits[k] / byTier[k].n;
  const clusters = clustersOf(items);
  const safeCi = ciFor(clusters, opts);
  return {
    n: items.length,
    accuracy: safeMean(acc),
    ci: safeCi(acc, "pairing/accuracy"),
    meanLength: safeMean(len),
    lengthCi: safeCi(len, "pairing/length"),
    formatRate: safeMean(items.map((x) => (x.formatOk ? 1 : 0))),
    namedMatchRate: items.length ? named.length / items.length : 0,
    answerFollowsMatch: safeMean(named.map((x) => (x.followsMatch ? 1 : 0))),
    byTier,
    ...bootstrapKind(clusters),
  };
}

/**
 * Geolocation accuracy at each threshold (d <= t; keys "1", "25", "200", "750", "2500") with bootstrap CIs,
 * the median error, the mean length, the parse rate (well-formed `lat, lon` answers) and the repetition
 * rate (completions with a repeated token n-gram). For the median a non-finite error (unparseable answer)
 * counts as the largest possible distance, pi * R ~ 20015 km, so the median stays finite and JSON-safe.
 * The per-example errors (`errorsKm`, same capping) and, with clusters, their cells (`cells`) are kept in
 * test order, so that two rows evaluated on the same test views can be compared example by example.
 */
export function geolocateMetrics(
  items: readonly GeolocateItem[],
  opts: MetricBootstrapOptions = {},
  thresholdsKm: readonly number[] = GEO_THRESHOLDS_KM,
): NonNullable<StageEval["geolocate"]> {
  const km = items.map((x) => (Number.isFinite(x.km) ? Math.min(x.km, MAX_DISTANCE_KM) : MAX_DISTANCE_KM));
  const thresholds: Record<string, number> = {};
  const thresholdCi: Record<string, [number, number]> = {};
  const clusters = clustersOf(items);
  const safeCi = ciFor(clusters, opts);
  for (const t of thresholdsKm) {
    // A NaN or Infinity error is never within a threshold (km holds them as MAX_DISTANCE_KM > 2500).
    const hit = items.map((x) => (Number.isFinite(x.km) && x.km <= t ? 1 : 0));
    thresholds[String(t)] = safeMean(hit);
    thresholdCi[String(t)] = safeCi(hit, `geolocate/acc@${t}`);
  }
  return {
    n: items.length,
    thresholds,
    thresholdCi,
    medianKm: km.length ? median(km) : 0,
    meanLength: safeMean(items.map((x) => x.tokens)),
    parseRate: safeMean(items.map((x) => ((x.parsed ?? Number.isFinite(x.km)) ? 1 : 0))),
    repetitionRate: safeMean(items.map((x) => (x.repeated ? 1 : 0))),
    ...answerDiversity(items),
    ...bootstrapKind(clusters),
    errorsKm: km,
    ...(clusters ? { cells: clusters } : {}),
  };
}

/**
 * How many different points the answers name (to 0.01 degree), and the share of all views given the most
 * common one: a policy that writes a few regional hubs scores within 2,500 km without reading the view's
 * location, and these two numbers show it. Empty when no item carries its point.
 */
function answerDiversity(
  items: readonly GeolocateItem[],
): { distinctAnswers?: number; topAnswerShare?: number } {
  if (!items.length || items.some((x) => x.point === undefined)) return {};
  const counts = new Map<string, number>();
  for (const x of items) {
    if (!x.point) continue;
    const key = `${x.point.lat.toFixed(2)}, ${x.point.lon.toFixed(2)}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return {
    distinctAnswers: counts.size,
    topAnswerShare: Math.max(0, ...counts.values()) / items.length,
  };
}

/** geo-qa accuracy overall and by question kind. */
export function geoqaMetrics(items: readonly GeoqaItem[]): NonNullable<StageEval["geoqa"]> {
  const byKind: Record<string, { n: number; accuracy: number }> = {};
  const hits: Record<string, number> = {};
  let all = 0;
  for (const x of items) {
    byKind[x.kind] ??= { n: 0, accuracy: 0 };
    byKind[x.kind].n++;
    hits[x.kind] = (hits[x.kind] ?? 0) + (x.correct ? 1 : 0);
    if (x.correct) all++;
  }
  for (const k in byKind) byKind[k].accuracy = hits[k] / byKind[k].n;
  return { n: items.length, byKind, accuracy: items.length ? all / items.length : 0 };
}
