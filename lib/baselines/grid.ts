/**
 * Nesting of the latitude/longitude grids the cell baseline classifies over (pure; the spec validator uses
 * it too).
 * @module
 */

/** Why `res` (cell sizes in degrees, coarse to fine) do not nest, or null when each is a whole multiple of the next. */
export function checkResolutions(res: readonly number[]): string | null {
  if (!res.length) return "needs at least one resolution";
  for (let i = 0; i < res.length; i++) {
    if (!(res[i] > 0 && res[i] <= 90)) return `resolution ${res[i]} must be in (0, 90]`;
    if (i > 0) {
      const r = res[i - 1] / res[i];
      if (!(r > 1 && Math.abs(r - Math.round(r)) < 1e-9)) {
        return `${res[i - 1]} is not a whole multiple (> 1) of ${res[i]}: cells would not nest`;
      }
    }
  }
  return null;
}
