/**
 * A stage's final evaluation on the fixed test split, cached per stage and eval spec: `eval-<evalHash>.json`
 * (its presence marks the evaluation complete), `predictions-<evalHash>.jsonl` and one `kind: "test"`
 * record in the stage's metrics.jsonl.
 * @module
 */
import { join } from "node:path";
import { readJsonIf } from "../run/fs.ts";
import type { Example, TaskName } from "../data/types.ts";
import type { TaskSampler } from "../data/tasks.ts";
import type { GeoTokenizer } from "../data/tokenizer.ts";
import type { VLM } from "../model/types.ts";
import type { ExperimentSpec } from "../spec/types.ts";
import type { MetricRecord, PredictionRecord, StageEval } from "../run/records.ts";
import { canonicalJson } from "../spec/hash.ts";
import { atomicWrite, atomicWriteJson } from "../run/atomic.ts";
import { appendJsonl, filterJsonl, readJsonl, repairJsonl } from "../run/jsonl.ts";
import { progress } from "../run/progress.ts";
import { evaluateModel } from "./evaluate.ts";
import { evalMetrics } from "./eval_metrics.ts";
import type { StagePlan } from "./plan.ts";
import type { Replicas } from "./replica_pools.ts";
import { copySamples } from "./stage_dir.ts";

/** What a stage's evaluation reads from the run. */
export interface EvalStageContext {
  spec: ExperimentSpec;
  runDir: string;
  noCache?: boolean;
  verbose?: boolean;
  log(line: string): void;
  tokenizer: GeoTokenizer;
  testExamples(task: TaskName, n: number): Example[];
  replicas: Replicas;
  sampler: TaskSampler;
}

/** Evaluate a stage's model on the test split, or take the evaluation from the stage cache. */
export async function evalStage(
  plan: StagePlan,
  model: VLM,
  label: string,
  evalHash: string,
  c: EvalStageContext,
): Promise<StageEval> {
  const path = join(plan.dir, `eval-${evalHash}.json`);
  // Gallery PNGs live in the stage cache (shared by every run using this stage) and are copied per run.
  const samplesDir = join(plan.dir, "samples");
  const cached = c.noCache ? null : await readJsonIf<StageEval>(path);
  if (cached) {
    await copySamples(plan.dir, c.runDir);
    // A crash between writing the eval file and appending its metric record must not lose the record.
    await ensureRecord(join(plan.dir, "metrics.jsonl"), evalRecord(plan, cached, evalHash));
    return { ...cached, label };
  }
  const bar = c.verbose === false
    ? null
    : progress(c.spec.eval.tasks.filter((t) => t !== "caption").length * c.spec.eval.n, `eval ${plan.name}`);
  const predictions: PredictionRecord[] = [];
  const res = await evaluateModel({
    predictions,
    model,
    tokenizer: c.tokenizer,
    testExamples: c.testExamples,
    spec: c.spec.eval,
    samplesDir,
    samplesRel: "samples",
    stage: plan.name,
    label,
    stageHash: plan.hash,
    progress: (d) => bar?.update(d),
    replicas: await c.replicas.get(c.spec.eval.replicas),
    clusterOf: (ex) => c.sampler.regionKey(ex.scene.lat, ex.scene.lon),
  });
  bar?.stop();
  // Written before the eval file, whose presence marks the stage's evaluation complete.
  await atomicWrite(
    join(plan.dir, `predictions-${evalHash}.jsonl`),
    predictions.map((p) => JSON.stringify(p) + "\n").join(""),
  );
  await atomicWriteJson(path, res);
  await copySamples(plan.dir, c.runDir);
  await ensureRecord(join(plan.dir, "metrics.jsonl"), evalRecord(plan, res, evalHash));
  c.log(`eval ${plan.name} (${label}): ${summary(res)}`);
  return res;
}

/** The metrics.jsonl record of a stage's evaluation. */
function evalRecord(plan: StagePlan, res: StageEval, evalHash: string): MetricRecord {
  // Its own kind: the in-stage validation record after the last update has the same stage and step.
  // evalHash: experiments sharing the stage with other eval specs each keep their own test record.
  return {
    stage: plan.name,
    kind: "test",
    step: plan.spec.steps,
    time: Date.now(),
    evalHash,
    ...evalMetrics(res, ""),
  };
}

/**
 * Make `rec` the one test record of its eval spec in a stage's metrics.jsonl (after repairing a torn last
 * line): kept when an equal record (but for `time`) is there, else every record of that stage, kind and
 * eval hash is replaced by it, so a re-evaluation never adds a second one.
 */
async function ensureRecord(path: string, rec: MetricRecord): Promise<void> {
  await repairJsonl(path);
  const key = (r: MetricRecord) => canonicalJson({ ...r, time: 0 });
  const same = (r: MetricRecord) =>
    r.stage === rec.stage && r.kind === rec.kind && r.evalHash === rec.evalHash;
  const recs = await readJsonl<MetricRecord>(path);
  const mine = recs.filter(same);
  if (mine.length === 1 && key(mine[0]) === key(rec)) return;
  if (mine.length) await filterJsonl<MetricRecord>(path, (r) => !same(r));
  await appendJsonl(path, rec);
}

function summary(e: StageEval): string {
  const parts: string[] = [];
  if (e.pairing) {
    parts.push(`pairing ${(100 * e.pairing.accuracy).toFixed(1)}% / ${e.pairing.meanLength.toFixed(1)} tok`);
    if (e.pairing.namedMatchRate) {
      parts.push(`answer follows named match ${(100 * (e.pairing.answerFollowsMatch ?? 0)).toFixed(1)}%`);
    }
  }
  if (e.geolocate) {
    parts.push(`geolocate@2500km ${(100 * (e.geolocate.thresholds["2500"] ?? 0)).toFixed(1)}%`);
  }
  if (e.geoqa) parts.push(`geo-qa ${(100 * e.geoqa.accuracy).toFixed(1)}%`);
  return parts.join(", ");
}
