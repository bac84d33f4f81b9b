/**
 * Grounding probe: can the model learn to read a spatial or per-candidate fact out of the images in a few
 * hundred steps? Two synthetic tasks on the small preset, trained from scratch with AdamW (lr 1e-3):
 *
 * - `sector`: the ground panorama is dark green with one bright red band in one of 4 azimuth sectors
 *   (0, 90, 180 or 270 degrees); the single target token names the sector.
 * - `slot`: 4 aerial tiles of random solid colours (4 colours); the text names a letter, three filler tokens
 *   follow, then the target token names the colour of that tile (reading one view of several, 2 hops away
 *   from the letter, as in "B: taiga, no water, ...").
 *
 * Each is run with the model's gated embeddings (VisionConfig.embedGating) and with gating + slot segments
 * (ModelConfig.slots). Prints JSON: the loss every 40 steps and the first step with loss < 0.1 (null: never;
 * chance is ln 4 = 1.386).
 *
 *   deno run -A bench/grounding_probe.ts [--steps 240] [--task sector|slot|all]
 */
import * as tf from "@tensorflow/tfjs";
import { parseArgs } from "node:util";
import { initBackend } from "../lib/backend.ts";
import { createModel } from "../lib/model/vlm.ts";
import { makeModelConfig } from "../lib/model/config.ts";
import type { ModelConfig, ModelInput } from "../lib/model/types.ts";
import { AdamW } from "../lib/train/optim.ts";
import { Rng } from "../lib/rng.ts";

const { values } = parseArgs({
  options: { steps: { type: "string", default: "240" }, task: { type: "string", default: "all" } },
});
const STEPS = Number(values.steps);
await initBackend("wasm");

const B = 16, V = 64;
const LETTERS = [20, 21, 22, 23];

function config(variant: "gating" | "gating+slots"): ModelConfig {
  return makeModelConfig({ preset: "small", seed: 1 }, {
    vocabSize: V,
    groundShape: [32, 128],
    aerialSize: 32,
    maxCandidates: 4,
    ...(variant === "gating+slots" ? { slots: { tokens: LETTERS.map((t) => [t]), reset: [1] } } : {}),
  });
}

/** One batch of a task: input + the position of the target token. */
function batch(task: "sector" | "slot", rng: Rng): { input: ModelInput; mask: tf.Tensor2D } {
  const T = task === "sector" ? 8 : 11;
  const ids = new Int32Array(B * T), attn = new Float32Array(B * T).fill(1), mask = new Float32Array(B * T);
  for (let b = 0; b < B; b++) for (let t = 0; t < 6; t++) ids[b * T + t] = 10 + t;
  if (task === "sector") {
    const g = new Float32Array(B * 32 * 128 * 3);
    for (let b = 0; b < B; b++) {
      const c = rng.int(4);
      ids[b * T + 6] = 30;
      ids[b * T + 7] = 40 + c;
      mask[b * T + 7] = 1;
      for (let p = 0; p < 32 * 128; p++) {
        g[(b * 4096 + p) * 3 + 1] = 0.4;
        if (Math.floor((p % 128) / 8) === c * 4) g[(b * 4096 + p) * 3] = 1;
      }
    }
    return {
      input: {
        B,
        ground: tf.tensor4d(g, [B, 32, 128, 3]),
        aerial: null,
        ids: tf.tensor2d(ids, [B, T], "int32"),
        attn: tf.tensor2d(attn, [B, T]),
      },
      mask: tf.tensor2d(mask, [B, T]),
    };
  }
  const COLS = [[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0]];
  const a = new Float32Array(B * 4 * 1024 * 3);
  for (let b = 0; b < B; b++) {
    const cs = [0, 1, 2, 3].map(() => rng.int(4));
    const k = rng.int(4);
    ids.set([LETTERS[k], 30, 31, 32, 40 + cs[k]], b * T + 6);
    mask[b * T + 10] = 1;
    for (let j = 0; j < 4; j++) {
      for (let p = 0; p < 1024; p++) {
        for (let c = 0; c < 3; c++) {
          a[((b * 4 + j) * 1024 + p) * 3 + c] = COLS[cs[j]][c] * 0.8 + 0.1 * rng.next();
        }
      }
    }
  }
  return {
    input: {
      B,
      ground: null,
      aerial: tf.tensor5d(a, [B, 4, 32, 32, 3]),
      ids: tf.tensor2d(ids, [B, T], "int32"),
      attn: tf.tensor2d(attn, [B, T]),
    },
    mask: tf.tensor2d(mask, [B, T]),
  };
}

function run(task: "sector" | "slot", variant: "gating" | "gating+slots") {
  const model = createModel(config(variant));
  const opt = new AdamW(model.trainable(), { beta1: 0.9, beta2: 0.99, weightDecay: 0.01 });
  const rng = new Rng(1);
  const curve: [number, number][] = [];
  let solvedAt: number | null = null;
  for (let step = 0; step < STEPS; step++) {
    const { input, mask } = batch(task, rng);
    const { value, grads } = tf.variableGrads(
      () => tf.tidy(() => model.tokenLogProbs(input, true).mul(mask).sum().neg().div(B)) as tf.Scalar,
      model.trainable(),
    );
    opt.applyGradients(grads, step < 20 ? 1e-3 * (step + 1) / 20 : 1e-3, 1);
    const loss = value.dataSync()[0];
    if (solvedAt === null && loss < 0.1) solvedAt = step;
    if (step % 40 === 0 || step === STEPS - 1) curve.push([step, Number(loss.toFixed(3))]);
    value.dispose();
    for (const k in grads) grads[k].dispose();
    mask.dispose();
    for (const t of [input.ids, input.attn, input.ground, input.aerial]) t?.dispose();
  }
  opt.dispose();
  model.dispose();
  return { task, variant, steps: STEPS, solvedAt, curve };
}

const tasks = values.task === "all" ? (["sector", "slot"] as const) : [values.task as "sector" | "slot"];
const out = [];
for (const task of tasks) {
  for (const variant of ["gating", "gating+slots"] as const) {
    if (task === "sector" && variant === "gating+slots") continue; // no candidates in this task
    const r = run(task, variant);
    console.error(JSON.stringify(r));
    out.push(r);
  }
}
console.log(JSON.stringify(out, null, 1));
