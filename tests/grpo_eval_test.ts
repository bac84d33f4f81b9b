/**
 * Evaluation during a GRPO stage (`evalEvery`): called before the first update, before every step that is a
 * multiple of evalEvery and after the last, each record keyed by the updates done; a stage interrupted and
 * resumed evaluates the same points (its resume point again, after the caller dropped the records from it).
 */
import { assertEquals } from "./assert.ts";
import { CharTokenizer, pairingExample, testConfig, useWasm } from "./helpers_model.ts";
import { createModel } from "../lib/model/vlm.ts";
import { trainGrpo } from "../lib/train/grpo.ts";
import type { GrpoStageSpec } from "../lib/spec/types.ts";
import type { MetricRecord } from "../lib/run/records.ts";

await useWasm();
const tok = new CharTokenizer();

const spec: GrpoStageSpec = {
  kind: "grpo",
  from: "sft",
  tasks: { pairing: 1 },
  steps: 5,
  optim: { lr: 1e-3, weightDecay: 0, beta1: 0.9, beta2: 0.99, warmupSteps: 0, minLrRatio: 1, gradClip: 1 },
  grpo: {
    promptsPerStep: 2,
    groupSize: 2,
    maxNewTokens: 6,
    temperature: 1,
    topP: 1,
    beta: 0,
    epsilonLow: 0.2,
    epsilonHigh: 0.28,
    lossType: "dapo",
    scaleRewards: "group",
    numIterations: 1,
    maskTruncated: false,
    rewards: { format: 0.2, accuracy: 1, geodesic: 0, length: 0, repetition: 0 },
    geodesicTauKm: 500,
    length: { max: 1, min: 0.5, maxTokens: 1024 },
    repetition: { n: 6, maxPenalty: -1 },
  },
  evalEvery: 2,
  checkpointEvery: 1,
  seed: 5,
};

async function run(dir: string, records: MetricRecord[], stopAfter?: number): Promise<number[]> {
  const model = createModel(testConfig("tiny", 3));
  const calls: number[] = [];
  try {
    const res = await trainGrpo({
      stageName: "grpo",
      spec,
      model,
      tokenizer: tok,
      prompts: (step) => [pairingExample(10 + 2 * step), pairingExample(11 + 2 * step)],
      onMetrics: (m) => void records.push(m),
      onRollouts: () => {},
      onResume: (start) => {
        const keep = records.filter((r) => r.step < start);
        records.splice(0, records.length, ...keep);
      },
      checkpointDir: dir,
      stopAfter,
      evaluate: (done) => {
        calls.push(done);
        return { "eval/val_pairing/accuracy": done / 10 };
      },
    });
    res.optimizer.dispose();
  } finally {
    model.dispose();
  }
  return calls;
}

Deno.test("GRPO evalEvery: before the first update, every evalEvery steps, at the end; exact on resume", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "geo-r1-grpo-eval-" });
  try {
    const whole: MetricRecord[] = [];
    assertEquals(await run(`${tmp}/a`, whole), [0, 2, 4, 5]);
    const evals = (rs: MetricRecord[]) =>
      rs.filter((r) => r.kind === "eval").map((r) => [r.step, r["eval/val_pairing/accuracy"]]);
    assertEquals(evals(whole), [[0, 0], [2, 0.2], [4, 0.4], [5, 0.5]]);
    assertEquals(whole.filter((r) => r.kind === "grpo").map((r) => r.step), [0, 1, 2, 3, 4]);

    // Interrupted after 2 steps (checkpoint at 2), then resumed: the eval at 2 is dropped and done again.
    const parted: MetricRecord[] = [];
    assertEquals(await run(`${tmp}/b`, parted, 2), [0]);
    assertEquals(await run(`${tmp}/b`, parted), [2, 4, 5]);
    assertEquals(evals(parted), evals(whole));
    assertEquals(parted.filter((r) => r.kind === "grpo").map((r) => r.step), [0, 1, 2, 3, 4]);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
