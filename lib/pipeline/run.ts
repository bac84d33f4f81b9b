/**
 * Runs an experiment's pipeline: each stage (pretrain / sft / grpo) is trained or taken from the
 * content-addressed stage cache, then every stage's model is evaluated on the fixed test split, the
 * four-row table is assembled (with rows of sibling experiments found in the cache), and the run records
 * and the HTML report are written.
 *
 * Stage cache (like DVC's run cache): `cache/stages/<hash>/`, hash = sha256 of the stage spec, the upstream
 * stage's hash, the world/data/model specs and the code version (a hash of lib/ sources + deno.lock). The
 * base model is therefore trained once and reused by geo-sft, geo-r1-zero and geo-r1; `--no-cache` retrains.
 * A stage directory holds `ckpt/` (latest checkpoint + optimiser state), `metrics.jsonl`, `rollouts.jsonl`,
 * `eval-<evalHash>.json` and `done.json` (written last: its presence means the stage is complete).
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { dirname, join } from "node:path";
import { exists, readJsonIf } from "../run/fs.ts";
import { DEFAULT_STAGE_CACHE_DIR } from "../run/paths.ts";
import type { Example, TaskName } from "../data/types.ts";
import type { VLM } from "../model/types.ts";
import type { ExperimentSpec, GrpoStageSpec, StageSpec, SupervisedStageSpec } from "../spec/types.ts";
import type {
  EvalFile,
  Manifest,
  MetricRecord,
  PredictionRecord,
  RolloutRecord,
  StageEval,
} from "../run/records.ts";
import { canonicalJson, sha256Hex } from "../spec/hash.ts";
import { atomicWrite, atomicWriteJson, removeStaleTemps } from "../run/atomic.ts";
import { appendJsonl, filterJsonl, readJsonl, repairJsonl } from "../run/jsonl.ts";
import { type DataSource, openDataSource } from "../data/source.ts";
import { createTaskSampler } from "../data/tasks.ts";
import { createTokenizer } from "../data/tokenizer.ts";
import { modelConfigForSpec } from "../model/config.ts";
import { createModel } from "../model/vlm.ts";
import { loadCheckpoint, saveCheckpoint } from "../model/checkpoint.ts";
import { trainSupervised } from "../train/supervised.ts";
import { trainGrpo } from "../train/grpo.ts";
import { RotatingCheckpoints } from "../train/checkpoints.ts";
import { evaluateModel } from "./evaluate.ts";
import { deriveSeed, Rng } from "../rng.ts";
import type { TaskSampler } from "../data/tasks.ts";
import { UserError } from "../errors.ts";
import { checkPath } from "../run/sandbox.ts";
import { progress } from "../run/progress.ts";
import { codeVersion } from "./code_version.ts";
import { ReplicaPool } from "../train/replicas.ts";
import { BASELINE_LABELS } from "../baselines/mod.ts";
import { type BaselineStagePlan, runBaselineStage } from "./baseline.ts";
import { formatTable } from "./table.ts";

export { formatTable };

/** Row labels of the paper's table, by pipeline shape. */
export const ROW_LABELS = ["Base", "Geo-SFT", "Geo-R1-Zero", "Geo-R1"] as const;

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

interface StagePlan {
  name: string;
  spec: StageSpec;
  hash: string;
  dir: string;
  upstream: StagePlan | null;
}

/** Compute the content hash chain of a pipeline (stage names in order) under a spec. */
export function planPipeline(
  spec: ExperimentSpec,
  pipeline: string[],
  cacheRoot: string,
  code: string,
  overrides: Record<string, Partial<StageSpec>> = {},
): StagePlan[] {
  const plans: StagePlan[] = [];
  for (const name of pipeline) {
    const st = { ...spec.stages[name], ...(overrides[name] ?? {}) } as StageSpec;
    if (!st) throw new UserError(`pipeline names stage '${name}', which is not defined under /stages`);
    const upstream = st.from === null ? null : plans.find((p) => p.name === st.from) ?? null;
    if (st.from !== null && !upstream) {
      throw new UserError(
        `stage '${name}' starts from '${st.from}', which does not run before it in the pipeline`,
      );
    }
    const hash = sha256Hex(canonicalJson({
      stage: st,
      // In-stage evaluation records (evalEvery > 0) are part of the stage's metrics: they decode as eval does.
      ...(st.kind !== "baseline" && st.evalEvery > 0 ? { during: spec.eval } : {}),
      upstream: upstream?.hash ?? null,
      world: spec.world,
      data: spec.data,
      model: spec.model,
      code,
    })).slice(0, 16);
    plans.push({ name, spec: st, hash, dir: join(cacheRoot, hash), upstream });
  }
  return plans;
}

