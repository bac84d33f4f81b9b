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
  ModelConfig,
  ModelInput,
  TrainBatch,
  VLM,
} from "../model/types.ts";
import type { GrpoStageSpec } from "../spec/types.ts";
import type { MetricRecord, RolloutRecord } from "../run/records.ts";
import { collateCompletions, collatePrompts, disposeInput } from "../model/collate.ts";
import { combineRewards } from "../reward/rewards.ts";
import { computeAdvantages, grpoLoss, stopGradient } from "./grpo_loss.ts";
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
import { HealthMonitor } from "./health.ts";
import { RotatingCheckpoints } from "./checkpoints.ts";

export interface GrpoOptions {
  stageName: string;
  spec: GrpoStageSpec;
  model: VLM;
  tokenizer: Tokenizer;
  /** The P training prompts of a step; must be a pure function of `step` for exact resume. */
  prompts(step: number): Example[];
  onMetrics(record: MetricRecord): void | Promise<void>;
  onRollouts(records: RolloutRecord[]): void | Promise<void>;
  /**
   * Called before a step's records are written when resuming at `startStep`: the caller drops records of
   * steps >= startStep (written after the last checkpoint by the interrupted run).
   */
  onResume?(startStep: number): void | Promise<void>;
  /** Checkpoints every `spec.checkpointEvery` steps and at the end; resume from the latest. */
  checkpointDir?: string;
  /** Resume from the latest checkpoint in checkpointDir when present. Default true. */
  resume?: boolean;
  /** Stop after this many steps in total, as if interrupted (no extra checkpoint); for tests. */
  stopAfter?: number;
  progress?(stepsDone: number, total: number, info: Record<string, number>): void;
  /**
   * Evaluation during the stage: called with the number of updates done before step 0, before every step
   * that is a multiple of `spec.evalEvery`, and after the last step (when `spec.evalEvery` > 0). The numbers
   * returned are logged as an eval record (`kind: "eval"`, `step` = updates done, names such as
   * `eval/val_pairing/accuracy`). Keyed by updates done, a resumed stage evaluates its resume point again
   * (same weights, so the same record) after its dropped records are cleared.
   */
  evaluate?(
    updatesDone: number,
    model: VLM,
  ): Promise<Record<string, number> | void> | Record<string, number> | void;
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
 * advantages), `prepare` (collate completions + reference / old log-probs), `forwardBackward` (the loss's
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
  parts: Record<string, Float32Array>;
  lengths: number[];
  truncated: boolean[];
}

