/**
 * Aggregation of per-example evaluation results into the `StageEval` blocks of eval.json. The evaluation
 * loop generates completions, scores each with lib/reward (`accuracyReward`, `parseCompletion`,
 * `completionDistanceKm`) and hands the per-item results here.
 *
 * Conventions: an empty item list gives n = 0 with 0 for rates and [0, 0] intervals (JSON has no NaN);
 * bootstrap CIs use independent child seeds `deriveSeed(seed, "<task>/<metric>")`, so adding a metric does
 * not move the others.
 * @module
 */
import type { StageEval } from "../run/records.ts";
import { deriveSeed } from "../rng.ts";
import { GEO_THRESHOLDS_KM, MAX_DISTANCE_KM } from "./geo.ts";
import { bootstrapCi, type BootstrapOptions, mean, median } from "./stats.ts";

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
}

/** One evaluated geolocation example. */
export interface GeolocateItem {
  /** Great-circle error in km; Infinity (or NaN) when the completion is malformed or unparseable. */
  km: number;
  tokens: number;
}

/** One evaluated geo-qa example. */
export interface GeoqaItem {
  kind: string;
  correct: boolean;
}

const safeMean = (xs: number[]) => (xs.length ? mean(xs) : 0);
const safeCi = (xs: number[], o: MetricBootstrapOptions, name: string): [number, number] =>
  xs.length ? bootstrapCi(xs, { ...o, seed: deriveSeed(o.seed ?? 0, name) }) : [0, 0];

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
  return {
    n: items.length,
    accuracy: safeMean(acc),
    ci: safeCi(acc, opts, "pairing/accuracy"),
    meanLength: safeMean(len),
    lengthCi: safeCi(len, opts, "pairing/length"),
    formatRate: safeMean(items.map((x) => (x.formatOk ? 1 : 0))),
    namedMatchRate: items.length ? named.length / items.length : 0,
    answerFollowsMatch: safeMean(named.map((x) => (x.followsMatch ? 1 : 0))),
    byTier,
  };
}

/**
 * Geolocation accuracy at each threshold (d <= t; keys "1", "25", "200", "750", "2500") with bootstrap CIs,
 * the median error and the mean length. For the median a non-finite error (unparseable answer) counts as
 * the largest possible distance, pi * R ~ 20015 km, so the median stays finite and JSON-safe.
 */
export function geolocateMetrics(
  items: readonly GeolocateItem[],
  opts: MetricBootstrapOptions = {},
  thresholdsKm: readonly number[] = GEO_THRESHOLDS_KM,
): NonNullable<StageEval["geolocate"]> {
  const km = items.map((x) => (Number.isFinite(x.km) ? Math.min(x.km, MAX_DISTANCE_KM) : MAX_DISTANCE_KM));
  const thresholds: Record<string, number> = {};
  const thresholdCi: Record<string, [number, number]> = {};
  for (const t of thresholdsKm) {
    // A NaN or Infinity error is never within a threshold (km holds them as MAX_DISTANCE_KM > 2500).
    const hit = items.map((x) => (Number.isFinite(x.km) && x.km <= t ? 1 : 0));
    thresholds[String(t)] = safeMean(hit);
    thresholdCi[String(t)] = safeCi(hit, opts, `geolocate/acc@${t}`);
  }
  return {
    n: items.length,
    thresholds,
    thresholdCi,
    medianKm: km.length ? median(km) : 0,
    meanLength: safeMean(items.map((x) => x.tokens)),
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
