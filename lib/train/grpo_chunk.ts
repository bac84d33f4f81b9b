/**
 * One chunk of a GRPO update (a micro-batch of whole groups): its tensors, its weighted loss, and how a
 * step's rows are cut into chunks. The trainer (lib/train/grpo.ts) and the replicas
 * (lib/train/replica_worker.ts) both call {@link chunkLoss}, so they compute the same function.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { ModelInput, TrainBatch, VLM } from "../model/types.ts";
import { grpoLoss, stopGradient } from "./grpo_loss.ts";
import type { GrpoChunkParams } from "./replicas.ts";

/** The tensors of one policy-update micro-batch. */
export interface ChunkTensors {
  input: ModelInput;
  lossMask: tf.Tensor2D;
  fullMask: tf.Tensor2D;
  advantages: tf.Tensor1D;
  refLogp: tf.Tensor2D | null;
  oldLogp: tf.Tensor2D | null;
}

/**
 * The weighted clipped-surrogate loss of one micro-batch (to be called inside tf.variableGrads), its loss
 * stats, and (when `p.entropyWeight` is set) its weighted share of the mean entropy of sampled tokens.
 * Called here and by GRPO replicas (lib/train/replica_worker.ts), so both compute the same function.
 */
export function chunkLoss(
  model: VLM,
  t: ChunkTensors,
  p: GrpoChunkParams,
): { loss: tf.Scalar; stats: Record<string, number>; entropy: number | null } {
  const { logp, entropy: ent } = model.tokenLogProbsAndEntropy(
    t.input,
    true,
    p.temperature,
    p.groups ?? undefined,
  );
  const entropy = p.entropyWeight === null ? null : maskedMean(ent, t.fullMask) * p.entropyWeight;
  const res = grpoLoss({
    logp,
    oldLogp: t.oldLogp ?? stopGradient(logp),
    refLogp: t.refLogp,
    mask: t.lossMask,
    advantages: t.advantages,
    beta: p.beta,
    epsilonLow: p.epsilonLow,
    epsilonHigh: p.epsilonHigh,
    lossType: p.lossType,
    maxCompletionLength: p.maxCompletionLength,
  });
  return { loss: res.loss.mul(p.weight) as tf.Scalar, stats: res.stats, entropy };
}

/** Prompt ranges [p0, p1) of micro-batches of whole groups with at most `rows` rows each (at least 1 group). */
export function microBatches(prompts: number, G: number, rows: number): [number, number][] {
  const per = Math.max(1, Math.floor(rows / G));
  const out: [number, number][] = [];
  for (let p = 0; p < prompts; p += per) out.push([p, Math.min(prompts, p + per)]);
  return out;
}

/** Zero the loss mask of truncated rows (`mask_truncated`). */
export function maskRows(batch: TrainBatch, truncated: boolean[]): void {
  const keep = tf.tensor2d(truncated.map((t) => [t ? 0 : 1]));
  const masked = batch.lossMask.mul(keep) as tf.Tensor2D;
  keep.dispose();
  batch.lossMask.dispose();
  (batch as { lossMask: tf.Tensor2D }).lossMask = masked;
}

/** Mean of `x` over the positions where `mask` is 1 (a host number). */
function maskedMean(x: tf.Tensor2D, mask: tf.Tensor2D): number {
  const v = tf.tidy(() => x.mul(mask).sum().div(mask.sum().maximum(1)));
  const out = v.dataSync()[0];
  v.dispose();
  return out;
}

/**
 * One chunk's weighted loss value, its stats (with its entropy share when it has one) and its gradients
 * over `vars`: what the trainer computes on its own thread and a replica computes for it.
 */
export function chunkGradients(
  model: VLM,
  vars: tf.Variable[],
  t: ChunkTensors,
  p: GrpoChunkParams,
): { value: number; stats: Record<string, number>; grads: tf.NamedTensorMap } {
  let stats: Record<string, number> = {};
  const { value, grads } = tf.variableGrads(() => {
    const r = chunkLoss(model, t, p);
    stats = r.entropy === null ? r.stats : { ...r.stats, entropy: r.entropy };
    return r.loss;
  }, vars);
  const v = value.dataSync()[0];
  value.dispose();
  return { value: v, stats, grads };
}
