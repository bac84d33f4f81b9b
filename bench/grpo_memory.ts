/**
 * Where a run's memory goes: the tfjs-wasm heap's high-water mark of one GRPO update and of one evaluation
 * prefill. A wasm heap grows to the most it ever held and never shrinks, and each data-parallel replica has
 * its own, so a run's peak RSS is about replicas x the largest of these plus the process's fixed part.
 * Each case runs in a fresh child process (a heap's high-water mark is per process):
 *   - `update M`: one GRPO step (P x G rollouts to maxNewTokens, then the update in micro-batches of at most
 *     M rows, `stages.grpo.grpo.microBatchRows`), one process, no replicas;
 *   - `prefill B`: `model.generate` on B pairing prompts (evaluation decodes in batches of 64; the heap is set
 *     by the prefill, whatever the number of new tokens).
 * Prints one line per case (heap MiB after it, RSS MiB) and a JSON summary.
 *
 *   deno run -A bench/grpo_memory.ts [--preset small] [--prompts 8] [--group 8] [--rows 32,16,8]
 *     [--prefill 64,32] [--tokens 96]
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { grpoStepper, measureRollout, setupBench } from "./harness.ts";
import { parseGrpoBenchArgs, wholeNumber } from "./grpo_args.ts";
import { enableBlas } from "../lib/model/blas.ts";

const args = parseGrpoBenchArgs(Deno.args, {
  rows: { type: "string", default: "32,16,8" },
  prefill: { type: "string", default: "64,32" },
  tokens: { type: "string", default: "96" },
  child: { type: "string" },
});
const v = args.values;
const list = (flag: string, s: string) => s.split(",").filter((x) => x).map((x) => wholeNumber(flag, x));

/** MiB of the wasm backend's heap (its linear memory). */
function heapMiB(): number {
  const b = tf.backend() as unknown as { wasm: { HEAPU8: Uint8Array } };
  return Math.round(b.wasm.HEAPU8.buffer.byteLength / 2 ** 20);
}

if (v.child) {
  // One case in this process: "update:M" or "prefill:B".
  const [kind, n] = v.child.split(":");
  const ctx = await setupBench({ backend: "wasm", preset: args.preset });
  enableBlas();
  if (kind === "update") {
    (ctx.spec.stages.grpo as { grpo: { microBatchRows?: number } }).grpo.microBatchRows = Number(n);
    const s = grpoStepper(ctx, {
      prompts: args.prompts,
      groupSize: args.groupSize,
      maxNewTokens: wholeNumber("--tokens", v.tokens),
    });
    await s.step();
  } else await measureRollout(ctx, { rows: Number(n), newTokens: 1, reps: 1 });
  console.log(JSON.stringify({ heapMiB: heapMiB(), rssMiB: Math.round(Deno.memoryUsage().rss / 2 ** 20) }));
  Deno.exit(0);
}

const cases = [
  ...list("--rows", v.rows!).map((m) => `update:${m}`),
  ...list("--prefill", v.prefill!).map((b) => `prefill:${b}`),
];
const out: Record<string, { heapMiB: number; rssMiB: number }> = {};
for (const c of cases) {
  const r = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL(import.meta.url).pathname,
      "--child",
      c,
      "--preset",
      args.preset,
      "--prompts",
      String(args.prompts),
      "--group",
      String(args.groupSize),
      "--tokens",
      v.tokens!,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(r.stdout).trim().split("\n").at(-1) ?? "";
  if (r.code !== 0 || !text.startsWith("{")) {
    throw new Error(`${c} failed (exit ${r.code}): ${new TextDecoder().decode(r.stderr).slice(-400)}`);
  }
  out[c] = JSON.parse(text);
  const [kind, n] = c.split(":");
  const what = kind === "update"
    ? `GRPO update, P${args.prompts} x G${args.groupSize}, ${v.tokens} tokens, micro-batches of ${n} rows`
    : `evaluation prefill of ${n} pairing prompts`;
  console.log(`${what}: wasm heap ${out[c].heapMiB} MiB, RSS ${out[c].rssMiB} MiB`);
}
console.log(JSON.stringify({ preset: args.preset, cases: out }));
