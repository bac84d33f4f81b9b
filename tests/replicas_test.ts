/**
 * Data-parallel replicas (lib/train/replicas.ts): a supervised step over 2 or 3 replicas equals the full
 * batch's step up to float summation order and is itself deterministic; a GRPO micro-batch's gradients on a
 * replica equal this thread's bitwise; rollouts and eval completions from a replica equal local ones; errors
 * in a replica reach the caller with the replica named.
 */
import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, assertRejects } from "./assert.ts";
import { CharTokenizer, pairingExample, testConfig, useWasm } from "./helpers_model.ts";
import { createModel, type TfVLM } from "../lib/model/vlm.ts";
import { CUE_GROUPS, CUE_OUTPUTS } from "../lib/data/cue_labels.ts";
import type { ViewCues } from "../lib/data/cues.ts";
import { trainSupervised } from "../lib/train/supervised.ts";
import { chunkLoss, type ChunkTensors } from "../lib/train/grpo_chunk.ts";
import { complete } from "../lib/pipeline/evaluate.ts";
import { collateCompletions, collatePrompts, disposeInput } from "../lib/model/collate.ts";
import {
  type GradResult,
  type GrpoChunkParams,
  hostGrads,
  hostWeights,
  packInput,
  packTensor,
  ReplicaPool,
  shardRanges,
} from "../lib/train/replicas.ts";
import { paramKey } from "../lib/train/optim.ts";
import { blasThreads } from "../lib/model/blas.ts";
import type { SupervisedStageSpec } from "../lib/spec/types.ts";
import type { Example } from "../lib/data/types.ts";
import { UserError } from "../lib/errors.ts";

await useWasm();
const tok = new CharTokenizer();
const cfg = testConfig("tiny", 5, { cueHead: CUE_OUTPUTS });

/** Pairing examples whose views carry cues (so the cue loss is part of the sharded loss). */
function examples(n: number, seed: number): Example[] {
  return Array.from({ length: n }, (_, i) => {
    const e = pairingExample(seed + i);
    const v: ViewCues = {
      roadAxes: i % 2 ? ["north-south"] : [],
      waterSide: null,
      buildings: "sparse",
      roof: CUE_GROUPS[3].classes[i % 2],
      trees: (["none", "few", "many"] as const)[i % 3],
      roadLine: null,
      sunSide: "south",
      vegetation: CUE_GROUPS[5].classes[0],
    };
    // Every third example has no cues (its views weigh 0): the view normaliser must count weights.
    return i % 3 === 2 ? e : { ...e, cues: { ground: v, candidates: [v, v, v, v] } };
  });
}

function spec(over: Partial<SupervisedStageSpec> = {}): SupervisedStageSpec {
  return {
    kind: "sft",
    from: null,
    tasks: { pairing: 1 },
    steps: 3,
    batchSize: 5,
    optim: {
      lr: 3e-3,
      weightDecay: 0.01,
      beta1: 0.9,
      beta2: 0.99,
      warmupSteps: 0,
      minLrRatio: 1,
      gradClip: 1,
    },
    evalEvery: 0,
    checkpointEvery: 0,
    cueLoss: 0.5,
    answerWeight: 3,
    seed: 1,
    ...over,
  };
}

async function train(pool: ReplicaPool | undefined, batch: number) {
  const m = createModel(cfg);
  const rec: Record<string, number>[] = [];
  const res = await trainSupervised({
    stageName: "sft",
    spec: spec({ batchSize: batch }),
    model: m,
    tokenizer: tok,
    nextBatch: (step) => examples(batch, 100 + step * batch),
    onMetrics: (x) => void rec.push(x as unknown as Record<string, number>),
    replicas: pool,
  });
  res.optimizer.dispose();
  const w = m.namedParams().map(([, v]) => Float32Array.from(v.dataSync()));
  m.dispose();
  return { w, rec };
}

