/**
 * Great-circle geometry for geolocation rewards and metrics.
 *
 * Distances use the haversine formula on a sphere of radius {@link EARTH_RADIUS_KM} = 6371.0088 km, the
 * IUGG mean Earth radius R1 = (2a + b) / 3 of WGS84. Against the ellipsoidal (WGS84, Vincenty) distance the
 * spherical one is off by at most ~0.5% (e.g. Sydney-Tokyo +0.43%, London-Paris -0.11%); the procedural
 * world is itself laid out on the sphere, so for it the haversine distance is the exact one.
 * @module
 */

/** A point in degrees: latitude in [-90, 90], longitude in [-180, 180]. */
export interface LatLon {
  lat: number;
  lon: number;
}

/** IUGG mean Earth radius in km (R1 of WGS84). */
export const EARTH_RADIUS_KM = 6371.0088;

/** Largest possible great-circle distance (half the circumference, pi * R), about 20015.1 km. */
export const MAX_DISTANCE_KM = Math.PI * EARTH_RADIUS_KM;

/** Geolocation accuracy thresholds in km (street, city, region, country, continent), as in the paper. */
export const GEO_THRESHOLDS_KM: readonly number[] = [1, 25, 200, 750, 2500];

const RAD = Math.PI / 180;

/**
 * Great-circle distance in km between two points (haversine):
 *   h = sin^2(dlat / 2) + cos(lat1) cos(lat2) sin^2(dlon / 2),  d = 2 R asin(sqrt(min(1, h))).
 * Exact on the sphere, numerically well conditioned for small distances; symmetric; 0 for equal points.
 */
export function haversineKm(a: LatLon, b: LatLon): number {
  const dLat = (b.lat - a.lat) * RAD;
  const dLon = (b.lon - a.lon) * RAD;
  const s1 = Math.sin(dLat / 2);
  const s2 = Math.sin(dLon / 2);
  const h = s1 * s1 + Math.cos(a.lat * RAD) * Math.cos(b.lat * RAD) * s2 * s2;
  return 2 * EARTH_RADIUS_KM * Math.asin(Math.sqrt(Math.min(1, Math.max(0, h))));
}

/** True when `p` has finite coordinates inside lat [-90, 90] and lon [-180, 180]. */
export function isValidLatLon(p: LatLon): boolean {
  return Number.isFinite(p.lat) && Number.isFinite(p.lon) && Math.abs(p.lat) <= 90 && Math.abs(p.lon) <= 180;
}

const NUM = String.raw`[+-]?(?:\d+(?:\.\d*)?|\.\d+)`;
const LATLON_RE = new RegExp(String.raw`^\s*(${NUM})\s*,\s*(${NUM})\s*$`);

/**
 * Parse the canonical geolocation answer `"lat, lon"` (decimal degrees, comma separated, optional
 * whitespace and sign). Strict: no degree signs, hemisphere letters, exponents, extra fields or text; NaN,
 * Infinity and out-of-range values (|lat| > 90, |lon| > 180) give null.
 */
export function parseLatLon(s: string): LatLon | null {
  const m = LATLON_RE.exec(s);
  if (!m) return null;
  const p = { lat: Number(m[1]), lon: Number(m[2]) };
  return isValidLatLon(p) ? p : null;
}

/**
 * Fraction of distances within each threshold (inclusive: d <= t), keyed by the threshold as a string
 * ("1", "25", ...). Non-finite distances (unparseable answers) count as misses. Empty input gives 0s.
 */
export function thresholdAccuracy(
  distances: readonly number[],
  thresholds: readonly number[] = GEO_THRESHOLDS_KM,
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const t of thresholds) {
    let hit = 0;
    for (const d of distances) if (d <= t) hit++;
    out[String(t)] = distances.length ? hit / distances.length : 0;
  }
  return out;
}