/**
 * Label of a pipeline's last stage in the Table 2 rows. An SFT stage that trains on pairing examples is
 * task-specific supervision ("Task-SFT", GRPO after it "Task-SFT+GRPO"); one without is the scaffold. A GRPO
 * stage on other tasks than pairing alone is labelled with them ("Geo-R1 (geolocate RL)",
 * "Geo-R1 (pairing+geolocate RL)"); a baseline by its method.
 */
export function rowLabel(plan: StagePlan[]): string {
  const kinds = plan.map((p) => p.spec.kind);
  const last = kinds[kinds.length - 1];
  const lastSpec = plan[plan.length - 1].spec;
  if (lastSpec.kind === "baseline") return BASELINE_LABELS[lastSpec.method];
  if (last === "pretrain") return "Base";
  const sft = plan.find((p) => p.spec.kind === "sft");
  const taskSft = sft !== undefined && ((sft.spec as SupervisedStageSpec).tasks.pairing ?? 0) > 0;
  if (last === "sft") return taskSft ? "Task-SFT" : "Geo-SFT";
  const name = !sft ? "Geo-R1-Zero" : taskSft ? "Task-SFT+GRPO" : "Geo-R1";
  const tasks = Object.entries(lastSpec.tasks).filter(([, w]) => (w ?? 0) > 0).map(([t]) => t);
  return tasks.length === 1 && tasks[0] === "pairing" ? name : `${name} (${tasks.join("+")} RL)`;
}

