/**
 * View-observable cues of a scene and the ONE phrase vocabulary that both captions (pretraining) and the
 * chain-of-thought engine (SFT) use to talk about them: what a caption teaches about a single view is
 * literally the wording the pairing reasoning later uses to compare views.
 *
 * Generated text is lower case except proper names (countries, continents) and candidate letters, which keeps
 * the closed vocabulary small.
 *
 * Cues are discrete (compass words, three-level densities, colour names), from the world's `sceneCues`
 * (lib/world/cues.ts). Both views show the same layout, so the comparable cues are identical for a ground panorama and
 * its aerial tile; the sun is a ground-only cue (sky) and is never used to compare candidates.
 * @module
 */
import type { Scene, SceneMeta } from "../world/types.ts";
import {
  COMPASS8,
  ROAD_AXES as WORLD_ROAD_AXES,
  type SceneCues,
  sceneCues as worldSceneCues,
} from "../world/cues.ts";
import type { Rng } from "../rng.ts";

/** The four road axes, by bearing bucket (0, 45, 90, 135 degrees): the world's list. */
export const ROAD_AXES = WORLD_ROAD_AXES;
export type RoadAxis = typeof ROAD_AXES[number];

/** Eight compass words, clockwise from north: the world's list. */
export const COMPASS = COMPASS8;
export type Compass = typeof COMPASS[number];

export const LEVELS3 = ["none", "few", "many"] as const;
export const DENSITIES = ["none", "sparse", "dense"] as const;

/** Discrete cues of one scene (the same for its ground and aerial view, except `sunSide`). */
export interface ViewCues {
  /** Visible road axes, in ROAD_AXES order, no duplicates; empty when there is no road. */
  roadAxes: RoadAxis[];
  /** Compass side of visible water, or null. */
  waterSide: Compass | null;
  /** 0 buildings none, 1-5 sparse, 6+ dense. */
  buildings: typeof DENSITIES[number];
  /** Dominant roof colour name when there are buildings, else null. */
  roof: string | null;
  /** 0 trees none, 1-5 few, 6+ many. */
  trees: typeof LEVELS3[number];
  /** Road-line colour name when there are roads, else null. */
  roadLine: string | null;
  /** Compass side of the sun (ground view only), null when the sun is below the horizon. */
  sunSide: Compass | null;
  /** Vegetation word of the scene (e.g. "grassland"). */
  vegetation: string;
}

/** Cue keys that can tell two scenes apart, in the order the CoT engine prefers to cite them. */
export const COMPARABLE_KEYS = [
  "roadAxes",
  "waterSide",
  "buildings",
  "trees",
  "roof",
  "roadLine",
  "vegetation",
] as const;
export type CueKey = typeof COMPARABLE_KEYS[number];

/** The data engine's view of the world's cues (lib/world/cues.ts `sceneCues`, which defines the counts). */
export function cuesFromWorld(c: SceneCues): ViewCues {
  return {
    roadAxes: [...c.roadAxes],
    waterSide: c.waterSide,
    buildings: c.buildingDensity,
    roof: c.roofColour,
    trees: c.treeCover,
    roadLine: c.roadLine,
    sunSide: c.sunHeight === "below horizon" ? null : c.sunSide,
    vegetation: c.vegetation,
  };
}

/** Cues of a scene (via the world's `sceneCues`). */
export function sceneCues(scene: Scene): ViewCues {
  return cuesFromWorld(worldSceneCues(scene));
}

/** Does cue `key` differ between two scenes? */
export function cueDiffers(a: ViewCues, b: ViewCues, key: CueKey): boolean {
  if (key === "roadAxes") return a.roadAxes.join() !== b.roadAxes.join();
  return a[key] !== b[key];
}

/** The comparable cue keys on which two scenes differ (COMPARABLE_KEYS order). */
export function differingCues(a: ViewCues, b: ViewCues): CueKey[] {
  return COMPARABLE_KEYS.filter((k) => cueDiffers(a, b, k));
}

/** A signature of the comparable cues: two scenes with equal signatures cannot be told apart by cues. */
export function cueSignature(c: ViewCues): string {
  return COMPARABLE_KEYS.map((k) => (k === "roadAxes" ? c.roadAxes.join("+") : String(c[k]))).join("|");
}

