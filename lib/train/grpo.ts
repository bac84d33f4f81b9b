/**
 * GRPO trainer (Group Relative Policy Optimization, as in DeepSeekMath / TRL's GRPOTrainer).
 *
 * One step: draw P prompts (a pure function of the step index, so resume is exact), sample G completions
 * each with the shared-prefix KV-cache generator, score them with the verifiable reward functions, turn
 * rewards into group-relative advantages, then take `numIterations` optimiser steps on the clipped surrogate
 * (+ beta * k3 KL to a frozen reference when beta > 0). Every rollout is handed to `onRollouts` (the run's
 * rollouts.jsonl), every step's metrics to `onMetrics` (names follow TRL's).
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { Example, Tokenizer } from "../data/types.ts";
import type {
  GenerateOptions,
  GenerateResult,
  GroupLayout,
  ModelInput,
  TrainBatch,
  VLM,
} from "../model/types.ts";
import type { GrpoStageSpec } from "../spec/types.ts";
import type { MetricRecord, RolloutRecord } from "../run/records.ts";
import { collateCompletions, collatePrompts, disposeInput } from "../model/collate.ts";
import { combineRewards } from "../reward/rewards.ts";
import { computeAdvantages } from "./grpo_loss.ts";
import { chunkGradients, type ChunkTensors, maskRows, microBatches } from "./grpo_chunk.ts";
import { GRPO_DEFAULTS } from "../spec/defaults.ts";
import { AdamW, paramKey, unfrozen } from "./optim.ts";
import {
  type GradResult,
  type GrpoChunk,
  type GrpoChunkParams,
  type HostWeights,
  hostWeights,
} from "./replicas.ts";
import { packInput, packTensor, type ReplicaPool, shardRanges } from "./replicas.ts";
import { lrAt } from "./schedule.ts";
import { deriveSeed } from "../rng.ts";
import { type StageHooks, StageLoop } from "./loop.ts";

export interface GrpoOptions extends StageHooks {
  spec: GrpoStageSpec;
  /** The P training prompts of a step; must be a pure function of `step` for exact resume. */
  prompts(step: number): Example[];
  /**
   * The step's anchor prompts (`spec.anchor`; a pure function of `step`): sampled like the others, never
   * scored, in the loss only through `spec.anchor.beta` times their mean per-token KL to the reference.
   */
  anchorPrompts?(step: number): Example[];
  onRollouts(records: RolloutRecord[]): void | Promise<void>;
  /**
   * Data-parallel replicas (`stages.<name>.replicas` > 1): rollouts of each replica's share of the prompts
   * are sampled there, and the update's micro-batches are spread over the replicas.
   */
  replicas?: ReplicaPool;
  /**
   * Encode each prompt's images and prompt once for its G samples in the update's forward and backward
   * (VLM GroupLayout). Default true; false runs every row in full (benchmarks compare both).
   */
  sharePrefix?: boolean;
  /** Wall milliseconds of each part of every step (benchmarks; see {@link GrpoStepParts}). */
  onStepParts?(step: number, parts: GrpoStepParts): void;
}

/**
 * Where a step's wall time goes: `rollout` (collate prompts + generate), `rewards` (decode, reward functions,
 * advantages), `prepare` (collate completions + reference / old log-probs; with replicas the reference's
 * are computed in the update and counted in `forwardBackward`), `forwardBackward` (the loss's
 * forward and backward over every micro-batch, gradients summed), `optimizer` (clip + AdamW).
 */
export interface GrpoStepParts {
  rollout: number;
  rewards: number;
  prepare: number;
  forwardBackward: number;
  optimizer: number;
}

export interface GrpoResult {
  optimizer: AdamW;
  steps: number;
  resumedFrom: number | null;
  warnings: string[];
}

/** Per-row stats of a rollout batch, computed on the host. */
interface RolloutStats {
  texts: string[];
  rewards: Float32Array;
  /** Each reward function's value per row (the summands of `rewards` before their weights). */
  byFunction: Record<string, Float32Array>;
  lengths: number[];
  truncated: boolean[];
}

