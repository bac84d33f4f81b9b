/**
 * The baselines' training loop: `steps` AdamW steps (lib/train/optim.ts, warmup + cosine schedule of
 * lib/train/schedule.ts) on batches of `batchSize` train views drawn with replacement by a seeded `Rng`, so
 * a baseline is a deterministic function of its spec on a given backend.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { OptimSpec } from "../spec/types.ts";
import { AdamW } from "../train/optim.ts";
import { lrAt } from "../train/schedule.ts";
import { Rng } from "../rng.ts";

/** What one step logs (names as the other trainers log them). */
export interface BaselineStepMetrics {
  step: number;
  loss: number;
  lr: number;
  grad_norm: number;
  step_time: number;
}

export interface TrainLoopOptions {
  steps: number;
  batchSize: number;
  optim: OptimSpec;
  seed: number;
  /** Number of train views; batches index into 0..nTrain-1. */
  nTrain: number;
  vars: tf.Variable[];
  /** The batch loss (called inside tf.variableGrads). */
  loss(batch: number[]): tf.Scalar;
  /** After the update of a step (e.g. the GeoCLIP queue takes the batch's locations). */
  afterStep?(batch: number[]): void;
  onStep?(m: BaselineStepMetrics): void | Promise<void>;
}

/** Run the loop; returns the wall-clock seconds it took. */
export async function trainLoop(o: TrainLoopOptions): Promise<number> {
  // In a tidy scope: the zero tensors the moment variables are made from are released with it.
  let opt!: AdamW;
  tf.tidy(() => {
    opt = new AdamW(o.vars, o.optim);
  });
  const rng = new Rng(o.seed);
  const t0 = performance.now();
  try {
    for (let step = 0; step < o.steps; step++) {
      const ts = performance.now();
      const batch = Array.from({ length: o.batchSize }, () => rng.int(o.nTrain));
      const { value, grads } = tf.variableGrads(() => o.loss(batch), o.vars);
      const lr = lrAt(o.optim, step, o.steps);
      const norm = opt.applyGradients(grads, lr, o.optim.gradClip, step);
      const loss = (await value.data())[0];
      value.dispose();
      tf.dispose(grads);
      o.afterStep?.(batch);
      await o.onStep?.({ step, loss, lr, grad_norm: norm, step_time: (performance.now() - ts) / 1000 });
    }
  } finally {
    opt.dispose();
  }
  return (performance.now() - t0) / 1000;
}
