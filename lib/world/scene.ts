/**
 * Scene generator: deterministic in (world seed, lat, lon rounded to 1e-5). Everything local (road count and
 * axes, buildings, trees, inland water, timestamp) comes from a seeded stream named by the rounded location, so
 * places a few km apart get independent layouts while sharing their region style and climate.
 * @module
 */
import { deriveSeed, hashString32, Rng } from "../rng.ts";
import type {
  Building,
  Climate,
  Continent,
  Layout,
  RegionStyle,
  RGB,
  Road,
  Scene,
  SceneMeta,
  Settlement,
  Tree,
} from "./types.ts";
import { CLIMATES } from "./types.ts";
import { bucketKey, cellIndex, type Geo, haversineKm, sampleGrid } from "./geo.ts";
import { climateCell } from "./climate.ts";
import { regionStyle } from "./styles.ts";
import { sunPosition } from "./sun.ts";

/** Ground colour of each vegetation word. */
export const VEGETATION_COLOURS: Record<string, RGB> = {
  rainforest: [46, 112, 44],
  savanna: [168, 160, 82],
  desert: [214, 188, 136],
  steppe: [176, 164, 110],
  grassland: [112, 160, 72],
  forest: [70, 126, 58],
  taiga: [92, 118, 80],
  tundra: [150, 146, 118],
  ice: [232, 238, 244],
};

export interface GeoFacts {
  countryIndex: number;
  coastKm: number;
  climate: Climate;
  moisture: number;
  density: number;
  nearestCity: string;
  nearestCityKm: number;
}

/** Urban density in [0, 1] from the city field at (lat, lon): 1 - exp(-sum 1.5 exp(-(d/R)^2)). */
export function cityField(
  geo: Geo,
  lat: number,
  lon: number,
): { density: number; nearest: string; km: number } {
  let sum = 0, best = Infinity, name = "";
  const lonSpan = Math.min(180, Math.ceil(2 / Math.max(0.05, Math.cos((lat * Math.PI) / 180))));
  for (let dr = -2; dr <= 2; dr++) {
    for (let dc = -lonSpan; dc <= lonSpan; dc++) {
      const b = geo.cityBuckets.get(bucketKey(lat + dr, lon + dc));
      if (!b) continue;
      for (const i of b) {
        const c = geo.cities[i];
        const d = haversineKm(lat, lon, c.lat, c.lon);
        if (d < best) (best = d), (name = c.name);
        const u = d / c.radius;
        if (u < 4) sum += 1.5 * Math.exp(-u * u);
      }
    }
  }
  if (!name) {
    // No city within ~2 degrees: widen the search (rare: deserts, ice, open ocean).
    for (const c of geo.cities) {
      const d = haversineKm(lat, lon, c.lat, c.lon);
      if (d < best) (best = d), (name = c.name);
    }
  }
  return { density: 1 - Math.exp(-sum), nearest: name, km: best };
}

export function geoFacts(geo: Geo, lat: number, lon: number): GeoFacts {
  const ci = geo.country[cellIndex(lat, lon)];
  const k = climateCell(lat, lon);
  const cf = cityField(geo, lat, lon);
  return {
    countryIndex: ci,
    coastKm: sampleGrid(geo.coastKm, lat, lon),
    climate: CLIMATES[geo.climate.climate[k]],
    moisture: geo.climate.moisture[k],
    density: cf.density,
    nearestCity: cf.nearest,
    nearestCityKm: cf.km,
  };
}

function vegetationOf(
  climate: Climate,
  moisture: number,
  lat: number,
  iso3: string,
  coastKm: number,
): string {
  switch (climate) {
    case "tropical":
      return moisture > 0.75 ? "rainforest" : "savanna";
    case "arid":
      return moisture < 0.22 ? "desert" : "steppe";
    case "temperate":
      return moisture > 0.55 ? "forest" : "grassland";
    case "continental":
      return Math.abs(lat) > 52 ? "taiga" : moisture > 0.35 ? "forest" : "grassland";
    case "polar":
      return (iso3 === "GRL" || iso3 === "ATA") && coastKm > 20 || Math.abs(lat) > 80 ? "ice" : "tundra";
  }
}

function jitter(c: RGB, rng: Rng, amount: number): RGB {
  return [0, 1, 2].map((i) =>
    Math.max(0, Math.min(255, Math.round(c[i] + rng.range(-amount, amount))))
  ) as RGB;
}

function settlementOf(density: number): Settlement {
  return density >= 0.55 ? "urban" : density >= 0.2 ? "suburban" : "rural";
}

