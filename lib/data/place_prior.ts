/**
 * Place priors: the coordinate a geolocation answer names once the reasoning has arrived at a country and a
 * climate zone. The views carry region-level cues only (roof and road-line colours, vegetation, sun side,
 * driving side), so the best a model can write is a typical point of the region it recognises, not the exact
 * spot. The prior of (country, climate) is the spherical mean of the train split's locations with that country
 * and climate (falling back to the country, then the continent, then all of them), rounded to whole degrees so
 * the answer is a few tokens the model can learn to write.
 *
 * Built from `samples` train-split draws of a fixed generator (`placePriorSeed`), so it is a pure function of
 * the world and the data spec, and test locations never enter it.
 * @module
 */
import type { LatLon } from "../world/types.ts";

/** What a prior is looked up by (SceneMeta has these fields). */
export interface PlaceKey {
  country: string;
  climate: string;
  continent: string;
}

export interface PlacePrior {
  /** The rounded prior coordinate of a place's country and climate. */
  at(key: PlaceKey): LatLon;
  /** Number of (country, climate) cells with their own prior. */
  readonly cells: number;
}

/** Least number of samples a cell needs to get its own prior (else the next coarser level is used). */
export const PRIOR_MIN_SAMPLES = 3;

type Acc = { x: number; y: number; z: number; n: number };

function add(m: Map<string, Acc>, key: string, p: LatLon): void {
  const la = (p.lat * Math.PI) / 180, lo = (p.lon * Math.PI) / 180;
  const a = m.get(key) ?? { x: 0, y: 0, z: 0, n: 0 };
  a.x += Math.cos(la) * Math.cos(lo);
  a.y += Math.cos(la) * Math.sin(lo);
  a.z += Math.sin(la);
  a.n++;
  m.set(key, a);
}

function mean(a: Acc): LatLon {
  const h = Math.hypot(a.x, a.y);
  const lat = Math.round((Math.atan2(a.z, h) * 180) / Math.PI);
  const lon = Math.round((Math.atan2(a.y, a.x) * 180) / Math.PI);
  return { lat: lat === 0 ? 0 : lat, lon: lon === 0 || lon === -180 ? Math.abs(lon) : lon };
}

/** A prior from located samples (each with its country, climate and continent). */
export function buildPlacePrior(samples: (LatLon & PlaceKey)[]): PlacePrior {
  if (samples.length === 0) throw new Error("buildPlacePrior: no samples");
  const cell = new Map<string, Acc>(), country = new Map<string, Acc>(), continent = new Map<string, Acc>();
  const all = new Map<string, Acc>();
  for (const s of samples) {
    add(cell, `${s.country}|${s.climate}`, s);
    add(country, s.country, s);
    add(continent, s.continent, s);
    add(all, "", s);
  }
  const cache = new Map<string, LatLon>();
  const level = (m: Map<string, Acc>, k: string) => {
    const a = m.get(k);
    return a && a.n >= PRIOR_MIN_SAMPLES ? mean(a) : null;
  };
  return {
    cells: [...cell.values()].filter((a) => a.n >= PRIOR_MIN_SAMPLES).length,
    at(key: PlaceKey): LatLon {
      const k = `${key.country}|${key.climate}|${key.continent}`;
      let p = cache.get(k);
      if (!p) {
        p = level(cell, `${key.country}|${key.climate}`) ?? level(country, key.country) ??
          level(continent, key.continent) ?? mean(all.get("")!);
        cache.set(k, p);
      }
      return p;
    },
  };
}

/** The answer form of a prior: whole degrees, `"lat, lon"` (parses with lib/eval/geo.ts parseLatLon). */
export function formatPrior(p: LatLon): string {
  return `${p.lat}, ${p.lon}`;
}