// ---------------------------------------------------------------------------------------------------------
// Phrases. Every word these can produce is in PHRASE_WORDS (so the tokenizer has it as one token).

/** Words the phrase functions emit (besides cue values), for the tokenizer's lexicon. */
export const PHRASE_WORDS =
  "a road runs roads run and no water to the with roofs buildings trees lines road sun in view lies is are " +
  "there none sparse dense few many along axis sky shows";

function joinAnd(xs: string[]): string {
  if (xs.length <= 1) return xs.join("");
  return xs.slice(0, -1).join(", ") + " and " + xs[xs.length - 1];
}

/**
 * One cue as a phrase. `style` 0 is the terse form ("roads north-south, east-west", "water west"); 1 the
 * sentence form ("roads run north-south and east-west", "water to the west").
 */
export function cuePhrase(c: ViewCues, key: CueKey | "sunSide", style: 0 | 1): string {
  switch (key) {
    case "roadAxes":
      if (c.roadAxes.length === 0) return "no roads";
      if (style === 0) return "roads " + c.roadAxes.join(", ");
      return c.roadAxes.length === 1 ? `a road runs ${c.roadAxes[0]}` : `roads run ${joinAnd(c.roadAxes)}`;
    case "waterSide":
      if (!c.waterSide) return "no water";
      return style === 0 ? `water ${c.waterSide}` : `water to the ${c.waterSide}`;
    case "buildings":
      if (c.buildings === "none") return "no buildings";
      return style === 0 ? `${c.buildings} buildings` : `${c.buildings} buildings`;
    case "roof":
      return c.roof ? `${c.roof} roofs` : "no roofs";
    case "trees":
      return c.trees === "none" ? "no trees" : `${c.trees} trees`;
    case "roadLine":
      return c.roadLine ? `${c.roadLine} road lines` : "no road lines";
    case "vegetation":
      return c.vegetation;
    case "sunSide":
      if (!c.sunSide) return "no sun";
      return style === 0 ? `sun ${c.sunSide}` : `the sun to the ${c.sunSide}`;
  }
}

/** Buildings and roof colour in one phrase: "dense buildings with red roofs" / "no buildings". */
export function buildingsPhrase(c: ViewCues, style: 0 | 1): string {
  if (c.buildings === "none") return "no buildings";
  return style === 0 ? `${c.buildings} ${c.roof} roofs` : `${c.buildings} buildings with ${c.roof} roofs`;
}

/**
 * One cue as the CoT engine and the find prompts state it: "buildings" with its roof colour
 * (`buildingsPhrase`), every other cue as `cuePhrase`.
 */
export function observedPhrase(c: ViewCues, key: CueKey | "sunSide", style: 0 | 1): string {
  return key === "buildings" ? buildingsPhrase(c, style) : cuePhrase(c, key, style);
}

/**
 * A caption of one view: the cues in a fixed order, sentence form. Ground views add the sun; the wording is
 * the CoT engine's (same phrase functions).
 */
export function caption(c: ViewCues, view: "ground" | "aerial", rng?: Rng): string {
  const parts = [
    cuePhrase(c, "roadAxes", 1),
    cuePhrase(c, "waterSide", 1),
    buildingsPhrase(c, 1),
    cuePhrase(c, "trees", 1),
  ];
  if (c.roadLine) parts.push(cuePhrase(c, "roadLine", 1));
  parts.push(c.vegetation);
  if (view === "ground" && c.sunSide) parts.push(cuePhrase(c, "sunSide", 1));
  if (rng && rng.next() < 0.5) {
    // Light variation of order: the layout cues keep their order, the rest may swap.
    const tail = parts.splice(3);
    rng.shuffle(tail);
    parts.push(...tail);
  }
  return parts.join(", ") + ".";
}

/** Short observation line used as the think block of pretraining tasks. */
export function observation(c: ViewCues, meta: SceneMeta | null, keys: (CueKey | "sunSide")[]): string {
  void meta;
  return keys.map((k) => observedPhrase(c, k, 0)).join(", ") + ".";
}