function maxDiff(a: Float32Array[], b: Float32Array[]): number {
  let worst = 0;
  a.forEach((x, i) => {
    for (let j = 0; j < x.length; j++) worst = Math.max(worst, Math.abs(x[j] - b[i][j]));
  });
  return worst;
}

Deno.test("shardRanges: contiguous, sizes differ by at most one, cover everything", () => {
  assertEquals(shardRanges(16, 2), [[0, 8], [8, 16]]);
  assertEquals(shardRanges(5, 2), [[0, 3], [3, 5]]);
  assertEquals(shardRanges(7, 3), [[0, 3], [3, 5], [5, 7]]);
  assertEquals(shardRanges(1, 2), [[0, 1], [1, 1]]);
});

Deno.test("supervised replicas: 2 and 3 replicas equal the full batch (cue loss, answer weight), deterministic", async () => {
  const one = await train(undefined, 5);
  for (const size of [2, 3]) {
    const pool = await ReplicaPool.start(size, cfg, "wasm");
    try {
      const a = await train(pool, 5), b = await train(pool, 5);
      assertEquals(a.w, b.w, `${size} replicas: two runs differ`);
      const d = maxDiff(one.w, a.w);
      assert(d < 2e-5, `${size} replicas: weights differ from one thread by ${d}`);
      for (let s = 0; s < 3; s++) {
        for (const k of ["loss", "cue_loss", "grad_norm", "tokens_per_s", "completion_tokens"]) {
          const x = one.rec[s][k], y = a.rec[s][k];
          if (k === "tokens_per_s") {
            assert(y > 0, `${k} at step ${s}`);
            continue;
          }
          assert(
            Math.abs(x - y) <= 1e-5 * Math.max(1, Math.abs(x)),
            `${size} replicas, step ${s}: ${k} ${x} vs ${y}`,
          );
        }
      }
      // The weights moved: the check compares trained models, not two copies of the initialisation.
      const init = createModel(cfg);
      const w0 = init.namedParams().map(([, v]) => Float32Array.from(v.dataSync()));
      init.dispose();
      assert(maxDiff(w0, a.w) > 1e-4, "training did not change the weights");
    } finally {
      pool.close();
    }
  }
});

Deno.test("supervised replicas: more replicas than examples is refused, naming the field", async () => {
  const pool = await ReplicaPool.start(3, cfg, "wasm");
  const m = createModel(cfg);
  try {
    await assertRejects(
      () =>
        trainSupervised({
          stageName: "base",
          spec: spec({ batchSize: 2 }),
          model: m,
          tokenizer: tok,
          nextBatch: (step) => examples(2, step),
          replicas: pool,
        }),
      UserError,
      "stages.base.replicas",
    );
  } finally {
    pool.close();
    m.dispose();
  }
});

