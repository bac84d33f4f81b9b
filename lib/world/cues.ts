/**
 * Discrete, view-observable cues of a scene for the chain-of-thought engine. Every cue is something a viewer
 * can see in the aerial tile and/or the ground panorama as rendered by lib/render.
 * @module
 */
import type { Scene } from "./types.ts";

export const ROAD_AXES = ["north-south", "northeast-southwest", "east-west", "northwest-southeast"] as const;
export type RoadAxis = typeof ROAD_AXES[number];
export const COMPASS8 = [
  "north",
  "northeast",
  "east",
  "southeast",
  "south",
  "southwest",
  "west",
  "northwest",
] as const;
export type Compass8 = typeof COMPASS8[number];

export interface SceneCues {
  /** Distinct axes of the roads (bearings quantised to 45 degrees), in ROAD_AXES order. */
  roadAxes: RoadAxis[];
  roadCount: number;
  /** Compass side of the water when water is visible in the tile, else null. */
  waterSide: Compass8 | null;
  /** "none" (0 buildings), "sparse" (1-5), "dense" (6+). */
  buildingDensity: "none" | "sparse" | "dense";
  buildingCount: number;
  /** Roof colour name of the region style, null when there are no buildings. */
  roofColour: string | null;
  /** "none" (0 trees), "few" (1-5), "many" (6+). */
  treeCover: "none" | "few" | "many";
  treeCount: number;
  /** Road centre-line colour name, null when there are no roads. */
  roadLine: string | null;
  /** Compass side of the sun (azimuth quantised to 8 points); the sun is drawn in the panorama, shadows fall opposite. */
  sunSide: Compass8;
  /** "low" (< 25 deg), "medium" (25-50), "high" (> 50), "below horizon". */
  sunHeight: "below horizon" | "low" | "medium" | "high";
  /** Vegetation word (also the ground colour). */
  vegetation: string;
}

/** 8-point compass name of a bearing in degrees. */
export function compass8(bearing: number): Compass8 {
  return COMPASS8[Math.round((((bearing % 360) + 360) % 360) / 45) % 8];
}

/** Road axis name of a road bearing in degrees (any direction; axes are undirected). */
export function roadAxis(bearing: number): RoadAxis {
  return ROAD_AXES[Math.round((((bearing % 180) + 180) % 180) / 45) % 4];
}

export function sceneCues(scene: Scene): SceneCues {
  const { layout, meta } = scene;
  const axes = new Set(layout.roads.map((r) => roadAxis(r.bearing)));
  const nb = layout.buildings.length, nt = layout.trees.length;
  const w = layout.water;
  const el = meta.sunElevation;
  return {
    roadAxes: ROAD_AXES.filter((a) => axes.has(a)),
    roadCount: layout.roads.length,
    waterSide: w && w.distance < layout.halfExtent ? compass8(w.bearing) : null,
    buildingDensity: nb === 0 ? "none" : nb <= 5 ? "sparse" : "dense",
    buildingCount: nb,
    roofColour: nb ? meta.style.roofName : null,
    treeCover: nt === 0 ? "none" : nt <= 5 ? "few" : "many",
    treeCount: nt,
    roadLine: layout.roads.length ? meta.style.roadLineName : null,
    sunSide: compass8(meta.sunAzimuth),
    sunHeight: el <= 0 ? "below horizon" : el < 25 ? "low" : el <= 50 ? "medium" : "high",
    vegetation: meta.vegetation,
  };
}
