/**
 * Training one stage (pretrain / sft / grpo) into its cache directory, with its in-stage evaluation on the
 * validation split. With `resume`, an interrupted stage continues from its latest checkpoint (records past it
 * are dropped: they are produced again, identically); without, a stale partial stage directory is cleared
 * first. The final weights go to `<stage>/final/`, then `done.json` is written.
 * @module
 */
import { join } from "node:path";
import type { Example, TaskName } from "../data/types.ts";
import { type NegativeMix, negativesAt, type TaskSampler } from "../data/tasks.ts";
import type { GeoTokenizer } from "../data/tokenizer.ts";
import type { ModelConfig, VLM } from "../model/types.ts";
import type { ExperimentSpec, GrpoStageSpec, SupervisedStageSpec } from "../spec/types.ts";
import { appendJsonl, filterJsonl } from "../run/jsonl.ts";
import { createModel } from "../model/vlm.ts";
import { saveCheckpoint } from "../model/checkpoint.ts";
import { trainSupervised } from "../train/supervised.ts";
import { trainGrpo } from "../train/grpo.ts";
import { deriveSeed, Rng } from "../rng.ts";
import { progress } from "../run/progress.ts";
import { evaluateModel } from "./evaluate.ts";
import { evalMetrics } from "./eval_metrics.ts";
import type { StagePlan } from "./plan.ts";
import type { Replicas } from "./replica_pools.ts";
import { writeDone } from "./stage_dir.ts";
import { STAGE_DEFAULTS } from "../spec/defaults.ts";

/** What training a stage reads from the run. */
export interface StageContext {
  spec: ExperimentSpec;
  resume?: boolean;
  verbose?: boolean;
  log(line: string): void;
  cfg: ModelConfig;
  sampler: TaskSampler;
  tokenizer: GeoTokenizer;
  replicas: Replicas;
  /** The first n validation examples of a task (in-stage evaluation). */
  valExamples(task: TaskName, n: number): Example[];
}

/** The stage directory's record files and the hooks both trainers share. */
interface StageIO {
  ckptDir: string;
  metricsPath: string;
  rolloutsPath: string;
  /** Drop the records of steps >= start (they are produced again on resume). */
  dropFrom(start: number): Promise<void>;
  onProgress(n: number, total: number, info: Record<string, number>): void;
}

/**
 * The in-stage evaluation of a stage with `evalEvery` > 0: the stage's own tasks and its anchor's tasks that
 * `eval.tasks` lists (caption excluded), decoded as the final evaluation decodes (eval.temperature, eval.maxNewTokens), on the
 * first `evalN` examples of the validation split, never the test split: the test split is decoded only for
 * the final table. Returns the numbers to log as `eval/val_<task>/<metric>`.
 */
export function stageEvaluator(
  name: string,
  st: SupervisedStageSpec | GrpoStageSpec,
  c: StageContext,
): ((done: number, model: VLM) => Promise<Record<string, number>>) | undefined {
  if (!(st.evalEvery > 0)) return undefined;
  // The stage's own tasks, and a GRPO stage's anchor tasks (what the anchor is there to keep).
  const anchor = "anchor" in st ? st.anchor?.tasks ?? {} : {};
  const tasks = c.spec.eval.tasks.filter((t) =>
    t !== "caption" && ((st.tasks[t] ?? 0) > 0 || (anchor[t] ?? 0) > 0)
  );
  if (!tasks.length) return undefined;
  const n = st.evalN ?? STAGE_DEFAULTS.evalN;
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
    return evalMetrics(res, "val_");
  };
}

/** Train one stage into its cache directory (see the module doc); returns the trained model. */
export async function trainStage(plan: StagePlan, upstream: VLM | null, c: StageContext): Promise<VLM> {
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
  const io: StageIO = {
    ckptDir,
    metricsPath,
    rolloutsPath,
    dropFrom: async (start: number) => {
      if (start > 0) c.log(`stage ${plan.name}: resuming after step ${start}`);
      await filterJsonl<{ step: number }>(metricsPath, (r) => r.step < start);
      await filterJsonl<{ step: number }>(rolloutsPath, (r) => r.step < start);
    },
    onProgress: (n: number, _total: number, info: Record<string, number>) => bar?.update(n, info),
  };
  if (st.kind === "grpo") await grpoStage(plan, st as GrpoStageSpec, model, c, io);
  else await supervisedStage(plan, st as SupervisedStageSpec, model, c, io);
  bar?.stop();
  await saveCheckpoint(join(plan.dir, "final"), model, {
    tokenizer: c.tokenizer.toJSON(),
    step: st.steps,
    meta: { stage: plan.name, kind: st.kind, hash: plan.hash },
  });
  await writeDone(plan);
  // Intermediate checkpoints are only for resume: drop them once the stage is final.
  await Deno.remove(ckptDir, { recursive: true }).catch(() => {});
  return model;
}

