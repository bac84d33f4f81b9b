/**
 * GRPO math as pure functions, following TRL's GRPOTrainer (`_generate_and_score_completions`,
 * `_compute_loss`): group-relative advantages and the clipped surrogate with an optional k3 KL penalty.
 *
 * Notation: N = P * G completions (G consecutive rows per prompt), T completion positions, r_i the scalar
 * reward of row i, m_it in {0, 1} the completion mask (0 after EOS, on padding, and on whole truncated rows
 * when mask_truncated), A_i the advantage, l_it / o_it / f_it the per-token log-probs of the sampled token
 * under the current policy, the old (rollout) policy and the frozen reference.
 *
 * Advantages (computeAdvantages):
 *   mu_g = mean of r over the group of i;  s_g = sample std of the group (Bessel, divide by G - 1, like
 *   torch.std's default unbiased=True);  s_b = sample std of all N rewards.
 *   A_i = r_i - mu_g                      scale "none"  (Dr. GRPO)
 *   A_i = (r_i - mu_g) / (s_g + 1e-4)     scale "group" (GRPO, TRL default)
 *   A_i = (r_i - mu_g) / (s_b + 1e-4)     scale "batch" (local mean, global std, as TRL)
 *   The centre is always the group mean. G = 1 gives s_g = 0 (torch would give NaN) and A = 0.
 *
 * Loss (grpoLoss):
 *   rho_it = exp(l_it - o_it)
 *   L_it   = -min(rho_it A_i, clip(rho_it, 1 - eps_low, 1 + eps_high) A_i) + beta * k3_it   (beta term only if beta > 0)
 *   k3_it  = exp(f_it - l_it) - (f_it - l_it) - 1   (Schulman's unbiased, non-negative KL(pi || ref) estimator)
 *   "grpo":    loss = (1/N) sum_i [ sum_t m_it L_it / max(1, sum_t m_it) ]          (per-sequence mean)
 *   "dr_grpo": loss = sum_it m_it L_it / (N * maxCompletionLength)                   (constant normaliser)
 *   "dapo":    loss = sum_it m_it L_it / max(1, sum_it m_it)                         (token-level mean)
 *   Rows whose mask is all zero (truncated under mask_truncated) add 0 but still count in N for grpo and
 *   dr_grpo, as in TRL. With numIterations = 1 the old log-probs are the current ones with the gradient
 *   stopped (pass `stopGradient(logp)`): rho = 1 in value, d rho / d l = 1.
 *
 * Logged stats (TRL names, masked means over all completion tokens of the batch):
 *   kl                     mean of k3 (only when a reference is given)
 *   clip_ratio/low_mean    fraction of tokens with rho < 1 - eps_low and A < 0
 *   clip_ratio/high_mean   fraction of tokens with rho > 1 + eps_high and A > 0
 *   clip_ratio/region_mean fraction with either
 * @module
 */
import * as tf from "@tensorflow/tfjs";

/** How rewards are scaled into advantages (TRL `scale_rewards`). */
export type ScaleRewards = "group" | "batch" | "none";
/** Loss aggregation (TRL `loss_type`). */
export type LossType = "grpo" | "dr_grpo" | "dapo";

/** Epsilon added to the std before dividing (TRL). */
export const ADV_EPS = 1e-4;

/** Output of {@link computeAdvantages}. */
export interface Advantages {
  /** A_i, length N. */
  advantages: Float32Array;
  /** Group means mu_g, length N / G. */
  groupMean: Float32Array;
  /** Group sample stds s_g (Bessel-corrected), length N / G. */
  groupStd: Float32Array;
  /** Sample std of all rewards (s_b). */
  batchStd: number;
  /**
   * Fraction of groups whose rewards are all equal (s_g ~ 0: no learning signal). TRL's
   * `frac_reward_zero_std`; computed from the group std under every scaling (TRL uses the batch std when
   * scale_rewards = "batch", which makes the health signal meaningless there).
   */
  fracZeroStd: number;
}