/** Run (or resume) a GRPO stage for `spec.steps` steps. */
export async function trainGrpo(o: GrpoOptions): Promise<GrpoResult> {
  const { spec, model, tokenizer } = o;
  // The frozen reference is the policy at the start of the stage (before any resume restores weights).
  const ref = spec.grpo.beta > 0 || spec.anchor ? model.cloneFrozen() : null;
  const vars = unfrozen(model.trainable(), spec.freeze, o.stageName);
  const optimizer = new AdamW(vars, spec.optim);
  const loop = await StageLoop.open({ ...o, optimizer, evalAtStart: true });
  const s: StepContext = { o, ref, vars, pool: o.replicas ?? null, share: o.sharePrefix ?? true };
  await sendReference(s);
  try {
    for (let step = loop.start; step < loop.end; step++) {
      await loop.evaluateIfDue(step);
      const clock = new StepClock();
      const examples = o.prompts(step);
      const anchors = o.anchorPrompts?.(step) ?? [];
      // 1. Rollouts: G samples per prompt, the image + prompt prefix encoded once per prompt.
      const gen = await sampleRollouts(s, examples, step);
      // Anchor prompts may be of another task layout (images per prompt): a generate call of their own.
      const anchorGen = anchors.length ? await sampleRollouts(s, anchors, step, "anchor") : null;
      clock.lap("rollout");
      // 2. Verifiable rewards on the host (pure functions of text + metadata), group-relative advantages.
      // Anchor completions are never scored.
      const st = scoreRollouts(examples, gen.completions, gen.truncated, tokenizer, spec);
      const adv = computeAdvantages(st.rewards, spec.grpo.groupSize, spec.grpo.scaleRewards);
      clock.lap("rewards");
      // 3. The update's chunks (micro-batches of whole groups) with reference / old log-probs; an anchor
      // prompt's groups form chunks of their own, with zero advantages.
      const chunks = prepareChunks(s, examples, gen, adv.advantages);
      if (anchorGen) {
        const zero = new Float32Array(anchorGen.completions.length);
        // A truncated anchor completion is still a sample of the policy: its tokens keep their KL.
        const anchorChunks = prepareChunks(s, anchors, anchorGen, zero, false);
        chunks.push(...anchorChunks.map((q) => ({ ...q, anchor: true })));
      }
      clock.lap("prepare");
      let update: PolicyUpdate;
      try {
        // 4. Policy update(s) on the clipped surrogate: chunk gradients summed, then one AdamW step.
        update = await updatePolicy(s, optimizer, chunks, step, clock);
      } finally {
        disposeChunks(chunks);
      }
      // 5. Records, then health checks and the checkpoint.
      const stepTime = clock.seconds();
      o.onStepParts?.(step, clock.parts);
      const metrics = stepMetrics(
        o.stageName,
        step,
        st,
        adv,
        update.lossStats,
        update.gradNorm,
        update.entropy,
        stepTime,
        clock.parts.rollout,
      );
      if (anchorGen) {
        const lengths = anchorGen.completions.map((c) => c.length);
        metrics["anchor/completions/mean_length"] = mean(lengths);
        metrics["anchor/kl"] = update.anchorKl;
      }
      await o.onMetrics?.(metrics);
      await o.onRollouts(
        rolloutRecords(o.stageName, step, examples, st, adv.advantages, spec.grpo.groupSize),
      );
      await loop.closeStep(metrics);
      o.progress?.(step + 1, spec.steps, {
        reward: metrics.reward as number,
        acc: metrics.accuracy as number,
      });
    }
    await loop.finish();
  } catch (e) {
    optimizer.dispose();
    throw e;
  } finally {
    ref?.dispose();
    if (ref && s.pool) await sendReference({ ...s, ref: null }).catch(() => {});
  }
  return { optimizer, steps: loop.end, resumedFrom: loop.resumedFrom, warnings: loop.warnings };
}

/**
 * Give every worker replica the frozen reference's weights (or, with `s.ref` null, make it forget them), so
 * that a chunk's reference log-probs are computed by the replica that computes its gradients.
 */
async function sendReference(s: StepContext): Promise<void> {
  if (!s.pool) return;
  const weights = s.ref ? hostWeights(s.ref) : null;
  await Promise.all(
    Array.from({ length: s.pool.size - 1 }, (_, i) => s.pool!.call(i + 1, { op: "reference", weights })),
  );
}

