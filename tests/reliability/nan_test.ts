/**
 * NaN/Inf in the loss or gradients: training stops with a TrainingHealthError naming the step, before the
 * bad update touches the weights, and the last checkpoint stays loadable and finite. Fault injection: the
 * batch callback of step 5 poisons one weight with NaN (checkpoints every 2 steps). Also: saving a model
 * with NaN weights is refused, so a diverged model never overwrites a good checkpoint.
 */
import * as tf from "@tensorflow/tfjs";
import { join } from "node:path";
import { assert, assertEquals, assertRejects, assertThrows } from "../assert.ts";
import { CharTokenizer, pairingExample, testConfig, useWasm } from "../helpers_model.ts";
import { createModel } from "../../lib/model/vlm.ts";
import { loadCheckpoint, saveCheckpoint } from "../../lib/model/checkpoint.ts";
import { AdamW } from "../../lib/train/optim.ts";
import { trainSupervised } from "../../lib/train/supervised.ts";
import { TrainingHealthError } from "../../lib/train/health.ts";
import type { SupervisedStageSpec } from "../../lib/spec/types.ts";

await useWasm();
const tok = new CharTokenizer();

const spec: SupervisedStageSpec = {
  kind: "sft",
  from: null,
  tasks: { pairing: 1 },
  steps: 10,
  batchSize: 2,
  optim: {
    lr: 3e-3,
    weightDecay: 0.01,
    beta1: 0.9,
    beta2: 0.99,
    warmupSteps: 2,
    minLrRatio: 0.1,
    gradClip: 1,
  },
  evalEvery: 0,
  checkpointEvery: 2,
  seed: 1,
};

Deno.test("reliability: a NaN weight at step 5 stops training at step 5; the step-4 checkpoint is kept", async () => {
  const dir = await Deno.makeTempDir({ prefix: "geo-r1-rel-nan-" });
  const model = createModel(testConfig("tiny", 3));
  try {
    const pool = [1, 2, 3, 4].map((s) => pairingExample(s, 4, 2));
    const metrics: number[] = [];
    let before: Float32Array | null = null;
    const err = await trainSupervised({
      stageName: "nan",
      spec,
      model,
      tokenizer: tok,
      checkpointDir: dir,
      resume: false,
      nextBatch: (step) => {
        if (step === 5) {
          const v = model.trainable()[0];
          tf.tidy(() => v.assign(tf.fill(v.shape, NaN)));
          before = model.trainable()[1].dataSync().slice() as Float32Array;
        }
        return [pool[step % 4], pool[(step + 1) % 4]];
      },
      onMetrics: (m) => void metrics.push(m.step),
    }).then(() => null, (e) => e);
    assert(err instanceof TrainingHealthError, `expected TrainingHealthError, got ${err}`);
    assertEquals(err.step, 5);
    assert(/^step 5: global gradient norm is NaN/.test(err.message), err.message);
    assertEquals(metrics, [0, 1, 2, 3, 4], "no metric record for the failed step");
    // The update was not applied: another weight is unchanged.
    assertEquals(model.trainable()[1].dataSync(), before!);
    const latest = JSON.parse(await Deno.readTextFile(join(dir, "latest.json")));
    assertEquals(latest.step, 4);
    const ck = await loadCheckpoint(join(dir, latest.dir));
    try {
      for (const [name, v] of ck.model.namedParams()) {
        assert((v.dataSync() as Float32Array).every(Number.isFinite), `${name} not finite`);
      }
      assertEquals(ck.optimizerState?.step, 4);
    } finally {
      ck.model.dispose();
    }
    // A diverged model is never saved over a good checkpoint.
    await assertRejects(
      () => saveCheckpoint(join(dir, latest.dir), model, { tokenizer: tok.toJSON() }),
      /refusing to save: tensor .*\[0\] is NaN/,
    );
    (await loadCheckpoint(join(dir, latest.dir))).model.dispose();
  } finally {
    model.dispose();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("reliability: AdamW refuses Inf gradients before changing weights, moments or step", () => {
  const w = tf.variable(tf.tensor1d([1, 2]), true, "relnan/w");
  const opt = new AdamW([w], { beta1: 0.9, beta2: 0.99, weightDecay: 0 });
  const g = tf.tensor1d([Infinity, 0]);
  try {
    assertThrows(() => opt.applyGradients([g], 0.1, 1, 17), /step 17: global gradient norm is Infinity/);
    assertEquals(Array.from(w.dataSync()), [1, 2]);
    assertEquals(opt.step, 0);
    const st = opt.getState().slots.get("w")!;
    assertEquals(Array.from(st.m).concat(Array.from(st.v)), [0, 0, 0, 0]);
  } finally {
    g.dispose();
    w.dispose();
    opt.dispose();
  }
});