/** Group-relative advantages (see the module doc for the formulas). Computed in float64. */
export function computeAdvantages(
  rewards: ArrayLike<number>,
  groupSize: number,
  scale: ScaleRewards,
): Advantages {
  const N = rewards.length;
  const G = groupSize;
  if (!Number.isInteger(G) || G < 1) {
    throw new RangeError(`computeAdvantages: groupSize must be >= 1, got ${G}`);
  }
  if (N % G !== 0) {
    throw new RangeError(`computeAdvantages: ${N} rewards are not a whole number of groups of ${G}`);
  }
  const P = N / G;
  if (scale !== "none" && scale !== "group" && scale !== "batch") {
    throw new RangeError(`computeAdvantages: unknown scale ${JSON.stringify(scale)}`);
  }
  const groupMean = new Float32Array(P);
  const groupStd = new Float32Array(P);
  const mu = new Float64Array(P);
  const sg = new Float64Array(P);
  let zero = 0;
  for (let g = 0; g < P; g++) {
    let s = 0;
    for (let j = 0; j < G; j++) s += rewards[g * G + j];
    const m = s / G;
    let v = 0;
    for (let j = 0; j < G; j++) v += (rewards[g * G + j] - m) ** 2;
    const sd = G > 1 ? Math.sqrt(v / (G - 1)) : 0;
    mu[g] = m;
    sg[g] = sd;
    groupMean[g] = m;
    groupStd[g] = sd;
    if (Math.abs(sd) <= 1e-8) zero++; // torch.isclose(std, 0): atol 1e-8
  }
  let bm = 0;
  for (let i = 0; i < N; i++) bm += rewards[i];
  bm = N ? bm / N : 0;
  let bv = 0;
  for (let i = 0; i < N; i++) bv += (rewards[i] - bm) ** 2;
  const batchStd = N > 1 ? Math.sqrt(bv / (N - 1)) : 0;
  const advantages = new Float32Array(N);
  for (let i = 0; i < N; i++) {
    const g = Math.floor(i / G);
    const a = rewards[i] - mu[g];
    advantages[i] = scale === "none"
      ? a
      : scale === "group"
      ? a / (sg[g] + ADV_EPS)
      : a / (batchStd + ADV_EPS);
  }
  return { advantages, groupMean, groupStd, batchStd, fracZeroStd: P ? zero / P : 0 };
}

/** Inputs of {@link grpoLoss}. Tensors [N, T] are float32; `advantages` is [N]. */
export interface GrpoLossInputs {
  /** Current-policy log-probs of the sampled tokens (the tensor gradients flow through). */
  logp: tf.Tensor2D;
  /** Old-policy log-probs (constant; `stopGradient(logp)` when numIterations = 1). */
  oldLogp: tf.Tensor2D;
  /** Frozen reference log-probs, or null (required when beta > 0). */
  refLogp: tf.Tensor2D | null;
  /** Completion mask (1 = token counts). */
  mask: tf.Tensor2D;
  advantages: tf.Tensor1D;
  beta: number;
  epsilonLow: number;
  epsilonHigh: number;
  lossType: LossType;
  /** The dr_grpo normaliser's length (the generation budget, maxNewTokens). */
  maxCompletionLength: number;
  /** Compute the logged stats (one small synchronous readback); default true. */
  stats?: boolean;
}

/** Logged stats of one loss evaluation, keyed by TRL metric names. */
export type GrpoLossStats = Record<string, number>;

/**
 * The GRPO loss (see the module doc). Safe inside `tf.variableGrads`/`tf.grad`: intermediates are tidied;
 * only the returned scalar survives. Masked positions are zeroed in the inputs before any arithmetic, so
 * non-finite log-probs there (padding) affect neither the loss nor its gradient.
 * `stats` are plain numbers (read synchronously once); pass `stats: false` to skip the readback.
 */