/** What every part of a step reads: the options, the frozen reference, the trained variables, replicas. */
interface StepContext {
  o: GrpoOptions;
  ref: VLM | null;
  vars: tf.Variable[];
  pool: ReplicaPool | null;
  /** Encode each prompt's prefix once for its G rows in the update (GrpoOptions.sharePrefix). */
  share: boolean;
}

/** Wall milliseconds of a step's parts: each `lap` charges the time since the previous one to a part. */
class StepClock {
  readonly parts: GrpoStepParts = { rollout: 0, rewards: 0, prepare: 0, forwardBackward: 0, optimizer: 0 };
  readonly #t0 = performance.now();
  #mark = this.#t0;

  lap(part: keyof GrpoStepParts): void {
    const now = performance.now();
    this.parts[part] += now - this.#mark;
    this.#mark = now;
  }

  /** Seconds since the step started. */
  seconds(): number {
    return (performance.now() - this.#t0) / 1000;
  }
}

/**
 * Sample G completions per prompt. With replicas, replica r samples the groups of the r-th contiguous share
 * of the prompts (its own seed key), and the results are concatenated in prompt order.
 */
async function sampleRollouts(
  s: StepContext,
  examples: Example[],
  step: number,
  key = "rollout",
): Promise<GenerateResult> {
  const { model, tokenizer, spec } = s.o;
  const g = spec.grpo;
  const opts = (seedKey: string): GenerateOptions => ({
    groupSize: g.groupSize,
    maxNewTokens: g.maxNewTokens,
    temperature: g.temperature,
    topP: g.topP,
    seed: deriveSeed(spec.seed, seedKey),
    stopIds: [tokenizer.special.answerClose],
  });
  if (!s.pool) {
    const input = collatePrompts(examples, tokenizer, model.config);
    try {
      return await model.generate(input, opts(`${key}/${step}`));
    } finally {
      disposeInput(input);
    }
  }
  const pool = s.pool;
  const weights = hostWeights(model);
  const shards = shardRanges(examples.length, pool.size).filter(([a, b]) => b > a);
  const inputs = shards.map(([a, b]) => collatePrompts(examples.slice(a, b), tokenizer, model.config));
  try {
    const remote = inputs.slice(1).map((inp, j) =>
      pool.generate(j + 1, weights, inp, opts(`${key}/${step}/${j + 1}`))
    );
    remote.forEach((p) => p.catch(() => {}));
    const local = await model.generate(inputs[0], opts(`${key}/${step}/0`));
    const all = [local, ...(await Promise.all(remote))];
    return { completions: all.flatMap((r) => r.completions), truncated: all.flatMap((r) => r.truncated) };
  } finally {
    inputs.forEach(disposeInput);
  }
}

/** One chunk of the update: its collated rows, masks, advantages, fixed log-probs and token counts. */
interface Chunk {
  /** An anchor prompt's groups (spec.anchor): zero advantages, the anchor's beta, its own normaliser. */
  anchor?: boolean;
  batch: TrainBatch;
  /** Every sampled completion token (truncated rows included): what the entropy is averaged over. */
  fullMask: tf.Tensor2D;
  advT: tf.Tensor1D;
  refLogp: tf.Tensor2D | null;
  oldLogp: tf.Tensor2D | null;
  groups: GroupLayout | null;
  rows: number;
  /** Loss tokens (lossMask sum) and sampled tokens (fullMask sum). */
  tokens: number;
  all: number;
}

/**
 * Cut the step's rows into chunks of whole groups (at most `microBatchRows` rows) and compute what the update
 * holds fixed: the reference's log-probs (beta > 0) and, with several iterations, the old policy's.
 * Log-probs are of the distribution the rollouts were sampled from (logits / temperature), as TRL does.
 * With replicas the reference's log-probs are left to the update: each replica computes those of the chunks
 * it takes, in parallel ({@link referenceLogProbs}). `maskTruncated` (default: the spec's) drops truncated
 * rows from the loss.
 */
function prepareChunks(
  s: StepContext,
  examples: Example[],
  gen: GenerateResult,
  advantages: Float32Array,
  maskTruncated = s.o.spec.grpo.maskTruncated,
): Chunk[] {
  const { model, tokenizer } = s.o;
  const g = s.o.spec.grpo;
  const G = g.groupSize;
  const T = g.temperature;
  return microBatches(examples.length, G, g.microBatchRows ?? GRPO_DEFAULTS.microBatchRows).map(
    ([p0, p1]) => {
      const rows = gen.completions.slice(p0 * G, p1 * G);
      const batch = collateCompletions(examples.slice(p0, p1), rows, tokenizer, model.config, G);
      const fullMask = batch.lossMask.clone();
      if (maskTruncated) maskRows(batch, gen.truncated.slice(p0 * G, p1 * G));
      const advT = tf.tensor1d(Array.from(advantages.slice(p0 * G, p1 * G)));
      const groups = s.share ? { size: G, promptLen: batch.promptLen } : null;
      const refLogp = s.pool ? null : referenceLogProbs(s, batch.input, groups);
      // With a single iteration the "old" policy is the current one: detached log-probs computed in the
      // same forward. With several, freeze them once before the first update.
      const oldLogp = g.numIterations > 1
        ? tf.tidy(() => model.tokenLogProbs(batch.input, false, T, groups ?? undefined))
        : null;
      const counts = tf.tidy(() => tf.stack([batch.lossMask.sum(), fullMask.sum()]).dataSync());
      return {
        batch,
        fullMask,
        advT,
        refLogp,
        oldLogp,
        groups,
        rows: rows.length,
        tokens: counts[0],
        all: counts[1],
      };
    },
  );
}

/** The frozen reference's log-probs of a chunk's completions (null when beta = 0). */
function referenceLogProbs(
  s: StepContext,
  input: ModelInput,
  groups: GroupLayout | null,
): tf.Tensor2D | null {
  const T = s.o.spec.grpo.temperature;
  return s.ref ? tf.tidy(() => s.ref!.tokenLogProbs(input, false, T, groups ?? undefined)) : null;
}

function disposeChunks(chunks: Chunk[]): void {
  for (const q of chunks) {
    q.batch.dispose();
    q.fullMask.dispose();
    q.advT.dispose();
    q.refLogp?.dispose();
    q.oldLogp?.dispose();
  }
}

interface PolicyUpdate {
  lossStats: Record<string, number>;
  gradNorm: number;
  entropy: number;
  /** Mean per-token KL to the reference over the anchor completions (0 without anchors). */
  anchorKl: number;
}

/**
 * `numIterations` optimiser steps. Each sums the chunks' gradients, every chunk's loss weighted by its share
 * of the loss's normaliser, so the update equals the full batch's. Chunks run in waves of R (replicas): the
 * first of a wave on this thread, the others on replicas 1..R-1, results added in chunk order exactly as on
 * one thread. Anchor chunks are normalised among themselves and weighted by the anchor's beta: their loss
 * is beta_anchor times the mean KL over their tokens (rows for grpo / dr_grpo), added to the GRPO loss.
 */
async function updatePolicy(
  s: StepContext,
  optimizer: AdamW,
  chunks: Chunk[],
  step: number,
  clock: StepClock,
): Promise<PolicyUpdate> {
  const { spec, model } = s.o;
  const g = spec.grpo;
  const scored = chunks.filter((q) => !q.anchor);
  const anchored = chunks.filter((q) => q.anchor);
  const N = scored.reduce((a, q) => a + q.rows, 0);
  const tokensAll = scored.reduce((a, q) => a + q.tokens, 0);
  const sampledAll = scored.reduce((a, q) => a + q.all, 0);
  const anchorRows = anchored.reduce((a, q) => a + q.rows, 0);
  const anchorTokens = anchored.reduce((a, q) => a + q.tokens, 0);
  const R = s.pool?.size ?? 1;
  const train = s.vars.map(paramKey);
  let out: PolicyUpdate = { lossStats: {}, gradNorm: 0, entropy: 0, anchorKl: 0 };
  let entropy = 0;
  for (let it = 0; it < g.numIterations; it++) {
    const lr = lrAt(spec.optim, step, spec.steps);
    let sum: tf.NamedTensorMap | null = null;
    let lossValue = 0;
    const statSums: Record<string, number> = {};
    let anchorKl = 0;
    // grpo and dr_grpo average over rows, dapo over unmasked tokens: a chunk's share of its kind's total.
    const share = (q: Chunk, tokens: number, rows: number) =>
      g.lossType === "dapo" ? (tokens > 0 ? q.tokens / tokens : 0) : q.rows / rows;
    const params = (q: Chunk): GrpoChunkParams => ({
      temperature: g.temperature,
      beta: q.anchor ? spec.anchor!.beta : g.beta,
      epsilonLow: g.epsilonLow,
      epsilonHigh: g.epsilonHigh,
      lossType: g.lossType,
      maxCompletionLength: g.maxNewTokens,
      weight: q.anchor ? share(q, anchorTokens, anchorRows) : share(q, tokensAll, N),
      entropyWeight: it === 0 && !q.anchor ? (sampledAll > 0 ? q.all / sampledAll : 0) : null,
      groups: q.groups,
    });
    const weights = s.pool ? hostWeights(model) : null;
    for (let w0 = 0; w0 < chunks.length; w0 += R) {
      const wave = chunks.slice(w0, w0 + R);
      const remote = wave.slice(1).map((q, j) =>
        s.pool!.call<GradResult>(j + 1, {
          op: "grpo",
          weights: weights!,
          train,
          chunk: packChunk(q),
          params: params(q),
          reference: s.ref !== null && q.refLogp === null,
        })
      );
      remote.forEach((p) => p.catch(() => {}));
      // This thread's chunk of the wave: its reference log-probs once, while the replicas compute theirs.
      wave[0].refLogp ??= referenceLogProbs(s, wave[0].batch.input, wave[0].groups);
      const results = [chunkGradients(model, s.vars, chunkTensors(wave[0]), params(wave[0]))];
      for (const r of await Promise.all(remote)) {
        results.push({ value: r.value, stats: r.scalars, grads: gradTensors(r.grads, s.vars) });
      }
      for (let j = 0; j < results.length; j++) {
        const r = results[j], q = wave[j];
        lossValue += r.value;
        const { entropy: e, ...stats } = r.stats;
        if (e !== undefined) entropy += e;
        // Stats are masked means over completion tokens: weight each chunk by its tokens.
        if (q.anchor) {
          anchorKl += (stats.kl ?? 0) * (anchorTokens > 0 ? q.tokens / anchorTokens : 0);
        } else {
          const sw = tokensAll > 0 ? q.tokens / tokensAll : 0;
          for (const [k, v] of Object.entries(stats)) statSums[k] = (statSums[k] ?? 0) + v * sw;
        }
        sum = sum === null ? r.grads : addInto(sum, r.grads);
      }
    }
    clock.lap("forwardBackward");
    const gradNorm = optimizer.applyGradients(sum!, lr, spec.optim.gradClip, step);
    clock.lap("optimizer");
    for (const k in sum!) sum![k].dispose();
    out = { lossStats: { loss: lossValue, ...statSums }, gradNorm, entropy, anchorKl };
  }
  return out;
}

/** `acc[k] += add[k]` for every gradient, disposing the replaced and the added tensors. */
function addInto(acc: tf.NamedTensorMap, add: tf.NamedTensorMap): tf.NamedTensorMap {
  for (const k in add) {
    const t = acc[k];
    acc[k] = t.add(add[k]);
    t.dispose();
    add[k].dispose();
  }
  return acc;
}

function scoreRollouts(
  examples: Example[],
  completions: number[][],
  truncated: boolean[],
  tok: Tokenizer,
  spec: GrpoStageSpec,
): RolloutStats {
  const N = completions.length;
  const G = spec.grpo.groupSize;
  const texts: string[] = [];
  const rewards = new Float32Array(N);
  const byFunction: Record<string, Float32Array> = {};
  const lengths: number[] = [];
  for (let i = 0; i < N; i++) {
    const text = tok.decode(completions[i]);
    texts.push(text);
    lengths.push(completions[i].length);
    const r = combineRewards(text, examples[Math.floor(i / G)], spec.grpo.rewards, {
      tauKm: spec.grpo.geodesicTauKm,
      truncated: truncated[i],
      tokens: completions[i].length,
      length: spec.grpo.length,
      repetition: spec.grpo.repetition,
    });
    rewards[i] = r.total;
    for (const [k, v] of Object.entries(r.parts)) (byFunction[k] ??= new Float32Array(N))[i] = v;
  }
  return { texts, rewards, byFunction, lengths, truncated };
}

function chunkTensors(q: Chunk): ChunkTensors {
  return {
    input: q.batch.input,
    lossMask: q.batch.lossMask,
    fullMask: q.fullMask,
    advantages: q.advT,
    refLogp: q.refLogp,
    oldLogp: q.oldLogp,
  };
}

function packChunk(q: Chunk): GrpoChunk {
  return {
    input: packInput(q.batch.input),
    lossMask: packTensor(q.batch.lossMask),
    fullMask: packTensor(q.fullMask),
    advantages: q.advT.dataSync() as Float32Array,
    refLogp: q.refLogp ? packTensor(q.refLogp) : null,
    oldLogp: q.oldLogp ? packTensor(q.oldLogp) : null,
  };
}

/** Replica gradients (host arrays by checkpoint name) as a variableGrads map keyed by variable name. */
function gradTensors(grads: HostWeights, vars: tf.Variable[]): tf.NamedTensorMap {
  const byKey = new Map(vars.map((v) => [paramKey(v), v]));
  const out: tf.NamedTensorMap = {};
  for (const [k, a] of grads) {
    const v = byKey.get(k);
    if (!v) throw new Error(`GRPO replica: gradient of unknown parameter ${k}`);
    out[v.name] = tf.tensor(a, v.shape, "float32");
  }
  return out;
}

function mean(xs: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += xs[i];
  return xs.length ? s / xs.length : 0;
}

function std(xs: ArrayLike<number>): number {
  const m = mean(xs);
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += (xs[i] - m) ** 2;
  return xs.length > 1 ? Math.sqrt(s / (xs.length - 1)) : 0;
}

function stepMetrics(
  stage: string,
  step: number,
  st: RolloutStats,
  adv: { fracZeroStd: number },
  loss: Record<string, number>,
  gradNorm: number,
  entropy: number,
  stepTime: number,
  genMs: number,
): MetricRecord {
  const m: MetricRecord = { stage, kind: "grpo", step, time: Date.now() };
  m.reward = mean(st.rewards);
  m.reward_std = std(st.rewards);
  for (const [k, v] of Object.entries(st.byFunction)) {
    m[`rewards/${k}/mean`] = mean(v);
    m[`rewards/${k}/std`] = std(v);
  }
  m.accuracy = st.byFunction.accuracy ? mean(st.byFunction.accuracy) : 0;
  m["completions/mean_length"] = mean(st.lengths);
  m["completions/min_length"] = Math.min(...st.lengths);
  m["completions/max_length"] = Math.max(...st.lengths);
  m["completions/clipped_ratio"] = mean(st.truncated.map((t) => (t ? 1 : 0)));
  m.frac_reward_zero_std = adv.fracZeroStd;
  for (const [k, v] of Object.entries(loss)) m[k] = v;
  m.entropy = entropy;
  m.grad_norm = gradNorm;
  m.step_time = stepTime;
  m.generate_time = genMs / 1000;
  const tokens = st.lengths.reduce((a, b) => a + b, 0);
  m.tokens_per_s = tokens / (genMs / 1000);
  return m;
}

function rolloutRecords(
  stage: string,
  step: number,
  examples: Example[],
  st: RolloutStats,
  advantages: ArrayLike<number>,
  G: number,
): RolloutRecord[] {
  const out: RolloutRecord[] = [];
  for (let i = 0; i < st.texts.length; i++) {
    const rewards: Record<string, number> = {};
    for (const [k, v] of Object.entries(st.byFunction)) rewards[k] = v[i];
    const ex = examples[Math.floor(i / G)];
    out.push({
      stage,
      step,
      promptId: ex.id,
      prompt: ex.prompt,
      answer: ex.answer,
      ...(ex.pairing ? { tiers: ex.pairing.tiers } : {}),
      group: Math.floor(i / G),
      sample: i % G,
      completion: st.texts[i],
      tokens: st.lengths[i],
      truncated: st.truncated[i],
      rewards,
      reward: st.rewards[i],
      advantage: advantages[i],
    });
  }
  return out;
}
