/**
 * The chain-of-thought data engine: writes `<think>...</think><answer>...</answer>` exemplars from scene
 * metadata and cues (never from the answer letter alone).
 *
 * Pairing exemplar (labelled pairing CoT, for `task-sft` only). Verbosity 0, the form the recipe uses: each
 * candidate's cues read from its own tile, then the ground view's cues, then the verdicts in letter order up
 * to the match ("A: ... B: ... ground: ... A no, B fits."). Verbosity 1 and 2 are prose: observe the ground
 * view's cues; connect them to geographic priors (roof colour + road-line colour -> continent/region,
 * vegetation + sun -> climate, and at verbosity 2 driving side and hemisphere); eliminate each candidate
 * that differs, citing a cue on which it differs; state the remaining letter. Wording and order come from
 * the template tables below.
 *
 * Verbosity (pairing): 0 (about 120 tokens: one line of short cue phrases per candidate and for the ground,
 * then the verdicts), 1 (about 70-100 tokens: full observation, one prior sentence, one sentence per
 * candidate), 2 (about 150-250 tokens: every cue, all priors incl. driving side and hemisphere, every
 * differing cue of every candidate).
 *
 * Noise (documented choice): with probability `noise`, ONE ground-view cue that no elimination cites is
 * replaced by a wrong value (and added to the observation if the terse form would not list it). Because the
 * flipped cue is never used to rule a candidate out, and the match sentence names only the cited cues, the
 * reasoning stays consistent and the final answer always equals the metadata answer. If every observed cue
 * is cited, no cue is flipped. At verbosity 0 the noise is on one negative's line instead: its differing cue
 * is shown with another wrong value, so it still differs (`verifyCandidates`). `PairingCotResult.noisyCue`
 * reports which cue was flipped.
 * @module
 */
import { deriveSeed, Rng } from "../rng.ts";
import type { SceneMeta } from "../world/types.ts";
import { ROAD_LINES, ROOF_PALETTES, VEGETATION_COLOURS } from "../world/mod.ts";
import {
  COMPASS,
  cueDiffers,
  type CueKey,
  DENSITIES,
  LEVELS3,
  observedPhrase,
  ROAD_AXES,
  type ViewCues,
} from "./cues.ts";

/** CoT knobs (DataSpec.cot). */
export interface CotOptions {
  /** 0 terse, 1 medium, 2 verbose. */
  verbosity: number;
  /** Probability that one intermediate cue is wrong (see module doc). */
  noise: number;
}

/** Input of the pairing engine. */
export interface PairingCotInput {
  ground: ViewCues;
  /** Metadata of the ground scene (for priors: continent, climate, driving side, hemisphere). */
  groundMeta: SceneMeta;
  /** Candidate cues in letter order. */
  candidates: ViewCues[];
  /** Index of the true match (from metadata). */
  correct: number;
}

export interface PairingCotResult {
  /** The full target `<think>...</think><answer>L</answer>`. */
  target: string;
  think: string;
  answer: string;
  /** The cue flipped by noise, or null. */
  noisyCue: CueKey | null;
  /** Cue cited to eliminate each candidate (null for the match, or when a negative had no differing cue). */
  cited: (CueKey[] | null)[];
}

/** Candidate letter of an index (A, B, C, ...). */
export function letter(i: number): string {
  return String.fromCharCode(65 + i);
}

/** Noun of a cue key used in "matches the roads, water and trees". */
const KEY_NOUN: Record<CueKey | "sunSide", string> = {
  roadAxes: "roads",
  waterSide: "water",
  buildings: "buildings",
  trees: "trees",
  roof: "roofs",
  roadLine: "road lines",
  vegetation: "vegetation",
  sunSide: "sun",
};

/**
 * Template tables. `{L}` candidate letter, `{X}` a cue phrase / observation list, `{K}` cue nouns,
 * `{C}` continent, `{Z}` climate, `{N}` country, `{S}` side. Every word in these strings is in the tokenizer's
 * lexicon (lib/data/lexicon.ts reads this table).
 */
