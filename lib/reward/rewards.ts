/**
 * Verifiable rewards: pure functions of (completion text, example metadata) -> number, registered by name.
 *
 * Rules (all strict; each adversarial case is a test in tests/reward_test.ts):
 * - `format`: 1 iff {@link parseCompletion} accepts the completion (exactly one think block then one
 *   non-empty answer block, nothing else), else 0.
 * - `accuracy`: answers count only inside a valid format; a malformed completion earns 0. Per task:
 *   - pairing: the trimmed answer must be exactly one uppercase letter equal to `ex.answer` ("B"). Lower
 *     case ("b"), punctuation ("B."), words ("Option B"), several letters ("A B C D", "A, B, C, or D",
 *     "ABCD") earn 0. Strict on purpose: the prompt and every exemplar use the bare capital letter, and
 *     accepting variants only widens the surface for reward hacking.
 *   - control (GRPO's learn-from-reward control): the same letter rule as pairing.
 *   - geolocate: the answer parses as `"lat, lon"` ({@link parseLatLon}: finite, |lat| <= 90,
 *     |lon| <= 180) and lies within `accuracyKm` (default 25 km, the "city" threshold) of the truth.
 *   - geoqa: the answer equals `ex.answer` after normalising case and whitespace (trim, collapse runs of
 *     whitespace, lower case); punctuation is not stripped ("Europe." earns 0).
 *   - caption: 0 (not verifiable; never used for RL).
 * - `geodesic`: geolocate only: exp(-d / tauKm) with d the haversine distance in km between the parsed
 *   answer and the truth (1 at the exact spot, 1/e at tau); 0 if malformed or unparseable. 0 for every
 *   other task, so a pairing run may leave its weight non-zero without effect.
 * - `length` (the authors' cosine length reward, in effect brevity pressure): with L the completion's length
 *   in tokens, `min + (max - min) * (1 + cos(pi * min(L, maxTokens) / maxTokens)) / 2`: `max` at 0 tokens,
 *   falling to `min` at `maxTokens` and beyond (defaults 1, 0.5, 1024). Any task, valid format or not.
 * - `repetition` (the authors' n-gram repetition penalty): over the completion's whitespace-separated words,
 *   `maxPenalty * (1 - distinct n-grams / n-grams)`, between 0 (no n-gram repeats, or fewer than n words) and
 *   `maxPenalty` (default -1; n default 6). Any task.
 * - Overlong: a completion the trainer marks `truncated` (hit maxNewTokens without EOS) earns 0 on every
 *   function, as does one longer than `maxChars` characters when that option is set. (A truncated completion
 *   is unfinished by definition; rewarding a lucky cut would reward running out of budget.)
 * The geolocate truth is `ex.scene.lat/lon` (exact), falling back to parsing `ex.answer`.
 * @module
 */
import type { Example } from "../data/types.ts";
import { haversineKm, isValidLatLon, type LatLon, parseLatLon } from "../eval/geo.ts";
import { parseCompletion, type ParsedCompletion } from "./parse.ts";

/** Options shared by the reward functions. */
export interface RewardOptions {
  /** tau in km of the geodesic reward exp(-d / tau) (default {@link DEFAULT_TAU_KM}). */
  tauKm?: number;
  /** Distance in km within which a geolocation answer counts as accurate (default 25). */
  accuracyKm?: number;
  /** The completion hit the token limit without EOS: every reward is 0. */
  truncated?: boolean;
  /** Completions longer than this many characters earn 0 (default: no limit). */
  maxChars?: number;
  /** Length of the completion in tokens, for `length` (default: its number of words). */
  tokens?: number;
  /** Cosine length reward: value at 0 tokens, at `maxTokens` and beyond, and that length (1, 0.5, 1024). */
  length?: { max: number; min: number; maxTokens: number };
  /** Repetition penalty: n-gram size and the penalty of a completion that is all repeats (6, -1). */
  repetition?: { n: number; maxPenalty: number };
}

/** The authors' defaults of the length and repetition rewards. */
export const DEFAULT_LENGTH = { max: 1, min: 0.5, maxTokens: 1024 } as const;
export const DEFAULT_REPETITION = { n: 6, maxPenalty: -1 } as const;

