/**
 * Benchmark helpers shared by the `deno bench` suites (bench/*_bench.ts), the JSON summary (bench/run.ts)
 * and the smoke test (tests/bench_test.ts).
 *
 * Everything runs the real code paths: the experiment spec (experiments/geo-r1.json with the model preset
 * swapped), the procedural world and task sampler (pairing examples: 1 ground panorama + K aerial tiles and
 * the real prompt), the tokenizer, `createModel`, `VLM.generate`, the supervised step of lib/train and
 * `trainGrpo`. Rollouts are timed with no stop id, so every row generates exactly `newTokens` tokens and
 * tokens/s is rows x newTokens / wall time (the image + prompt prefill included).
 *
 * Timings are wall-clock medians over `reps` calls after one untimed warm-up call.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { type BackendInfo, initBackend } from "../lib/backend.ts";
import { createWorld } from "../lib/world/mod.ts";
import { createTaskSampler, type TaskSampler } from "../lib/data/tasks.ts";
import { createTokenizer } from "../lib/data/tokenizer.ts";
import type { Example, Tokenizer } from "../lib/data/types.ts";
import { flopsPerToken, imagePrefixLen, modelConfigForSpec } from "../lib/model/config.ts";
import { createModel } from "../lib/model/vlm.ts";
import { collatePrompts, collateTrain, disposeInput, taskLayout } from "../lib/model/collate.ts";
import type { ModelConfig, ModelInput, Preset, VLM } from "../lib/model/types.ts";
import { loadSpec } from "../lib/spec/mod.ts";
import type {
  BackendName,
  ExperimentSpec,
  GrpoStageSpec,
  OptimSpec,
  SupervisedStageSpec,
} from "../lib/spec/types.ts";
import { maskedCrossEntropy } from "../lib/train/supervised.ts";
import { type GrpoStepParts, trainGrpo } from "../lib/train/grpo.ts";
import { AdamW } from "../lib/train/optim.ts";
import type { ReplicaPool } from "../lib/train/replicas.ts";
import { median } from "./roofline.ts";

/** What a benchmark needs: backend, resolved spec, model config, tokenizer, examples and a model. */
export interface BenchContext {
  backend: BackendInfo;
  preset: Preset;
  spec: ExperimentSpec;
  cfg: ModelConfig;
  tokenizer: Tokenizer;
  sampler: TaskSampler;
  model: VLM;
  /** Image tokens + prompt tokens of a pairing prompt (the prefix every sample attends to). */
  prefixLen: number;
  /** `n` training pairing examples (cached; rendered once). */
  examples(n: number): Example[];
  /**
   * The context's one AdamW over the model's variables (tfjs names its moment variables after the model's,
   * so two optimisers on one model collide). Created on first use with `optim`; disposed with the context.
   */
  optimizer(optim: OptimSpec): AdamW;
  /** Dispose that optimiser (trainGrpo makes its own, which would collide with it). */
  releaseOptimizer(): void;
  dispose(): void;
}

export interface SetupOptions {
  /** tfjs backend (default `auto`: WebGPU when a real adapter exists, else wasm). */
  backend?: BackendName;
  /** Model preset (default `small`). */
  preset?: Preset;
  /** Experiment spec the stage settings (SFT batch, GRPO P x G, maxNewTokens) come from. */
  specPath?: string;
}

let backendInfo: BackendInfo | null = null;

/** Initialise the backend (once per process), the spec, world, sampler, tokenizer and a fresh model. */
export async function setupBench(o: SetupOptions = {}): Promise<BenchContext> {
  const preset = o.preset ?? "small";
  const want = o.backend ?? "auto";
  if (!backendInfo || (want !== "auto" && backendInfo.name !== want)) backendInfo = await initBackend(want);
  const specPath = o.specPath ?? new URL("../experiments/geo-r1.json", import.meta.url).pathname;
  const { spec } = await loadSpec(specPath, { sets: [`model.preset=${preset}`] });
  const world = await createWorld({ seed: spec.world.seed, tileHalfExtent: spec.world.tileHalfExtent });
  const sampler = createTaskSampler(world, spec.data, spec.world);
  const tokenizer = createTokenizer();
  const cfg = modelConfigForSpec(spec, tokenizer);
  const model = createModel(cfg);
  const cache: Example[] = [];
  const examples = (n: number) => {
    if (cache.length < n) cache.push(...sampler.examples("pairing", "train", cache.length, n - cache.length));
    return cache.slice(0, n);
  };
  const first = examples(1);
  const layout = taskLayout(first);
  const promptLen = 1 + tokenizer.encode(first[0].prompt).length;
  let adamw: AdamW | null = null;
  return {
    backend: backendInfo,
    preset,
    spec,
    cfg,
    tokenizer,
    sampler,
    model,
    prefixLen: imagePrefixLen(cfg, layout.hasGround, layout.nAerial) + promptLen,
    examples,
    optimizer: (optim) => (adamw ??= new AdamW(model.trainable(), optim)),
    releaseOptimizer: () => {
      adamw?.dispose();
      adamw = null;
    },
    dispose: () => {
      adamw?.dispose();
      model.dispose();
    },
  };
}

