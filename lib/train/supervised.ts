/**
 * Supervised trainer for the `pretrain` (base) and `sft` stages: masked cross-entropy on completion tokens
 * (mean over the batch's completion tokens), AdamW with warmup + cosine and global-norm clipping. Resume,
 * periodic evaluation, health checks and checkpoints are the stage loop's (./loop.ts), shared with GRPO.
 *
 * Exact resume: the model has no dropout and batches come from `nextBatch(step)`, which must be a pure
 * function of the step index; a checkpoint holds weights + AdamW moments + step. On wasm/cpu a resumed run
 * therefore ends with bitwise-identical weights and identical loss/lr/grad_norm metrics.
 *
 * Checkpoint directory layout: `<dir>/step-00000100/{model.safetensors, optim.safetensors, model.json}` and
 * `<dir>/latest.json` ({"step", "dir"}), written after the checkpoint itself; the newest two are kept.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { Example, Tokenizer } from "../data/types.ts";
import type { TrainBatch, VLM } from "../model/types.ts";
import type { SupervisedStageSpec } from "../spec/types.ts";
import type { MetricRecord } from "../run/records.ts";
import { collateTrain } from "../model/collate.ts";
import { slotSegmentsFor } from "../model/config.ts";
import { CUE_GROUP_OFFSETS, CUE_GROUPS, CUE_ROAD_OUTPUTS, cueBatchTargets } from "../data/cue_labels.ts";
import type { CueBatchTargets } from "../data/cue_labels.ts";
import { UserError } from "../errors.ts";
import { type StageHooks, StageLoop } from "./loop.ts";
import { AdamW, paramKey, unfrozen } from "./optim.ts";
import { lrAt } from "./schedule.ts";
import { SUPERVISED_DEFAULTS } from "../spec/defaults.ts";
import {
  addHostGrads,
  type GradResult,
  hostWeights,
  packInput,
  packTensor,
  type ReplicaPool,
  shardRanges,
  type SupervisedNorm,
} from "./replicas.ts";

export interface SupervisedOptions extends StageHooks {
  spec: SupervisedStageSpec;
  /** Examples of step `step`: one task per batch; must be a pure function of `step` for exact resume. */
  nextBatch(step: number): Example[];
  /**
   * Data-parallel replicas (`stages.<name>.replicas` > 1): each step's batch is split into `size` shards,
   * shard 0 computed here and shard i on replica i. Absent: the whole batch in this thread.
   */
  replicas?: ReplicaPool;
}

export interface SupervisedResult {
  optimizer: AdamW;
  /** Steps done in total (including resumed ones). */
  steps: number;
  /** Step the run resumed from, or null. */
  resumedFrom: number | null;
}

/** What one supervised update reports. */
interface SupervisedStep {
  /** Token cross-entropy (without the cue loss, so comparable across runs with and without it). */
  loss: number;
  gradNorm: number;
  /** Tokens of the batch, and those of them in the loss. */
  tokens: number;
  completionTokens: number;
  /** The cue loss, when the stage trains the cue heads. */
  cueLoss?: number;
}

/**
 * Scale the loss mask of the answer block's tokens (those after `<answer>`, through `</answer>`) by `w`, in
 * place (`stages.<name>.answerWeight`). The loss is the mask-weighted mean, so with w > 1 a pairing exemplar's
 * one answer letter weighs as much as w of its reasoning tokens. Why: the letter is one token in about 120,
 * and with weight 1 a short SFT stage learns the verdicts before it learns to copy the match into the answer
 * (RESULTS.md, fifth build).
 */
export function weightAnswerTokens(batch: TrainBatch, tok: Tokenizer, w: number): void {
  scaleBlockTokens(batch, tok.special.answerOpen, tok.special.answerClose, w);
}

/**
 * Scale by `w`, in place, the loss mask of the tokens after an `open` id through the next `close` id (both
 * included in the scan, so `close` itself is scaled) that `select` accepts; `select` gets the row's flat ids
 * and the flat index of the token. The one scan behind answerWeight and verdictWeight.
 */
