/**
 * Climate model: Koppen main groups from latitude, continentality (distance to the coast) and a prevailing-wind
 * moisture index, computed once on a 0.5-degree grid from the land raster. No elevation.
 *
 * Rules (phi = |latitude|, D = distance to the coast in km, ocean(x) = ocean fraction of a cell):
 * - Moisture sources, each an exponentially weighted (e-folding 1,500 km) ocean fraction along a direction:
 *   `upE` (ocean to the east), `upW` (ocean to the west), `upEq` (ocean on the equator side); the belt within
 *   8 degrees of the equator counts as at least 0.8 ocean (moisture recycling over rainforest).
 * - Prevailing wind: trade winds (from the east) for phi < 32, westerlies for phi > 42, linear in between, so
 *   `wind = t * upE + (1 - t) * upW` (upE and upW averaged over +-2 rows). The summer monsoon brings
 *   equator-side ocean moisture for phi 8-46 (full strength 14-34); an ocean close to the west cancels it.
 * - Moisture M = 0.8 wind + 0.5 monsoon * upEq * (1 - upW) + 0.25 exp(-D/150) + 1.2 exp(-(phi/9)^2) (the
 *   ITCZ) - 0.3 coldCurrent * upW (cold currents along west coasts, phi 15-34).
 * - Subtropical high H = exp(-((phi - 26) / 9)^2) raises the dryness threshold; cold air needs less rain:
 *   arid when M < (0.12 + 0.38 H) * cold, where `cold` fades from 1 at phi 44 to 0 at phi 58.
 * - polar: phi >= 66, or phi >= 60 in the southern hemisphere, or Greenland's interior (phi >= 60, D > 80);
 *   arid: as above (checked after polar);
 *   tropical: phi < 20, or phi < 24 within 400 km of the coast;
 *   continental: northern hemisphere, phi >= 42 and westerly moisture < 0.35, or phi >= 38 with D > 700,
 *   or phi >= 55 with D > 250;
 *   temperate otherwise.
 * Known arid belts (Sahara, Arabia, interior Australia, SW US/N Mexico, Atacama, Namib, Central Asia) fall out of
 * the trade-wind fetch and the subtropical-high threshold; tests pin the main ones.
 * @module
 */
import type { Climate } from "./types.ts";

export const CRES = 0.5;
export const CNX = 720;
export const CNY = 360;

export interface ClimateGrid {
  climate: Uint8Array; // index into CLIMATES
  moisture: Float32Array;
}

const CLIM_INDEX: Record<Climate, number> = { tropical: 0, arid: 1, temperate: 2, continental: 3, polar: 4 };

/** Land summaries of each climate cell, from the fine rasters. */
interface CoarseLand {
  /** ocean fraction, raised to 0.8 within 8 degrees of the equator (moisture recycling over rainforest) */
  ocean: Float32Array;
  /** mean signed coast distance (km) */
  dist: Float32Array;
  /** 1 where the cell holds Greenland */
  grl: Uint8Array;
}

/** Ocean fetch of each climate cell: the exponentially weighted ocean fraction upwind in three directions. */
interface Fetch {
  upE: Float32Array;
  upW: Float32Array;
  upEq: Float32Array;
}

/** E-folding length (km) of the ocean fetch. */
const FETCH_KM = 1500;

/**
 * Build the climate grid from the 0.1-degree country raster (0 = ocean) and the signed coast distance (km).
 * `fine` dims: nx x ny at `res` degrees.
 */
export function buildClimate(
  country: Uint8Array,
  coastKm: Float32Array,
  nx: number,
  ny: number,
  greenland: number,
): ClimateGrid {
  const land = coarsenLand(country, coastKm, nx, ny, greenland);
  const fetch: Fetch = { ...zonalFetch(land.ocean), upEq: equatorFetch(land.ocean) };
  const climate = new Uint8Array(CNX * CNY);
  const moisture = new Float32Array(CNX * CNY);
  for (let r = 0; r < CNY; r++) classifyRow(r, land, fetch, climate, moisture);
  return { climate, moisture };
}

/** Average the fine rasters over each 0.5-degree cell. */
function coarsenLand(
  country: Uint8Array,
  coastKm: Float32Array,
  nx: number,
  ny: number,
  greenland: number,
): CoarseLand {
  const f = Math.round(CRES / (180 / ny));
  const ocean = new Float32Array(CNX * CNY);
  const dist = new Float32Array(CNX * CNY);
  const grl = new Uint8Array(CNX * CNY);
  for (let r = 0; r < CNY; r++) {
    for (let c = 0; c < CNX; c++) {
      let o = 0, d = 0, g = 0;
      for (let i = 0; i < f; i++) {
        const base = (r * f + i) * nx + c * f;
        for (let j = 0; j < f; j++) {
          const v = country[base + j];
          if (v === 0) o++;
          if (v === greenland) g++;
          d += coastKm[base + j];
        }
      }
      const k = r * CNX + c;
      // moisture source: the ocean, and the equatorial rain belt (moisture recycling over rainforest)
      const latc = 90 - (r + 0.5) * CRES;
      ocean[k] = Math.max(o / (f * f), Math.abs(latc) < 8 ? 0.8 : 0);
      dist[k] = d / (f * f);
      grl[k] = g > 0 ? 1 : 0;
    }
  }
  return { ocean, dist, grl };
}

