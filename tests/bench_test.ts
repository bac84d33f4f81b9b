/**
 * Smoke test of the benchmark helpers on the tiny preset (wasm): every measurement runs and returns sane
 * shapes and no leaked tensors. No timing assertions: speed is reported by `deno task bench` / bench/run.ts.
 * @module
 */
import { assertEquals, assertOk } from "./assert.ts";
import {
  measureGrpoStep,
  measureOverheads,
  measureRollout,
  measureSftStep,
  profileDecodeStep,
  setupBench,
} from "../bench/harness.ts";
import {
  decodeMatmulShapes,
  measureMatmul,
  median,
  pctOfRoofline,
  rooflineTokensPerSec,
} from "../bench/roofline.ts";
import { benchSummary } from "../bench/run.ts";

Deno.test("roofline arithmetic", () => {
  assertEquals(median([3, 1, 2]), 2);
  assertEquals(median([4, 1, 2, 3]), 2.5);
  // 10 GFLOP/s and 1 MFLOP per token: 10,000 tokens/s is the roofline; 5,000 tokens/s is 50%.
  assertEquals(rooflineTokensPerSec(10, 1e6), 10_000);
  assertEquals(pctOfRoofline(5_000, 1e6, 10), 50);
});

Deno.test("bench helpers run on the tiny preset", async () => {
  const ctx = await setupBench({ backend: "wasm", preset: "tiny" });
  try {
    assertEquals(ctx.backend.name, "wasm");
    assertOk(ctx.prefixLen > 0);
    const mm = await measureMatmul({ m: 32, k: 32, n: 32 }, { reps: 2, warmup: 1 });
    assertOk(mm.gflops > 0);
    assertEquals(decodeMatmulShapes(ctx.cfg, 4).length, 6);
    for (
      const c of [
        { rows: 4, groupSize: 2, newTokens: 3 },
        { rows: 4, groupSize: 2, newTokens: 3, sharedPrefix: false },
        { rows: 2, groupSize: 2, newTokens: 3, useCache: false },
      ]
    ) {
      const r = await measureRollout(ctx, { ...c, reps: 1 });
      assertEquals(r.rows, c.rows);
      assertOk(r.tokensPerSec > 0 && r.flopsPerToken > 0);
      assertEquals(r.leakedTensors, 0);
    }
    const sft = measureSftStep(ctx, { batchSize: 2, reps: 1 });
    assertOk(sft.seconds > 0);
    assertEquals(sft.leakedTensors, 0);
    const grpo = await measureGrpoStep(ctx, { prompts: 2, groupSize: 2, maxNewTokens: 4, reps: 1 });
    assertOk(grpo.seconds >= grpo.generateSeconds && grpo.generateSeconds > 0);
    // Each step builds and disposes its own AdamW: its moments must leave nothing behind.
    assertEquals(grpo.leakedTensors, 0);
    const prof = await profileDecodeStep(ctx, { rows: 2, groupSize: 2, steps: 2 });
    assertOk(prof.kernelsPerStep > 0);
    const oh = await measureOverheads(1);
    assertOk(oh.usPerSmallOp > 0);
  } finally {
    ctx.dispose();
  }
});

Deno.test("bench summary (quick, tiny) has every field", async () => {
  const s = await benchSummary({ backend: "wasm", preset: "tiny", quick: true, log: () => {} });
  for (
    const k of [
      "backend",
      "matmulGflops",
      "flopsPerToken",
      "rollout",
      "kvVsRecompute",
      "sharedPrefix",
      "sftStep",
      "grpoStep",
      "targets",
    ]
  ) {
    assertOk(k in s, k);
  }
});