function scaleBlockTokens(
  batch: TrainBatch,
  open: number,
  close: number,
  w: number,
  select: (ids: Int32Array, i: number) => boolean = () => true,
): void {
  const [B, T] = batch.input.ids.shape;
  const ids = batch.input.ids.dataSync() as Int32Array;
  const mask = Float32Array.from(batch.lossMask.dataSync());
  for (let b = 0; b < B; b++) {
    let inside = false;
    for (let t = 0; t < T; t++) {
      const id = ids[b * T + t];
      if (inside && select(ids, b * T + t)) mask[b * T + t] *= w;
      if (id === open) inside = true;
      else if (id === close) inside = false;
    }
  }
  batch.lossMask.dispose();
  batch.lossMask = tf.tensor2d(mask, [B, T]);
}

/** The words a pairing verdict line gives a candidate ("A no, B alike, C fits"). */
export const VERDICT_WORDS = [" fits", " no", " alike"] as const;

/**
 * Scale the loss mask of the verdict tokens by `w`, in place (`stages.<name>.verdictWeight`): inside the
 * think block, a verdict word (VERDICT_WORDS, one token each) right after a candidate letter (the letter ids of
 * `letters`, e.g. "... D: ..." is not one, "A no, B fits" has two). Why: the greedy pairing answer follows the
 * verdicts almost always, so accuracy is the verdict accuracy, and each verdict is one token in about 120,
 * like the answer letter (see `weightAnswerTokens`; RESULTS.md, seventh build).
 */
export function weightVerdictTokens(batch: TrainBatch, tok: Tokenizer, letters: number[], w: number): void {
  const verdict = new Set(VERDICT_WORDS.map((s) => {
    const ids = tok.encode(s);
    if (ids.length !== 1) throw new Error(`verdict word ${JSON.stringify(s)} is ${ids.length} tokens`);
    return ids[0];
  }));
  const letter = new Set(letters);
  // Inside a think block a token is never a row's first (the block's opening id precedes it).
  scaleBlockTokens(
    batch,
    tok.special.thinkOpen,
    tok.special.thinkClose,
    w,
    (ids, i) => verdict.has(ids[i]) && letter.has(ids[i - 1]),
  );
}

/** Collate a supervised batch and apply the stage's token weights (answerWeight, verdictWeight). */
export function collateWeighted(
  examples: Example[],
  tok: Tokenizer,
  cfg: VLM["config"],
  spec: SupervisedStageSpec,
): TrainBatch {
  const b = collateTrain(examples, tok, cfg);
  const {
    answerWeight = SUPERVISED_DEFAULTS.answerWeight,
    verdictWeight = SUPERVISED_DEFAULTS.verdictWeight,
  } = spec;
  if (answerWeight !== 1) weightAnswerTokens(b, tok, answerWeight);
  if (verdictWeight !== 1) {
    weightVerdictTokens(b, tok, slotSegmentsFor(tok, cfg.maxCandidates).tokens.flat(), verdictWeight);
  }
  return b;
}

/** Mean negative log-likelihood of the tokens `mask` selects, from per-token log-probs. */
function maskedNll(logp: tf.Tensor2D, mask: tf.Tensor2D): tf.Scalar {
  return logp.mul(mask).sum().neg().div(mask.sum().maximum(1)) as tf.Scalar;
}

/** Mean negative log-likelihood of the masked (completion) tokens: a scalar tensor. */
export function maskedCrossEntropy(model: VLM, batch: TrainBatch): tf.Scalar {
  return tf.tidy(() => maskedNll(model.tokenLogProbs(batch.input, true), batch.lossMask));
}

/**
 * Mean auxiliary cue loss of one view type: per view, the four road-axis binary cross-entropies and the
 * softmax cross-entropy of each categorical group (lib/data/cue_labels.ts), averaged over those questions;
 * then the weighted sum over views. Returns [sum of weighted per-view losses, sum of weights] so that ground
 * and aerial views pool into one mean.
 */
