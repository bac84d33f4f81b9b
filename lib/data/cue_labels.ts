/**
 * Cue labels for the vision tower's auxiliary perception loss (`stages.<name>.cueLoss`, docs/MODEL.md).
 *
 * Every view of a synthetic example carries its discrete cues (`Example.cues`), the same facts its caption
 * states in words. This module turns them into classification targets over a FIXED label space: road axes
 * as four independent yes/no outputs, and one softmax group per categorical cue (water side, buildings,
 * trees, roof colour, road-line colour, vegetation), each with an explicit "none" class where the cue can be
 * absent. The label space comes from code and the pinned world tables, so a checkpoint's head width never
 * depends on the data that happened to be sampled.
 *
 * Why: captions teach the vision tower only through the language-model loss, four tiles at a time, and in
 * the small budget the decoder's aerial descriptions stay near the cue prior (docs/RESULTS.md, fourth
 * build). The same labels as a direct loss on the vision states are the dense perception signal a pretrained
 * VLM brings from its own pretraining. The pairing task, its splits and its test set are untouched: no pairing data
 * and no answer letters are involved.
 * @module
 */
import { ROAD_LINES, ROOF_PALETTES, VEGETATION_COLOURS } from "../world/mod.ts";
import { COMPASS, DENSITIES, LEVELS3, ROAD_AXES, type ViewCues } from "./cues.ts";
import type { Example } from "./types.ts";

/** A softmax group: the cue key and its classes ("none" first where the cue can be absent). */
export interface CueGroup {
  key: "waterSide" | "buildings" | "trees" | "roof" | "roadLine" | "vegetation";
  classes: readonly string[];
}

/** Road axes: one sigmoid output each, in ROAD_AXES order, at the start of the head's outputs. */
export const CUE_ROAD_OUTPUTS = ROAD_AXES.length;

/** The softmax groups, in output order after the road outputs. */
export const CUE_GROUPS: readonly CueGroup[] = [
  { key: "waterSide", classes: ["none", ...COMPASS] },
  { key: "buildings", classes: [...DENSITIES] },
  { key: "trees", classes: [...LEVELS3] },
  { key: "roof", classes: ["none", ...Object.keys(ROOF_PALETTES)] },
  { key: "roadLine", classes: ["none", ...Object.keys(ROAD_LINES)] },
  { key: "vegetation", classes: Object.keys(VEGETATION_COLOURS) },
];

/** Offset of each group's first output. */
export const CUE_GROUP_OFFSETS: readonly number[] = (() => {
  const out: number[] = [];
  let o = CUE_ROAD_OUTPUTS;
  for (const g of CUE_GROUPS) (out.push(o), (o += g.classes.length));
  return out;
})();

/** Width of the cue head: road outputs + every group's classes. */
export const CUE_OUTPUTS = CUE_ROAD_OUTPUTS + CUE_GROUPS.reduce((s, g) => s + g.classes.length, 0);

/** The target of one view: road axes as 0/1 and the class index of each group (CUE_GROUPS order). */
export interface CueTarget {
  roads: number[];
  classes: number[];
}

/** Targets of one view's cues; throws when a cue value is outside the label space (a code/world mismatch). */
export function cueTarget(c: ViewCues): CueTarget {
  const roads = ROAD_AXES.map((a) => (c.roadAxes.includes(a) ? 1 : 0));
  const classes = CUE_GROUPS.map((g) => {
    const v = c[g.key] ?? "none";
    const i = g.classes.indexOf(v);
    if (i < 0) throw new Error(`cue ${g.key}: value "${v}" is not in the label space`);
    return i;
  });
  return { roads, classes };
}

/**
 * Host-side targets of a batch (all examples share one task layout): per view, road targets [n * 4], class
 * indices [n * groups] and a 0/1 weight per view (0 where an example has no cues, e.g. real data). Views are
 * ordered example-major; the aerial ones slot by slot. `ground` is null when the layout has no ground view,
 * `aerial` when it has no tiles.
 */
export interface CueBatchTargets {
  ground: { roads: Float32Array; classes: Int32Array; weight: Float32Array } | null;
  aerial: { roads: Float32Array; classes: Int32Array; weight: Float32Array } | null;
}

export function cueBatchTargets(examples: readonly Example[]): CueBatchTargets {
  const G = CUE_GROUPS.length;
  const pack = (views: (ViewCues | undefined)[]) => {
    const roads = new Float32Array(views.length * CUE_ROAD_OUTPUTS);
    const classes = new Int32Array(views.length * G);
    const weight = new Float32Array(views.length);
    views.forEach((v, i) => {
      if (!v) return;
      const t = cueTarget(v);
      roads.set(t.roads, i * CUE_ROAD_OUTPUTS);
      classes.set(t.classes, i * G);
      weight[i] = 1;
    });
    return { roads, classes, weight };
  };
  const hasGround = examples.length > 0 && examples[0].ground !== null;
  const K = examples.length > 0 ? examples[0].aerial.length : 0;
  // A ground-only caption carries its cues as `cues.ground`; an aerial caption or a pairing example carries
  // one entry per tile in `cues.candidates` (and, for captions, `cues.ground` is the described tile's).
  return {
    ground: hasGround ? pack(examples.map((e) => e.cues?.ground)) : null,
    aerial: K > 0
      ? pack(examples.flatMap((e) => Array.from({ length: K }, (_, k) => e.cues?.candidates?.[k])))
      : null,
  };
}
