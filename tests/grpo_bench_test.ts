/**
 * The GRPO step benchmarks as a user runs them, on the tiny preset: bench/grpo_step.ts (one JSON line of
 * medians by part, on native BLAS and with `--blas off`) and bench/peer/peer.ts (ours, with the PyTorch side
 * skipped and saying why). No timing assertions: speed is reported, not tested.
 * @module
 */
import { assert, assertEquals } from "./assert.ts";
import { grpoStepper, setupBench } from "../bench/harness.ts";

const root = new URL("../", import.meta.url);

/** The tiny preset at 2 prompts x 2 samples: the bench scripts' smallest real step. */
const TINY_P2_G2 = ["--preset", "tiny", "--prompts", "2", "--group", "2"];

async function run(script: string, args: string[]): Promise<{ code: number; out: string; err: string }> {
  const o = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL(script, root).pathname, ...args],
    cwd: root.pathname,
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: o.code, out: new TextDecoder().decode(o.stdout), err: new TextDecoder().decode(o.stderr) };
}

Deno.test("grpoStepper reports every part of a step, and the parts fit in the step", async () => {
  const ctx = await setupBench({ backend: "wasm", preset: "tiny" });
  try {
    for (const o of [{}, { beta: 0.04 }, { sharePrefix: false }]) {
      const s = grpoStepper(ctx, { prompts: 2, groupSize: 2, maxNewTokens: 4, ...o });
      const r = await s.step();
      assert(r.parts !== null, "no parts reported");
      const parts = r.parts!;
      assertEquals(Object.keys(parts).sort(), [
        "forwardBackward",
        "optimizer",
        "prepare",
        "rewards",
        "rollout",
      ]);
      const sum = Object.values(parts).reduce((a, b) => a + b, 0);
      assert(Object.values(parts).every((ms) => ms >= 0) && parts.forwardBackward > 0, JSON.stringify(parts));
      assert(sum <= r.seconds * 1000 + 1, `parts ${sum} ms > step ${r.seconds * 1000} ms`);
      assertEquals(r.tokens, 2 * 2 * 4);
    }
  } finally {
    ctx.dispose();
  }
});

Deno.test("bench/grpo_step.ts prints one JSON line of medians by part, on native BLAS and with --blas off", async () => {
  for (const blas of ["on", "off"]) {
    const r = await run("bench/grpo_step.ts", [
      ...TINY_P2_G2,
      "--steps",
      "1",
      "--blas",
      blas,
      "--tokens",
      "6",
    ]);
    assertEquals(r.code, 0, r.err);
    const j = JSON.parse(r.out.trim().split("\n").pop()!);
    assertEquals([j.preset, j.prompts, j.groupSize, j.steps, j.maxNewTokens], ["tiny", 2, 2, 1, 6]);
    for (
      const k of [
        "rolloutMs",
        "rewardsMs",
        "prepareMs",
        "forwardBackwardMs",
        "optimizerMs",
        "stepMs",
        "cpuMs",
      ]
    ) {
      assert(typeof j[k] === "number" && j[k] >= 0, `${k}: ${j[k]}`);
    }
    assert(j.rolloutTokensPerSec > 0);
    if (blas === "off") assertEquals(j.blas, null);
    // One replica: the product gets every core (2 replicas would share them: tested in replicas_test.ts).
    if (blas === "on" && j.blas !== null) {
      assertEquals(j.blasThreadsPerReplica, navigator.hardwareConcurrency);
    }
  }
  const bad = await run("bench/grpo_step.ts", ["--blas", "maybe"]);
  assert(bad.code !== 0 && bad.err.includes("--blas must be on or off"), bad.err);
});

Deno.test("bench/grpo_memory.ts prints each case's wasm heap; fewer rows per micro-batch need no more", async () => {
  const r = await run("bench/grpo_memory.ts", [
    ...TINY_P2_G2,
    "--rows",
    "4,2",
    "--prefill",
    "4",
    "--tokens",
    "8",
  ]);
  assertEquals(r.code, 0, r.err);
  const lines = r.out.trim().split("\n");
  assert(
    lines[0].startsWith("GRPO update, P2 x G2, 8 tokens, micro-batches of 4 rows: wasm heap "),
    lines[0],
  );
  assert(lines[2].startsWith("evaluation prefill of 4 pairing prompts: wasm heap "), lines[2]);
  const summary = JSON.parse(lines.at(-1)!) as { cases: Record<string, { heapMiB: number; rssMiB: number }> };
  assertEquals(Object.keys(summary.cases), ["update:4", "update:2", "prefill:4"]);
  for (const c of Object.values(summary.cases)) {
    assert(c.heapMiB > 0 && c.rssMiB >= c.heapMiB, JSON.stringify(c));
  }
  assert(summary.cases["update:2"].heapMiB <= summary.cases["update:4"].heapMiB, JSON.stringify(summary));
});

Deno.test("bench/peer/peer.ts times ours and says why the PyTorch side is skipped", async () => {
  const r = await run("bench/peer/peer.ts", ["--preset", "tiny", "--rounds", "1"]);
  assertEquals(r.code, 0, r.err);
  assert(r.out.includes("PyTorch: skipped (the PyTorch model is the small preset, not tiny)"), r.out);
  const j = JSON.parse(r.out.trim().split("\n").pop()!);
  for (const run of Object.values(j.ours) as Record<string, number>[][]) {
    assert(run[0].rollout8TokPerSec > 0 && run[0].rollout64TokPerSec > 0 && run[0].trainStepMs > 0);
  }
});
