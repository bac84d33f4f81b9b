/**
 * ISN-like classification over geographic cells (Muller-Budack et al. 2018, "Geolocation Estimation of
 * Photos using a Hierarchical Model and Scene Classification"): one softmax head per resolution over the
 * latitude/longitude grid cells (`regionKeyFor`) that hold training views, trained with the summed
 * cross-entropies; the answer is the finest cell maximising the summed log-probabilities of itself and its
 * coarser parents (the hierarchy), given as the mean location of its training views.
 *
 * Test views lie in held-out 5-degree cells, so no fine class is ever the true cell: the mean of a nearby
 * cell's training views is the best this method can answer.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { LatLon } from "../eval/geo.ts";
import { regionKeyFor } from "../world/mod.ts";
import { sphericalMean } from "./prior.ts";
import { checkResolutions } from "./grid.ts";

/** Cells of one resolution: keys, their training points and each point's class. */
export interface CellLevel {
  deg: number;
  keys: string[];
  /** Class index of each training point. */
  labels: Int32Array;
}

/** The cell hierarchy of a set of training points. */
export interface CellPartition {
  levels: CellLevel[];
  /** For the finest level: the class of its parent at every level (parents[l][fine class]). */
  parents: Int32Array[];
  /** Mean location of each finest cell's training points. */
  centres: LatLon[];
}

/** Build the partition of `points` at `resolutionsDeg` (coarse to fine). */
export function partitionCells(points: readonly LatLon[], resolutionsDeg: readonly number[]): CellPartition {
  const bad = checkResolutions(resolutionsDeg);
  if (bad) throw new RangeError(`cells.resolutionsDeg: ${bad}`);
  const levels: CellLevel[] = resolutionsDeg.map((deg) => {
    const index = new Map<string, number>();
    const labels = new Int32Array(points.length);
    points.forEach((p, i) => {
      const k = regionKeyFor(p.lat, p.lon, deg);
      let c = index.get(k);
      if (c === undefined) index.set(k, c = index.size);
      labels[i] = c;
    });
    return { deg, keys: [...index.keys()], labels };
  });
  const fine = levels[levels.length - 1];
  const parents = levels.map((lv) => {
    const par = new Int32Array(fine.keys.length);
    // Cells nest, so every point of a fine cell has the same parent: the first point's is the parent.
    points.forEach((_, i) => (par[fine.labels[i]] = lv.labels[i]));
    return par;
  });
  const members: LatLon[][] = fine.keys.map(() => []);
  points.forEach((p, i) => members[fine.labels[i]].push(p));
  return { levels, parents, centres: members.map(sphericalMean) };
}

/**
 * The finest class maximising sum over levels of log p_level(parent_level(fine)), for each row of the
 * levels' log-probabilities (tensors [N, classes of that level]).
 */
export function hierarchicalArgmax(partition: CellPartition, logProbs: tf.Tensor2D[]): tf.Tensor1D {
  return tf.tidy(() => {
    const scores = logProbs.map((lp, l) =>
      tf.gather(lp, tf.tensor1d(partition.parents[l], "int32"), 1) as tf.Tensor2D
    );
    const total = scores.length === 1 ? scores[0] : tf.addN(scores);
    return total.argMax(1) as tf.Tensor1D;
  });
}
