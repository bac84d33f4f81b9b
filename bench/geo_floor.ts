/**
 * Geolocation floors and caps of the world, from metadata alone (no model, no images):
 * - the nearest training location: for each of the `--n` test views of the geolocation test set, the
 *   distance to the nearest of the first G train-split locations, as the share within 1 / 25 / 200 / 750 /
 *   2500 km, for several G: what any answer that picks a known place can reach (test cells are held out);
 * - the prior: the medoid of the first `--prior` train locations answered for every view;
 * - the clusters: how many distinct region cells the test views fall in.
 *
 *   deno run -A bench/geo_floor.ts [--n 400] [--gallery 2000,20000,100000] [--prior 2000]
 *
 * Prints one JSON object. The same nearest-training-location figure for G = a baseline's `gallery` is in
 * every baseline row (`geolocate.galleryOracle`).
 * @module
 */
import { parseArgs } from "node:util";
import { loadSpec } from "../lib/spec/mod.ts";
import { createWorld } from "../lib/world/mod.ts";
import { createTaskSampler } from "../lib/data/tasks.ts";
import { GEO_THRESHOLDS_KM, haversineKm, thresholdAccuracy } from "../lib/eval/geo.ts";
import { galleryOracle } from "../lib/pipeline/baseline.ts";
import { medoid } from "../lib/baselines/mod.ts";
import { median } from "../lib/eval/stats.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    n: { type: "string", default: "400" },
    gallery: { type: "string", default: "2000,20000,100000" },
    prior: { type: "string", default: "2000" },
    spec: { type: "string", default: "experiments/base.json" },
  },
});
const { spec } = await loadSpec(values.spec!, {});
const world = await createWorld({ seed: spec.world.seed, tileHalfExtent: spec.world.tileHalfExtent });
const sampler = createTaskSampler(world, spec.data, spec.world, { evalSeed: spec.eval.seed, noImages: true });
const at = (e: { scene: { lat: number; lon: number } }) => ({ lat: e.scene.lat, lon: e.scene.lon });
const test = sampler.examples("geolocate", "test", 0, Number(values.n)).map(at);
const sizes = values.gallery!.split(",").map(Number);
const train = sampler.examples("geolocate", "train", 0, Math.max(...sizes, Number(values.prior))).map(at);
const nearest: Record<string, unknown> = {};
for (const g of sizes) nearest[String(g)] = galleryOracle(test, train.slice(0, g)).thresholds;
const m = medoid(train.slice(0, Number(values.prior)));
const priorKm = test.map((t) => haversineKm(t, m));
console.log(JSON.stringify(
  {
    testViews: test.length,
    clusters: new Set(test.map((t) => sampler.regionKey(t.lat, t.lon))).size,
    nearestTrainingLocation: nearest,
    medoid: {
      of: Number(values.prior),
      at: m,
      thresholds: thresholdAccuracy(priorKm, GEO_THRESHOLDS_KM),
      medianKm: median(priorKm),
    },
  },
  null,
  2,
));
