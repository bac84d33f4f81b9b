/**
 * A pipeline stage of kind `baseline` (lib/baselines): trains the method on the first `trainViews`
 * train-split geolocation views, answers the same test views the VLM rows are evaluated on, and scores the
 * answers with the same geolocation metrics (lib/eval/metrics.ts: thresholds, median error, cluster
 * bootstrap over region cells). Its stage directory holds `metrics.jsonl` (training steps, then the test
 * record), `eval-<evalHash>.json` and `done.json`; a stage whose both files exist is taken from the cache.
 * @module
 */
import { join } from "node:path";
import { exists, readJsonIf } from "../run/fs.ts";
import type { Example, TaskName } from "../data/types.ts";
import type { BaselineStageSpec, ExperimentSpec } from "../spec/types.ts";
import type { MetricRecord, StageEval } from "../run/records.ts";
import type { TaskSampler } from "../data/tasks.ts";
import { atomicWriteJson } from "../run/atomic.ts";
import { appendJsonl } from "../run/jsonl.ts";
import { geolocateMetrics } from "../eval/metrics.ts";
import {
  GEO_THRESHOLDS_KM,
  haversineKm,
  isValidLatLon,
  type LatLon,
  thresholdAccuracy,
} from "../eval/geo.ts";
import { truthLatLon } from "../reward/rewards.ts";
import { deriveSeed } from "../rng.ts";
import { ImageBank, type Predictor, trainMethod } from "../baselines/mod.ts";
import { progress } from "../run/progress.ts";
import { evalMetrics } from "./eval_metrics.ts";

export interface BaselineStagePlan {
  name: string;
  spec: BaselineStageSpec;
  hash: string;
  dir: string;
}

export interface BaselineStageContext {
  spec: ExperimentSpec;
  noCache?: boolean;
  verbose?: boolean;
  log(line: string): void;
  /** The sampler of the run (renders images). */
  sampler: TaskSampler;
  /** The first n train-split geolocation locations (metadata only, no rendering). */
  trainLocations(n: number): LatLon[];
  testExamples(task: TaskName, n: number): Example[];
}

/** Train (or take from the cache) and evaluate one baseline stage. */
export async function runBaselineStage(
  plan: BaselineStagePlan,
  label: string,
  evalHash: string,
  c: BaselineStageContext,
): Promise<{ row: StageEval; cached: boolean }> {
  const evalPath = join(plan.dir, `eval-${evalHash}.json`);
  const metricsPath = join(plan.dir, "metrics.jsonl");
  if (!c.noCache && (await exists(join(plan.dir, "done.json")))) {
    const cached = await readJsonIf<StageEval>(evalPath);
    if (cached) {
      c.log(`stage ${plan.name} [baseline ${plan.spec.method}] ${plan.hash}: cached`);
      return { row: { ...cached, label }, cached: true };
    }
  }
  await Deno.remove(plan.dir, { recursive: true }).catch(() => {});
  await Deno.mkdir(plan.dir, { recursive: true });
  const st = plan.spec;
  c.log(`stage ${plan.name} [baseline ${st.method}] ${plan.hash}: ${st.trainViews} views, ${st.steps} steps`);
  const { predictor, gallery } = await trainBaseline(plan, c, metricsPath);
  const test = c.testExamples("geolocate", c.spec.eval.n);
  let answers: LatLon[];
  try {
    answers = predictor.predict(new ImageBank(test.map((e) => e.ground!), c.spec.world.groundShape));
  } finally {
    predictor.dispose();
  }
  const truth = test.map((e) => truthLatLon(e)!);
  const metrics = scoreAnswers(test, answers, truth, c);
  const row: StageEval = {
    stage: plan.name,
    label,
    stageHash: plan.hash,
    baseline: st.method,
    geolocate: { ...metrics, galleryOracle: galleryOracle(truth, gallery) },
    gallery: [],
  };
  await atomicWriteJson(evalPath, row);
  await recordTest(plan, metricsPath, evalHash, row, predictor.trainSeconds);
  c.log(
    `eval ${plan.name} (${label}): geolocate@2500km ${(100 * metrics.thresholds["2500"]).toFixed(1)}%, ` +
      `median ${metrics.medianKm.toFixed(0)} km, trained in ${predictor.trainSeconds.toFixed(1)} s`,
  );
  return { row, cached: false };
}

