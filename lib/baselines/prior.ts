/**
 * The no-image floor: one fixed answer for every test view, computed from train-split locations only.
 * - medoid: the training location with the least summed great-circle distance to all training locations
 *   (ties: the first);
 * - common-cell: the mean location (normalised 3-D mean, projected back to the sphere) of the grid cell at
 *   `cellDeg` holding the most training locations (ties: the cell seen first).
 * @module
 */
import { haversineKm, type LatLon } from "../eval/geo.ts";
import { regionKeyFor } from "../world/mod.ts";

/** The medoid of `points` under the great-circle distance (O(N^2)). */
export function medoid(points: readonly LatLon[]): LatLon {
  if (!points.length) throw new RangeError("medoid of no points");
  let best = 0;
  let bestSum = Infinity;
  for (let i = 0; i < points.length; i++) {
    let sum = 0;
    for (let j = 0; j < points.length && sum < bestSum; j++) sum += haversineKm(points[i], points[j]);
    if (sum < bestSum) {
      bestSum = sum;
      best = i;
    }
  }
  return points[best];
}

/**
 * Mean location of points on the sphere: the mean of their unit vectors, normalised. For points spread over
 * less than a hemisphere this is the centre a map reader expects, also across the antimeridian.
 */
export function sphericalMean(points: readonly LatLon[]): LatLon {
  if (!points.length) throw new RangeError("mean of no points");
  const rad = Math.PI / 180;
  let x = 0, y = 0, z = 0;
  for (const p of points) {
    const c = Math.cos(p.lat * rad);
    x += c * Math.cos(p.lon * rad);
    y += c * Math.sin(p.lon * rad);
    z += Math.sin(p.lat * rad);
  }
  const h = Math.hypot(x, y);
  if (h === 0 && z === 0) return points[0];
  return { lat: Math.atan2(z, h) / rad, lon: Math.atan2(y, x) / rad };
}

/** The mean location of the most common grid cell of `points` at `cellDeg`. */
export function commonCellMean(points: readonly LatLon[], cellDeg: number): LatLon {
  if (!points.length) throw new RangeError("most common cell of no points");
  const cells = new Map<string, LatLon[]>();
  for (const p of points) {
    const k = regionKeyFor(p.lat, p.lon, cellDeg);
    let g = cells.get(k);
    if (!g) cells.set(k, g = []);
    g.push(p);
  }
  let best: LatLon[] = [];
  for (const g of cells.values()) if (g.length > best.length) best = g;
  return sphericalMean(best);
}