export const COT_TEMPLATES = {
  v0Open: ["ground: {X}.", "ground view: {X}.", "panorama: {X}."],
  v1Open: ["the ground view shows: {X}.", "in the panorama: {X}.", "from the ground we see: {X}."],
  v1Prior: [
    "{X} suggest {C}.",
    "{X} point to {C}.",
    "{X} are typical of {C}.",
  ],
  v1Climate: [
    "{X} suggests a {Z} climate.",
    "{X} fits a {Z} climate.",
  ],
  v1Elim: ["{L} has {X}, so not {L}.", "{L} shows {X}: no.", "{L}: {X}, which does not match."],
  v1Alike: ["{L} looks alike but the layout differs, so not {L}."],
  v1Match: ["{L} matches the {K}.", "{L} agrees on the {K}."],
  v1Final: ["the answer is {L}.", "so the match is {L}.", "so it is {L}."],
  v2Open: [
    "first, the ground panorama. {X}.",
    "let me look at the ground view first. {X}.",
  ],
  v2Region: [
    "{X} are common in {C}, perhaps {N}.",
    "{X} suggest {C}, maybe {N}.",
  ],
  v2Driving: ["traffic keeps to the {S} there.", "people drive on the {S} side there."],
  v2Climate: [
    "{X} suggests a {Z} climate.",
    "with {X}, the climate looks {Z}.",
  ],
  v2Hemisphere: ["the sun stands to the {X}, so this is the {S} hemisphere."],
  v2Cand: ["now candidate {L}: {X}.", "candidate {L} shows {X}."],
  v2Differs: ["it differs in the {K}, so it is ruled out.", "the {K} do not match, so not {L}."],
  v2Alike: ["it looks alike, but the fine layout differs, so not {L}."],
  v2Match: ["it agrees with the ground view on the {K}.", "the {K} all match."],
  v2Final: ["only {L} remains, so the answer is {L}.", "therefore the aerial view {L} is the match."],
  geoV0: ["{X}: {C}, {Z}, {N}.", "{X}, so {N} in {C}."],
  geoV1Country: ["this looks like {N}, a {Z} part of {C}.", "my guess is {N} in {C}, {Z} climate."],
  geoV1Settle: ["the area looks {X}.", "it seems {X}."],
  geoV2Coast: ["water nearby means a coast.", "no water in view, so likely inland."],
  scafGround: ["ground: {X}.", "from the ground: {X}."],
  scafAerial: ["aerial: {X}.", "from above: {X}."],
  scafRelate: ["the {K} agree in both views.", "the {K} match between the views."],
  scafPrior: ["{X} suggest {C}.", "{X} point to {C}."],
  scafClimate: ["{X}: {Z} climate.", "{X} means a {Z} climate."],
  scafPlace: ["so {N}, {S}.", "this is {N}, {S}."],
} as const;

/** Words of the CoT that are not in the template strings (hemispheres, etc.), for the lexicon. */
export const COT_EXTRA_WORDS = "northern southern left right " + Object.values(KEY_NOUN).join(" ");

function fill(t: string, vars: Record<string, string>): string {
  return t.replace(/\{([A-Z])\}/g, (_, k: string) => vars[k] ?? "");
}

function nounList(keys: CueKey[]): string {
  const ns = [...new Set(keys.map((k) => KEY_NOUN[k]))];
  if (ns.length <= 1) return ns.join("");
  return ns.slice(0, -1).join(", ") + " and " + ns[ns.length - 1];
}

function listAnd(xs: string[]): string {
  if (xs.length <= 1) return xs.join("");
  return xs.slice(0, -1).join(", ") + " and " + xs[xs.length - 1];
}

/** Colour names used to flip roof / road-line cues (noise); any value differing from the true one works. */
const NOISE_ROOFS = Object.keys(ROOF_PALETTES);
const NOISE_LINES = Object.keys(ROAD_LINES);
const NOISE_VEG = Object.keys(VEGETATION_COLOURS);