/**
 * Train the stage's method on the first `trainViews` train views (metadata only for nearest-prior), logging
 * each step to `metricsPath`; returns the predictor and the gallery of known train locations.
 */
async function trainBaseline(
  plan: BaselineStagePlan,
  c: BaselineStageContext,
  metricsPath: string,
): Promise<{ predictor: Predictor; gallery: LatLon[] }> {
  const st = plan.spec;
  const usesImages = st.method !== "nearest-prior";
  const train = usesImages ? c.sampler.examples("geolocate", "train", 0, st.trainViews) : [];
  const locations = usesImages ? train.map((e) => truthLatLon(e)!) : c.trainLocations(st.trainViews);
  const gallery = c.trainLocations(st.gallery);
  const bar = c.verbose === false ? null : progress(st.steps, plan.name);
  const predictor = await trainMethod({
    spec: st,
    name: plan.name,
    images: usesImages ? new ImageBank(train.map((e) => e.ground!), c.spec.world.groundShape) : null,
    locations,
    gallery,
    onStep: async (m) => {
      bar?.update(m.step + 1, { loss: m.loss });
      const rec: MetricRecord = { stage: plan.name, kind: "baseline", time: Date.now(), ...m };
      await appendJsonl(metricsPath, rec);
    },
  });
  bar?.stop();
  return { predictor, gallery };
}

/** The geolocation metrics of the answers, with the cluster bootstrap over region cells the VLM rows use. */
function scoreAnswers(
  test: Example[],
  answers: LatLon[],
  truth: LatLon[],
  c: BaselineStageContext,
): ReturnType<typeof geolocateMetrics> {
  return geolocateMetrics(
    test.map((ex, i) => ({
      km: isValidLatLon(answers[i]) ? haversineKm(answers[i], truth[i]) : Infinity,
      tokens: 0,
      parsed: isValidLatLon(answers[i]),
      repeated: false,
      point: isValidLatLon(answers[i]) ? answers[i] : null,
      cluster: c.sampler.regionKey(ex.scene.lat, ex.scene.lon),
    })),
    { resamples: c.spec.eval.bootstrap, seed: deriveSeed(c.spec.eval.seed, "bootstrap/geolocate") },
  );
}

/** Append the test record (the row's eval metrics) to the stage's metrics and mark the stage done (`done.json`). */
async function recordTest(
  plan: BaselineStagePlan,
  metricsPath: string,
  evalHash: string,
  row: StageEval,
  trainSeconds: number,
): Promise<void> {
  const rec: MetricRecord = {
    stage: plan.name,
    kind: "test",
    step: plan.spec.steps,
    time: Date.now(),
    evalHash,
    train_time_s: trainSeconds,
    ...evalMetrics(row, ""),
  };
  await appendJsonl(metricsPath, rec);
  await atomicWriteJson(join(plan.dir, "done.json"), {
    hash: plan.hash,
    stage: plan.name,
    trainSeconds,
    at: new Date().toISOString(),
  });
}

/**
 * The share of test views whose nearest gallery location lies within each threshold: what the best pick of
 * a known (training) place would score, since test views come from held-out region cells.
 */
export function galleryOracle(
  truth: readonly LatLon[],
  gallery: readonly LatLon[],
): { n: number; thresholds: Record<string, number> } {
  const nearest = truth.map((t) => {
    let best = Infinity;
    for (const g of gallery) best = Math.min(best, haversineKm(t, g));
    return best;
  });
  return { n: gallery.length, thresholds: thresholdAccuracy(nearest, GEO_THRESHOLDS_KM) };
}