/** Run (or resume) a GRPO stage for `spec.steps` steps. */
export async function trainGrpo(o: GrpoOptions): Promise<GrpoResult> {
  const { spec, model, tokenizer } = o;
  const g = spec.grpo;
  const G = g.groupSize;
  const cfg: ModelConfig = model.config;
  // The frozen reference is the policy at the start of the stage (before any resume restores weights).
  const ref = g.beta > 0 ? model.cloneFrozen() : null;
  const vars = unfrozen(model.trainable(), spec.freeze, o.stageName);
  const optimizer = new AdamW(vars, spec.optim);
  const ckpts = o.checkpointDir ? new RotatingCheckpoints(o.checkpointDir) : null;
  let start = 0;
  let resumedFrom: number | null = null;
  if (ckpts && (o.resume ?? true)) {
    const step = await ckpts.restore(model, optimizer);
    if (step !== null) start = resumedFrom = step;
  }
  await o.onResume?.(start);
  const end = Math.min(spec.steps, o.stopAfter ?? spec.steps);
  const health = new HealthMonitor();
  const stopIds = [tokenizer.special.answerClose];
  const pool = o.replicas ?? null;
  const share = o.sharePrefix ?? true;
  const evalAt = async (updatesDone: number) => {
    if (!o.evaluate || !(spec.evalEvery > 0)) return;
    const res = await o.evaluate(updatesDone, model);
    if (res) {
      await o.onMetrics({ stage: o.stageName, kind: "eval", step: updatesDone, time: Date.now(), ...res });
    }
  };
  try {
    for (let step = start; step < end; step++) {
      if (step % spec.evalEvery === 0) await evalAt(step);
      const t0 = performance.now();
      const examples = o.prompts(step);
      // 1. Rollouts: image+prompt prefix encoded once per prompt, shared by its G samples.
      //    With replicas, replica s samples the groups of the s-th contiguous share of the prompts.
      const genOpts = (seedKey: string): GenerateOptions => ({
        groupSize: G,
        maxNewTokens: g.maxNewTokens,
        temperature: g.temperature,
        topP: g.topP,
        seed: deriveSeed(spec.seed, seedKey),
        stopIds,
      });
      let gen: GenerateResult;
      if (pool) {
        const weights = hostWeights(model);
        const shards = shardRanges(examples.length, pool.size).filter(([a, b]) => b > a);
        const inputs = shards.map(([a, b]) => collatePrompts(examples.slice(a, b), tokenizer, cfg));
        try {
          const remote = inputs.slice(1).map((inp, j) =>
            pool.generate(j + 1, weights, inp, genOpts(`rollout/${step}/${j + 1}`))
          );
          remote.forEach((p) => p.catch(() => {}));
          const local = await model.generate(inputs[0], genOpts(`rollout/${step}/0`));
          const all = [local, ...(await Promise.all(remote))];
          gen = {
            completions: all.flatMap((r) => r.completions),
            truncated: all.flatMap((r) => r.truncated),
          };
        } finally {
          inputs.forEach(disposeInput);
        }
      } else {
        const promptInput = collatePrompts(examples, tokenizer, cfg);
        try {
          gen = await model.generate(promptInput, genOpts(`rollout/${step}`));
        } finally {
          disposeInput(promptInput);
        }
      }
      const tGen = performance.now() - t0;
      const timing: GrpoStepParts = {
        rollout: tGen,
        rewards: 0,
        prepare: 0,
        forwardBackward: 0,
        optimizer: 0,
      };
      let mark = performance.now();
      const lap = (part: keyof GrpoStepParts) => {
        const now = performance.now();
        timing[part] += now - mark;
        mark = now;
      };
      // 2. Verifiable rewards on the host (pure functions of text + metadata).
      const st = scoreRollouts(examples, gen.completions, gen.truncated, tokenizer, spec);
      const adv = computeAdvantages(st.rewards, G, g.scaleRewards);
      lap("rewards");
      // 3. Policy update(s) on the clipped surrogate, in micro-batches of whole groups whose gradients are
      //    summed, each weighted by its share of the loss's normaliser, so the update equals the full batch's.
      const chunks = microBatches(examples.length, G, g.microBatchRows ?? MICRO_BATCH_ROWS);
      const parts = chunks.map(([p0, p1]) => {
        const rows = gen.completions.slice(p0 * G, p1 * G);
        const batch = collateCompletions(examples.slice(p0, p1), rows, tokenizer, cfg, G);
        // Entropy is averaged over every sampled completion token (truncated rows included).
        const fullMask = batch.lossMask.clone();
        if (g.maskTruncated) maskRows(batch, gen.truncated.slice(p0 * G, p1 * G));
        const advT = tf.tensor1d(Array.from(adv.advantages.slice(p0 * G, p1 * G)));
        // Log-probs of the distribution the rollouts were sampled from (logits / temperature), as TRL does.
        const T = g.temperature;
        const groups = share ? { size: G, promptLen: batch.promptLen } : null;
        const refLogp = ref
          ? tf.tidy(() => ref.tokenLogProbs(batch.input, false, T, groups ?? undefined))
          : null;
        // With a single iteration the "old" policy is the current one: detached log-probs computed in the
        // same forward. With several, freeze them once before the first update.
        const oldLogp = g.numIterations > 1
          ? tf.tidy(() => model.tokenLogProbs(batch.input, false, T, groups ?? undefined))
          : null;
        const counts = tf.tidy(() => tf.stack([batch.lossMask.sum(), fullMask.sum()]).dataSync());
        return {
          batch,
          groups,
          fullMask,
          advT,
          refLogp,
          oldLogp,
          rows: rows.length,
          tokens: counts[0],
          all: counts[1],
        };
      });
      const N = gen.completions.length;
      lap("prepare");
      const tokensAll = parts.reduce((a, q) => a + q.tokens, 0);
      const sampledAll = parts.reduce((a, q) => a + q.all, 0);
      let lossStats: Record<string, number> = {};
      let gradNorm = 0;
      let entropy = 0;
      try {
        const R = pool?.size ?? 1;
        const train = vars.map(paramKey);
        for (let it = 0; it < g.numIterations; it++) {
          const lr = lrAt(spec.optim, step, spec.steps);
          let sum: tf.NamedTensorMap | null = null;
          let lossValue = 0;
          const statSums: Record<string, number> = {};
          const params = (q: (typeof parts)[number]): GrpoChunkParams => ({
            temperature: g.temperature,
            beta: g.beta,
            epsilonLow: g.epsilonLow,
            epsilonHigh: g.epsilonHigh,
            lossType: g.lossType,
            maxCompletionLength: g.maxNewTokens,
            // grpo and dr_grpo average over rows, dapo over unmasked tokens: the chunk's share of that.
            weight: g.lossType === "dapo" ? (tokensAll > 0 ? q.tokens / tokensAll : 0) : q.rows / N,
            entropyWeight: it === 0 ? (sampledAll > 0 ? q.all / sampledAll : 0) : null,
            groups: q.groups,
          });
          const weights = pool ? hostWeights(model) : null;
          // Micro-batches in waves of R: the first of a wave here, the others on replicas 1..R-1; results
          // are accumulated in chunk order, exactly as in one thread.
          for (let w0 = 0; w0 < parts.length; w0 += R) {
            const wave = parts.slice(w0, w0 + R);
            const remote = wave.slice(1).map((q, j) =>
              pool!.call<GradResult>(j + 1, {
                op: "grpo",
                weights: weights!,
                train,
                chunk: packChunk(q),
                params: params(q),
              })
            );
            remote.forEach((p) => p.catch(() => {}));
            const q0 = wave[0];
            let stats0: Record<string, number> = {};
            let ent0: number | null = null;
            const local = tf.variableGrads(() => {
              const r = chunkLoss(model, chunkTensors(q0), params(q0));
              stats0 = r.stats;
              ent0 = r.entropy;
              return r.loss;
            }, vars);
            const value0 = (await local.value.data())[0];
            local.value.dispose();
            const results: { value: number; stats: Record<string, number>; grads: tf.NamedTensorMap }[] = [
              {
                value: value0,
                stats: ent0 === null ? stats0 : { ...stats0, entropy: ent0 },
                grads: local.grads,
              },
            ];
            for (const r of await Promise.all(remote)) {
              results.push({ value: r.value, stats: r.scalars, grads: gradTensors(r.grads, vars) });
            }
            for (let j = 0; j < results.length; j++) {
              const r = results[j], q = wave[j];
              lossValue += r.value;
              const { entropy: e, ...stats } = r.stats;
              if (e !== undefined) entropy += e;
              // Stats are masked means over completion tokens: weight each chunk by its tokens.
              const sw = tokensAll > 0 ? q.tokens / tokensAll : 0;
              for (const [k, v] of Object.entries(stats)) statSums[k] = (statSums[k] ?? 0) + v * sw;
              if (sum === null) sum = r.grads;
              else {
                const acc: tf.NamedTensorMap = sum;
                for (const k in r.grads) {
                  const t = acc[k];
                  acc[k] = t.add(r.grads[k]);
                  t.dispose();
                  r.grads[k].dispose();
                }
              }
            }
          }
          lap("forwardBackward");
          gradNorm = optimizer.applyGradients(sum!, lr, spec.optim.gradClip, step);
          lap("optimizer");
          lossStats = { loss: lossValue, ...statSums };
          for (const k in sum!) sum![k].dispose();
        }
      } finally {
        for (const q of parts) {
          q.batch.dispose();
          q.fullMask.dispose();
          q.advT.dispose();
          q.refLogp?.dispose();
          q.oldLogp?.dispose();
        }
      }
      const stepTime = (performance.now() - t0) / 1000;
      o.onStepParts?.(step, timing);
      const metrics = stepMetrics(o.stageName, step, st, adv, lossStats, gradNorm, entropy, stepTime, tGen);
      await o.onMetrics(metrics);
      await o.onRollouts(rolloutRecords(o.stageName, step, examples, st, adv.advantages, G));
      health.check(metrics);
      const done = step + 1;
      if ((spec.checkpointEvery > 0 && done % spec.checkpointEvery === 0) || done === spec.steps) {
        await ckpts?.save(done, model, optimizer, tokenizer.toJSON(), { stage: o.stageName, kind: "grpo" });
      }
      o.progress?.(done, spec.steps, { reward: metrics.reward as number, acc: metrics.accuracy as number });
    }
    if (end === spec.steps) await evalAt(end);
  } catch (e) {
    optimizer.dispose();
    throw e;
  } finally {
    ref?.dispose();
  }
  return { optimizer, steps: end, resumedFrom, warnings: health.warnings };
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
  const parts: Record<string, Float32Array> = {};
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
    for (const [k, v] of Object.entries(r.parts)) (parts[k] ??= new Float32Array(N))[i] = v;
  }
  return { texts, rewards, parts, lengths, truncated };
}

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

