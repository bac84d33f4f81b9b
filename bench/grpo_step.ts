/**
 * GRPO step times, broken down by part, as one JSON line: the bench preset's model (default small) and the
 * geo-r1 GRPO stage at P x G (default 8 x 8) and its maxNewTokens (an untrained model runs every rollout to
 * the limit: the worst case of a step), through the real `trainGrpo`.
 *
 *   deno run -A bench/grpo_step.ts [--preset small] [--prompts 8] [--group 8] [--steps 3] [--replicas 1]
 *     [--blas on|off] [--root DIR] [--tokens N]
 *
 * `--blas off` runs tfjs-wasm's own matmuls (lib/model/blas.ts). `--root` imports the harness and trainer
 * of another checkout of this project (e.g. a `git worktree` at an older commit) so that two versions can
 * be timed alternately on the same machine; an older trainer reports step and generate times only.
 * `--tokens` sets maxNewTokens (default: the checkout's own spec), so two checkouts do the same work.
 * Medians are over `--steps` steps after one untimed step; `cpuMs` is the process's CPU time per step (all
 * threads), which other processes on the same cores disturb less than wall time.
 * @module
 */
import process from "node:process";
import { parseGrpoBenchArgs, wholeNumber } from "./grpo_args.ts";
import { median } from "./roofline.ts";

const args = parseGrpoBenchArgs(Deno.args, {
  steps: { type: "string", default: "3" },
  blas: { type: "string", default: "on" },
  root: { type: "string" },
  tokens: { type: "string" },
});
const v = args.values;
if (v.blas !== "on" && v.blas !== "off") throw new Error(`--blas must be on or off (got ${v.blas})`);
if (v.blas === "off") Deno.env.set("GEO_R1_BLAS", "off");
const root = v.root ? new URL(`file://${Deno.realPathSync(v.root)}/`) : new URL("../", import.meta.url);
const harness: typeof import("./harness.ts") = await import(new URL("bench/harness.ts", root).href);
const grpo: typeof import("../lib/train/grpo.ts") = await import(new URL("lib/train/grpo.ts", root).href);
const replicasMod: typeof import("../lib/train/replicas.ts") = await import(
  new URL("lib/train/replicas.ts", root).href
);
// Threads per product once the replicas share the cores (an older checkout without native BLAS: null).
const blasMod: Partial<typeof import("../lib/model/blas.ts")> = await import(
  new URL("lib/model/blas.ts", root).href
).catch(() => ({}));

const ctx = await harness.setupBench({ backend: "wasm", preset: args.preset });
const stage = Object.values(ctx.spec.stages).find((s) => s.kind === "grpo");
if (!stage || stage.kind !== "grpo") throw new Error("the bench spec has no grpo stage");
const spec = structuredClone(stage);
const P = args.prompts, R = args.replicas;
spec.grpo.promptsPerStep = P;
spec.grpo.groupSize = args.groupSize;
spec.grpo.maskTruncated = false;
if (v.tokens !== undefined) spec.grpo.maxNewTokens = wholeNumber("--tokens", v.tokens);
spec.steps = 1;
const pool = R > 1 ? await replicasMod.ReplicaPool.start(R, ctx.cfg, "wasm") : undefined;

type Row = Record<string, number>;
const rows: Row[] = [];
const steps = wholeNumber("--steps", v.steps);
for (let k = 0; k <= steps; k++) {
  const row: Row = {};
  ctx.releaseOptimizer();
  const cpu0 = process.cpuUsage();
  const res = await grpo.trainGrpo(
    {
      stageName: "bench-grpo",
      spec,
      model: ctx.model,
      tokenizer: ctx.tokenizer,
      prompts: () => ctx.examples(P * (k + 1)).slice(P * k),
      onMetrics: (m) => {
        if (m.kind !== "grpo") return;
        row.step = Number(m.step_time) * 1000;
        row.generate = Number(m.generate_time) * 1000;
        row.tokens = Number(m["completions/mean_length"]) * P * spec.grpo.groupSize;
      },
      onRollouts: () => {},
      onStepParts: (_s, parts) => Object.assign(row, parts),
      replicas: pool,
    } as Parameters<typeof grpo.trainGrpo>[0],
  );
  res.optimizer.dispose();
  const cpu = process.cpuUsage(cpu0);
  // CPU time of the whole process (all threads): robust to other processes sharing the cores.
  row.cpu = (cpu.user + cpu.system) / 1000;
  if (k > 0) rows.push(row);
}
const threadsPerReplica = blasMod.blasThreads?.() ?? null;
pool?.close();
const out: Record<string, unknown> = {
  root: root.pathname,
  backend: ctx.backend.name,
  blas: ctx.backend.blas ?? null,
  blasThreadsPerReplica: threadsPerReplica,
  preset: ctx.preset,
  prompts: P,
  groupSize: spec.grpo.groupSize,
  maxNewTokens: spec.grpo.maxNewTokens,
  replicas: R,
  steps: rows.length,
};
for (const key of Object.keys(rows[0] ?? {})) {
  if (key !== "tokens") out[`${key}Ms`] = Math.round(median(rows.map((r) => r[key])));
}
out.rolloutTokensPerSec = Math.round(median(rows.map((r) => r.tokens / (r.generate / 1000))));
console.log(JSON.stringify(out));
ctx.dispose();
