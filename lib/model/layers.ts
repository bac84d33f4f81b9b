/**
 * Pre-LN transformer blocks: x += Attn(LN(x)); x += MLP(LN(x)), with one fused QKV matmul and batched
 * attention over heads. `blockFull` runs a whole sequence (the vision encoder, the decoder's training
 * forward, a group's shared prefix); `blockGroup` runs the completion tokens of G-row groups against their
 * prompt's prefix keys and values.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { bmm, bmmNT, gelu, layerNorm, linear } from "./ops.ts";
import type { BlockP } from "./params.ts";

/**
 * One block over a full sequence. x: [B*S, w]; bias: [B, 1, S, S] additive mask or null (no mask).
 * Returns the new residual stream and this layer's K, V ([B, H, S, dh]).
 */
export function blockFull(
  x: tf.Tensor2D,
  bp: BlockP,
  B: number,
  S: number,
  H: number,
  bias: tf.Tensor | null,
): { x: tf.Tensor2D; k: tf.Tensor4D; v: tf.Tensor4D } {
  const w = x.shape[1];
  const dh = w / H;
  const h = layerNorm(x, bp.ln1g, bp.ln1b) as tf.Tensor2D;
  // Split first: a rank-5 transpose falls off the wasm fast path (~50x slower than rank 4).
  const heads = (t: tf.Tensor) => t.reshape([B, S, H, dh]).transpose([0, 2, 1, 3]) as tf.Tensor4D;
  const [q0, k0, v0] = tf.split(linear(h, bp.qkvW, bp.qkvB), 3, 1);
  const q = heads(q0.mul(1 / Math.sqrt(dh)));
  const k = heads(k0), v = heads(v0);
  let scores: tf.Tensor = bmmNT(q, k);
  if (bias) scores = scores.add(bias);
  const att = bmm(tf.softmax(scores), v).transpose([0, 2, 1, 3]).reshape([
    B * S,
    w,
  ]) as tf.Tensor2D;
  const x1 = x.add(linear(att, bp.outW, bp.outB)) as tf.Tensor2D;
  const x2 = x1.add(mlp(x1, bp)) as tf.Tensor2D;
  return { x: x2, k, v };
}

/** The block's MLP branch: proj(GELU(fc(LN(x)))). */
export function mlp(x: tf.Tensor2D, bp: BlockP): tf.Tensor2D {
  const h = layerNorm(x, bp.ln2g, bp.ln2b) as tf.Tensor2D;
  return linear(gelu(linear(h, bp.fcW, bp.fcB)) as tf.Tensor2D, bp.projW, bp.projB);
}

/**
 * One block over the completion tokens of G-row groups. x: [B*Tc, w] (rows p, g, t); kP, vP: the layer's
 * prefix keys and values [P, H, S0, dh]; bias: [P, 1, G*Tc, S0 + Tc] (groupBias). The G*Tc queries of a
 * prompt score its prefix in one product, and each row's own completion keys in one product per row.
 */
export function blockGroup(
  x: tf.Tensor2D,
  bp: BlockP,
  kP: tf.Tensor4D,
  vP: tf.Tensor4D,
  G: number,
  Tc: number,
  H: number,
  bias: tf.Tensor,
): tf.Tensor2D {
  const w = x.shape[1], dh = w / H;
  const P = x.shape[0] / (G * Tc), S0 = kP.shape[2];
  const h = layerNorm(x, bp.ln1g, bp.ln1b) as tf.Tensor2D;
  // Rows (p, g, t) -> [P, H, G*Tc, dh]: each prompt's queries of all its samples, head by head.
  const heads = (t: tf.Tensor) => t.reshape([P, G * Tc, H, dh]).transpose([0, 2, 1, 3]) as tf.Tensor4D;
  const perRow = (t: tf.Tensor) => t.reshape([P * H * G, Tc, dh]);
  const [q0, k0, v0] = tf.split(linear(h, bp.qkvW, bp.qkvB), 3, 1);
  const q = heads(q0.mul(1 / Math.sqrt(dh)));
  const k = heads(k0), v = heads(v0);
  const sPre = bmmNT(q, kP);
  const sOwn = bmmNT(perRow(q), perRow(k)).reshape([P, H, G * Tc, Tc]);
  const p = tf.softmax(tf.concat([sPre, sOwn], 3).add(bias));
  const pPre = p.slice([0, 0, 0, 0], [P, H, G * Tc, S0]);
  const pOwn = p.slice([0, 0, 0, S0], [P, H, G * Tc, Tc]).reshape([P * H * G, Tc, Tc]);
  const att = bmm(pPre, vP)
    .add(bmm(pOwn, perRow(v)).reshape([P, H, G * Tc, dh]))
    .transpose([0, 2, 1, 3])
    .reshape([P * G * Tc, w]) as tf.Tensor2D;
  const x1 = x.add(linear(att, bp.outW, bp.outB)) as tf.Tensor2D;
  return x1.add(mlp(x1, bp)) as tf.Tensor2D;
}