/** A copy of `c` with cue `k` changed to a different value. */
function flipCue(c: ViewCues, k: CueKey, rng: Rng): ViewCues {
  const out: ViewCues = { ...c, roadAxes: [...c.roadAxes] };
  const other = <T>(xs: readonly T[], cur: T): T => {
    const opts = xs.filter((x) => x !== cur);
    return opts[rng.int(opts.length)];
  };
  switch (k) {
    case "roadAxes": {
      const cur = c.roadAxes.join();
      const sets: (typeof ROAD_AXES[number])[][] = [[], ...ROAD_AXES.map((a) => [a]), [
        ROAD_AXES[0],
        ROAD_AXES[2],
      ]];
      out.roadAxes = other(sets.map((s) => s.join()), cur).split(",").filter(Boolean) as typeof out.roadAxes;
      if (out.roadAxes.length === 0) out.roadLine = null;
      else if (!out.roadLine) out.roadLine = "white";
      break;
    }
    case "waterSide":
      out.waterSide = other([null, ...COMPASS], c.waterSide);
      break;
    case "buildings":
      out.buildings = other(DENSITIES, c.buildings);
      if (out.buildings === "none") out.roof = null;
      else if (!out.roof) out.roof = "red";
      break;
    case "trees":
      out.trees = other(LEVELS3, c.trees);
      break;
    case "roof":
      out.roof = other(NOISE_ROOFS, c.roof ?? "red");
      break;
    case "roadLine":
      out.roadLine = other(NOISE_LINES, c.roadLine ?? "white");
      break;
    case "vegetation":
      out.vegetation = other(NOISE_VEG, c.vegetation);
      break;
  }
  return out;
}

/** Keys worth stating in an observation of `c` (roof/road lines only when present). */
function observedKeys(c: ViewCues): CueKey[] {
  const ks: CueKey[] = ["roadAxes", "waterSide", "buildings", "trees"];
  if (c.roadLine) ks.push("roadLine");
  ks.push("vegetation");
  return ks;
}

/** Observation list: keys -> phrases; "buildings" covers the roof colour. */
function obsList(c: ViewCues, keys: CueKey[], style: 0 | 1): string {
  const ks = keys.filter((k) => k !== "roof" || !keys.includes("buildings"));
  return ks.map((k) => observedPhrase(c, k === "roof" ? "buildings" : k, style)).join(", ");
}

/** Region evidence phrase: "red roofs and white road lines" (from the cues that are present). */
function regionEvidence(c: ViewCues): string | null {
  const ev: string[] = [];
  if (c.roof) ev.push(`${c.roof} roofs`);
  if (c.roadLine) ev.push(`${c.roadLine} road lines`);
  return ev.length ? listAnd(ev) : null;
}

function hemisphere(c: ViewCues, meta: SceneMeta): string | null {
  if (!c.sunSide) return null;
  if (c.sunSide.startsWith("south") && meta.lat > 23.5) return "northern";
  if (c.sunSide.startsWith("north") && meta.lat < -23.5) return "southern";
  return null;
}

/**
 * Cues the terse (verbosity 0) exemplar compares, in order: the coarse ones first (vegetation and water
 * separate most far and same-climate negatives), then the layout (roads, buildings with roofs, trees), which
 * separates near negatives, then the road-line colour.
 */
export const VERIFY_KEYS: readonly CueKey[] = [
  "vegetation",
  "waterSide",
  "roadAxes",
  "buildings",
  "trees",
  "roadLine",
];

/** Does cue `k` differ, where "buildings" (stated with its roof colour) also covers the roof? */
function differsOn(a: ViewCues, b: ViewCues, k: CueKey): boolean {
  return cueDiffers(a, b, k) || (k === "buildings" && cueDiffers(a, b, "roof"));
}

/** The first VERIFY_KEYS cue on which a candidate differs from the ground. */
function firstDiff(g: ViewCues, c: ViewCues): CueKey | null {
  return VERIFY_KEYS.find((k) => differsOn(g, c, k)) ?? null;
}

/** A copy of `c` whose cue `k` takes another value that still differs from the ground's, or null. */
function flipAway(c: ViewCues, g: ViewCues, k: CueKey, rng: Rng): ViewCues | null {
  for (let tries = 0; tries < 8; tries++) {
    const f = flipCue(c, k, rng);
    if (differsOn(f, g, k)) return f;
  }
  return null;
}

/**
 * Verbosity 0: per candidate, the first VERIFY_KEYS cue on which it differs from the ground (null for the
 * match and for a negative no cue tells apart), the cues its line shows and its verdict. Noise: with
 * probability `noise`, one negative's differing cue is shown with another wrong value (it still differs);
 * `noisyCue` names it. Sets `cited[i]` to the cue that really differs ("buildings" covers the roof colour).
 */
