/**
 * GRPO step A/B in one process: the same model and prompts, steps alternating between configurations so
 * that other load on the machine falls on all of them alike. Configurations:
 *   wasm        tfjs-wasm matmuls, every row's prefix run in full (the computation before native BLAS and
 *               the shared prefix: the same kernels and the same forward)
 *   wasm+share  tfjs-wasm matmuls, prefix shared by each group
 *   blas        native BLAS matmuls (lib/model/blas.ts), per-row prefix
 *   blas+share  native BLAS and shared prefix (the default)
 * Prints, per configuration, the medians over rounds of wall ms by part, the step's wall and CPU ms (CPU:
 * all threads of the process) and rollout tokens/s, then the speed-up of each over `wasm`.
 *
 *   deno run -A bench/grpo_ab.ts [--preset small] [--prompts 8] [--group 8] [--rounds 3] [--configs a,b]
 *     [--replicas N]   (N > 1: data-parallel replicas as in a run; worker replicas take their matmul path
 *                       from GEO_R1_BLAS, so one path per process: compare two processes' medians)
 * @module
 */
import process from "node:process";
import { grpoStepper, setupBench } from "./harness.ts";
import { parseGrpoBenchArgs, wholeNumber } from "./grpo_args.ts";
import { median } from "./roofline.ts";
import { disableBlas, enableBlas, shareBlasThreads } from "../lib/model/blas.ts";
import { ReplicaPool } from "../lib/train/replicas.ts";

const ALL = ["wasm", "wasm+share", "blas", "blas+share"];
const args = parseGrpoBenchArgs(Deno.args, {
  rounds: { type: "string", default: "3" },
  configs: { type: "string", default: ALL.join(",") },
});
const v = args.values;
const configs = v.configs!.split(",");
for (const c of configs) if (!ALL.includes(c)) throw new Error(`--configs: unknown ${c} (${ALL.join(", ")})`);

const ctx = await setupBench({ backend: "wasm", preset: args.preset });
if (configs.some((c) => c.startsWith("blas")) && !ctx.backend.blas) {
  throw new Error("no native BLAS loaded (apt-get install libopenblas0); run with --configs wasm,wasm+share");
}
const R = args.replicas;
const rounds = wholeNumber("--rounds", v.rounds);
if (R > 1 && configs.some((c) => c.startsWith("blas")) && configs.some((c) => c.startsWith("wasm"))) {
  // Worker replicas load the library (or not) once, from GEO_R1_BLAS: one path per process.
  throw new Error(
    "--replicas > 1 times one matmul path per process: --configs blas,blas+share, or wasm,wasm+share with GEO_R1_BLAS=off",
  );
}
const pool = R > 1 ? await ReplicaPool.start(R, ctx.model.config, "wasm") : undefined;
const o = { prompts: args.prompts, groupSize: args.groupSize, replicas: pool };
const steppers = new Map(
  configs.map((c) => [c, grpoStepper(ctx, { ...o, sharePrefix: c.endsWith("share") })]),
);
type Row = Record<string, number>;
const rows = new Map<string, Row[]>(configs.map((c) => [c, []]));

async function step(c: string): Promise<Row> {
  if (c.startsWith("blas")) enableBlas();
  else disableBlas();
  if (pool && c.startsWith("blas")) shareBlasThreads(R);
  const cpu0 = process.cpuUsage();
  const r = await steppers.get(c)!.step();
  const cpu = process.cpuUsage(cpu0);
  return {
    ...(r.parts ?? {}),
    step: r.seconds * 1000,
    cpu: (cpu.user + cpu.system) / 1000,
    tokensPerSec: r.tokens / r.generateSeconds,
  };
}

for (const c of configs) await step(c); // warm-up: heap growth, kernel setup
const loads: string[] = [];
for (let round = 0; round < rounds; round++) {
  loads.push(Deno.loadavg().map((x) => x.toFixed(1)).join(" "));
  for (const c of configs) rows.get(c)!.push(await step(c));
  console.error(`round ${round + 1} done (load ${loads[loads.length - 1]})`);
}
enableBlas();

const keys = ["rollout", "rewards", "prepare", "forwardBackward", "optimizer", "step", "cpu", "tokensPerSec"];
const med = (c: string, k: string) => median(rows.get(c)!.map((r) => r[k]));
const lines = [
  `GRPO step A/B, preset ${ctx.preset}, P ${o.prompts} x G ${o.groupSize}, ${R} replica(s), ${rounds} alternating rounds ` +
  `(medians; load averages at round starts: ${loads.join(" | ")}); native BLAS: ${
    ctx.backend.blas ?? "none"
  }`,
  `${"config".padEnd(12)}${keys.map((k) => k.padStart(16)).join("")}`,
];
for (const c of configs) {
  lines.push(`${c.padEnd(12)}${keys.map((k) => med(c, k).toFixed(0).padStart(16)).join("")}`);
}
if (configs.includes("wasm")) {
  for (const c of configs.filter((c) => c !== "wasm")) {
    lines.push(
      `${c}: step ${(med("wasm", "step") / med(c, "step")).toFixed(2)}x faster (wall), ` +
        `${(med("wasm", "cpu") / med(c, "cpu")).toFixed(2)}x less CPU, forward+backward ` +
        `${(med("wasm", "forwardBackward") / med(c, "forwardBackward")).toFixed(2)}x, rollout ` +
        `${(med("wasm", "rollout") / med(c, "rollout")).toFixed(2)}x`,
    );
  }
}
console.log(lines.join("\n"));
console.log(JSON.stringify(Object.fromEntries(rows)));
pool?.close();
ctx.dispose();