Deno.test("GRPO replicas: a micro-batch's loss and gradients on a replica equal this thread's bitwise", async () => {
  const plain = testConfig("tiny", 7);
  const m = createModel(plain) as TfVLM;
  const pool = await ReplicaPool.start(2, plain, "wasm");
  const exs = examples(2, 40);
  const G = 3;
  const gen = await (async () => {
    const p = collatePrompts(exs, tok, plain);
    try {
      return await m.generate(p, {
        groupSize: G,
        maxNewTokens: 12,
        temperature: 1,
        topP: 1,
        seed: 9,
        stopIds: [],
      });
    } finally {
      disposeInput(p);
    }
  })();
  const batch = collateCompletions(exs, gen.completions, tok, plain, G);
  const t: ChunkTensors = {
    input: batch.input,
    lossMask: batch.lossMask,
    fullMask: batch.lossMask,
    advantages: tf.tensor1d([1, -0.5, 0.25, -1, 0.5, 0.75]),
    refLogp: tf.tidy(() => m.tokenLogProbs(batch.input).add(0.01)) as tf.Tensor2D,
    oldLogp: null,
  };
  const params: GrpoChunkParams = {
    temperature: 0.7,
    beta: 0.1,
    epsilonLow: 0.2,
    epsilonHigh: 0.28,
    lossType: "dapo",
    maxCompletionLength: 12,
    weight: 0.6,
    entropyWeight: 0.4,
    groups: null,
  };
  try {
    const vars = m.trainable();
    let stats: Record<string, number> = {}, entropy: number | null = null;
    const local = tf.variableGrads(() => {
      const r = chunkLoss(m, t, params);
      stats = r.stats;
      entropy = r.entropy;
      return r.loss;
    }, vars);
    const remote = await pool.call<GradResult>(1, {
      op: "grpo",
      weights: hostWeights(m),
      train: vars.map(paramKey),
      chunk: {
        input: packInput(t.input),
        lossMask: packTensor(t.lossMask),
        fullMask: packTensor(t.fullMask),
        advantages: t.advantages.dataSync() as Float32Array,
        refLogp: packTensor(t.refLogp!),
        oldLogp: null,
      },
      params,
      reference: false,
    });
    assertEquals(remote.value, local.value.dataSync()[0]);
    assertEquals(remote.scalars, { ...stats, entropy: entropy! });
    assert(Math.abs(remote.value) > 0 && stats.kl > 0, "the loss and KL must not be trivially zero");
    const lg = hostGrads(local.grads, vars);
    assertEquals(remote.grads.map(([k]) => k), lg.map(([k]) => k));
    remote.grads.forEach(([k, a], i) => assertEquals(a, lg[i][1], `gradient of ${k}`));
    local.value.dispose();
    for (const k in local.grads) local.grads[k].dispose();
  } finally {
    batch.dispose();
    t.advantages.dispose();
    t.refLogp!.dispose();
    pool.close();
    m.dispose();
  }
});

Deno.test("GRPO replicas: the reference's log-probs computed on a replica equal this thread's; none set is refused", async () => {
  const plain = testConfig("tiny", 7);
  const m = createModel(plain) as TfVLM;
  const ref = createModel(testConfig("tiny", 8)) as TfVLM;
  const pool = await ReplicaPool.start(2, plain, "wasm");
  const exs = examples(2, 41);
  const G = 2;
  const p = collatePrompts(exs, tok, plain);
  const gen = await m.generate(p, {
    groupSize: G,
    maxNewTokens: 10,
    temperature: 1,
    topP: 1,
    seed: 4,
    stopIds: [],
  });
  disposeInput(p);
  const batch = collateCompletions(exs, gen.completions, tok, plain, G);
  const groups = { size: G, promptLen: batch.promptLen };
  const params: GrpoChunkParams = {
    temperature: 0.8,
    beta: 0.2,
    epsilonLow: 0.2,
    epsilonHigh: 0.28,
    lossType: "dapo",
    maxCompletionLength: 10,
    weight: 1,
    entropyWeight: null,
    groups,
  };
  const advantages = tf.tensor1d([1, -1, 0.5, -0.5]);
  const refLogp = tf.tidy(() => ref.tokenLogProbs(batch.input, false, 0.8, groups));
  const vars = m.trainable();
  const request = (reference: boolean) => ({
    op: "grpo" as const,
    weights: hostWeights(m),
    train: vars.map(paramKey),
    chunk: {
      input: packInput(batch.input),
      lossMask: packTensor(batch.lossMask),
      fullMask: packTensor(batch.lossMask),
      advantages: advantages.dataSync() as Float32Array,
      refLogp: null,
      oldLogp: null,
    },
    params,
    reference,
  });
  try {
    await assertRejects(() => pool.call(1, request(true)), Error, "before a reference was set");
    await pool.call(1, { op: "reference", weights: hostWeights(ref) });
    const remote = await pool.call<GradResult>(1, request(true));
    const t: ChunkTensors = {
      input: batch.input,
      lossMask: batch.lossMask,
      fullMask: batch.lossMask,
      advantages,
      refLogp,
      oldLogp: null,
    };
    let stats: Record<string, number> = {};
    const local = tf.variableGrads(() => {
      const r = chunkLoss(m, t, params);
      stats = r.stats;
      return r.loss;
    }, vars);
    assertEquals(remote.value, local.value.dataSync()[0]);
    assertEquals(remote.scalars, stats);
    assert(stats.kl > 1e-4, "the reference differs from the policy, so the KL must not be ~0");
    const lg = hostGrads(local.grads, vars);
    remote.grads.forEach(([k, a], i) => assertEquals(a, lg[i][1], `gradient of ${k}`));
    local.value.dispose();
    for (const k in local.grads) local.grads[k].dispose();
    // Forgetting the reference refuses later requests again.
    await pool.call(1, { op: "reference", weights: null });
    await assertRejects(() => pool.call(1, request(true)), Error, "before a reference was set");
  } finally {
    batch.dispose();
    advantages.dispose();
    refLogp.dispose();
    pool.close();
    m.dispose();
    ref.dispose();
  }
});