function verifyCandidates(
  g0: ViewCues,
  candidates: ViewCues[],
  correct: number,
  noise: number,
  cited: (CueKey[] | null)[],
  rng: Rng,
): { rows: { k: CueKey | null; shown: ViewCues; verdict: string }[]; noisyCue: CueKey | null } {
  const negatives = candidates.map((_, i) => i).filter((i) => i !== correct && firstDiff(g0, candidates[i]));
  const noisyAt = noise > 0 && negatives.length > 0 && rng.next() < noise
    ? negatives[rng.int(negatives.length)]
    : -1;
  let noisyCue: CueKey | null = null;
  const rows = candidates.map((c, i) => {
    const k = i === correct ? null : firstDiff(g0, c);
    let shown = c;
    if (i === noisyAt && k) {
      const alt = flipAway(c, g0, k, rng);
      if (alt) {
        shown = alt;
        noisyCue = k;
      }
    }
    cited[i] = k ? [k === "buildings" && !cueDiffers(g0, c, "buildings") ? "roof" : k] : null;
    return { k, shown, verdict: i === correct ? "fits" : k ? "no" : "alike" };
  });
  return { rows, noisyCue };
}

/**
 * Write a pairing exemplar. Deterministic in `rng`'s state. The answer is always `letter(input.correct)`.
 */
export function pairingCotDetailed(input: PairingCotInput, opts: CotOptions, rng: Rng): PairingCotResult {
  const { candidates, correct } = input;
  const v = Math.max(0, Math.min(2, Math.round(opts.verbosity)));
  const L = letter(correct);
  const g0 = input.ground;
  // Cues cited to eliminate each negative: one random differing cue at v0/v1, all at v2.
  const cited: (CueKey[] | null)[] = candidates.map((c, i) => {
    if (i === correct) return null;
    const diff =
      (["roadAxes", "waterSide", "buildings", "trees", "roof", "roadLine", "vegetation"] as CueKey[])
        .filter((k) => cueDiffers(g0, c, k));
    if (diff.length === 0) return null;
    return v === 2 ? diff : [diff[rng.int(diff.length)]];
  });
  const citedSet = new Set<CueKey>();
  for (const c of cited) for (const k of c ?? []) citedSet.add(k === "roof" ? "buildings" : k);
  for (const c of cited) for (const k of c ?? []) if (k === "roof") citedSet.add("roof");

  // Noise: flip one observed, uncited cue of the ground view. Verbosity 0 makes the same draws but shows the
  // ground as it is (its noise is on a negative's line), so every verbosity consumes the generator alike.
  let g = g0;
  let noisyCue: CueKey | null = null;
  if (opts.noise > 0 && rng.next() < opts.noise) {
    const pool = observedKeys(g0).filter((k) =>
      !citedSet.has(k) && !(k === "buildings" && citedSet.has("roof")) &&
      !(k === "roadAxes" && citedSet.has("roadLine")) && !(k === "roadLine" && citedSet.has("roadAxes"))
    );
    if (pool.length > 0) {
      noisyCue = pool[rng.int(pool.length)];
      g = flipCue(g0, noisyCue, rng);
    }
  }
  const matchKeys = [...citedSet].filter((k) => k !== "roof" || !citedSet.has("buildings"));
  const d: PairingDraft = { input, rng, cited, matchKeys, g, L };
  let parts: string[];
  if (v === 0) {
    const r = verdictLines(d, opts.noise);
    parts = r.parts;
    noisyCue = r.noisyCue;
  } else parts = v === 1 ? proseMedium(d) : proseVerbose(d);
  const think = parts.join(" ");
  return { target: `<think>${think}</think><answer>${L}</answer>`, think, answer: L, noisyCue, cited };
}

/** What the three pairing writers share. */
interface PairingDraft {
  input: PairingCotInput;
  rng: Rng;
  /** Cues cited to eliminate each negative (null for the match and a negative no cue tells apart). */
  cited: (CueKey[] | null)[];
  /** The cited cues, which the match shares with the ground. */
  matchKeys: CueKey[];
  /** The ground's cues as the prose states them (one may be flipped by noise). */
  g: ViewCues;
  /** The answer letter. */
  L: string;
}