/** Run the experiment end to end. Returns the eval file written to the run dir. */
export async function runExperiment(o: RunOptions): Promise<EvalFile> {
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
  const testCache = new Map<string, Example[]>();
  const testExamples = (task: TaskName, n: number) => {
    const key = `${task}/${n}`;
    if (!testCache.has(key)) testCache.set(key, sampler.examples(task, "test", 0, n));
    return testCache.get(key)!;
  };

  const valCache = new Map<string, Example[]>();
  const valExamples = (task: TaskName, n: number) => {
    const key = `${task}/${n}`;
    if (!valCache.has(key)) valCache.set(key, sampler.examples(task, "val", 0, n));
    return valCache.get(key)!;
  };

  // Train-split locations without images (baseline galleries and priors), rendered never.
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

  const rows: StageEval[] = [];
  /** The stage directory whose predictions file belongs to each row (same order as `rows`). */
  const rowDirs = new Map<StageEval, string>();
  let model: VLM | null = null;
  const replicas = new Replicas(cfg, log);
  try {
    for (let i = 0; i < plans.length; i++) {
      const plan = plans[i];
      // One process at a time trains/evaluates a stage; a second one waits here, then finds it cached.
      const lock = await lockStage(plan.dir, log);
      try {
        // Temp files orphaned by a crash of the interrupted run (reliability).
        if (o.resume) await removeStaleTemps(plan.dir);
        if (plan.spec.kind === "baseline") {
          const res = await runBaselineStage(
            plan as BaselineStagePlan,
            rowLabel(plans.slice(0, i + 1)),
            evalHash,
            { ...o, log, sampler, trainLocations, testExamples },
          );
          o.manifest.stages[i].cached = res.cached;
          rows.push(res.row);
          rowDirs.set(res.row, plan.dir);
          continue;
        }
        const done = !o.noCache && (await verifyDone(plan, log));
        o.manifest.stages[i].cached = done;
        if (done) {
          log(`stage ${plan.name} [${plan.spec.kind}] ${plan.hash}: cached`);
          model?.dispose();
          model = (await loadCheckpoint(join(plan.dir, "final"))).model;
        } else {
          model = await trainStage(plan, model, {
            ...o,
            log,
            cfg,
            sampler,
            tokenizer,
            replicas,
            valExamples,
          });
        }
        // Evaluate this stage's model (cached per stage + eval spec).
        const label = rowLabel(plans.slice(0, i + 1));
        const row = await evalStage(plan, model, label, evalHash, {
          ...o,
          log,
          tokenizer,
          testExamples,
          replicas,
          sampler,
        });
        rows.push(row);
        rowDirs.set(row, plan.dir);
      } finally {
        lock.close();
      }
    }
  } finally {
    replicas.close();
  }
  model?.dispose();

  // Rows of sibling experiments (same base) already in the cache: the four-row table.
  const siblings: Record<string, { pipeline: string[]; from?: string }> = {
    "Base": { pipeline: ["base"] },
    "Geo-SFT": { pipeline: ["base", "sft"] },
    "Geo-R1-Zero": { pipeline: ["base", "grpo"], from: "base" },
    "Geo-R1": { pipeline: ["base", "sft", "grpo"], from: "sft" },
  };
  for (const s of Object.values(siblings)) {
    if (!s.pipeline.every((n) => spec.stages[n] && spec.stages[n].kind !== "baseline")) continue;
    const overrides = s.from ? { grpo: { from: s.from } } : {};
    const sp = planPipeline(
      keyed,
      s.pipeline,
      cacheRoot,
      code,
      overrides as Record<string, Partial<StageSpec>>,
    );
    const last = sp[sp.length - 1];
    // The label follows the sibling's own stages (a GRPO stage on geolocation is not the pairing Geo-R1 row).
    const label = rowLabel(sp);
    if (rows.some((r) => r.label === label || r.stageHash === last.hash)) continue;
    const cached = await readJsonIf<StageEval>(join(last.dir, `eval-${evalHash}.json`));
    if (cached) {
      await copySamples(last.dir, o.runDir);
      const row = { ...cached, label, stage: `${last.name} (cached sibling)` };
      rows.push(row);
      rowDirs.set(row, last.dir);
    }
  }
  // The paper's rows in its order, then any other rows (RL variants, baselines) in the order they came.
  const rank = (label: string) => {
    const i = ROW_LABELS.indexOf(label as never);
    return i < 0 ? ROW_LABELS.length : i;
  };
  rows.sort((a, b) => rank(a.label) - rank(b.label));

  // Run records: metrics of every stage (from the stage caches), rollouts, eval.
  const metricsPath = join(o.runDir, "metrics.jsonl");
  const rolloutsPath = join(o.runDir, "rollouts.jsonl");
  // Rebuilt atomically: a crash or a full disk leaves the previous files, never a partial one.
  const metricLines: string[] = [];
  const rolloutLines: string[] = [];
  for (const plan of plans) {
    for (const rec of await readJsonl<MetricRecord>(join(plan.dir, "metrics.jsonl"))) {
      // A stage shared by experiments with other eval specs holds their test records too.
      if (rec.kind === "test" && rec.evalHash !== evalHash) continue;
      metricLines.push(JSON.stringify(rec) + "\n");
    }
    if (plan.spec.kind === "grpo") {
      for (const rec of await readJsonl<RolloutRecord>(join(plan.dir, "rollouts.jsonl"))) {
        rolloutLines.push(JSON.stringify(rec) + "\n");
      }
    }
  }
  await atomicWrite(metricsPath, metricLines.join(""));
  if (rolloutLines.length) await atomicWrite(rolloutsPath, rolloutLines.join(""));
  else await Deno.remove(rolloutsPath).catch(() => {});
  // Every row's per-example predictions, labelled as in eval.json (rows evaluated before predictions were
  // kept have none in their stage cache).
  const predictionLines: string[] = [];
  for (const row of rows) {
    const dir = rowDirs.get(row);
    if (!dir) continue;
    const file = join(dir, `predictions-${evalHash}.jsonl`);
    for (const rec of await readJsonl<PredictionRecord>(file)) {
      predictionLines.push(JSON.stringify({ label: row.label, ...rec, stage: row.stage }) + "\n");
    }
  }
  await atomicWrite(join(o.runDir, "predictions.jsonl"), predictionLines.join(""));
  const evalFile: EvalFile = { experiment: spec.name, runId: o.manifest.runId, rows };
  await atomicWriteJson(join(o.runDir, "eval.json"), evalFile);
  if (o.verbose !== false) console.log(formatTable(rows));
  return evalFile;
}