/** One rollout configuration: `rows` = prompts x groupSize sequences, each `newTokens` long. */
export interface RolloutCase {
  rows: number;
  /** Samples per prompt sharing one encoded prefix (default 1). rows must be a multiple. */
  groupSize?: number;
  newTokens: number;
  /** KV cache (default) or full recompute every step. */
  useCache?: boolean;
  /**
   * false: the G samples of a prompt are passed as G separate (identical) prompts with groupSize 1, so the
   * prefix is encoded G times. Default true.
   */
  sharedPrefix?: boolean;
  readbackEvery?: number;
  reps?: number;
}

export interface RolloutResult {
  rows: number;
  groupSize: number;
  newTokens: number;
  useCache: boolean;
  sharedPrefix: boolean;
  /** Median wall seconds of one generate() call. */
  seconds: number;
  /** rows x newTokens / seconds. */
  tokensPerSec: number;
  /** Decoder FLOPs per generated token at the mean context length (prefix + (newTokens + 1) / 2). */
  flopsPerToken: number;
  /** Tensors alive after the timed calls minus before (0: no leak). */
  leakedTensors: number;
}

/** The model's FLOPs per generated token at the mean context length of a rollout of `newTokens`. */
export function rolloutFlopsPerToken(ctx: BenchContext, newTokens: number): number {
  return flopsPerToken(ctx.cfg, ctx.prefixLen + (newTokens + 1) / 2);
}

/** Time `model.generate` on one case (real pairing prompts, no stop id: every row runs newTokens steps). */
export async function measureRollout(ctx: BenchContext, c: RolloutCase): Promise<RolloutResult> {
  const G = c.groupSize ?? 1;
  const shared = c.sharedPrefix ?? true;
  if (c.rows % G !== 0) throw new Error(`rows ${c.rows} is not a multiple of groupSize ${G}`);
  const P = c.rows / G;
  const base = ctx.examples(P);
  const exs = shared ? base : base.flatMap((e) => Array.from({ length: G }, () => e));
  const prompt = collatePrompts(exs, ctx.tokenizer, ctx.cfg);
  const opts = {
    groupSize: shared ? G : 1,
    maxNewTokens: c.newTokens,
    temperature: 1,
    topP: 1,
    seed: 1234,
    stopIds: [] as number[],
    useCache: c.useCache ?? true,
    readbackEvery: c.readbackEvery,
  };
  try {
    const reps = Math.max(1, c.reps ?? 3);
    const once = async () => {
      const t0 = performance.now();
      const r = await ctx.model.generate(prompt, opts);
      const dt = (performance.now() - t0) / 1000;
      if (r.completions.length !== c.rows || r.completions[0].length !== c.newTokens) {
        throw new Error(`generate returned ${r.completions.length} x ${r.completions[0]?.length}`);
      }
      return dt;
    };
    await once();
    const before = tf.memory().numTensors;
    const ts: number[] = [];
    for (let i = 0; i < reps; i++) ts.push(await once());
    const leaked = tf.memory().numTensors - before;
    const seconds = median(ts);
    return {
      rows: c.rows,
      groupSize: G,
      newTokens: c.newTokens,
      useCache: opts.useCache,
      sharedPrefix: shared,
      seconds,
      tokensPerSec: (c.rows * c.newTokens) / seconds,
      flopsPerToken: rolloutFlopsPerToken(ctx, c.newTokens),
      leakedTensors: leaked,
    };
  } finally {
    disposeInput(prompt);
  }
}

/** A supervised (SFT) step on fixed examples: `step()` runs one and returns its wall seconds. */
export interface SftStepper {
  batchSize: number;
  /** Text positions per step (rows x padded length). */
  tokens: number;
  step(): number;
  dispose(): void;
}

/**
 * One supervised step as lib/train/supervised.ts runs it: collate, masked cross-entropy forward + backward,
 * AdamW with clipping, loss readback. Batch size: the spec's sft stage (or `batchSize`).
 */