function pickFrom<T>(rng: Rng, xs: readonly T[]): T {
  return xs[rng.int(xs.length)];
}

/**
 * Verbosity 0: each candidate described from its own tile (every cue), then the ground, then the verdicts.
 * Nothing earlier in the text says what a candidate should show, so a candidate line can only come from
 * reading its tile. The verdicts run in letter order and stop at the match ("A no, B fits."), so the answer
 * token follows "B fits" directly and continues B's slot segment instead of copying a letter from further
 * back. Why this form: RESULTS.md, third, fifth and eighth builds.
 */
function verdictLines(d: PairingDraft, noise: number): { parts: string[]; noisyCue: CueKey | null } {
  const { candidates, correct, ground: g0 } = d.input;
  const keys = (c: ViewCues) => VERIFY_KEYS.filter((k) => k !== "roadLine" || c.roadLine !== null);
  const r = verifyCandidates(g0, candidates, correct, noise, d.cited, d.rng);
  const parts = r.rows.map(({ shown }, i) => `${letter(i)}: ${obsList(shown, keys(shown), 0)}.`);
  parts.push(fill(pickFrom(d.rng, COT_TEMPLATES.v0Open), { X: obsList(g0, keys(g0), 0) }));
  const verdicts = r.rows.slice(0, correct + 1);
  parts.push(verdicts.map(({ verdict }, i) => `${letter(i)} ${verdict}`).join(", ") + ".");
  return { parts, noisyCue: r.noisyCue };
}

/** Verbosity 1: the ground's cues, one prior sentence, one elimination per negative, the match. */
function proseMedium(d: PairingDraft): string[] {
  const { rng, g, L, cited, matchKeys } = d;
  const { candidates, correct, groundMeta } = d.input;
  const pick = <T>(xs: readonly T[]) => pickFrom(rng, xs);
  const parts: string[] = [];
  const keys = observedKeys(g);
  if (rng.next() < 0.5) rng.shuffle(keys);
  parts.push(fill(pick(COT_TEMPLATES.v1Open), { X: obsList(g, keys, 1) }));
  const ev = regionEvidence(g);
  if (ev) parts.push(fill(pick(COT_TEMPLATES.v1Prior), { X: ev, C: groundMeta.continent }));
  else parts.push(fill(pick(COT_TEMPLATES.v1Climate), { X: g.vegetation, Z: groundMeta.climate }));
  candidates.forEach((c, i) => {
    if (i === correct) return;
    const k = cited[i];
    const t = k ? fill(pick(COT_TEMPLATES.v1Elim), { L: letter(i), X: observedPhrase(c, k[0], 1) }) : fill(
      COT_TEMPLATES.v1Alike[0],
      { L: letter(i) },
    );
    parts.push(t);
  });
  if (matchKeys.length) parts.push(fill(pick(COT_TEMPLATES.v1Match), { L, K: nounList(matchKeys) }));
  parts.push(fill(pick(COT_TEMPLATES.v1Final), { L }));
  return parts;
}