/** A tier mix as metric fields (`negatives/far`, `negatives/climate`, `negatives/near`). */
function mixRecord(m: NegativeMix): Record<string, number> {
  return { "negatives/far": m.far, "negatives/climate": m.climate, "negatives/near": m.near };
}

/** The tasks of a stage's mix with a positive weight, with their weights. */
function tasksOf(mix: Partial<Record<TaskName, number>>): [TaskName, number][] {
  return Object.entries(mix).filter(([, w]) => (w ?? 0) > 0) as [TaskName, number][];
}

/**
 * One step's examples from a task mix: the task is drawn by weight, then `n` examples of it, both from the
 * step's own seed (a pure function of the step, so resume is exact). `mix`: the tiers of pairing negatives
 * (a GRPO stage's schedule at this step).
 */
function mixBatch(
  c: StageContext,
  tasks: [TaskName, number][],
  seed: number,
  n: number,
  mix?: NegativeMix,
): Example[] {
  const rng = new Rng(seed);
  const task = tasks[rng.weighted(tasks.map((t) => t[1]))][0];
  return homogeneousBatch(c.sampler, task, rng.int(1 << 30), n, mix);
}

/** GRPO on the stage's task mix: each step's P prompts share one task drawn by weight. */
async function grpoStage(plan: StagePlan, gs: GrpoStageSpec, model: VLM, c: StageContext, io: StageIO) {
  const tasks = tasksOf(gs.tasks);
  const P = gs.grpo.promptsPerStep;
  const mixAt = (step: number) => (gs.negatives ? negativesAt(gs.negatives, step) : undefined);
  const res = await trainGrpo({
    stageName: plan.name,
    spec: gs,
    model,
    tokenizer: c.tokenizer,
    prompts: (step) => mixBatch(c, tasks, deriveSeed(gs.seed, `prompts/${step}`), P, mixAt(step)),
    ...(gs.anchor
      ? {
        anchorPrompts: (step: number) =>
          mixBatch(
            c,
            tasksOf(gs.anchor!.tasks),
            deriveSeed(gs.seed, `anchor/${step}`),
            gs.anchor!.promptsPerStep,
          ),
      }
      : {}),
    onResume: io.dropFrom,
    // With a tier schedule, each step's record carries the mix its pairing prompts were drawn with.
    onMetrics: (m) => appendJsonl(io.metricsPath, gs.negatives ? { ...m, ...mixRecord(mixAt(m.step)!) } : m),
    onRollouts: async (rs) => {
      for (const r of rs) await appendJsonl(io.rolloutsPath, r);
    },
    checkpointDir: io.ckptDir,
    resume: c.resume,
    progress: io.onProgress,
    evaluate: stageEvaluator(plan.name, gs, c),
    replicas: await c.replicas.get(gs.replicas),
  });
  res.optimizer.dispose();
}

/** Pretraining or SFT on the stage's task mix: each step's batch shares one task drawn by weight. */
async function supervisedStage(
  plan: StagePlan,
  ss: SupervisedStageSpec,
  model: VLM,
  c: StageContext,
  io: StageIO,
) {
  const tasks = tasksOf(ss.tasks);
  const B = ss.batchSize;
  // SFT uses the engine's chain of thought for geolocation too (pretraining keeps the one-line think).
  const target = (
    ex: Example,
  ) => (ss.kind === "sft" && ex.targetCot ? { ...ex, target: ex.targetCot } : ex);
  const res = await trainSupervised({
    stageName: plan.name,
    spec: ss,
    model,
    tokenizer: c.tokenizer,
    nextBatch: (step) => mixBatch(c, tasks, deriveSeed(ss.seed, `batch/${step}`), B).map(target),
    onResume: io.dropFrom,
    onMetrics: (m) => appendJsonl(io.metricsPath, m),
    checkpointDir: io.ckptDir,
    resume: c.resume,
    progress: io.onProgress,
    evaluate: stageEvaluator(plan.name, ss, c),
    replicas: await c.replicas.get(ss.replicas),
  });
  res.optimizer.dispose();
}

/**
 * `n` training examples of `task` from index `start` on that share one image layout (the first example's):
 * a batch collates without masks. Only caption mixes layouts (ground or one aerial); other tasks take the
 * first n. Deterministic in (task, start).
 */
export function homogeneousBatch(
  sampler: TaskSampler,
  task: TaskName,
  start: number,
  n: number,
  mix?: NegativeMix,
): Example[] {
  const key = (e: Example) => `${e.ground ? 1 : 0}/${e.aerial.length}`;
  const out: Example[] = [];
  let want: string | null = null;
  for (let i = start; out.length < n; i += n) {
    for (const e of sampler.examples(task, "train", i, n, mix)) {
      want ??= key(e);
      if (key(e) === want && out.length < n) out.push(e);
    }
  }
  return out;
}
