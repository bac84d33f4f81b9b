/**
 * Task sampling: pairing, geolocate, geo-qa and caption examples, deterministic in (seed, task, split, index).
 *
 * Splits are by region cell: `regionKeyFor(lat, lon, data.regionCellDeg)` is hashed with the WORLD seed (not
 * the data seed) into test / val / train with probabilities testFraction / valFraction / rest, so every
 * replicate of an experiment (same world, different data seeds) has the same held-out cells. Every location
 * of a split's example (anchor and all pairing candidates) lies in a cell of that split, so test locations
 * never appear in training.
 *
 * Seeds: train examples use `data.seed`; val and test examples use `evalSeed` (default: the world seed), so
 * the test set is one fixed set per world, shared by all replicate seeds. Example `index` of a (task, split)
 * is always the same example.
 *
 * Pairing negatives (documented tiers):
 * - far: a location of the same split more than 200 km away;
 * - climate: same climate zone as the match, more than 200 km away, same split;
 * - near: 5-50 km from the match at a random bearing, on land, same country (hence region style), same split.
 * Every negative must differ from the match in at least one comparable cue (lib/data/cues.ts), so the task is
 * solvable from what the views show and the chain of thought can always cite a difference. Train tiers are
 * drawn from `data.negatives`; val/test examples carry at least `ceil(testNearMin * (K-1))` near negatives
 * over every prefix of indices (checked in code), the rest drawn from the mix. When no near or climate
 * negative can be found for an anchor, the anchor is redrawn (so tiers are exact, never silently downgraded).
 * @module
 */
import { deriveSeed, Rng } from "../rng.ts";
import type { LatLon, World } from "../world/types.ts";
import type { DataSpec, WorldSpec } from "../spec/types.ts";
import type { Example, Split, TaskName } from "./types.ts";
import { haversineKm } from "../eval/geo.ts";
import { createTaskWorld, type TaskSamplerOptions } from "./task_world.ts";
import type { NegativeMix } from "./negatives.ts";
import {
  captionExample,
  controlExample,
  geolocateExample,
  geoqaExample,
  pairingExample,
  scaffoldExample,
} from "./task_examples.ts";

export type { Renderer, TaskSamplerOptions } from "./task_world.ts";
export {
  destination,
  FAR_MIN_KM,
  NEAR_MAX_KM,
  NEAR_MIN_KM,
  negativesAt,
  requiredNear,
  tierWeights,
} from "./negatives.ts";
export type { NegativeMix, NegativePoint } from "./negatives.ts";
export { qaAnswer } from "./task_examples.ts";

export interface TaskSampler {
  readonly data: DataSpec;
  readonly worldSpec: WorldSpec;
  /** Split of the region cell holding (lat, lon). */
  splitOf(lat: number, lon: number): Split;
  /** Split of a region key (as made by regionKeyFor with data.regionCellDeg). */
  splitOfKey(key: string): Split;
  /** Region key of (lat, lon) at data.regionCellDeg. */
  regionKey(lat: number, lon: number): string;
  /** A land location in `split` (rejection sampling over world.sampleLocation). */
  sampleLocation(split: Split, rng: Rng): LatLon;
  /**
   * Example `index` of (task, split): deterministic. `mix` replaces `data.negatives` for pairing examples
   * of the train split (a GRPO stage's tier schedule); other tasks and splits ignore it.
   */
  example(task: TaskName, split: Split, index: number, mix?: NegativeMix): Example;
  /** Examples start..start+n-1 of (task, split), `mix` as in `example`. */
  examples(task: TaskName, split: Split, start: number, n: number, mix?: NegativeMix): Example[];
  /** n examples at random indices drawn from `rng` (training streams). */
  sample(task: TaskName, split: Split, n: number, rng: Rng): Example[];
}

/** Great-circle distance in km: the one implementation in lib/eval/geo.ts (re-exported for callers here). */
export { haversineKm };

/**
 * Build a task sampler (images rendered with lib/render unless `opts.renderer` / `opts.noImages`). Example
 * `index` of (task, split) draws from two generators named by its id: one for locations and choices, one
 * for the wording of its text (`/text`), so a change of wording never moves a location.
 */
export function createTaskSampler(
  world: World,
  data: DataSpec,
  worldSpec: WorldSpec,
  opts: TaskSamplerOptions = {},
): TaskSampler {
  validateData(data);
  const tw = createTaskWorld(world, data, worldSpec, opts);
  const example = (task: TaskName, split: Split, index: number, mix?: NegativeMix): Example => {
    if (!Number.isInteger(index) || index < 0) {
      throw new Error(`example index must be a non-negative integer: ${index}`);
    }
    const seed = tw.seedOf(split);
    const id = `${task}/${split}/${seed}/${index}`;
    const rng = new Rng(deriveSeed(seed, id));
    const cotRng = new Rng(deriveSeed(seed, `${id}/text`));
    switch (task) {
      case "pairing":
        return pairingExample(tw, id, split, index, rng, cotRng, mix);
      case "geolocate":
        return geolocateExample(tw, id, split, rng, cotRng);
      case "control":
        return controlExample(tw, id, split, rng);
      case "scaffold":
        return scaffoldExample(tw, id, split, rng, cotRng);
      case "geoqa":
        return geoqaExample(tw, id, split, rng);
      case "caption":
        return captionExample(tw, id, split, rng, cotRng);
      default:
        throw new Error(`unknown task ${task}`);
    }
  };
  return {
    data,
    worldSpec,
    splitOf: tw.splitOf,
    splitOfKey: tw.splitOfKey,
    regionKey: tw.regionKey,
    sampleLocation: tw.sampleLocation,
    example,
    examples: (task, split, start, n, mix) =>
      Array.from({ length: n }, (_, i) => example(task, split, start + i, mix)),
    sample: (task, split, n, rng) => Array.from({ length: n }, () => example(task, split, rng.int(2 ** 31))),
  };
}

function validateData(d: DataSpec): void {
  const bad = (m: string) => {
    throw new Error(`data spec: ${m}`);
  };
  if (!Number.isInteger(d.candidates) || d.candidates < 2 || d.candidates > 8) bad(`candidates must be 2..8`);
  const s = d.negatives.far + d.negatives.climate + d.negatives.near;
  if (Math.abs(s - 1) > 1e-6) bad(`negatives must sum to 1, got ${s}`);
  if (!(d.testFraction > 0 && d.valFraction >= 0 && d.testFraction + d.valFraction < 1)) {
    bad(`testFraction/valFraction must be > 0 and sum to < 1`);
  }
  if (!(d.testNearMin >= 0 && d.testNearMin <= 1)) bad(`testNearMin must be in [0, 1]`);
  if (!(d.regionCellDeg > 0 && d.regionCellDeg <= 90)) bad(`regionCellDeg must be in (0, 90]`);
}
