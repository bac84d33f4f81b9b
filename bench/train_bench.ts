/**
 * Training step times on the bench preset (default small), with the stage settings of
 * experiments/geo-r1.json: one supervised (SFT) step at the sft stage's batch size (collate + forward +
 * backward + AdamW + loss readback), and one GRPO step through trainGrpo (P x G rollouts to maxNewTokens,
 * rewards, clipped-surrogate update). Each iteration is one step.
 * @module
 */
import { benchContext } from "./common.ts";
import { grpoStepper, sftStepper } from "./harness.ts";

const ctx = await benchContext();
const sft = sftStepper(ctx);
const grpo = grpoStepper(ctx);

Deno.bench({
  name: `sft step (batch ${sft.batchSize})`,
  group: "train",
  warmup: 1,
  n: 3,
  fn() {
    sft.step();
  },
});

Deno.bench({
  name: `grpo step (${grpo.prompts} prompts x G ${grpo.groupSize}, ${grpo.maxNewTokens} tokens)`,
  group: "train",
  warmup: 1,
  n: 2,
  async fn() {
    await grpo.step();
  },
});