/** Ocean fetch from the east and from the west along each row (longitude wraps: two laps a sweep). */
function zonalFetch(ocean: Float32Array): { upE: Float32Array; upW: Float32Array } {
  const upE = new Float32Array(CNX * CNY), upW = new Float32Array(CNX * CNY);
  for (let r = 0; r < CNY; r++) {
    const lat = 90 - (r + 0.5) * CRES;
    const cellKm = Math.max(5, Math.cos((lat * Math.PI) / 180) * CRES * 111.2);
    const a = Math.exp(-cellKm / FETCH_KM);
    // ocean to the east: sweep westward from the east, two laps for the wrap.
    let acc = 0;
    for (let lap = 0; lap < 2; lap++) {
      for (let c = CNX - 1; c >= 0; c--) {
        const k = r * CNX + c;
        upE[k] = acc;
        acc = a * acc + (1 - a) * ocean[k];
      }
    }
    acc = 0;
    for (let lap = 0; lap < 2; lap++) {
      for (let c = 0; c < CNX; c++) {
        const k = r * CNX + c;
        upW[k] = acc;
        acc = a * acc + (1 - a) * ocean[k];
      }
    }
  }
  return { upE, upW };
}

/** Ocean fetch from the equator side of each column (the summer monsoon's source). */
function equatorFetch(ocean: Float32Array): Float32Array {
  const upEq = new Float32Array(CNX * CNY);
  const aLat = Math.exp(-(CRES * 111.2) / FETCH_KM);
  for (let c = 0; c < CNX; c++) {
    // northern hemisphere: equator side is south, sweep from the equator northward; and vice versa.
    let acc = 0;
    for (let r = CNY / 2; r < CNY; r++) {
      const k = r * CNX + c;
      upEq[k] = acc;
      acc = aLat * acc + (1 - aLat) * ocean[k];
    }
    acc = 0;
    for (let r = CNY / 2 - 1; r >= 0; r--) {
      const k = r * CNX + c;
      upEq[k] = acc;
      acc = aLat * acc + (1 - aLat) * ocean[k];
    }
  }
  return upEq;
}

/** Moisture and climate group of every cell of row r (the rules of the module doc). */
function classifyRow(
  r: number,
  land: CoarseLand,
  fetch: Fetch,
  climate: Uint8Array,
  moisture: Float32Array,
): void {
  const { upE, upW, upEq } = fetch;
  const lat = 90 - (r + 0.5) * CRES;
  const phi = Math.abs(lat);
  const t = phi < 32 ? 1 : phi > 42 ? 0 : (42 - phi) / 10;
  const monsoon = phi < 8 ? 0 : phi > 46 ? 0 : Math.min(1, (phi - 8) / 6) * Math.min(1, (46 - phi) / 12);
  const coldCurrent = phi < 15 || phi > 34 ? 0 : Math.min(1, (phi - 15) / 4) * Math.min(1, (34 - phi) / 4);
  const H = Math.exp(-(((phi - 26) / 9) ** 2));
  const cold = phi < 44 ? 1 : Math.max(0, 1 - (phi - 44) / 14);
  const thr = (0.12 + 0.38 * H) * cold;
  for (let c = 0; c < CNX; c++) {
    const k = r * CNX + c;
    // vertical smoothing of the wind fetch over +-2 rows
    let e = 0, w = 0, n = 0;
    for (let dr = -2; dr <= 2; dr++) {
      const rr = r + dr;
      if (rr < 0 || rr >= CNY) continue;
      e += upE[rr * CNX + c];
      w += upW[rr * CNX + c];
      n++;
    }
    e /= n;
    w /= n;
    const D = Math.max(0, land.dist[k]);
    const wind = t * e + (1 - t) * w;
    // monsoons are an east-side feature: an ocean close to the west (cold current) cancels them
    const M = 0.8 * wind + 0.5 * monsoon * upEq[k] * (1 - upW[k]) + 0.25 * Math.exp(-D / 150) +
      1.2 * Math.exp(-((phi / 9) ** 2)) - 0.3 * coldCurrent * upW[k];
    moisture[k] = M;
    let cl: Climate;
    if (phi >= 66 || (lat <= -60) || (land.grl[k] && phi >= 60 && D > 80)) cl = "polar";
    else if (M < thr) cl = "arid";
    else if (phi < 20 || (phi < 24 && D < 400)) cl = "tropical";
    else if (
      lat > 0 && ((lat >= 42 && w < 0.35) || (lat >= 38 && D > 700) || (lat >= 55 && D > 250))
    ) cl = "continental";
    else cl = "temperate";
    climate[k] = CLIM_INDEX[cl];
  }
}

/** Index of the 0.5-degree climate cell containing (lat, lon). */
export function climateCell(lat: number, lon: number): number {
  const r = Math.min(CNY - 1, Math.max(0, Math.floor((90 - lat) / CRES)));
  let c = Math.floor((lon + 180) / CRES) % CNX;
  if (c < 0) c += CNX;
  return r * CNX + c;
}