/** Verbosity 2: every ground cue, every prior (region, driving side, climate, hemisphere), every candidate. */
function proseVerbose(d: PairingDraft): string[] {
  const { rng, g, L, cited, matchKeys } = d;
  const { candidates, correct, groundMeta } = d.input;
  const pick = <T>(xs: readonly T[]) => pickFrom(rng, xs);
  const parts: string[] = [];
  const keys = observedKeys(g);
  parts.push(fill(pick(COT_TEMPLATES.v2Open), { X: obsList(g, keys, 1) }));
  if (g.sunSide) parts.push(`${observedPhrase(g, "sunSide", 1)}.`);
  const ev = regionEvidence(g);
  if (ev) {
    parts.push(
      fill(pick(COT_TEMPLATES.v2Region), { X: ev, C: groundMeta.continent, N: groundMeta.countryName }),
    );
  }
  parts.push(fill(pick(COT_TEMPLATES.v2Driving), { S: groundMeta.drivingSide }));
  parts.push(fill(pick(COT_TEMPLATES.v2Climate), { X: g.vegetation, Z: groundMeta.climate }));
  const hemi = hemisphere(g, groundMeta);
  if (hemi) parts.push(fill(COT_TEMPLATES.v2Hemisphere[0], { X: g.sunSide!, S: hemi }));
  candidates.forEach((c, i) => {
    // Describe the candidate by the cues that matter (the cited ones), to keep exemplars compact.
    const shown = i === correct ? matchKeys : (cited[i] ?? []);
    if (shown.length) {
      parts.push(fill(pick(COT_TEMPLATES.v2Cand), { L: letter(i), X: obsList(c, shown, 0) }));
    }
    if (i === correct) {
      if (matchKeys.length) parts.push(fill(pick(COT_TEMPLATES.v2Match), { K: nounList(matchKeys) }));
    } else {
      const k = cited[i];
      parts.push(
        k
          ? fill(pick(COT_TEMPLATES.v2Differs), { L: letter(i), K: nounList(k) })
          : fill(COT_TEMPLATES.v2Alike[0], { L: letter(i) }),
      );
    }
  });
  parts.push(fill(pick(COT_TEMPLATES.v2Final), { L }));
  return parts;
}

/** Write a pairing exemplar; returns the full target `<think>...</think><answer>L</answer>`. */
export function pairingCot(input: PairingCotInput, opts: CotOptions, rng: Rng): string {
  return pairingCotDetailed(input, opts, rng).target;
}

/** Canonical `lat, lon` answer: two decimals, no "-0.00" (e.g. "48.86, 2.35", "-33.87, 151.21"). */
export function formatLatLon(lat: number, lon: number): string {
  const f = (x: number) => {
    const s = x.toFixed(2);
    return s === "-0.00" ? "0.00" : s;
  };
  return `${f(lat)}, ${f(lon)}`;
}

/**
 * A geolocation exemplar from the ground view's cues and the scene metadata: observations -> region and
 * climate priors -> country -> coordinates. Noise flips one observation (the conclusion follows the metadata,
 * as in pairing). The answer is `answer`: the task sampler passes the place prior of the scene's country and
 * climate (lib/data/place_prior.ts), the coordinate the reasoning arrives at; the default is the exact spot.
 */
export function geolocateCot(
  meta: SceneMeta,
  cues: ViewCues,
  opts: CotOptions,
  rng: Rng,
  answer = formatLatLon(meta.lat, meta.lon),
): string {
  const v = Math.max(0, Math.min(2, Math.round(opts.verbosity)));
  const pick = <T>(xs: readonly T[]) => xs[rng.int(xs.length)];
  let c = cues;
  if (opts.noise > 0 && rng.next() < opts.noise) {
    c = flipCue(cues, pick(["trees", "waterSide"] as CueKey[]), rng);
  }
  const ev = regionEvidence(c) ?? c.vegetation;
  const vars = { X: ev, C: meta.continent, Z: meta.climate, N: meta.countryName };
  const parts: string[] = [];
  if (v === 0) {
    parts.push(fill(pick(COT_TEMPLATES.geoV0), { ...vars, X: `${ev}, ${c.vegetation}` }));
  } else {
    parts.push(fill(pick(COT_TEMPLATES.v1Open), { X: obsList(c, observedKeys(c), 1) }));
    if (v === 2 && c.sunSide) parts.push(`${observedPhrase(c, "sunSide", 1)}.`);
    if (regionEvidence(c)) parts.push(fill(pick(COT_TEMPLATES.v1Prior), vars));
    parts.push(fill(pick(COT_TEMPLATES.v1Climate), { X: c.vegetation, Z: meta.climate }));
    if (v === 2) {
      parts.push(fill(pick(COT_TEMPLATES.v2Driving), { S: meta.drivingSide }));
      const hemi = hemisphere(c, meta);
      if (hemi) parts.push(fill(COT_TEMPLATES.v2Hemisphere[0], { X: c.sunSide!, S: hemi }));
      parts.push(COT_TEMPLATES.geoV2Coast[c.waterSide ? 0 : 1]);
    }
    parts.push(fill(pick(COT_TEMPLATES.geoV1Settle), { X: meta.settlement }));
    parts.push(fill(pick(COT_TEMPLATES.geoV1Country), vars));
  }
  return `<think>${parts.join(" ")}</think><answer>${answer}</answer>`;
}