function cueLossSum(
  logits: tf.Tensor2D,
  t: { roads: Float32Array; classes: Int32Array; weight: Float32Array },
): [tf.Scalar, tf.Scalar] {
  const n = t.weight.length, G = CUE_GROUPS.length;
  const roadT = tf.tensor2d(t.roads, [n, CUE_ROAD_OUTPUTS]);
  const z = logits.slice([0, 0], [n, CUE_ROAD_OUTPUTS]);
  // Stable BCE with logits: max(z, 0) - z * y + log(1 + exp(-|z|)).
  let perView = z.relu().sub(z.mul(roadT)).add(z.abs().neg().exp().log1p()).sum(1);
  const cls = Array.from(t.classes);
  CUE_GROUPS.forEach((g, j) => {
    const lp = tf.logSoftmax(logits.slice([0, CUE_GROUP_OFFSETS[j]], [n, g.classes.length]));
    const oh = tf.oneHot(tf.tensor1d(cls.filter((_, i) => i % G === j), "int32"), g.classes.length);
    perView = perView.sub(lp.mul(oh).sum(1));
  });
  const w = tf.tensor1d(t.weight);
  return [perView.div(CUE_ROAD_OUTPUTS + G).mul(w).sum(), w.sum()];
}

/** Mean cue loss over the weighted views of one view type (the per-view loss of `cueLossSum`). */
export function cueLoss(
  logits: tf.Tensor2D,
  t: { roads: Float32Array; classes: Int32Array; weight: Float32Array },
): tf.Scalar {
  return tf.tidy(() => {
    const [num, den] = cueLossSum(logits, t);
    return num.div(den.maximum(1e-12)) as tf.Scalar;
  });
}

/**
 * Token cross-entropy plus `weight` times the mean cue loss of every view in the batch (ground and aerial
 * together), from one forward pass. Returns all three scalars; `total` is what the optimiser minimises.
 */
export function crossEntropyWithCues(
  model: VLM,
  batch: TrainBatch,
  targets: CueBatchTargets,
  weight: number,
): { total: tf.Scalar; ce: tf.Scalar; cue: tf.Scalar } {
  if (!model.tokenLogProbsAndCues || !model.config.cueHead) {
    throw new UserError("cueLoss: the model has no cue heads (set model.cueHead: true and retrain the base)");
  }
  const f = model.tokenLogProbsAndCues.bind(model);
  const [ce, cue] = tf.tidy(() => {
    const r = f(batch.input);
    const ce = maskedNll(r.logp, batch.lossMask);
    const parts: [tf.Scalar, tf.Scalar][] = [];
    if (r.ground && targets.ground) parts.push(cueLossSum(r.ground, targets.ground));
    if (r.aerial && targets.aerial) parts.push(cueLossSum(r.aerial, targets.aerial));
    if (parts.length === 0) return [ce, tf.scalar(0)];
    const num = tf.addN(parts.map((p) => p[0])), den = tf.addN(parts.map((p) => p[1])).maximum(1);
    return [ce, num.div(den) as tf.Scalar];
  });
  return { total: tf.tidy(() => ce.add(cue.mul(weight)) as tf.Scalar), ce, cue };
}

/**
 * The loss of one shard of a batch split over replicas (lib/train/replicas.ts): the same terms as
 * {@link crossEntropyWithCues} (or the plain masked cross-entropy when `cueWeight` is 0), but divided by the
 * FULL batch's loss-mask sum and cue-view weight sum (`norm`), so that the shards' losses, and gradients, add
 * up to the full batch's. Returns the three scalars (ce and cue are this shard's shares).
 */
export function shardLoss(
  model: VLM,
  batch: Pick<TrainBatch, "input" | "lossMask">,
  targets: CueBatchTargets | null,
  cueWeight: number,
  norm: SupervisedNorm,
): { total: tf.Scalar; ce: tf.Scalar; cue: tf.Scalar } {
  return tf.tidy(() => {
    const nll = (logp: tf.Tensor2D) => logp.mul(batch.lossMask).sum().neg().div(Math.max(1, norm.tokens));
    if (cueWeight <= 0 || !targets) {
      const ce = nll(model.tokenLogProbs(batch.input, true)) as tf.Scalar;
      return { total: ce, ce: ce.clone(), cue: tf.scalar(0) };
    }
    if (!model.tokenLogProbsAndCues) throw new Error("shardLoss: the model has no cue heads");
    const r = model.tokenLogProbsAndCues(batch.input);
    const ce = nll(r.logp) as tf.Scalar;
    const parts: tf.Scalar[] = [];
    if (r.ground && targets.ground) parts.push(cueLossSum(r.ground, targets.ground)[0]);
    if (r.aerial && targets.aerial) parts.push(cueLossSum(r.aerial, targets.aerial)[0]);
    const cue = (parts.length ? tf.addN(parts).div(Math.max(1, norm.views)) : tf.scalar(0)) as tf.Scalar;
    return { total: ce.add(cue.mul(cueWeight)) as tf.Scalar, ce, cue };
  });
}

