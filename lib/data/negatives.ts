/**
 * Pairing negatives: the distance tiers, the near-negative quota of val/test examples, and the search for a
 * negative of a given tier around an anchor (tiers are described in lib/data/tasks.ts).
 * @module
 */
import type { LatLon } from "../world/types.ts";
import { EARTH_RADIUS_KM, haversineKm } from "../eval/geo.ts";
import { cueSignature } from "./cues.ts";
import type { NegativeTier, Split } from "./types.ts";
import type { Rng } from "../rng.ts";
import type { Located, TaskWorld } from "./task_world.ts";

/** Distance limits of the tiers (km). */
export const NEAR_MIN_KM = 5;
export const NEAR_MAX_KM = 50;
export const FAR_MIN_KM = 200;

/** The tiers in the order of `data.negatives`' weights (far, climate, near). */
export const TIERS: readonly NegativeTier[] = ["far", "climate", "near"];

/** Point at `km` along initial `bearing` (degrees) from `p` on the sphere. */
export function destination(p: LatLon, bearing: number, km: number): LatLon {
  const R = EARTH_RADIUS_KM;
  const toR = Math.PI / 180;
  const d = km / R;
  const th = bearing * toR;
  const la1 = p.lat * toR;
  const lo1 = p.lon * toR;
  const la2 = Math.asin(Math.sin(la1) * Math.cos(d) + Math.cos(la1) * Math.sin(d) * Math.cos(th));
  const lo2 = lo1 +
    Math.atan2(Math.sin(th) * Math.sin(d) * Math.cos(la1), Math.cos(d) - Math.sin(la1) * Math.sin(la2));
  return { lat: la2 / toR, lon: ((((lo2 / toR) + 540) % 360) + 360) % 360 - 180 };
}

/** Weights of the negative tiers (far, climate, near), summing to 1: `data.negatives`' shape. */
export interface NegativeMix {
  far: number;
  climate: number;
  near: number;
}

/** One point of a tier schedule: the mix at GRPO step `step`. */
export interface NegativePoint extends NegativeMix {
  step: number;
}

/**
 * The mix of a tier schedule at `step`: linear between the two points around it, the first point's mix
 * before it and the last point's after it. Points are in increasing `step` order (the spec validator checks).
 */
export function negativesAt(points: readonly NegativePoint[], step: number): NegativeMix {
  if (points.length === 0) throw new Error("internal: an empty negatives schedule");
  const mix = (p: NegativePoint): NegativeMix => ({ far: p.far, climate: p.climate, near: p.near });
  if (step <= points[0].step) return mix(points[0]);
  for (let i = 1; i < points.length; i++) {
    const a = points[i - 1], b = points[i];
    if (step < b.step) {
      const t = (step - a.step) / (b.step - a.step);
      return {
        far: a.far + t * (b.far - a.far),
        climate: a.climate + t * (b.climate - a.climate),
        near: a.near + t * (b.near - a.near),
      };
    }
  }
  return mix(points[points.length - 1]);
}

/**
 * The tier weights a pairing example of `split` draws with: a GRPO stage's `mix` on the train split, else
 * `data.negatives` (validation and test examples never follow a stage's schedule).
 */
export function tierWeights(split: Split, mix: NegativeMix | undefined, data: NegativeMix): NegativeMix {
  return split === "train" && mix ? mix : data;
}

/** Near negatives required in val/test example `index` so that every prefix 0..index meets the minimum. */
export function requiredNear(index: number, negatives: number, minFraction: number): number {
  const cum = (n: number) => Math.ceil(n * minFraction * negatives - 1e-9);
  return Math.min(negatives, cum(index + 1) - cum(index));
}

/**
 * One negative of `tier` for `anchor` in `split`, or null when none is found within the try budget. A
 * negative differs from the anchor in some comparable cue (its cue signature) and from every `taken` one.
 */
export function findNegative(
  tw: TaskWorld,
  tier: NegativeTier,
  anchor: Located,
  split: Split,
  rng: Rng,
  taken: Located[],
): Located | null {
  const a = anchor.scene.meta;
  const sig = cueSignature(anchor.cues);
  const ok = (c: Located) =>
    cueSignature(c.cues) !== sig && taken.every((t) => t.scene.meta.id !== c.scene.meta.id);
  if (tier === "near") {
    for (let t = 0; t < 60; t++) {
      const p = destination(a, rng.range(0, 360), rng.range(NEAR_MIN_KM, NEAR_MAX_KM));
      if (!tw.world.isLand(p.lat, p.lon) || tw.splitOf(p.lat, p.lon) !== split) continue;
      if (tw.countryOf(p) !== a.country) continue;
      const c = tw.locate(p);
      const d = haversineKm(a, c.scene.meta);
      if (c.scene.meta.country !== a.country || d < NEAR_MIN_KM || d > NEAR_MAX_KM) continue;
      if (ok(c)) return c;
    }
    return null;
  }
  const tries = tier === "climate" ? 400 : 60;
  for (let t = 0; t < tries; t++) {
    const p = tw.sampleLocation(split, rng);
    if (haversineKm(a, p) <= FAR_MIN_KM) continue;
    if (tier === "climate" && tw.climateOf(p) !== a.climate) continue;
    const c = tw.locate(p);
    if (tier === "climate" && c.scene.meta.climate !== a.climate) continue;
    if (ok(c)) return c;
  }
  return null;
}
