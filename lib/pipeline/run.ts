/**
 * Runs an experiment's pipeline: each stage (pretrain / sft / grpo / baseline) is trained or taken from the
 * content-addressed stage cache, then every stage's model is evaluated on the fixed test split, the
 * four-row table is assembled (with rows of sibling experiments found in the cache), and the run records
 * are written. The parts:
 * - plan.ts: stage cache keys (hash chain) and table row labels; `--no-cache` retrains
 * - stage_dir.ts: a stage directory's lock, done.json verification and gallery copies
 * - train_stage.ts: training one stage, with its in-stage validation evaluation
 * - eval_stage.ts: a stage's cached test evaluation and its metric record
 * - run_records.ts: the run's metrics, rollouts, predictions and eval.json
 * - replica_pools.ts: the run's replica pools
 * @module
 */
import { join } from "node:path";
import { readJsonIf } from "../run/fs.ts";
import { DEFAULT_STAGE_CACHE_DIR } from "../run/paths.ts";
import type { Example, TaskName } from "../data/types.ts";
import type { VLM } from "../model/types.ts";
import type { ExperimentSpec } from "../spec/types.ts";
import type { EvalFile, Manifest, StageEval } from "../run/records.ts";
import { canonicalJson, sha256Hex } from "../spec/hash.ts";
import { removeStaleTemps } from "../run/atomic.ts";
import { type DataSource, openDataSource } from "../data/source.ts";
import { createTaskSampler } from "../data/tasks.ts";
import { createTokenizer, type GeoTokenizer } from "../data/tokenizer.ts";
import { modelConfigForSpec } from "../model/config.ts";
import { loadCheckpoint } from "../model/checkpoint.ts";
import type { TaskSampler } from "../data/tasks.ts";
import { checkPath } from "../run/sandbox.ts";
import { codeVersion } from "./code_version.ts";
import { type BaselineStagePlan, runBaselineStage } from "./baseline.ts";
import { formatTable } from "./table.ts";
import { planPipeline, rowLabel, siblingPlans, sortRows, type StagePlan } from "./plan.ts";
import { copySamples, lockStage, verifyDone } from "./stage_dir.ts";
import { trainStage } from "./train_stage.ts";
import { evalStage } from "./eval_stage.ts";
import { type TableRows, writeRunRecords } from "./run_records.ts";
import { Replicas } from "./replica_pools.ts";

export { formatTable };
export { planPipeline, ROW_LABELS, rowLabel } from "./plan.ts";
export { homogeneousBatch } from "./train_stage.ts";
export { evalMetrics } from "./eval_metrics.ts";

export interface RunOptions {
  spec: ExperimentSpec;
  specHash: string;
  runDir: string;
  manifest: Manifest;
  /** Root of the stage cache (default `cache/stages`). */
  cacheRoot?: string;
  noCache?: boolean;
  /** Continue an interrupted stage from its last checkpoint. */
  resume?: boolean;
  /** Print progress and the final table (CLI); tests pass false. */
  verbose?: boolean;
  log?(line: string): void;
  /** The opened data source (the CLI opens it before making the run directory); default: open spec's. */
  source?: DataSource;
}

/** One run's resolved pieces: what every stage reads. */
interface RunContext extends RunOptions {
  log(line: string): void;
  cacheRoot: string;
  code: string;
  source: DataSource;
  sampler: TaskSampler;
  tokenizer: GeoTokenizer;
  cfg: ReturnType<typeof modelConfigForSpec>;
  /** The spec the stage keys hash: with a folder source, its content hash is part of every key. */
  keyed: ExperimentSpec;
  plans: StagePlan[];
  evalHash: string;
  testExamples(task: TaskName, n: number): Example[];
  valExamples(task: TaskName, n: number): Example[];
  /** Train-split locations without images (baseline galleries and priors), rendered never. */
  trainLocations(n: number): { lat: number; lon: number }[];
}

/** Run the experiment end to end. Returns the eval file written to the run dir. */
export async function runExperiment(o: RunOptions): Promise<EvalFile> {
  const run = await openRun(o);
  const table = await runStages(run);
  await addSiblingRows(run, table);
  sortRows(table.rows);
  const evalFile = await writeRunRecords(o.runDir, run.plans, table, run.evalHash, {
    experiment: o.spec.name,
    runId: o.manifest.runId,
  });
  if (o.verbose !== false) console.log(formatTable(table.rows));
  return evalFile;
}