/** Cues a ground panorama and an aerial tile both show, compared by a scaffold exemplar. */
const SHARED_KEYS: readonly CueKey[] = ["roadAxes", "buildings"];
/** What a scaffold exemplar observes from the ground (the sun only when it is up). */
const GROUND_KEYS: readonly CueKey[] = ["buildings", "roadLine", "vegetation"];
/** What it observes from above. */
const AERIAL_KEYS: readonly CueKey[] = ["roadAxes", "waterSide", "buildings", "trees"];

/**
 * A scaffold exemplar on a positive pair (a ground view and its own aerial tile): observe each view, relate
 * them by the cues both show, connect the regional cues to geographic priors (continent, climate), conclude
 * the country and settlement, and answer `answer` (the place prior's coordinate). Every stated fact comes from
 * the scene's metadata and cues; noise (rate `opts.noise`) flips one ground observation, as in geolocateCot.
 * It shows one aerial view only, names no candidate letter and compares nothing with another place: it
 * teaches the way of thinking, not the pairing task.
 */
export function scaffoldCot(
  meta: SceneMeta,
  cues: ViewCues,
  answer: string,
  opts: CotOptions,
  rng: Rng,
): string {
  const pick = <T>(xs: readonly T[]) => xs[rng.int(xs.length)];
  let g = cues;
  if (opts.noise > 0 && rng.next() < opts.noise) {
    g = flipCue(cues, pick(["trees", "waterSide"] as CueKey[]), rng);
  }
  const present = (c: ViewCues, k: CueKey) => k !== "roadLine" || c.roadLine !== null;
  const ground = GROUND_KEYS.filter((k) => present(g, k)).map((k) => observedPhrase(g, k, 0));
  if (g.sunSide) ground.push(observedPhrase(g, "sunSide", 0));
  const aerial = AERIAL_KEYS.map((k) => observedPhrase(cues, k, 0));
  const parts = [
    fill(pick(COT_TEMPLATES.scafGround), { X: ground.join(", ") }),
    fill(pick(COT_TEMPLATES.scafAerial), { X: aerial.join(", ") }),
    fill(pick(COT_TEMPLATES.scafRelate), { K: nounList([...SHARED_KEYS]) }),
  ];
  const ev = regionEvidence(cues);
  if (ev) parts.push(fill(pick(COT_TEMPLATES.scafPrior), { X: ev, C: meta.continent }));
  parts.push(fill(pick(COT_TEMPLATES.scafClimate), { X: cues.vegetation, Z: meta.climate }));
  parts.push(fill(pick(COT_TEMPLATES.scafPlace), { N: meta.countryName, S: meta.settlement }));
  return `<think>${parts.join(" ")}</think><answer>${answer}</answer>`;
}

/** The text between `<answer>` and `</answer>` (first occurrence), or null. */
export function extractAnswer(completion: string): string | null {
  const m = /<answer>([\s\S]*?)<\/answer>/.exec(completion);
  return m ? m[1].trim() : null;
}

/**
 * The candidate a pairing think block names as the match, or null when it names none or several. Read from
 * the verdict words: "B fits" (the verbosity-0 verdict line) or "B: ..., fits." (a candidate line that ends
 * in its verdict, which a policy may write); the verbosity-1/2 prose names no verdict word and gives null.
 * The evaluation compares this letter with the answer (`answerFollowsMatch`): whether the answer is the one
 * the reasoning arrived at.
 */
export function statedMatch(think: string): string | null {
  const named = new Set<string>();
  for (const m of think.matchAll(/(?:^|[\s,.])([A-Z]) fits\b/g)) named.add(m[1]);
  for (const m of think.matchAll(/(?:^|[\s.])([A-Z]): [^.]*, fits\./g)) named.add(m[1]);
  return named.size === 1 ? [...named][0] : null;
}

/** An Rng for one exemplar, from a seed and a name (convenience for callers and tests). */
export function cotRng(seed: number, name: string): Rng {
  return new Rng(deriveSeed(seed, name));
}
