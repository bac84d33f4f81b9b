/**
 * GeoWorld contracts: what a scene is and what the world offers. Implemented in lib/world/*.ts and
 * lib/render/*.ts; consumed by lib/data. Keep these types stable: several modules are written against them.
 * @module
 */

/** A geographic point in degrees (WGS84). */
export interface LatLon {
  lat: number;
  lon: number;
}

/** Continents as used by geo-qa answers. */
export const CONTINENTS = [
  "Africa",
  "Asia",
  "Europe",
  "North America",
  "South America",
  "Oceania",
  "Antarctica",
] as const;
export type Continent = typeof CONTINENTS[number];

/** Koppen main groups, named in words (A tropical, B arid, C temperate, D continental, E polar). */
export const CLIMATES = ["tropical", "arid", "temperate", "continental", "polar"] as const;
export type Climate = typeof CLIMATES[number];

/** Settlement class from the city-population field. */
export const SETTLEMENTS = ["urban", "suburban", "rural"] as const;
export type Settlement = typeof SETTLEMENTS[number];

export type RGB = [number, number, number];

/** Visual style of a country/continent: the learnable regional clues. */
export interface RegionStyle {
  /** Human-readable name of the dominant roof colour, e.g. "red", "grey" (used by the CoT engine). */
  roofName: string;
  roofPalette: RGB[];
  roadLine: RGB;
  /** "white" | "yellow" | ... : name of the road-line colour. */
  roadLineName: string;
  roadSurface: RGB;
  /** Mean building height in metres. */
  buildingHeight: number;
  drivingSide: "left" | "right";
}

/** A road through the scene: a straight band crossing the tile. */
export interface Road {
  /** Bearing of the road's axis in degrees clockwise from north, in [0, 180). */
  bearing: number;
  /** Signed perpendicular offset of the axis from the centre, metres. */
  offset: number;
  /** Width in metres. */
  width: number;
}

export interface Building {
  /** Centre east/north offsets from the scene centre, metres. */
  x: number;
  y: number;
  /** Footprint half sizes, metres, axis aligned in the rotated frame of `rot` (degrees). */
  hw: number;
  hh: number;
  rot: number;
  height: number;
  roof: RGB;
}

export interface Tree {
  x: number;
  y: number;
  r: number;
  height: number;
}

/** The geometric layout both views are rendered from (metres, x east, y north, centre at 0,0). */
export interface Layout {
  /** Half extent of the square tile in metres. */
  halfExtent: number;
  roads: Road[];
  buildings: Building[];
  trees: Tree[];
  /**
   * Water: the half-plane beyond a straight shoreline, or null. `bearing` is the direction (deg) from the
   * centre towards the water; `distance` the metres from centre to the shoreline.
   */
  water: { bearing: number; distance: number } | null;
  ground: RGB;
  vegetation: RGB;
}

/** Everything a task or a chain of thought may say about a scene. All answers derive from this. */
export interface SceneMeta {
  /** Stable id: hash of (world seed, rounded lat, lon). */
  id: string;
  lat: number;
  lon: number;
  /** ISO 3166-1 alpha-3 when known, else "UNK"; `countryName` is the English name. */
  country: string;
  countryName: string;
  continent: Continent;
  climate: Climate;
  settlement: Settlement;
  /** Urban density in [0, 1] from the city field. */
  density: number;
  drivingSide: "left" | "right";
  /** Name of the nearest large city (context for CoT) and its distance in km. */
  nearestCity: string;
  nearestCityKm: number;
  coast: boolean;
  /** ISO-8601 UTC timestamp of the (synthetic) capture. */
  timestamp: string;
  /** Sun elevation/azimuth in degrees at lat/lon/timestamp. */
  sunElevation: number;
  sunAzimuth: number;
  /** Vegetation word: "desert" | "grassland" | "forest" | "tundra" | "ice" | ... */
  vegetation: string;
  style: RegionStyle;
  /** Key of the split region (a coarse grid cell); splits never share a region key. */
  regionKey: string;
}

export interface Scene {
  meta: SceneMeta;
  layout: Layout;
}

/** An RGB image: row-major, 3 bytes a pixel, no alpha. */
export interface RGBImage {
  width: number;
  height: number;
  data: Uint8Array;
}

/** What the world needs to know at construction. */
export interface WorldConfig {
  /** Seed of every procedural choice in the world (layout, timestamps); geography itself is data. */
  seed: number;
  /** Half extent in metres of the area a tile covers (default 60). */
  tileHalfExtent?: number;
}

/** The world: geography lookups and deterministic scenes. */
export interface World {
  readonly seed: number;
  /** Is (lat, lon) on land? */
  isLand(lat: number, lon: number): boolean;
  /** Deterministic in (world seed, lat, lon) rounded to 1e-5 degrees. */
  sceneAt(lat: number, lon: number): Scene;
  /**
   * Sample a land location, weighted so that cities are well represented (a mix of uniform-over-land and
   * near-city draws). `rng` is the caller's seeded generator.
   */
  sampleLocation(rng: () => number): LatLon;
}