/** Bearing (deg) towards the sea: down the coast-distance gradient. */
function seaBearing(geo: Geo, lat: number, lon: number): number | null {
  const h = 0.1;
  const kx = Math.max(0.05, Math.cos((lat * Math.PI) / 180));
  const dE = (sampleGrid(geo.coastKm, lat, lon + h / kx) - sampleGrid(geo.coastKm, lat, lon - h / kx)) / 2;
  const dN = (sampleGrid(geo.coastKm, lat + h, lon) - sampleGrid(geo.coastKm, lat - h, lon)) / 2;
  if (Math.hypot(dE, dN) < 1e-6) return null;
  return ((Math.atan2(-dE, -dN) * 180) / Math.PI + 360) % 360;
}

/** Round to 1e-5 degrees (the scene key). */
export function roundCoord(x: number): number {
  return Math.round(x * 1e5) / 1e5;
}

/** What a place's geography fixes before any local draw. */
interface Place {
  facts: GeoFacts;
  country: { iso3: string; name: string; continent: Continent };
  style: RegionStyle;
  vegetation: string;
  settlement: Settlement;
}

/** The sun at the scene's timestamp. */
interface SunAt {
  t: Date;
  el: number;
  az: number;
}

/** Whether a point keeps clear of water and roads: the placement tests of buildings and trees. */
interface Clearance {
  /** Whether (x, y) lies within `margin` metres of the water half-plane (or in it). */
  waterAt(x: number, y: number, margin: number): boolean;
  /** Distance (m) from (x, y) to the nearest road's edge (negative on a road). */
  roadDist(x: number, y: number): number;
}

/**
 * The scene at (latIn, lonIn). Every local draw comes from one stream seeded by the rounded location, in
 * this order: water, roads, buildings, trees, timestamp, ground and vegetation tints. The order is part of the
 * world: a change to it changes every scene.
 */
export function makeScene(geo: Geo, seed: number, halfExtent: number, latIn: number, lonIn: number): Scene {
  const lat = roundCoord(latIn);
  const lon = roundCoord(((lonIn + 540) % 360) - 180);
  const key = `${lat.toFixed(5)},${lon.toFixed(5)}`;
  const rng = new Rng(deriveSeed(seed, `scene:${key}`));
  const place = placeAt(geo, lat, lon);
  const H = halfExtent;
  const water = drawWater(geo, rng, place, lat, lon, H);
  const roads = drawRoads(rng, place);
  const clear = clearanceOf(water, roads);
  const buildings = drawBuildings(rng, place, H, roads, clear);
  const trees = drawTrees(rng, place, H, buildings, clear);
  const sun = drawTimestamp(rng, lat, lon);
  const ground = jitter(VEGETATION_COLOURS[place.vegetation], rng, 14);
  const meta = sceneMeta(seed, key, lat, lon, place, sun);
  const layout: Layout = {
    halfExtent: H,
    roads,
    buildings,
    trees,
    water,
    ground,
    vegetation: jitter(vegetationTone(place.vegetation), rng, 10),
  };
  return { meta, layout };
}

function placeAt(geo: Geo, lat: number, lon: number): Place {
  const facts = geoFacts(geo, lat, lon);
  const country = facts.countryIndex > 0
    ? geo.countries[facts.countryIndex - 1]
    : { iso3: "UNK", name: "Ocean", continent: nearestContinent(geo, lat, lon) };
  return {
    facts,
    country,
    style: regionStyle(country.iso3, country.continent),
    vegetation: vegetationOf(facts.climate, facts.moisture, lat, country.iso3, facts.coastKm),
    settlement: settlementOf(facts.density),
  };
}

/** The sea near a coast, else occasional inland water (river bank, lake shore), or null. */
function drawWater(geo: Geo, rng: Rng, place: Place, lat: number, lon: number, H: number): Layout["water"] {
  const f = place.facts, vegetation = place.vegetation;
  let water: Layout["water"] = null;
  if (f.coastKm < 0 || f.countryIndex === 0) {
    water = { bearing: seaBearing(geo, lat, lon) ?? rng.range(0, 360), distance: -H * 4 };
  } else if (f.coastKm < 1.5) {
    water = { bearing: seaBearing(geo, lat, lon) ?? rng.range(0, 360), distance: 12 + f.coastKm * 30 };
  } else {
    const pInland = vegetation === "desert" || vegetation === "ice" ? 0.03 : 0.15;
    if (rng.next() < pInland) water = { bearing: rng.range(0, 360), distance: rng.range(12, 36) };
  }
  if (water) {
    // Snap the shore to the nearest 8-point compass direction (+-7 deg) so the "water side" cue is unambiguous.
    const snapped = Math.round(water.bearing / 45) * 45 + rng.range(-7, 7);
    water.bearing = Math.round(((snapped + 360) % 360) * 100) / 100;
  }
  return water;
}

