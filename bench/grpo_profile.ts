/**
 * Kernel profile of one GRPO step (small preset, P 8 x G 8, the default native-BLAS + shared-prefix path):
 * `tf.profile` over a whole step after one warm-up step, kernels grouped by name, sorted by total time.
 * Shows where a step's time goes once the matmuls run on BLAS (bench/RESULTS.md "GRPO step").
 *
 *   deno run -A bench/grpo_profile.ts [--top 25]
 * @module
 */
import { parseArgs } from "node:util";
import * as tf from "@tensorflow/tfjs";
import { grpoStepper, setupBench } from "./harness.ts";

const { values: v } = parseArgs({ args: Deno.args, options: { top: { type: "string", default: "25" } } });
const ctx = await setupBench({ backend: "wasm", preset: "small" });
const stepper = grpoStepper(ctx);
await stepper.step();
const t0 = performance.now();
const prof = await tf.profile(async () => {
  await stepper.step();
});
const wall = performance.now() - t0;
const by = new Map<string, { ms: number; n: number }>();
for (const k of prof.kernels) {
  const e = by.get(k.name) ?? { ms: 0, n: 0 };
  e.ms += typeof k.kernelTimeMs === "number" ? k.kernelTimeMs : 0;
  e.n++;
  by.set(k.name, e);
}
const rows = [...by.entries()].sort((a, b) => b[1].ms - a[1].ms);
const total = rows.reduce((s, [, e]) => s + e.ms, 0);
console.log(
  `step wall ${wall.toFixed(0)} ms (profiled), kernel time ${
    total.toFixed(0)
  } ms, ${prof.kernels.length} launches`,
);
console.log("kernel".padEnd(28) + "launches".padStart(10) + "ms".padStart(10) + "share".padStart(8));
for (const [name, e] of rows.slice(0, Number(v.top))) {
  console.log(
    name.padEnd(28) + String(e.n).padStart(10) + e.ms.toFixed(0).padStart(10) +
      `${(100 * e.ms / total).toFixed(1)}%`.padStart(8),
  );
}
