/**
 * `bench`: run the `deno bench` suites of bench/ (roofline, rollout, training steps) in a child Deno with the
 * permissions they need. The suites read GEO_R1_BENCH_PRESET and GEO_R1_BENCH_BACKEND from the environment.
 * @module
 */
import type { Command } from "./command.ts";

/** Permissions of the bench suites (they load tfjs-wasm and sharp, read bench fixtures, write nothing else). */
export const BENCH_PERMISSIONS = [
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "--allow-ffi",
  "--allow-sys",
];

/** The `bench` command. */
export const command: Command = {
  name: "bench",
  summary: "run the deno bench suites in bench/ (roofline, rollout tokens/s, SFT and GRPO step times)",
  help: `usage: deno task bench [options] [FILE...]

Run the deno bench suites in bench/ (or only the FILEs given): matmul roofline, rollout tokens/s for 1/8/64
rows x 32/128 new tokens, KV cache vs recompute, shared prefix vs separate prompts, SFT and GRPO step times.
The preset and backend come from the environment:
  GEO_R1_BENCH_PRESET    tiny | small (default) | large
  GEO_R1_BENCH_BACKEND   auto (default) | wasm | webgpu | cpu
For one JSON summary with the targets, use bench/run.ts (see README "Benchmarks").

options:
  --filter TEXT       run only benchmarks whose name contains TEXT (deno bench --filter)
  --json              print deno bench's JSON output instead of its table
  -h, --help          show this help

examples:
  deno task bench
  deno task bench --filter rollout
  GEO_R1_BENCH_PRESET=tiny deno task bench bench/train_bench.ts`,
  options: {
    filter: { type: "string" },
    json: { type: "boolean" },
  },
  allowPositionals: true,
  async run(values, positionals) {
    const args = ["bench", ...BENCH_PERMISSIONS];
    if (typeof values.filter === "string") args.push("--filter", values.filter);
    if (values.json) args.push("--json");
    args.push(...(positionals.length ? positionals : ["bench/"]));
    const child = new Deno.Command(Deno.execPath(), {
      args,
      stdin: "inherit",
      stdout: "inherit",
      stderr: "inherit",
    });
    const { code } = await child.output();
    return code === 0 ? 0 : 1;
  },
};
