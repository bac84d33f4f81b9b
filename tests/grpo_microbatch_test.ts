/**
 * GRPO micro-batches (GrpoSpec.microBatchRows): the policy update summed over micro-batches of whole groups
 * equals the full-batch update, for each loss type, on a tiny model that first learned the answer format (so
 * sampled completions earn different rewards and the advantages are not all zero).
 */
import { assert, assertEquals } from "./assert.ts";
import { CharTokenizer, pairingExample, testConfig, useWasm } from "./helpers_model.ts";
import { createModel, type TfVLM } from "../lib/model/vlm.ts";
import { trainGrpo } from "../lib/train/grpo.ts";
import { microBatches } from "../lib/train/grpo_chunk.ts";
import { trainSupervised } from "../lib/train/supervised.ts";
import type { GrpoStageSpec, SupervisedStageSpec } from "../lib/spec/types.ts";

await useWasm();
const tok = new CharTokenizer();
const optim = {
  lr: 3e-3,
  weightDecay: 0.01,
  beta1: 0.9,
  beta2: 0.99,
  warmupSteps: 0,
  minLrRatio: 1,
  gradClip: 1,
};

Deno.test("microBatches: whole groups, at most `rows` rows, every prompt once", () => {
  assertEquals(microBatches(8, 8, 32), [[0, 4], [4, 8]]);
  assertEquals(microBatches(5, 2, 4), [[0, 2], [2, 4], [4, 5]]);
  assertEquals(microBatches(3, 8, 4), [[0, 1], [1, 2], [2, 3]]);
  assertEquals(microBatches(2, 4, 64), [[0, 2]]);
});

Deno.test("GRPO: micro-batched updates equal the full-batch update (grpo, dr_grpo, dapo)", async () => {
  const sft: SupervisedStageSpec = {
    kind: "sft",
    from: null,
    tasks: { pairing: 1 },
    steps: 40,
    batchSize: 4,
    optim,
    evalEvery: 0,
    checkpointEvery: 0,
    seed: 1,
  };
  const base = createModel(testConfig("tiny", 11));
  const r = await trainSupervised({
    stageName: "sft",
    spec: sft,
    model: base,
    tokenizer: tok,
    nextBatch: (step) => [0, 1, 2, 3].map((i) => pairingExample(100 + step * 4 + i)),
  });
  r.optimizer.dispose();
  const prompts = [0, 1, 2, 3].map((i) => pairingExample(900 + i));
  // The weights every run starts from (each clones `base`), read once.
  const before = (base as TfVLM).namedParams().map(([, v]) => v.dataSync().slice());
  for (const lossType of ["grpo", "dr_grpo", "dapo"] as const) {
    const run = async (rows: number) => {
      const m = (base as TfVLM).clone();
      const spec: GrpoStageSpec = {
        kind: "grpo",
        from: "sft",
        tasks: { pairing: 1 },
        steps: 1,
        optim,
        grpo: {
          promptsPerStep: 4,
          groupSize: 4,
          maxNewTokens: 40,
          temperature: 1,
          topP: 1,
          beta: 0.05,
          epsilonLow: 0.2,
          epsilonHigh: 0.28,
          lossType,
          scaleRewards: "group",
          numIterations: 1,
          maskTruncated: false,
          microBatchRows: rows,
          rewards: { format: 0.5, accuracy: 1, geodesic: 0, length: 0, repetition: 0 },
          geodesicTauKm: 500,
          length: { max: 1, min: 0.5, maxTokens: 1024 },
          repetition: { n: 6, maxPenalty: -1 },
        },
        evalEvery: 0,
        checkpointEvery: 0,
        seed: 3,
      };
      const metrics: Record<string, unknown>[] = [];
      const res = await trainGrpo({
        stageName: "grpo",
        spec,
        model: m,
        tokenizer: tok,
        prompts: () => prompts,
        onMetrics: (x) => void metrics.push(x as Record<string, unknown>),
        onRollouts: () => {},
      });
      res.optimizer.dispose();
      const names = m.namedParams().map(([k]) => k);
      const w = m.namedParams().map(([, v]) => v.dataSync().slice());
      m.dispose();
      return { names, w, metrics: metrics[0] };
    };
    const full = await run(64), micro = await run(4);
    assert(
      (full.metrics.reward_std as number) > 0,
      `${lossType}: rewards did not vary; the check would be empty`,
    );
    assert(
      Math.abs((full.metrics.loss as number) - (micro.metrics.loss as number)) < 1e-5,
      `${lossType}: loss`,
    );
    assert(Math.abs((full.metrics.grad_norm as number) - (micro.metrics.grad_norm as number)) < 1e-4);
    let worst = 0, compared = 0, noise = 0;
    full.w.forEach((a, i) => {
      // The key part of a QKV bias shifts every score of a query equally, so softmax makes its gradient 0 in
      // exact arithmetic; in floats it is rounding noise, and AdamW's first step (g / sqrt(g^2)) turns that
      // noise into a move of up to lr in either run. Those weights carry no signal to compare.
      const keyBias = full.names[i].endsWith(".attn.qkv.b") ? [a.length / 3, (2 * a.length) / 3] : [0, 0];
      for (let j = 0; j < a.length; j++) {
        if (j >= keyBias[0] && j < keyBias[1]) continue;
        // The same holds wherever the summed gradient itself is at AdamW's eps (1e-8): the first step moves a
        // weight by lr g / (|g| + eps) (plus the decay lr wd w), so a move under 0.9 lr means |g| < 9 eps,
        // where the float order of the sum (micro-batches, BLAS kernels) decides the move's size.
        // A weight no example touches (g = 0, move 0) is compared: both runs must leave it alone.
        const move = Math.abs(a[j] - before[i][j] * (1 - optim.lr * optim.weightDecay));
        if (move > 1e-3 * optim.lr && move < 0.9 * optim.lr) {
          noise++;
          continue;
        }
        compared++;
        worst = Math.max(worst, Math.abs(a[j] - micro.w[i][j]));
      }
    });
    assert(worst < 1e-5, `${lossType}: weights differ by ${worst}`);
    // Most weights are compared (89% with lossType grpo; the others had clipped gradients under 9e-8).
    assert(compared > noise, `${lossType}: ${noise} of ${noise + compared} weights at eps`);
  }
  base.dispose();
});
