/**
 * Shared rendering helpers: colours and the building frame convention.
 *
 * Frames: x east, y north (metres, scene centre at 0,0). A road with bearing b has direction (sin b, cos b) and
 * signed offset along its right-hand normal (cos b, -sin b). A building's `hh` axis points along bearing `rot`
 * (direction (sin rot, cos rot)) and its `hw` axis along (cos rot, -sin rot).
 * @module
 */
import type { Layout, RGB, Road } from "../world/types.ts";

export const DEG = Math.PI / 180;
export const WATER: RGB = [38, 92, 150];
export const WATER_FAR: RGB = [70, 122, 170];
export const TREE: RGB = [14, 58, 22];
export const TREE_LIT: RGB = [34, 92, 36];
export const TRUNK: RGB = [88, 62, 40];
export const SUN: RGB = [255, 248, 210];

/** Wall colour derived from a roof colour: a light render tinted by the roof. */
export function wallOf(roof: RGB): RGB {
  return [
    Math.round(0.45 * roof[0] + 0.55 * 214),
    Math.round(0.45 * roof[1] + 0.55 * 204),
    Math.round(0.45 * roof[2] + 0.55 * 188),
  ];
}

export function clamp255(x: number): number {
  return x < 0 ? 0 : x > 255 ? 255 : x | 0;
}

/**
 * Per-road constants both rasterisers need: cos/sin of the bearing, the axis offset and half width (m). The
 * rasterisers test them in their own pixel loops: a shared per-pixel function was not inlined and cost about
 * 10% of the aerial render time.
 */
export interface RoadFrames {
  rc: Float64Array;
  rs: Float64Array;
  ro: Float64Array;
  rw: Float64Array;
}

/** The `RoadFrames` of a layout's roads, computed once per image. */
export function roadFrames(roads: readonly Road[]): RoadFrames {
  const n = roads.length;
  const rc = new Float64Array(n),
    rs = new Float64Array(n),
    ro = new Float64Array(n),
    rw = new Float64Array(n);
  for (let k = 0; k < n; k++) {
    rc[k] = Math.cos(roads[k].bearing * DEG);
    rs[k] = Math.sin(roads[k].bearing * DEG);
    ro[k] = roads[k].offset;
    rw[k] = roads[k].width / 2;
  }
  return { rc, rs, ro, rw };
}

/** A layout's water half-plane as both rasterisers test it: (x, y) is water when x sx + y cy > distance. */
export interface WaterPlane {
  sx: number;
  cy: number;
  distance: number;
}

/** The `WaterPlane` of a layout's water, or null without water. */
export function waterPlane(water: Layout["water"]): WaterPlane | null {
  if (!water) return null;
  return { sx: Math.sin(water.bearing * DEG), cy: Math.cos(water.bearing * DEG), distance: water.distance };
}