/** Sum of the cue-view weights of a batch's targets (the cue loss's denominator). */
function cueViews(t: CueBatchTargets | null): number {
  let n = 0;
  for (const v of [t?.ground, t?.aerial]) if (v) { for (const w of v.weight) n += w; }
  return n;
}

/** Host sum of a tensor. */
function hostSum(t: tf.Tensor): number {
  const s = t.sum();
  const v = s.dataSync()[0];
  s.dispose();
  return v;
}

/**
 * One sharded step's value and gradients: shard 0 here, shard i on replica i, gradients summed in shard
 * order. Each shard is collated on its own (padded to its own longest row).
 */
async function shardedGrads(
  pool: ReplicaPool,
  model: VLM,
  vars: tf.Variable[],
  examples: Example[],
  tokenizer: Tokenizer,
  spec: SupervisedStageSpec,
  cueWeight: number,
): Promise<{ grads: tf.NamedTensorMap; ce: number; cue: number; tokens: number; completionTokens: number }> {
  const shards = shardRanges(examples.length, pool.size).map(([a, b]) => examples.slice(a, b));
  const batches = shards.map((ex) => collateWeighted(ex, tokenizer, model.config, spec));
  try {
    const targets = shards.map((ex) => (cueWeight > 0 ? cueBatchTargets(ex) : null));
    const norm: SupervisedNorm = {
      tokens: batches.reduce((a, b) => a + hostSum(b.lossMask), 0),
      views: targets.reduce((a, t) => a + cueViews(t), 0),
    };
    const weights = hostWeights(model);
    const train = vars.map(paramKey);
    const remote = batches.slice(1).map((b, j) =>
      pool.call<GradResult>(j + 1, {
        op: "supervised",
        weights,
        train,
        input: packInput(b.input),
        lossMask: packTensor(b.lossMask),
        cue: targets[j + 1],
        cueWeight,
        norm,
      })
    );
    // A failed local shard must not leave the remote promises unhandled.
    remote.forEach((p) => p.catch(() => {}));
    let ce = 0, cue = 0;
    const { value, grads } = tf.variableGrads(() => {
      const r = shardLoss(model, batches[0], targets[0], cueWeight, norm);
      ce = r.ce.dataSync()[0];
      cue = r.cue.dataSync()[0];
      return r.total;
    }, vars);
    value.dispose();
    const results = await Promise.all(remote);
    addHostGrads(grads, vars, results.map((r) => r.grads));
    for (const r of results) {
      ce += r.scalars.ce;
      cue += r.scalars.cue;
    }
    let tokens = 0, completionTokens = 0;
    for (const b of batches) {
      tokens += hostSum(b.input.attn);
      completionTokens += tf.tidy(() => b.lossMask.greater(0).sum().dataSync()[0]);
    }
    return { grads, ce, cue, tokens, completionTokens };
  } finally {
    for (const b of batches) b.dispose();
  }
}