export function sftStepper(ctx: BenchContext, batchSize?: number): SftStepper {
  const st = Object.values(ctx.spec.stages).find((s) => s.kind === "sft") as SupervisedStageSpec | undefined;
  const B = batchSize ?? st?.batchSize ?? 32;
  const optim = st?.optim ??
    { lr: 1e-4, weightDecay: 0.01, beta1: 0.9, beta2: 0.99, warmupSteps: 0, minLrRatio: 1, gradClip: 1 };
  const exs = ctx.examples(B);
  const self: SftStepper = {
    batchSize: B,
    tokens: 0,
    step() {
      const t0 = performance.now();
      const batch = collateTrain(exs, ctx.tokenizer, ctx.cfg);
      try {
        self.tokens = batch.input.ids.shape[0] * batch.input.ids.shape[1];
        const { value, grads } = tf.variableGrads(
          () => maskedCrossEntropy(ctx.model, batch),
          ctx.model.trainable(),
        );
        // A tiny learning rate: the bench model should stay near its initialisation across repetitions.
        ctx.optimizer(optim).applyGradients(grads, optim.lr * 1e-3, optim.gradClip);
        value.dataSync();
        value.dispose();
        for (const k in grads) grads[k].dispose();
      } finally {
        batch.dispose();
      }
      return (performance.now() - t0) / 1000;
    },
    dispose: () => {},
  };
  return self;
}

/** Median wall seconds of one supervised step (after one untimed step). */
export function measureSftStep(
  ctx: BenchContext,
  o: { batchSize?: number; reps?: number } = {},
): { batchSize: number; seconds: number; tokens: number; leakedTensors: number } {
  const s = sftStepper(ctx, o.batchSize);
  try {
    s.step();
    const before = tf.memory().numTensors;
    const ts: number[] = [];
    for (let i = 0; i < Math.max(1, o.reps ?? 3); i++) ts.push(s.step());
    return {
      batchSize: s.batchSize,
      seconds: median(ts),
      tokens: s.tokens,
      leakedTensors: tf.memory().numTensors - before,
    };
  } finally {
    s.dispose();
  }
}

export interface GrpoStepResult {
  prompts: number;
  groupSize: number;
  maxNewTokens: number;
  /** Median step_time (rollouts + rewards + update) and generate_time, seconds, as trainGrpo logs them. */
  seconds: number;
  generateSeconds: number;
  leakedTensors: number;
}

/** GRPO steps through `trainGrpo`: `step()` runs the next one and returns the times it logged. */
export interface GrpoStepper {
  prompts: number;
  groupSize: number;
  maxNewTokens: number;
  /** One step: its step_time and generate_time (seconds), completion tokens and wall ms by part. */
  step(): Promise<{ seconds: number; generateSeconds: number; tokens: number; parts: GrpoStepParts | null }>;
  dispose(): void;
}

/**
 * `trainGrpo` one step at a time with the spec's GRPO stage (P x G, maxNewTokens, overridable). An
 * untrained model rarely emits the stop id, so rollouts run to maxNewTokens: the worst case of a step.
 * `maskTruncated` is turned off so the update does real work.
 */
export function grpoStepper(
  ctx: BenchContext,
  o: {
    prompts?: number;
    groupSize?: number;
    maxNewTokens?: number;
    beta?: number;
    sharePrefix?: boolean;
    /** Data-parallel replicas for rollouts and micro-batches, as `stages.grpo.replicas` > 1 gives a run. */
    replicas?: ReplicaPool;
  } = {},
): GrpoStepper {
  const st = Object.values(ctx.spec.stages).find((s) => s.kind === "grpo") as GrpoStageSpec | undefined;
  if (!st) throw new Error("the bench spec has no grpo stage");
  const spec: GrpoStageSpec = structuredClone(st);
  spec.grpo.promptsPerStep = o.prompts ?? spec.grpo.promptsPerStep;
  spec.grpo.groupSize = o.groupSize ?? spec.grpo.groupSize;
  spec.grpo.maxNewTokens = o.maxNewTokens ?? spec.grpo.maxNewTokens;
  spec.grpo.maskTruncated = false;
  spec.grpo.beta = o.beta ?? spec.grpo.beta;
  const P = spec.grpo.promptsPerStep;
  spec.steps = 1;
  let next = 0;
  return {
    prompts: P,
    groupSize: spec.grpo.groupSize,
    maxNewTokens: spec.grpo.maxNewTokens,
    async step() {
      const k = next++;
      let out = { seconds: NaN, generateSeconds: NaN, tokens: NaN };
      let parts: GrpoStepParts | null = null;
      // One-step runs (fresh prompts each time); trainGrpo creates its own AdamW over the model.
      ctx.releaseOptimizer();
      const res = await trainGrpo({
        stageName: "bench-grpo",
        spec,
        model: ctx.model,
        tokenizer: ctx.tokenizer,
        prompts: () => ctx.examples(P * (k + 1)).slice(P * k),
        onMetrics: (m) => {
          if (m.kind === "grpo") {
            out = {
              seconds: Number(m.step_time),
              generateSeconds: Number(m.generate_time),
              tokens: Number(m["completions/mean_length"]) * P * spec.grpo.groupSize,
            };
          }
        },
        onRollouts: () => {},
        onStepParts: (_s, p) => void (parts = p),
        sharePrefix: o.sharePrefix,
        replicas: o.replicas,
      });
      res.optimizer.dispose();
      return { ...out, parts };
    },
    dispose: () => {},
  };
}

