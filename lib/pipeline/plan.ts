/**
 * The stage cache keys of a pipeline and the table labels they get. Stage cache (like DVC's run cache):
 * `cache/stages/<hash>/`, hash = sha256 of the stage spec, the upstream stage's hash, the world/data/model
 * specs and the code version (a hash of lib/ sources + deno.lock). The base model is therefore trained once
 * and reused by geo-sft, geo-r1-zero and geo-r1.
 * @module
 */
import { join } from "node:path";
import type { ExperimentSpec, StageSpec, SupervisedStageSpec } from "../spec/types.ts";
import { canonicalJson, sha256Hex } from "../spec/hash.ts";
import { UserError } from "../errors.ts";
import { BASELINE_LABELS } from "../baselines/mod.ts";

/** Row labels of the paper's table, by pipeline shape. */
export const ROW_LABELS = ["Base", "Geo-SFT", "Geo-R1-Zero", "Geo-R1"] as const;

/** One stage of a planned pipeline: its resolved spec, cache key and cache directory. */
export interface StagePlan {
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
 * "Geo-R1 (pairing+geolocate RL)"), and one with an anchor against forgetting says so ("Geo-R1 + anchor"); a
 * baseline by its method.
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
  const rl = tasks.length === 1 && tasks[0] === "pairing" ? name : `${name} (${tasks.join("+")} RL)`;
  return lastSpec.kind === "grpo" && lastSpec.anchor ? `${rl} + anchor` : rl;
}

/** The sibling experiments whose rows complete the paper's four-row table, by label. */
const SIBLINGS: Record<string, { pipeline: string[]; from?: string }> = {
  "Base": { pipeline: ["base"] },
  "Geo-SFT": { pipeline: ["base", "sft"] },
  "Geo-R1-Zero": { pipeline: ["base", "grpo"], from: "base" },
  "Geo-R1": { pipeline: ["base", "sft", "grpo"], from: "sft" },
};

/**
 * The plans of the sibling experiments (same base) that this spec's stages can form, each ending in the
 * stage whose cached evaluation gives a row; siblings that need a stage the spec lacks (or a baseline) are
 * left out.
 */
export function siblingPlans(spec: ExperimentSpec, cacheRoot: string, code: string): StagePlan[][] {
  const out: StagePlan[][] = [];
  for (const s of Object.values(SIBLINGS)) {
    if (!s.pipeline.every((n) => spec.stages[n] && spec.stages[n].kind !== "baseline")) continue;
    const overrides = s.from ? { grpo: { from: s.from } } : {};
    out.push(
      planPipeline(spec, s.pipeline, cacheRoot, code, overrides as Record<string, Partial<StageSpec>>),
    );
  }
  return out;
}

/** The paper's rows in its order, then any other rows (RL variants, baselines) in the order they came. */
export function sortRows<R extends { label: string }>(rows: R[]): void {
  const rank = (label: string) => {
    const i = ROW_LABELS.indexOf(label as never);
    return i < 0 ? ROW_LABELS.length : i;
  };
  rows.sort((a, b) => rank(a.label) - rank(b.label));
}