interface StageContext extends RunOptions {
  log(line: string): void;
  cfg: ReturnType<typeof modelConfigForSpec>;
  sampler: TaskSampler;
  tokenizer: ReturnType<typeof createTokenizer>;
  replicas: Replicas;
  /** The first n validation examples of a task (in-stage evaluation). */
  valExamples(task: TaskName, n: number): Example[];
}

/** Validation examples per task of an in-stage evaluation when the stage sets no `evalN`. */
export const DEFAULT_EVAL_N = 200;

/**
 * The in-stage evaluation of a stage with `evalEvery` > 0: the stage's own tasks that `eval.tasks` lists
 * (caption excluded), decoded as the final evaluation decodes (eval.temperature, eval.maxNewTokens), on the
 * first `evalN` examples of the validation split, never the test split: the test split is decoded only for
 * the final table. Returns the numbers to log as `eval/val_<task>/<metric>`.
 */
function stageEvaluator(
  name: string,
  st: SupervisedStageSpec | GrpoStageSpec,
  c: StageContext,
): ((done: number, model: VLM) => Promise<Record<string, number>>) | undefined {
  if (!(st.evalEvery > 0)) return undefined;
  const tasks = c.spec.eval.tasks.filter((t) => t !== "caption" && (st.tasks[t] ?? 0) > 0);
  if (!tasks.length) return undefined;
  const n = st.evalN ?? DEFAULT_EVAL_N;
  return async (_done, model) => {
    const res = await evaluateModel({
      model,
      tokenizer: c.tokenizer,
      testExamples: c.valExamples,
      spec: { ...c.spec.eval, tasks, n, gallery: 0, bootstrap: Math.min(c.spec.eval.bootstrap, 200) },
      samplesDir: "",
      samplesRel: "",
      stage: name,
      label: "",
      stageHash: "",
      replicas: await c.replicas.get(c.spec.eval.replicas),
      clusterOf: (ex) => c.sampler.regionKey(ex.scene.lat, ex.scene.lon),
    });
    return valMetrics(res);
  };
}

/** The `eval/val_<task>/<metric>` numbers of a validation evaluation. */
export function valMetrics(res: StageEval): Record<string, number> {
  const out: Record<string, number> = {};
  if (res.pairing) {
    out["eval/val_pairing/accuracy"] = res.pairing.accuracy;
    out["eval/val_pairing/format_rate"] = res.pairing.formatRate;
    out["eval/val_pairing/mean_length"] = res.pairing.meanLength;
  }
  if (res.geolocate) {
    for (const [k, v] of Object.entries(res.geolocate.thresholds)) out[`eval/val_geolocate/acc@${k}km`] = v;
    out["eval/val_geolocate/median_km"] = res.geolocate.medianKm;
    out["eval/val_geolocate/mean_length"] = res.geolocate.meanLength;
    if (res.geolocate.parseRate !== undefined) out["eval/val_geolocate/parse_rate"] = res.geolocate.parseRate;
    if (res.geolocate.repetitionRate !== undefined) {
      out["eval/val_geolocate/repetition_rate"] = res.geolocate.repetitionRate;
    }
  }
  if (res.geoqa) out["eval/val_geoqa/accuracy"] = res.geoqa.accuracy;
  if (res.control) {
    out["eval/val_control/accuracy"] = res.control.accuracy;
    out["eval/val_control/format_rate"] = res.control.formatRate;
  }
  return out;
}