Deno.test("replicas: sampled rollouts and greedy eval completions from a replica equal this thread's", async () => {
  const plain = testConfig("tiny", 8);
  const m = createModel(plain);
  const pool = await ReplicaPool.start(3, plain, "wasm");
  try {
    const exs = examples(7, 70);
    const p = collatePrompts(exs, tok, plain);
    const opts = { groupSize: 2, maxNewTokens: 10, temperature: 1, topP: 0.9, seed: 4, stopIds: [] };
    const here = await m.generate(p, opts);
    const there = await pool.generate(2, hostWeights(m), p, opts);
    disposeInput(p);
    assertEquals(there, here);
    const spec = { temperature: 0, maxNewTokens: 10, seed: 3 };
    const seen: number[] = [];
    const one = await complete(m, tok, exs, spec, 2);
    const three = await complete(m, tok, exs, spec, 2, (d) => void seen.push(d), pool);
    assertEquals(three.map((s) => [s.ex.id, s.text, s.tokens]), one.map((s) => [s.ex.id, s.text, s.tokens]));
    assertEquals(seen, [6, 7]);
  } finally {
    pool.close();
    m.dispose();
  }
});

Deno.test("replicas: a failing request names the replica; a closed pool refuses work", async () => {
  const plain = testConfig("tiny", 8);
  const m = createModel(plain);
  const pool = await ReplicaPool.start(2, plain, "wasm");
  const p = collatePrompts(examples(1, 1), tok, plain);
  try {
    const bad = hostWeights(m).map(([k, a]) => [k, a.slice(1)] as [string, Float32Array]);
    const opts = { groupSize: 1, maxNewTokens: 2, temperature: 1, topP: 1, seed: 1, stopIds: [] };
    await assertRejects(() => pool.generate(1, bad, p, opts), Error, "replica 1: setWeights");
    // The replica survives a failed request.
    const ok = await pool.generate(1, hostWeights(m), p, opts);
    assertEquals(ok.completions.length, 1);
    pool.close();
    await assertRejects(() => pool.generate(1, hostWeights(m), p, opts), Error, "closed");
  } finally {
    pool.close();
    disposeInput(p);
    m.dispose();
  }
  await assertRejects(() => ReplicaPool.start(2, plain, "webgpu"), Error, "CPU backends");
});

Deno.test("replicas share the cores of the native BLAS while the pool lives", async (t) => {
  if (blasThreads() === null) {
    t.step({ name: "no native BLAS loaded (apt-get install libopenblas0): skipped", ignore: true, fn() {} });
    return;
  }
  const cores = Math.max(1, navigator.hardwareConcurrency || 1);
  assertEquals(blasThreads(), cores, "one caller: every core");
  const pool = await ReplicaPool.start(2, testConfig("tiny", 7), "wasm");
  try {
    assertEquals(blasThreads(), Math.max(1, Math.floor(cores / 2)), "two replicas: half the cores each");
  } finally {
    pool.close();
  }
  assertEquals(blasThreads(), cores, "closed pool: every core again");
});