/**
 * Default tau (km) of the geodesic reward when the spec does not give one: the recipe's (experiments/base.json).
 * It must be of the order of the policy's errors (thousands of km here): with 500 km every sample of a group
 * scores ~0 and the length reward decides the advantages.
 */
export const DEFAULT_TAU_KM = 2500;
/** Default geolocation accuracy radius (km). */
export const DEFAULT_ACCURACY_KM = 25;

/** Names of the reward functions (the keys of `GrpoSpec.rewards`). */
export const REWARD_NAMES = ["format", "accuracy", "geodesic", "length", "repetition"] as const;
export type RewardName = typeof REWARD_NAMES[number];

/** A reward function: pure in its arguments. */
export type RewardFn = (completion: string, ex: Example, opts?: RewardOptions) => number;

function disqualified(completion: string, opts: RewardOptions): boolean {
  if (opts.truncated) return true;
  return opts.maxChars !== undefined && completion.length > opts.maxChars;
}

/** Normalise a free-text answer for geo-qa comparison: trim, collapse whitespace, lower case. */
export function normaliseAnswer(s: string): string {
  return s.trim().replace(/\s+/g, " ").toLowerCase();
}

/** The true location of a geolocate example (scene, else the parsed canonical answer), or null. */
export function truthLatLon(ex: Example): LatLon | null {
  const s = ex.scene;
  if (s && isValidLatLon({ lat: s.lat, lon: s.lon })) return { lat: s.lat, lon: s.lon };
  return parseLatLon(ex.answer);
}

/** Great-circle error in km of a predicted point for a geolocate example; Infinity without a point. */
export function pointErrorKm(point: LatLon | null, ex: Example): number {
  const t = truthLatLon(ex);
  return point && t ? haversineKm(point, t) : Infinity;
}

/** Great-circle error in km of a parsed answer for a geolocate example; Infinity if unparseable. */
function answerKm(answer: string | null, ex: Example): number {
  return pointErrorKm(answer === null ? null : parseLatLon(answer), ex);
}

/** The point a completion answers: null when the format is invalid or the answer does not parse as "lat, lon". */
export function completionPoint(completion: string): LatLon | null {
  const p = parseCompletion(completion);
  return p.ok && p.answer !== null ? parseLatLon(p.answer) : null;
}

/**
 * Geolocation error in km of a whole completion (Infinity when the format is invalid or the answer does not
 * parse as "lat, lon").
 */
export function completionDistanceKm(completion: string, ex: Example): number {
  return pointErrorKm(completionPoint(completion), ex);
}

function accuracyOf(p: ParsedCompletion, ex: Example, opts: RewardOptions): number {
  if (!p.ok || p.answer === null) return 0;
  switch (ex.task) {
    case "pairing":
    case "control":
      return /^[A-Z]$/.test(p.answer) && p.answer === ex.answer.trim() ? 1 : 0;
    case "geolocate":
      return answerKm(p.answer, ex) <= (opts.accuracyKm ?? DEFAULT_ACCURACY_KM) ? 1 : 0;
    case "geoqa":
      return normaliseAnswer(p.answer) === normaliseAnswer(ex.answer) ? 1 : 0;
    default:
      return 0;
  }
}

function geodesicOf(p: ParsedCompletion, ex: Example, opts: RewardOptions): number {
  if (!p.ok || ex.task !== "geolocate") return 0;
  const d = answerKm(p.answer, ex);
  if (!Number.isFinite(d)) return 0;
  const tau = opts.tauKm ?? DEFAULT_TAU_KM;
  if (!(tau > 0)) throw new RangeError(`geodesic reward: tauKm must be > 0, got ${tau}`);
  return Math.exp(-d / tau);
}

function words(completion: string): string[] {
  return completion.split(/\s+/).filter((w) => w.length > 0);
}