/**
 * The run's replica pools by size, started on first use and closed when the run ends (`stages.*.replicas`,
 * `eval.replicas`; lib/train/replicas.ts). Off the CPU backends a stage runs in one thread (one device).
 */
class Replicas {
  readonly #pools = new Map<number, ReplicaPool>();
  #warned = false;

  constructor(readonly cfg: ReturnType<typeof modelConfigForSpec>, readonly log: (line: string) => void) {}

  /** A pool of `n` replicas, or undefined for n <= 1 (or off wasm/cpu). */
  async get(n: number | undefined): Promise<ReplicaPool | undefined> {
    const size = n ?? 1;
    if (size <= 1) return undefined;
    const backend = tf.getBackend();
    if (backend !== "wasm" && backend !== "cpu") {
      if (!this.#warned) this.log(`replicas: ${size} requested; the ${backend} backend runs in one thread`);
      this.#warned = true;
      return undefined;
    }
    let pool = this.#pools.get(size);
    if (!pool) {
      pool = await ReplicaPool.start(size, this.cfg, backend);
      this.#pools.set(size, pool);
    }
    return pool;
  }

  close(): void {
    for (const p of this.#pools.values()) p.close();
    this.#pools.clear();
  }
}

/**
 * Train one stage into its cache directory. With `resume`, an interrupted stage continues from its latest
 * checkpoint (records past it are dropped: they are produced again, identically); without, a stale partial
 * stage directory is cleared first. The final weights go to `<stage>/final/`, then `done.json` is written.
 */
async function trainStage(plan: StagePlan, upstream: VLM | null, c: StageContext): Promise<VLM> {
  const st = plan.spec;
  const ckptDir = join(plan.dir, "ckpt");
  const metricsPath = join(plan.dir, "metrics.jsonl");
  const rolloutsPath = join(plan.dir, "rollouts.jsonl");
  if (!c.resume) await Deno.remove(plan.dir, { recursive: true }).catch(() => {});
  await Deno.mkdir(plan.dir, { recursive: true });
  let model: VLM;
  if (st.from === null) {
    upstream?.dispose();
    model = createModel(c.cfg);
  } else {
    if (!upstream) throw new Error(`stage ${plan.name}: upstream model missing`);
    model = upstream;
  }
  c.log(`stage ${plan.name} [${st.kind}] ${plan.hash}: ${st.steps} steps`);
  const bar = c.verbose === false ? null : progress(st.steps, plan.name);
  const dropFrom = async (start: number) => {
    if (start > 0) c.log(`stage ${plan.name}: resuming after step ${start}`);
    await filterJsonl<{ step: number }>(metricsPath, (r) => r.step < start);
    await filterJsonl<{ step: number }>(rolloutsPath, (r) => r.step < start);
  };
  const onProgress = (n: number, _total: number, info: Record<string, number>) => bar?.update(n, info);
  const tasksOf = (mix: Partial<Record<TaskName, number>>) =>
    Object.entries(mix).filter(([, w]) => (w ?? 0) > 0) as [TaskName, number][];
  if (st.kind === "grpo") {
    const gs = st as GrpoStageSpec;
    const tasks = tasksOf(gs.tasks);
    const P = gs.grpo.promptsPerStep;
    const res = await trainGrpo({
      stageName: plan.name,
      spec: gs,
      model,
      tokenizer: c.tokenizer,
      prompts: (step) => {
        const rng = new Rng(deriveSeed(gs.seed, `prompts/${step}`));
        const task = tasks[rng.weighted(tasks.map((t) => t[1]))][0];
        return homogeneousBatch(c.sampler, task, rng.int(1 << 30), P);
      },
      onResume: dropFrom,
      onMetrics: (m) => appendJsonl(metricsPath, m),
      onRollouts: async (rs) => {
        for (const r of rs) await appendJsonl(rolloutsPath, r);
      },
      checkpointDir: ckptDir,
      resume: c.resume,
      progress: onProgress,
      evaluate: stageEvaluator(plan.name, gs, c),
      replicas: await c.replicas.get(gs.replicas),
    });
    res.optimizer.dispose();
  } else {
    const ss = st as SupervisedStageSpec;
    const tasks = tasksOf(ss.tasks);
    const B = ss.batchSize;
    // SFT uses the engine's chain of thought for geolocation too (pretraining keeps the one-line think).
    const target = (
      ex: Example,
    ) => (ss.kind === "sft" && ex.targetCot ? { ...ex, target: ex.targetCot } : ex);
    // The pointer is validated before any record is dropped (a corrupt one stops the run, losing nothing).
    const latest = c.resume ? await new RotatingCheckpoints(ckptDir).latest() : null;
    await dropFrom(latest ? latest.step : 0);
    const res = await trainSupervised({
      stageName: plan.name,
      spec: ss,
      model,
      tokenizer: c.tokenizer,
      nextBatch: (step) => {
        const rng = new Rng(deriveSeed(ss.seed, `batch/${step}`));
        const task = tasks[rng.weighted(tasks.map((t) => t[1]))][0];
        return homogeneousBatch(c.sampler, task, rng.int(1 << 30), B).map(target);
      },
      onMetrics: (m) => appendJsonl(metricsPath, m),
      checkpointDir: ckptDir,
      resume: c.resume,
      progress: onProgress,
      evaluate: stageEvaluator(plan.name, ss, c),
      replicas: await c.replicas.get(ss.replicas),
    });
    res.optimizer.dispose();
  }
  bar?.stop();
  await saveCheckpoint(join(plan.dir, "final"), model, {
    tokenizer: c.tokenizer.toJSON(),
    step: st.steps,
    meta: { stage: plan.name, kind: st.kind, hash: plan.hash },
  });
  await atomicWriteJson(
    join(plan.dir, "done.json"),
    {
      hash: plan.hash,
      stage: plan.name,
      at: new Date().toISOString(),
      files: await stageFiles(plan.dir),
    } satisfies DoneFile,
  );
  // Intermediate checkpoints are only for resume: drop them once the stage is final.
  await Deno.remove(ckptDir, { recursive: true }).catch(() => {});
  return model;
}

async function evalStage(
  plan: StagePlan,
  model: VLM,
  label: string,
  evalHash: string,
  c: RunOptions & {
    log(line: string): void;
    tokenizer: ReturnType<typeof createTokenizer>;
    testExamples(task: TaskName, n: number): Example[];
    replicas: Replicas;
    sampler: TaskSampler;
  },
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
  const rec: MetricRecord = {
    stage: plan.name,
    kind: "test",
    step: plan.spec.steps,
    time: Date.now(),
    evalHash,
  };
  if (res.pairing) {
    rec["eval/pairing/accuracy"] = res.pairing.accuracy;
    rec["eval/pairing/mean_length"] = res.pairing.meanLength;
  }
  if (res.geolocate) {
    for (const [k, v] of Object.entries(res.geolocate.thresholds)) rec[`eval/geolocate/acc@${k}km`] = v;
    if (res.geolocate.parseRate !== undefined) rec["eval/geolocate/parse_rate"] = res.geolocate.parseRate;
    if (res.geolocate.repetitionRate !== undefined) {
      rec["eval/geolocate/repetition_rate"] = res.geolocate.repetitionRate;
    }
  }
  if (res.geoqa) rec["eval/geoqa/accuracy"] = res.geoqa.accuracy;
  return rec;
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

/** Size and sha256 of one file of a finished stage. */
interface FileRecord {
  bytes: number;
  sha256: string;
}

/** `done.json`: written last; its presence marks the stage complete, `files` what complete means. */
interface DoneFile {
  hash: string;
  stage: string;
  at: string;
  /**
   * The stage's files when it finished, by path relative to the stage dir. JSONL files only grow after
   * that (test records are appended), so their recorded bytes must be an unchanged prefix.
   */
  files: Record<string, FileRecord>;
}

/**
 * The files a finished stage is verified by: its records. The final checkpoint verifies itself (model.json
 * holds each tensor file's size and sha256; loading checks them, shapes and config) and stops with an error
 * naming the file, rather than retraining over a tampered checkpoint.
 */
const DONE_FILES = ["metrics.jsonl", "rollouts.jsonl"];

async function stageFiles(dir: string): Promise<Record<string, FileRecord>> {
  const out: Record<string, FileRecord> = {};
  for (const f of DONE_FILES) {
    let bytes: Uint8Array;
    try {
      bytes = await Deno.readFile(join(dir, f));
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) continue;
      throw e;
    }
    out[f] = { bytes: bytes.length, sha256: await fileSha256(bytes) };
  }
  return out;
}

async function fileSha256(bytes: Uint8Array): Promise<string> {
  const h = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
  return Array.from(h, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Whether the stage in `plan.dir` is complete and intact: done.json parses and every file it records is
 * there with its recorded size and hash (JSONL files: as a prefix). On a mismatch it logs a warning naming
 * the file, removes done.json and returns false, so the stage is trained again (deterministically).
 */
async function verifyDone(plan: StagePlan, log: (line: string) => void): Promise<boolean> {
  const path = join(plan.dir, "done.json");
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
  const problem = await (async () => {
    let done: Partial<DoneFile>;
    try {
      done = JSON.parse(text);
    } catch {
      return `${path}: corrupt JSON`;
    }
    if (!done.files || typeof done.files !== "object") return `${path}: records no files`;
    for (const [f, want] of Object.entries(done.files)) {
      const p = join(plan.dir, f);
      let bytes: Uint8Array;
      try {
        bytes = await Deno.readFile(p);
      } catch {
        return `${p}: missing`;
      }
      const head = f.endsWith(".jsonl") ? bytes.subarray(0, want.bytes) : bytes;
      if (head.length !== want.bytes || (!f.endsWith(".jsonl") && bytes.length !== want.bytes)) {
        return `${p}: ${bytes.length} bytes, done.json records ${want.bytes}`;
      }
      if ((await fileSha256(head)) !== want.sha256) return `${p}: content differs from done.json's sha256`;
    }
    return null;
  })();
  if (problem === null) return true;
  log(`warning: ${problem}; re-running stage ${plan.name}`);
  await Deno.remove(path);
  return false;
}

/** Copy a stage's gallery PNGs (`<stageDir>/samples/*`) into the run's `samples/`. */
async function copySamples(stageDir: string, runDir: string): Promise<void> {
  const from = join(stageDir, "samples");
  if (!(await exists(from))) return;
  await Deno.mkdir(join(runDir, "samples"), { recursive: true });
  for await (const e of Deno.readDir(from)) {
    if (e.isFile) await Deno.copyFile(join(from, e.name), join(runDir, "samples", e.name));
  }
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

/**
 * `n` training examples of `task` from index `start` on that share one image layout (the first example's):
 * a batch collates without masks. Only caption mixes layouts (ground or one aerial); other tasks take the
 * first n. Deterministic in (task, start).
 */
export function homogeneousBatch(sampler: TaskSampler, task: TaskName, start: number, n: number): Example[] {
  const key = (e: Example) => `${e.ground ? 1 : 0}/${e.aerial.length}`;
  const out: Example[] = [];
  let want: string | null = null;
  for (let i = start; out.length < n; i += n) {
    for (const e of sampler.examples(task, "train", i, n)) {
      want ??= key(e);
      if (key(e) === want && out.length < n) out.push(e);
    }
  }
  return out;
}

/**
 * An exclusive advisory lock (flock) on `<stageDir>.lock`, held while a stage is trained and evaluated. The
 * OS releases it when the holder exits, even on SIGKILL, so a crash never leaves a stale lock behind.
 */
async function lockStage(stageDir: string, log: (line: string) => void): Promise<Deno.FsFile> {
  await Deno.mkdir(dirname(stageDir), { recursive: true });
  const f = await Deno.open(`${stageDir}.lock`, { read: true, write: true, create: true });
  const t0 = performance.now();
  const waiting = setTimeout(() => log(`waiting for another process to finish stage ${stageDir}`), 2000);
  try {
    await f.lock(true);
  } finally {
    clearTimeout(waiting);
  }
  if (performance.now() - t0 > 2000) log(`stage ${stageDir}: lock acquired`);
  return f;
}
