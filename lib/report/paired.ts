/**
 * Paired geolocation differences between rows evaluated on the same test views: for a row X and the Base
 * row of the same seed, the per-view difference of hits (1 if within the threshold, else 0) at each
 * threshold, averaged over the seeds both rows have, with a cluster-bootstrap CI that resamples whole
 * held-out region cells (lib/eval/stats.ts). The CI is the test-set uncertainty of the mean difference;
 * the spread between seeds is what the per-row table shows.
 * @module
 */
import type { StageEval } from "../run/records.ts";
import type { RunRecords } from "./read.ts";
import { clusterBootstrapCi, clusterCount, mean } from "../eval/stats.ts";
import { hashString32 } from "../rng.ts";

/** One row's paired difference from the reference row. */
export interface PairedGeoDiff {
  label: string;
  /** Seeds paired. */
  seeds: number[];
  /** Test views per seed. */
  n: number;
  /** Distinct region cells among the views (the clusters resampled). */
  clusters: number;
  /** threshold km -> mean difference of hit rates (X - reference) with its 95% CI. */
  thresholds: Record<string, { mean: number; ci: [number, number] }>;
}

/** Rows of a label by seed (the first row found for each seed). */
function rowsBySeed(runs: RunRecords[], label: string): Map<number, StageEval> {
  const out = new Map<number, StageEval>();
  for (const r of runs) {
    const row = r.eval.rows.find((x) => x.label === label);
    if (row && !out.has(r.manifest.seed)) out.set(r.manifest.seed, row);
  }
  return out;
}

function sameViews(a: StageEval, b: StageEval): boolean {
  const ga = a.geolocate, gb = b.geolocate;
  if (!ga?.errorsKm || !gb?.errorsKm || !ga.cells || !gb.cells) return false;
  return ga.errorsKm.length === gb.errorsKm.length && ga.cells.every((c, i) => c === gb.cells![i]);
}

/**
 * The paired difference of every label but `reference` from it, in `labels` order. Rows without
 * per-view errors and cells (older eval files), or scored on other test views, are left out.
 */
export function pairedGeoDiffs(
  runs: RunRecords[],
  labels: string[],
  reference = "Base",
  opts: { resamples?: number; alpha?: number } = {},
): PairedGeoDiff[] {
  const ref = rowsBySeed(runs, reference);
  const out: PairedGeoDiff[] = [];
  for (const label of labels) {
    if (label === reference) continue;
    const pairs = [...rowsBySeed(runs, label)]
      .filter(([seed, row]) => ref.has(seed) && sameViews(row, ref.get(seed)!))
      .sort((a, b) => a[0] - b[0]);
    if (!pairs.length) continue;
    const cells = pairs[0][1].geolocate!.cells!;
    const n = cells.length;
    const keys = Object.keys(pairs[0][1].geolocate!.thresholds).sort((a, b) => Number(a) - Number(b));
    const thresholds: PairedGeoDiff["thresholds"] = {};
    for (const k of keys) {
      const t = Number(k);
      const diff = new Float64Array(n);
      for (const [seed, row] of pairs) {
        const x = row.geolocate!.errorsKm!;
        const b = ref.get(seed)!.geolocate!.errorsKm!;
        for (let i = 0; i < n; i++) diff[i] += ((x[i] <= t ? 1 : 0) - (b[i] <= t ? 1 : 0)) / pairs.length;
      }
      thresholds[k] = {
        mean: mean(diff),
        ci: clusterBootstrapCi(diff, cells, {
          resamples: opts.resamples ?? 2000,
          alpha: opts.alpha ?? 0.05,
          seed: hashString32(`paired/${label}/${k}`),
        }),
      };
    }
    out.push({ label, seeds: pairs.map((p) => p[0]), n, clusters: clusterCount(cells), thresholds });
  }
  return out;
}

/**
 * The nearest-training-location figures recorded by baseline rows (`galleryOracle`): the largest gallery
 * seen, or null when no row has them.
 */
export function nearestTrainingFigures(
  runs: RunRecords[],
): { n: number; thresholds: Record<string, number> } | null {
  let best: { n: number; thresholds: Record<string, number> } | null = null;
  for (const r of runs) {
    for (const row of r.eval.rows) {
      const o = row.geolocate?.galleryOracle;
      if (o && (!best || o.n > best.n)) best = o;
    }
  }
  return best;
}