/** Roads: bearings snapped to the 45-degree axes (+-6 deg), at least 45 deg apart; more in towns. */
function drawRoads(rng: Rng, place: Place): Road[] {
  const { settlement, vegetation } = place;
  const roads: Road[] = [];
  const nRoads = settlement === "urban"
    ? 1 + rng.weighted([0, 3, 2])
    : settlement === "suburban"
    ? rng.weighted([1, 4, 3, 1])
    : rng.weighted([vegetation === "ice" ? 8 : 3, 5, 2]);
  const axes = rng.shuffle([0, 45, 90, 135]);
  for (let i = 0; i < nRoads; i++) {
    const bearing = (axes[i] + rng.range(-6, 6) + 180) % 180;
    const width = settlement === "urban"
      ? rng.range(14, 20)
      : settlement === "suburban"
      ? rng.range(12, 16)
      : rng.range(10, 13);
    // the camera stands beside the first road (3-12 m off its axis), never on its centre line
    const offset = i === 0 ? (rng.next() < 0.5 ? -1 : 1) * rng.range(3, 12) : rng.range(-35, 35);
    roads.push({ bearing, offset, width });
  }
  return roads;
}

function clearanceOf(water: Layout["water"], roads: Road[]): Clearance {
  return {
    waterAt(x, y, margin) {
      if (!water) return false;
      const b = (water.bearing * Math.PI) / 180;
      return x * Math.sin(b) + y * Math.cos(b) > water.distance - margin;
    },
    roadDist(x, y) {
      let m = Infinity;
      for (const r of roads) {
        const b = (r.bearing * Math.PI) / 180;
        const d = Math.abs(x * Math.cos(b) - y * Math.sin(b) - r.offset) - r.width / 2;
        if (d < m) m = d;
      }
      return m;
    },
  };
}

/**
 * Buildings aligned with the first road (rural ones a little askew), off the camera's spot, the roads, the
 * water and each other; a draw that does not fit is redrawn, up to 30 tries a building.
 */
function drawBuildings(rng: Rng, place: Place, H: number, roads: Road[], clear: Clearance): Building[] {
  const { settlement, vegetation, style } = place;
  const buildings: Building[] = [];
  const palette = style.roofPalette;
  const nB = settlement === "urban"
    ? 7 + rng.int(8)
    : settlement === "suburban"
    ? 2 + rng.int(4)
    : vegetation === "ice"
    ? rng.int(2)
    : rng.int(3);
  const baseRot = roads.length ? roads[0].bearing : rng.range(0, 90);
  for (let tries = 0; buildings.length < nB && tries < nB * 30; tries++) {
    const shrink = tries > nB * 12 ? 0.65 : 1; // crowded tiles get smaller buildings rather than fewer
    const hw = (settlement === "urban" ? rng.range(6, 10) : rng.range(4.5, 7.5)) * shrink;
    const hh = (settlement === "urban" ? rng.range(6, 10) : rng.range(4, 6.5)) * shrink;
    const R = Math.hypot(hw, hh);
    const x = rng.range(-H + 4, H - 4), y = rng.range(-H + 4, H - 4);
    if (Math.hypot(x, y) < R + 6) continue;
    if (clear.roadDist(x, y) < R + 1.5) continue;
    if (clear.waterAt(x, y, R + 2)) continue;
    if (buildings.some((b) => Math.hypot(b.x - x, b.y - y) < R + Math.hypot(b.hw, b.hh) + 2)) continue;
    const hMul = settlement === "urban" ? rng.range(1.0, 2.2) : rng.range(0.6, 1.0);
    buildings.push({
      x,
      y,
      hw,
      hh,
      rot: (baseRot + (settlement === "rural" ? rng.range(-20, 20) : 0) + 360) % 360,
      height: Math.max(3, style.buildingHeight * hMul),
      roof: jitter(rng.pick(palette), rng, 10),
    });
  }
  return buildings;
}

/** Tree count range of each vegetation word. */
const TREE_RANGE: Record<string, [number, number]> = {
  rainforest: [6, 18],
  forest: [4, 16],
  taiga: [4, 14],
  savanna: [0, 8],
  grassland: [0, 9],
  steppe: [0, 4],
  desert: [0, 2],
  tundra: [0, 2],
  ice: [0, 0],
};