function lengthOf(completion: string, opts: RewardOptions): number {
  const c = opts.length ?? DEFAULT_LENGTH;
  if (!(c.maxTokens > 0)) throw new RangeError(`length reward: maxTokens must be > 0, got ${c.maxTokens}`);
  const L = opts.tokens ?? words(completion).length;
  const x = Math.min(Math.max(L, 0), c.maxTokens) / c.maxTokens;
  return c.min + ((c.max - c.min) * (1 + Math.cos(Math.PI * x))) / 2;
}

/** Share of repeated n-grams among a word list's n-grams (0 when it has fewer than n words). */
export function repeatedNgramShare(ws: readonly string[], n: number): number {
  if (!Number.isInteger(n) || n < 1) {
    throw new RangeError(`repetition: n must be a positive integer, got ${n}`);
  }
  const total = ws.length - n + 1;
  if (total <= 0) return 0;
  const seen = new Set<string>();
  for (let i = 0; i < total; i++) seen.add(ws.slice(i, i + n).join("\u0000"));
  return 1 - seen.size / total;
}

function repetitionOf(completion: string, opts: RewardOptions): number {
  const c = opts.repetition ?? DEFAULT_REPETITION;
  const r = c.maxPenalty * repeatedNgramShare(words(completion), c.n);
  return r === 0 ? 0 : r;
}

/** 1 iff the completion has the exact think-then-answer format. */
export const formatReward: RewardFn = (completion, _ex, opts = {}) =>
  disqualified(completion, opts) ? 0 : parseCompletion(completion).ok ? 1 : 0;

/** Task accuracy of the answer (see the module doc for each task's rule). */
export const accuracyReward: RewardFn = (completion, ex, opts = {}) =>
  disqualified(completion, opts) ? 0 : accuracyOf(parseCompletion(completion), ex, opts);

/** Pairing accuracy: {@link accuracyReward} restricted to pairing examples (0 for any other task). */
export const pairingReward: RewardFn = (completion, ex, opts) =>
  ex.task === "pairing" ? accuracyReward(completion, ex, opts) : 0;

/** exp(-d / tau) for geolocate examples, 0 otherwise. */
export const geodesicReward: RewardFn = (completion, ex, opts = {}) =>
  disqualified(completion, opts) ? 0 : geodesicOf(parseCompletion(completion), ex, opts);

/** Cosine length reward (see the module doc); `opts.tokens` is the length, else the word count. */
export const lengthReward: RewardFn = (completion, _ex, opts = {}) =>
  disqualified(completion, opts) ? 0 : lengthOf(completion, opts);

/** n-gram repetition penalty in [maxPenalty, 0] (see the module doc). */
export const repetitionReward: RewardFn = (completion, _ex, opts = {}) =>
  disqualified(completion, opts) ? 0 : repetitionOf(completion, opts);

/** The registry the trainer resolves `GrpoSpec.rewards` keys against. */
export const REWARD_FUNCTIONS: Readonly<Record<RewardName, RewardFn>> = {
  format: formatReward,
  accuracy: accuracyReward,
  geodesic: geodesicReward,
  length: lengthReward,
  repetition: repetitionReward,
};

/** Result of {@link combineRewards}: the weighted total and every function's unweighted value. */
export interface CombinedReward {
  total: number;
  parts: Record<RewardName, number>;
}

/**
 * All reward functions on one completion (parsed once) and their weighted sum
 * total = sum_k weights[k] * parts[k]. Every part is reported, weighted or not, so each can be logged.
 */
export function combineRewards(
  completion: string,
  ex: Example,
  weights: Readonly<Partial<Record<RewardName, number>>>,
  opts: RewardOptions = {},
): CombinedReward {
  const parts: Record<RewardName, number> = { format: 0, accuracy: 0, geodesic: 0, length: 0, repetition: 0 };
  if (!disqualified(completion, opts)) {
    const p = parseCompletion(completion);
    parts.format = p.ok ? 1 : 0;
    parts.accuracy = accuracyOf(p, ex, opts);
    parts.geodesic = geodesicOf(p, ex, opts);
    parts.length = lengthOf(completion, opts);
    parts.repetition = repetitionOf(completion, opts);
  }
  let total = 0;
  for (const k of REWARD_NAMES) {
    const w = weights[k] ?? 0;
    if (w !== 0) total += w * parts[k];
  }
  return { total, parts };
}
