/** Shared setup of the data tests: one world per process, the base experiment's data settings. */
import { createWorld, type GeoWorld } from "../lib/world/mod.ts";
import type { DataSpec, WorldSpec } from "../lib/spec/types.ts";

let world: Promise<GeoWorld> | null = null;

/** The world of the tests (seed 7, like experiments/base.json). */
export function testWorld(): Promise<GeoWorld> {
  return world ??= createWorld({ seed: 7, tileHalfExtent: 60 });
}

export const WORLD_SPEC: WorldSpec = { seed: 7, groundShape: [32, 128], aerialSize: 32, tileHalfExtent: 60 };

export function dataSpec(over: Partial<DataSpec> = {}): DataSpec {
  return {
    source: "geoworld",
    seed: 11,
    coordTokens: false,
    candidates: 4,
    negatives: { far: 0.34, climate: 0.33, near: 0.33 },
    testNearMin: 0.34,
    regionCellDeg: 5,
    valFraction: 0.1,
    testFraction: 0.2,
    cot: { verbosity: 1, noise: 0.05 },
    ...over,
  };
}