/** Median times of `reps` GRPO steps after one untimed step. */
export async function measureGrpoStep(
  ctx: BenchContext,
  o: { prompts?: number; groupSize?: number; maxNewTokens?: number; reps?: number } = {},
): Promise<GrpoStepResult> {
  const g = grpoStepper(ctx, o);
  try {
    await g.step();
    const before = tf.memory().numTensors;
    const times: number[] = [], gens: number[] = [];
    for (let i = 0; i < Math.max(1, o.reps ?? 2); i++) {
      const r = await g.step();
      times.push(r.seconds);
      gens.push(r.generateSeconds);
    }
    return {
      prompts: g.prompts,
      groupSize: g.groupSize,
      maxNewTokens: g.maxNewTokens,
      seconds: median(times),
      generateSeconds: median(gens),
      leakedTensors: tf.memory().numTensors - before,
    };
  } finally {
    g.dispose();
  }
}

/** Per-kernel cost of one KV-cached decoding step, from tf.profile of two generate() calls (1 and 1+n steps). */
export interface StepProfile {
  rows: number;
  /** Kernels launched per decoding step (Reshape and other views included). */
  kernelsPerStep: number;
  /** Sum of profiled kernel times per step, ms. */
  kernelMsPerStep: number;
  /** By kernel name, sorted by time: launches and ms per step. */
  byKernel: { name: string; perStep: number; msPerStep: number }[];
}

async function kernelTable(ctx: BenchContext, prompt: ModelInput, G: number, steps: number) {
  const agg = new Map<string, { n: number; ms: number }>();
  const info = await tf.profile(async () => {
    await ctx.model.generate(prompt, {
      groupSize: G,
      maxNewTokens: steps,
      temperature: 1,
      topP: 1,
      seed: 1,
      stopIds: [],
      readbackEvery: 1 << 20,
    });
  });
  for (const k of info.kernels) {
    const a = agg.get(k.name) ?? { n: 0, ms: 0 };
    a.n++;
    a.ms += Number(await k.kernelTimeMs) || 0;
    agg.set(k.name, a);
  }
  return agg;
}

/** Profile the decoding step at `rows` (= P x G with G = groupSize) rows. */
export async function profileDecodeStep(
  ctx: BenchContext,
  o: { rows: number; groupSize?: number; steps?: number },
): Promise<StepProfile> {
  const G = o.groupSize ?? 1, n = o.steps ?? 16;
  const prompt = collatePrompts(ctx.examples(o.rows / G), ctx.tokenizer, ctx.cfg);
  try {
    await kernelTable(ctx, prompt, G, 2);
    const a = await kernelTable(ctx, prompt, G, 1);
    const b = await kernelTable(ctx, prompt, G, 1 + n);
    const byKernel = [...b.entries()].map(([name, v]) => ({
      name,
      perStep: (v.n - (a.get(name)?.n ?? 0)) / n,
      msPerStep: Math.max(0, (v.ms - (a.get(name)?.ms ?? 0)) / n),
    })).filter((r) => r.perStep > 0).sort((x, y) => y.msPerStep - x.msPerStep);
    return {
      rows: o.rows,
      kernelsPerStep: byKernel.reduce((s, r) => s + r.perStep, 0),
      kernelMsPerStep: byKernel.reduce((s, r) => s + r.msPerStep, 0),
      byKernel,
    };
  } finally {
    disposeInput(prompt);
  }
}

/**
 * Fixed costs of the backend: microseconds per small op (an add of two [64, 128] tensors, timed in a chain
 * of 200 with one readback) and the latency of reading back a tiny tensor after one op.
 */
export async function measureOverheads(reps = 5): Promise<{ usPerSmallOp: number; readbackMs: number }> {
  const x = tf.randomNormal([64, 128]);
  const one = tf.scalar(1);
  try {
    const chain = async () => {
      const t0 = performance.now();
      const y = tf.tidy(() => {
        let t: tf.Tensor = x;
        for (let i = 0; i < 200; i++) t = t.add(one);
        return t.sum();
      });
      await y.data();
      y.dispose();
      return ((performance.now() - t0) * 1000) / 201;
    };
    const rb = async () => {
      const y = one.add(one);
      const t0 = performance.now();
      await y.data();
      const dt = performance.now() - t0;
      y.dispose();
      return dt;
    };
    await chain();
    await rb();
    const a: number[] = [], b: number[] = [];
    for (let i = 0; i < reps; i++) {
      a.push(await chain());
      b.push(await rb());
    }
    return { usPerSmallOp: median(a), readbackMs: median(b) };
  } finally {
    x.dispose();
    one.dispose();
  }
}