export function grpoLoss(inp: GrpoLossInputs): { loss: tf.Scalar; stats: GrpoLossStats } {
  const { beta, epsilonLow, epsilonHigh, lossType, maxCompletionLength } = inp;
  const [N, T] = inp.logp.shape;
  checkShape("oldLogp", inp.oldLogp, [N, T]);
  checkShape("mask", inp.mask, [N, T]);
  checkShape("advantages", inp.advantages, [N]);
  if (inp.refLogp) checkShape("refLogp", inp.refLogp, [N, T]);
  if (beta > 0 && !inp.refLogp) throw new Error("grpoLoss: beta > 0 needs refLogp");
  if (lossType === "dr_grpo" && !(maxCompletionLength > 0)) {
    throw new RangeError(`grpoLoss: dr_grpo needs maxCompletionLength > 0, got ${maxCompletionLength}`);
  }
  const loss = tf.tidy(() => {
    const { mask, on, A, ratio, kl } = terms(inp);
    const unclipped = ratio.mul(A);
    const clipped = ratio.clipByValue(1 - epsilonLow, 1 + epsilonHigh).mul(A);
    let perTok: tf.Tensor2D = tf.neg(tf.minimum(unclipped, clipped));
    if (beta > 0 && kl) perTok = perTok.add(kl.mul(beta));
    const masked = tf.where(on, perTok, tf.zerosLike(perTok));
    switch (lossType) {
      case "grpo":
        return masked.sum(1).div(mask.sum(1).maximum(1)).mean() as tf.Scalar;
      case "dr_grpo":
        return masked.sum().div(N * maxCompletionLength) as tf.Scalar;
      case "dapo":
        return masked.sum().div(mask.sum().maximum(1)) as tf.Scalar;
      default:
        throw new RangeError(`grpoLoss: unknown lossType ${JSON.stringify(lossType)}`);
    }
  });
  const stats = inp.stats === false ? {} : grpoStats(inp);
  return { loss, stats };
}

/** The logged stats alone (masked means over the batch's completion tokens); see the module doc. */
export function grpoStats(inp: Omit<GrpoLossInputs, "stats">): GrpoLossStats {
  const v = tf.tidy(() => {
    const { mask, A, ratio, kl } = terms(inp);
    const denom = mask.sum().maximum(1);
    const low = ratio.less(1 - inp.epsilonLow).logicalAnd(A.less(0)).cast("float32");
    const high = ratio.greater(1 + inp.epsilonHigh).logicalAnd(A.greater(0)).cast("float32");
    const region = low.add(high).minimum(1);
    const mm = (x: tf.Tensor) => x.mul(mask).sum().div(denom);
    const out = [mm(low), mm(high), mm(region)];
    if (kl) out.push(mm(kl));
    return tf.stack(out);
  });
  const d = v.dataSync();
  v.dispose();
  const s: GrpoLossStats = {
    "clip_ratio/low_mean": d[0],
    "clip_ratio/high_mean": d[1],
    "clip_ratio/region_mean": d[2],
  };
  if (d.length > 3) s.kl = d[3];
  return s;
}

/** Shared elementwise terms, masked positions replaced by zeros (call inside a tidy). */
function terms(inp: Omit<GrpoLossInputs, "stats">) {
  const [N] = inp.logp.shape;
  const mask = inp.mask.dtype === "float32" ? inp.mask : inp.mask.cast("float32");
  const on = mask.greater(0);
  const zeros = tf.zerosLike(inp.logp);
  const sel = (x: tf.Tensor2D) => tf.where(on, x, zeros);
  const logp = sel(inp.logp);
  const ratio = tf.exp(logp.sub(sel(inp.oldLogp)));
  const A = inp.advantages.reshape([N, 1]);
  let kl: tf.Tensor2D | null = null;
  if (inp.refLogp) {
    const q = sel(inp.refLogp).sub(logp);
    kl = tf.exp(q).sub(q).sub(1);
  }
  return { mask, on, A, ratio, kl };
}

function checkShape(name: string, t: tf.Tensor, shape: number[]) {
  if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
    throw new Error(`grpoLoss: ${name} has shape [${t.shape}], expected [${shape}]`);
  }
}

/** Identity with a zero gradient (torch's `.detach()`); lives in lib/model/grad.ts, re-exported here. */
export { stopGradient } from "../model/grad.ts";