/** Trees by vegetation (halved in towns), clear of the camera, roads, water, buildings and each other. */
function drawTrees(rng: Rng, place: Place, H: number, buildings: Building[], clear: Clearance): Tree[] {
  const [t0, t1] = TREE_RANGE[place.vegetation] ?? [0, 6];
  let nT = t0 + rng.int(t1 - t0 + 1);
  if (place.settlement === "urban") nT = Math.floor(nT / 2);
  if (rng.next() < 0.25) nT = 0; // cleared land: keeps "no trees" common everywhere but ice
  const trees: Tree[] = [];
  for (let tries = 0; trees.length < nT && tries < nT * 30; tries++) {
    const r = rng.range(3.5, 5.5);
    const x = rng.range(-H + 3, H - 3), y = rng.range(-H + 3, H - 3);
    if (Math.hypot(x, y) < r + 5) continue;
    if (clear.roadDist(x, y) < r + 0.5) continue;
    if (clear.waterAt(x, y, r + 1)) continue;
    if (buildings.some((b) => Math.hypot(b.x - x, b.y - y) < r + Math.hypot(b.hw, b.hh) + 1)) continue;
    if (trees.some((t) => Math.hypot(t.x - x, t.y - y) < r + t.r)) continue;
    trees.push({ x, y, r, height: rng.range(2.0, 2.8) * r });
  }
  return trees;
}

/** A day of 2023 and a local solar hour with the sun between ~10 and ~55 degrees when possible (6 tries). */
function drawTimestamp(rng: Rng, lat: number, lon: number): SunAt {
  const day = rng.int(365);
  let best: SunAt | null = null;
  for (let k = 0; k < 6; k++) {
    const hourLocal = rng.range(6.5, 17.5);
    const utcMs = Date.UTC(2023, 0, 1) + day * 86400000 + (hourLocal - lon / 15) * 3600000;
    const t = new Date(Math.round(utcMs / 1000) * 1000);
    const s = sunPosition(lat, lon, t);
    const score = (el: number) => (el >= 10 && el <= 55 ? 100 : -Math.abs(el - 30));
    if (!best || score(s.elevation) > score(best.el)) best = { t, el: s.elevation, az: s.azimuth };
    if (s.elevation >= 10 && s.elevation <= 55) break;
  }
  return best!;
}

/** Colour of the vegetation (tree crowns) before its tint. */
function vegetationTone(vegetation: string): RGB {
  return vegetation === "ice" || vegetation === "desert" ? [40, 96, 40] as RGB : [30, 84, 34] as RGB;
}

function sceneMeta(seed: number, key: string, lat: number, lon: number, place: Place, sun: SunAt): SceneMeta {
  const { facts: f, country: info, style } = place;
  return {
    id: (hashString32(`${seed >>> 0}:${key}`) >>> 0).toString(16).padStart(8, "0"),
    lat,
    lon,
    country: info.iso3,
    countryName: info.name,
    continent: info.continent,
    climate: f.climate,
    settlement: place.settlement,
    density: Math.round(f.density * 1000) / 1000,
    drivingSide: style.drivingSide,
    nearestCity: f.nearestCity,
    nearestCityKm: Math.round(f.nearestCityKm * 10) / 10,
    coast: f.coastKm < 5,
    timestamp: sun.t.toISOString().replace(".000Z", "Z"),
    sunElevation: Math.round(sun.el * 100) / 100,
    sunAzimuth: Math.round(sun.az * 100) / 100,
    vegetation: place.vegetation,
    style,
    regionKey: regionKeyFor(lat, lon, 5),
  };
}

/** Key of the coarse grid cell (cellDeg degrees) containing (lat, lon), e.g. "r5:8:36" for the 5-degree cell. */
export function regionKeyFor(lat: number, lon: number, cellDeg = 5): string {
  const r = Math.floor((Math.min(89.99999, Math.max(-90, lat)) + 90) / cellDeg);
  const l = (((lon + 180) % 360) + 360) % 360;
  const c = Math.floor(l / cellDeg);
  return `r${cellDeg}:${r}:${c}`;
}

function nearestContinent(geo: Geo, lat: number, lon: number): SceneMeta["continent"] {
  // Search outward on the 0.1-degree grid for the nearest land cell (ocean scenes only).
  for (let s = 1; s < 200; s *= 2) {
    for (const [dy, dx] of [[0, s], [0, -s], [s, 0], [-s, 0], [s, s], [-s, -s], [s, -s], [-s, s]]) {
      const ci = geo.country[cellIndex(lat + dy * 0.1, lon + dx * 0.1)];
      if (ci) return geo.countries[ci - 1].continent;
    }
  }
  return "Oceania";
}