interface Part {
  batch: TrainBatch;
  fullMask: tf.Tensor2D;
  advT: tf.Tensor1D;
  refLogp: tf.Tensor2D | null;
  oldLogp: tf.Tensor2D | null;
}

function chunkTensors(q: Part): ChunkTensors {
  return {
    input: q.batch.input,
    lossMask: q.batch.lossMask,
    fullMask: q.fullMask,
    advantages: q.advT,
    refLogp: q.refLogp,
    oldLogp: q.oldLogp,
  };
}

function packChunk(q: Part): GrpoChunk {
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

/**
 * Rows per policy-update forward when the spec sets none: the small model's full batch of 64 rows x ~220
 * tokens (80 image tokens + prompt + 112 new) outgrew the wasm heap (tfjs-backend-wasm aborts), so updates
 * run in micro-batches of whole groups.
 */
export const MICRO_BATCH_ROWS = 32;

/** Prompt ranges [p0, p1) of micro-batches of whole groups with at most `rows` rows each (at least 1 group). */
export function microBatches(prompts: number, G: number, rows: number): [number, number][] {
  const per = Math.max(1, Math.floor(rows / G));
  const out: [number, number][] = [];
  for (let p = 0; p < prompts; p += per) out.push([p, Math.min(prompts, p + per)]);
  return out;
}

/** Zero the loss mask of truncated rows (`mask_truncated`). */
function maskRows(batch: TrainBatch, truncated: boolean[]): void {
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
  for (const [k, v] of Object.entries(st.parts)) {
    m[`rewards/${k}/mean`] = mean(v);
    m[`rewards/${k}/std`] = std(v);
  }
  m.accuracy = st.parts.accuracy ? mean(st.parts.accuracy) : 0;
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
    for (const [k, v] of Object.entries(st.parts)) rewards[k] = v[i];
    out.push({
      stage,
      step,
      promptId: examples[Math.floor(i / G)].id,
      prompt: examples[Math.floor(i / G)].prompt,
      answer: examples[Math.floor(i / G)].answer,
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