/** Open the data source, plan the stages (recorded in the manifest) and set up the example caches. */
async function openRun(o: RunOptions): Promise<RunContext> {
  const { spec } = o;
  const log = o.log ?? ((s: string) => console.error(s));
  const cacheRoot = o.cacheRoot ?? DEFAULT_STAGE_CACHE_DIR;
  const code = await codeVersion();
  const source = o.source ??
    await openDataSource(spec, { stages: spec.pipeline, evalTasks: spec.eval.tasks });
  const sampler = source.sampler;
  const tokenizer = createTokenizer({ coords: spec.data.coordTokens });
  const cfg = modelConfigForSpec(spec, tokenizer);
  // A folder source's content is part of every stage's key: changed files retrain.
  const keyed: ExperimentSpec = source.contentHash
    ? { ...spec, data: { ...spec.data, contentHash: source.contentHash } as ExperimentSpec["data"] }
    : spec;
  const plans = planPipeline(keyed, spec.pipeline, cacheRoot, code);
  for (const p of plans) checkPath(p.dir, "write", `stage ${p.name} cache directory`);
  o.manifest.stages = plans.map((p) => ({
    name: p.name,
    kind: p.spec.kind,
    hash: p.hash,
    cached: false,
    dir: p.dir,
  }));
  const evalHash = sha256Hex(canonicalJson({ eval: spec.eval, code })).slice(0, 12);
  let locationSampler: TaskSampler | null = null;
  const trainLocations = (n: number) => {
    locationSampler ??= source.contentHash === null
      ? createTaskSampler(source.world, spec.data, spec.world, { evalSeed: spec.eval.seed, noImages: true })
      : sampler;
    return locationSampler.examples("geolocate", "train", 0, n).map((e) => ({
      lat: e.scene.lat,
      lon: e.scene.lon,
    }));
  };
  return {
    ...o,
    log,
    cacheRoot,
    code,
    source,
    sampler,
    tokenizer,
    cfg,
    keyed,
    plans,
    evalHash,
    testExamples: splitExamples(sampler, "test"),
    valExamples: splitExamples(sampler, "val"),
    trainLocations,
  };
}

/** The first n examples of a task in one split, made once per (task, n). */
function splitExamples(
  sampler: TaskSampler,
  split: "test" | "val",
): (task: TaskName, n: number) => Example[] {
  const cache = new Map<string, Example[]>();
  return (task, n) => {
    const key = `${task}/${n}`;
    if (!cache.has(key)) cache.set(key, sampler.examples(task, split, 0, n));
    return cache.get(key)!;
  };
}

/** Train or load every stage in order and evaluate it: one table row per stage. */
async function runStages(run: RunContext): Promise<TableRows> {
  const table: TableRows = { rows: [], rowDirs: new Map() };
  const { plans, log } = run;
  let model: VLM | null = null;
  const replicas = new Replicas(run.cfg, log);
  try {
    for (let i = 0; i < plans.length; i++) {
      const plan = plans[i];
      // One process at a time trains/evaluates a stage; a second one waits here, then finds it cached.
      const lock = await lockStage(plan.dir, log);
      try {
        // Temp files orphaned by a crash of the interrupted run (reliability).
        if (run.resume) await removeStaleTemps(plan.dir);
        const label = rowLabel(plans.slice(0, i + 1));
        if (plan.spec.kind === "baseline") {
          const res = await runBaselineStage(plan as BaselineStagePlan, label, run.evalHash, run);
          run.manifest.stages[i].cached = res.cached;
          table.rows.push(res.row);
          table.rowDirs.set(res.row, plan.dir);
          continue;
        }
        const done = !run.noCache && (await verifyDone(plan, log));
        run.manifest.stages[i].cached = done;
        if (done) {
          log(`stage ${plan.name} [${plan.spec.kind}] ${plan.hash}: cached`);
          model?.dispose();
          model = (await loadCheckpoint(join(plan.dir, "final"))).model;
        } else {
          model = await trainStage(plan, model, { ...run, replicas });
        }
        // Evaluate this stage's model (cached per stage + eval spec).
        const row = await evalStage(plan, model, label, run.evalHash, { ...run, replicas });
        table.rows.push(row);
        table.rowDirs.set(row, plan.dir);
      } finally {
        lock.close();
      }
    }
  } finally {
    replicas.close();
  }
  model?.dispose();
  return table;
}

/** Rows of sibling experiments (same base) already in the cache: the four-row table. */
async function addSiblingRows(run: RunContext, table: TableRows): Promise<void> {
  for (const sp of siblingPlans(run.keyed, run.cacheRoot, run.code)) {
    const last = sp[sp.length - 1];
    // The label follows the sibling's own stages (a GRPO stage on geolocation is not the pairing Geo-R1 row).
    const label = rowLabel(sp);
    if (table.rows.some((r) => r.label === label || r.stageHash === last.hash)) continue;
    const cached = await readJsonIf<StageEval>(join(last.dir, `eval-${run.evalHash}.json`));
    if (cached) {
      await copySamples(last.dir, run.runDir);
      const row = { ...cached, label, stage: `${last.name} (cached sibling)` };
      table.rows.push(row);
      table.rowDirs.set(row, last.dir);
    }
  }
}