/** Run (or resume) a supervised stage. */
export async function trainSupervised(o: SupervisedOptions): Promise<SupervisedResult> {
  const { spec, model } = o;
  const vars = unfrozen(model.trainable(), spec.freeze, o.stageName);
  const optimizer = new AdamW(vars, spec.optim);
  const cueWeight = spec.cueLoss ?? SUPERVISED_DEFAULTS.cueLoss;
  if (cueWeight > 0 && !model.config.cueHead) {
    throw new UserError(
      `stages.${o.stageName}.cueLoss: the model has no cue heads (set model.cueHead: true and retrain the base)`,
    );
  }
  if (o.replicas && o.replicas.size > spec.batchSize) {
    throw new UserError(
      `stages.${o.stageName}.replicas: ${o.replicas.size} replicas need batches of at least as many ` +
        `examples (batchSize ${spec.batchSize})`,
    );
  }
  const loop = await StageLoop.open({ ...o, optimizer, evalAtStart: false });
  try {
    for (let step = loop.start; step < loop.end; step++) {
      await loop.evaluateIfDue(step);
      const t0 = performance.now();
      const examples = o.nextBatch(step);
      const lr = lrAt(spec.optim, step, spec.steps);
      const u: UpdateInput = { o, vars, optimizer, examples, lr, step, cueWeight };
      const r = o.replicas ? await replicaStep(u, o.replicas) : localStep(u);
      const stepTime = (performance.now() - t0) / 1000;
      const metrics: MetricRecord = {
        stage: o.stageName,
        kind: spec.kind,
        step,
        time: Date.now(),
        loss: r.loss,
        lr,
        grad_norm: r.gradNorm,
        step_time: stepTime,
        tokens_per_s: r.tokens / stepTime,
        completion_tokens: r.completionTokens,
        ...(r.cueLoss !== undefined ? { cue_loss: r.cueLoss } : {}),
      };
      await o.onMetrics?.(metrics);
      await loop.closeStep(metrics);
      o.progress?.(step + 1, spec.steps, { loss: r.loss, lr });
    }
    await loop.finish();
  } catch (e) {
    optimizer.dispose();
    throw e;
  }
  return { optimizer, steps: loop.end, resumedFrom: loop.resumedFrom };
}

/** What one supervised update needs: the stage, its trained variables and optimizer, and the step's batch. */
interface UpdateInput {
  o: SupervisedOptions;
  vars: tf.Variable[];
  optimizer: AdamW;
  examples: Example[];
  lr: number;
  step: number;
  cueWeight: number;
}

/** One update on the whole batch in this thread. */
function localStep({ o, vars, optimizer, examples, lr, step, cueWeight }: UpdateInput): SupervisedStep {
  const { spec, model } = o;
  const batch = collateWeighted(examples, o.tokenizer, model.config, spec);
  try {
    let aux: tf.Scalar[] = [];
    const lossFn = cueWeight > 0
      ? () => {
        const r = crossEntropyWithCues(model, batch, cueBatchTargets(examples), cueWeight);
        aux = [tf.keep(r.ce), tf.keep(r.cue)];
        return r.total;
      }
      : () => maskedCrossEntropy(model, batch);
    const { value, grads } = tf.variableGrads(lossFn, vars);
    let out: SupervisedStep;
    try {
      const gradNorm = optimizer.applyGradients(grads, lr, spec.optim.gradClip, step);
      const loss = aux.length ? aux[0].dataSync()[0] : value.dataSync()[0];
      const cueLoss = aux.length ? aux[1].dataSync()[0] : undefined;
      out = { loss, gradNorm, tokens: 0, completionTokens: 0, ...(cueLoss !== undefined ? { cueLoss } : {}) };
    } finally {
      value.dispose();
      for (const t of aux) t.dispose();
      for (const k in grads) grads[k].dispose();
    }
    const counts = tf.tidy(() =>
      tf.stack([batch.input.attn.sum(), batch.lossMask.greater(0).toFloat().sum()])
    );
    [out.tokens, out.completionTokens] = Array.from(counts.dataSync());
    counts.dispose();
    return out;
  } finally {
    batch.dispose();
  }
}

/** One update on the batch split over the replicas: their gradients summed, then one AdamW step here. */
async function replicaStep(
  { o, vars, optimizer, examples, lr, step, cueWeight }: UpdateInput,
  pool: ReplicaPool,
): Promise<SupervisedStep> {
  const { spec, model } = o;
  const r = await shardedGrads(pool, model, vars, examples, o.tokenizer, spec, cueWeight);
  let gradNorm: number;
  try {
    gradNorm = optimizer.applyGradients(r.grads, lr, spec.optim.gradClip, step);
  } finally {
    for (const k in r.grads) r.grads[k].dispose();
  }
  return {
    loss: r.ce,
    gradNorm,
    tokens: r.tokens,
    completionTokens: r.completionTokens,
    ...(cueWeight > 0 ? { cueLoss: r.cue } : {}),
  };
}
