/**
 * The GRPO trainer learns from reward alone: a tiny model that writes the answer form with a uniform letter
 * (after a few supervised steps on the form, never on the right letter) climbs from chance to >= 90% accuracy
 * on a control whose right letter it was never shown, with the recipe's reward set (accuracy, format, length,
 * repetition). The small-preset analogue is `deno task exp control` (docs/RESULTS.md).
 */
import { assert } from "../assert.ts";
import { CharTokenizer, pairingExample, testConfig, useWasm } from "../helpers_model.ts";
import { createModel } from "../../lib/model/vlm.ts";
import { trainGrpo } from "../../lib/train/grpo.ts";
import { trainSupervised } from "../../lib/train/supervised.ts";
import { collatePrompts, disposeInput } from "../../lib/model/collate.ts";
import { accuracyReward } from "../../lib/reward/rewards.ts";
import type { VLM } from "../../lib/model/types.ts";
import type { Example } from "../../lib/data/types.ts";
import type { GrpoStageSpec, SupervisedStageSpec } from "../../lib/spec/types.ts";

await useWasm();
const tok = new CharTokenizer();

/** The control: every prompt's right letter is C (a bandit the start model answers at chance). */
function control(seed: number, letter: string): Example {
  const ex = pairingExample(seed);
  return {
    ...ex,
    task: "control",
    prompt: "which one",
    answer: "C",
    target: `<think>one</think><answer>${letter}</answer>`,
  };
}

/** Greedy accuracy on 32 held-out control prompts. */
async function greedyAccuracy(model: VLM): Promise<number> {
  const exs = Array.from({ length: 32 }, (_, i) => control(900000 + i, "C"));
  const input = collatePrompts(exs, tok, model.config);
  try {
    const res = await model.generate(input, {
      groupSize: 1,
      maxNewTokens: 24,
      temperature: 0,
      topP: 1,
      seed: 0,
      stopIds: [tok.special.answerClose],
    });
    return res.completions.filter((ids, i) => accuracyReward(tok.decode(ids), exs[i]) === 1).length / 32;
  } finally {
    disposeInput(input);
  }
}

const optim = {
  lr: 3e-3,
  weightDecay: 0,
  beta1: 0.9,
  beta2: 0.99,
  warmupSteps: 0,
  minLrRatio: 1,
  gradClip: 1,
};

Deno.test("GRPO climbs from chance to >= 90% on a control from reward alone (tiny model)", async () => {
  const model = createModel(testConfig("tiny", 11));
  try {
    // The answer form with letters drawn uniformly: the start model writes the form, the letter at chance.
    const sft: SupervisedStageSpec = {
      kind: "sft",
      from: null,
      tasks: { control: 1 },
      steps: 60,
      batchSize: 16,
      optim: { ...optim, lr: 1e-2 },
      evalEvery: 0,
      checkpointEvery: 0,
      seed: 1,
    };
    const s = await trainSupervised({
      stageName: "form",
      spec: sft,
      model,
      tokenizer: tok,
      nextBatch: (step) => Array.from({ length: 16 }, (_, i) => control(1000 * step + i, "ABCD"[i % 4])),
      onMetrics: () => {},
    });
    s.optimizer.dispose();

    const acc: number[] = [];
    const format: number[] = [];
    const spec: GrpoStageSpec = {
      kind: "grpo",
      from: "form",
      tasks: { control: 1 },
      steps: 30,
      optim,
      grpo: {
        promptsPerStep: 4,
        groupSize: 8,
        maxNewTokens: 24,
        temperature: 1,
        topP: 1,
        beta: 0.04,
        epsilonLow: 0.2,
        epsilonHigh: 0.28,
        lossType: "dapo",
        scaleRewards: "group",
        numIterations: 1,
        maskTruncated: true,
        rewards: { format: 1, accuracy: 1, geodesic: 0, length: 1, repetition: 1 },
        geodesicTauKm: 500,
        length: { max: 1, min: 0.5, maxTokens: 128 },
        repetition: { n: 6, maxPenalty: -1 },
      },
      evalEvery: 0,
      checkpointEvery: 0,
      seed: 2,
    };
    const g = await trainGrpo({
      stageName: "grpo",
      spec,
      model,
      tokenizer: tok,
      prompts: (step) => Array.from({ length: 4 }, (_, i) => control(50000 + 10 * step + i, "C")),
      onMetrics: (m) => {
        acc.push(m["rewards/accuracy/mean"] as number);
        format.push(m["rewards/format/mean"] as number);
      },
      onRollouts: () => {},
    });
    g.optimizer.dispose();
    const first = acc.slice(0, 3).reduce((a, b) => a + b, 0) / 3;
    const greedy = await greedyAccuracy(model);
    const curve = acc.map((a) => a.toFixed(2)).join(" ");
    assert(format[0] > 0.8, `the start model writes the form: format ${format[0]}`);
    assert(first < 0.5, `sampled accuracy starts near chance (0.25): ${first.toFixed(2)} (${curve})`);
    assert(greedy >= 0.9, `greedy accuracy after GRPO ${greedy} < 0.9 (sampled: ${curve})`);
  } finally {
    model.dispose();
  }
});
