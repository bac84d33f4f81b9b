import { Buffer } from "node:buffer";
/**
 * Trainer tests (tiny preset, wasm): schedule, AdamW maths and clipping, a tiny model overfits a small batch,
 * a resumed run equals an uninterrupted one bitwise, tensor count flat across steps.
 */
import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, assertThrows } from "./assert.ts";
import { CharTokenizer, GEOM, groundExample, pairingExample, testConfig, useWasm } from "./helpers_model.ts";
import { createModel, type TfVLM } from "../lib/model/vlm.ts";
import { lrAt } from "../lib/train/schedule.ts";
import { AdamW } from "../lib/train/optim.ts";
import {
  collateWeighted,
  trainSupervised,
  VERDICT_WORDS,
  weightAnswerTokens,
  weightVerdictTokens,
} from "../lib/train/supervised.ts";
import { createTokenizer } from "../lib/data/tokenizer.ts";
import { makeModelConfig, slotSegmentsFor } from "../lib/model/config.ts";
import { collateTrain } from "../lib/model/collate.ts";
import type { SupervisedStageSpec } from "../lib/spec/types.ts";
import type { MetricRecord } from "../lib/run/records.ts";

await useWasm();
const tok = new CharTokenizer();

function spec(
  over: Partial<SupervisedStageSpec> = {},
  optim: Partial<SupervisedStageSpec["optim"]> = {},
): SupervisedStageSpec {
  return {
    kind: "sft",
    from: null,
    tasks: { pairing: 1 },
    steps: 10,
    batchSize: 4,
    optim: {
      lr: 3e-3,
      weightDecay: 0.01,
      beta1: 0.9,
      beta2: 0.99,
      warmupSteps: 2,
      minLrRatio: 0.1,
      gradClip: 1,
      ...optim,
    },
    evalEvery: 0,
    checkpointEvery: 0,
    seed: 1,
    ...over,
  };
}

Deno.test("schedule: linear warmup then cosine to minLrRatio at the last step", () => {
  const o = { lr: 1, warmupSteps: 4, minLrRatio: 0.1 };
  assertEquals(lrAt(o, 0, 14), 0.25);
  assertEquals(lrAt(o, 3, 14), 1);
  assert(Math.abs(lrAt(o, 4, 14) - 1) < 1e-12);
  assert(Math.abs(lrAt(o, 13, 14) - 0.1) < 1e-12);
  assert(Math.abs(lrAt(o, 8.5, 14) - 0.55) < 1e-12);
  assertEquals(lrAt({ lr: 2, warmupSteps: 0, minLrRatio: 1 }, 5, 10), 2);
});

Deno.test("AdamW: matches the reference update; decay skips rank-1; clip returns the pre-clip norm", () => {
  const w = tf.variable(tf.tensor2d([[1, -2], [3, 4]]), true, "optest/w");
  const b = tf.variable(tf.tensor1d([0.5, -0.5]), true, "optest/b");
  const opt = new AdamW([w, b], { beta1: 0.9, beta2: 0.99, weightDecay: 0.1, eps: 1e-8 });
  const gw = tf.tensor2d([[3, 0], [0, 4]]), gb = tf.tensor1d([0, 0]);
  const norm = opt.applyGradients({ "optest/w": gw, "optest/b": gb }, 0.1, 1);
  assert(Math.abs(norm - 5) < 1e-5);
  // Clipped g = [[0.6,0],[0,0.8]]; first step: m/(1-b1) = g, v/(1-b2) = g^2 -> update = sign(g) (|g| >> eps).
  const got = w.arraySync();
  const want = [[1 * (1 - 0.01) - 0.1, -2 * 0.99], [3 * 0.99, 4 * 0.99 - 0.1]];
  for (let i = 0; i < 2; i++) for (let j = 0; j < 2; j++) assert(Math.abs(got[i][j] - want[i][j]) < 1e-5);
  assertEquals(b.arraySync(), [0.5, -0.5]); // zero grad, no decay on rank 1
  const st = opt.getState();
  assertEquals(st.step, 1);
  assert(Math.abs(st.slots.get("w")!.m[0] - 0.06) < 1e-6);
  const before = tf.memory().numTensors;
  opt.applyGradients([gw, null], 0.1, 0);
  assertEquals(tf.memory().numTensors, before);
  for (const t of [gw, gb, w, b]) t.dispose();
  opt.dispose();
});

Deno.test("a tiny model overfits a small batch to near-zero loss; tensors flat across steps", async () => {
  const cfg = testConfig("tiny", 2);
  const m = createModel(cfg);
  const exs = [pairingExample(1), pairingExample(2), groundExample(3)].slice(0, 2);
  const losses: number[] = [];
  const counts: number[] = [];
  const r = await trainSupervised({
    stageName: "overfit",
    spec: spec({ steps: 120 }, { lr: 1e-2, minLrRatio: 0.3, weightDecay: 0 }),
    model: m,
    tokenizer: tok,
    nextBatch: () => exs,
    onMetrics: (rec) => {
      losses.push(rec.loss as number);
      counts.push(tf.memory().numTensors);
    },
  });
  const last = losses[losses.length - 1];
  assert(losses[0] > 3, `initial loss ${losses[0]}`);
  assert(last < 0.05, `final loss ${last}`);
  assertEquals(new Set(counts.slice(2)).size, 1, "tensor count changed across steps");
  r.optimizer.dispose();
  m.dispose();
});

function weights(m: TfVLM): Float32Array[] {
  return m.namedParams().map(([, v]) => v.dataSync() as Float32Array);
}

Deno.test("resumed supervised run == uninterrupted run (bitwise weights, identical metrics)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "geo-r1-resume-" });
  try {
    const cfg = testConfig("tiny", 3);
    const pool = [1, 2, 3, 4, 5, 6, 7, 8].map((s) => pairingExample(s, 4, 1 + (s % 4)));
    // Batches are a pure function of the step; lengths vary by step so padding differs.
    const nextBatch = (step: number) => [pool[step % 8], pool[(step * 3 + 1) % 8], pool[(step * 5 + 2) % 8]];
    const sp = spec({ steps: 7, checkpointEvery: 3 });
    const strip = (r: MetricRecord) => ({ step: r.step, loss: r.loss, lr: r.lr, grad_norm: r.grad_norm });

    const a = createModel(cfg);
    const ma: MetricRecord[] = [];
    const ra = await trainSupervised({
      stageName: "s",
      spec: sp,
      model: a,
      tokenizer: tok,
      nextBatch,
      onMetrics: (r) => void ma.push(r),
    });

    const b1 = createModel(cfg);
    const mb: MetricRecord[] = [];
    const r1 = await trainSupervised({
      stageName: "s",
      spec: sp,
      model: b1,
      tokenizer: tok,
      nextBatch,
      onMetrics: (r) => void mb.push(r),
      checkpointDir: dir,
      stopAfter: 5, // "crash" after step 5; the last checkpoint is at step 3
    });
    assertEquals(r1.steps, 5);
    r1.optimizer.dispose();
    b1.dispose();
    const b2 = createModel(cfg); // fresh weights: everything must come from the checkpoint
    const r2 = await trainSupervised({
      stageName: "s",
      spec: sp,
      model: b2,
      tokenizer: tok,
      nextBatch,
      onMetrics: (r) => void mb.push(r),
      checkpointDir: dir,
    });
    assertEquals(r2.resumedFrom, 3);
    const resumed = mb.filter((r) => r.step >= 3).slice(-4).map(strip);
    assertEquals(resumed, ma.slice(3).map(strip));
    const wa = weights(a), wb = weights(b2);
    for (let i = 0; i < wa.length; i++) {
      assertEquals(Buffer.from(wa[i].buffer).equals(Buffer.from(wb[i].buffer)), true);
    }
    const latest = JSON.parse(await Deno.readTextFile(`${dir}/latest.json`));
    assertEquals(latest.step, 7);
    ra.optimizer.dispose();
    r2.optimizer.dispose();
    a.dispose();
    b2.dispose();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("stage loop: eval records count updates done, as GRPO's; onResume precedes a resumed stage's records", async () => {
  const dir = await Deno.makeTempDir({ prefix: "geo-r1-loop-" });
  try {
    const cfg = testConfig("tiny", 3);
    const pool = [1, 2, 3, 4].map((s) => pairingExample(s, 4, 1 + (s % 4)));
    const sp = spec({ steps: 5, evalEvery: 2, checkpointEvery: 2 });
    const log: string[] = [];
    const run = async (stopAfter?: number) => {
      const model = createModel(cfg);
      const r = await trainSupervised({
        stageName: "s",
        spec: sp,
        model,
        tokenizer: tok,
        nextBatch: (step) => [pool[step % 4], pool[(step + 1) % 4]],
        onResume: (start) => void log.push(`resume ${start}`),
        onMetrics: (m) => void log.push(`${m.kind} ${m.step}${m.kind === "eval" ? ` done=${m.done}` : ""}`),
        evaluate: (done) => ({ done }),
        checkpointDir: dir,
        stopAfter,
      });
      r.optimizer.dispose();
      model.dispose();
      return r;
    };
    const first = await run(3);
    assertEquals([first.steps, first.resumedFrom], [3, null]);
    const second = await run();
    assertEquals([second.steps, second.resumedFrom], [5, 2]);
    // No evaluation of the starting model; after 2 and 4 updates and after the last (5). The interrupted run
    // stops after 3 updates (checkpoint at 2), so the resumed one starts at step 2 and evaluates 2 again.
    assertEquals(log, [
      "resume 0",
      "sft 0",
      "sft 1",
      "eval 2 done=2",
      "sft 2",
      "resume 2",
      "eval 2 done=2",
      "sft 2",
      "sft 3",
      "eval 4 done=4",
      "sft 4",
      "eval 5 done=5",
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("freeze: frozen prefixes keep their weights, the rest trains; a prefix naming nothing is refused", async () => {
  const cfg = testConfig("tiny", 4);
  const m = createModel(cfg) as TfVLM;
  const before = new Map(m.namedParams().map(([n, v]) => [n, v.dataSync().slice()]));
  const exs = [pairingExample(1, 4, 2), pairingExample(2, 4, 3)];
  await trainSupervised({
    stageName: "sft",
    spec: spec({ steps: 3, freeze: ["vis.", "dec.pos_emb"] }),
    model: m,
    tokenizer: tok,
    nextBatch: () => exs,
    resume: false,
  });
  let frozen = 0, moved = 0;
  for (const [name, v] of m.namedParams()) {
    const a = before.get(name)!, b = v.dataSync();
    const same = a.every((x, i) => x === b[i]);
    if (name.startsWith("vis.") || name.startsWith("dec.pos_emb")) {
      assert(same, `${name} is frozen but changed`);
      frozen++;
    } else if (!same) moved++;
  }
  assert(frozen >= 5, `frozen ${frozen}`);
  assert(moved >= 5, `only ${moved} unfrozen tensors changed`);
  for (
    const [freeze, msg] of [[["vision."], "names no parameter"], [["vis.", "dec.", "proj"], "every"]]
  ) {
    let err: Error | null = null;
    try {
      await trainSupervised({
        stageName: "sft",
        spec: spec({ steps: 1, freeze: freeze as string[] }),
        model: m,
        tokenizer: tok,
        nextBatch: () => exs,
        resume: false,
      });
    } catch (e) {
      err = e as Error;
    }
    assert(
      err && err.message.includes("stages.sft.freeze") && err.message.includes(msg as string),
      String(err),
    );
  }
  m.dispose();
});

Deno.test("verdictWeight: only the verdict words after a candidate letter in <think> weigh w", () => {
  const real = createTokenizer();
  const cfg = makeModelConfig({ preset: "tiny", seed: 1 }, { vocabSize: real.vocabSize, ...GEOM });
  // "no water", "no roads" and the letters' own lines ("A: ...") are not verdicts; the last line has four.
  const think = "A: forest, no water, roads east-west. B: desert, no water, no roads. C: forest, no water. " +
    "D: forest, water west. ground: forest, no water. A fits, B no, C alike, D no.";
  const ex = { ...pairingExample(1, 4, 2), target: `<think>${think}</think><answer>A</answer>` };
  const b = collateTrain([ex], real, cfg);
  const before = b.lossMask.arraySync()[0], ids = b.input.ids.arraySync()[0];
  const letters = slotSegmentsFor(real, 4).tokens.flat();
  weightVerdictTokens(b, real, letters, 4);
  const after = b.lossMask.arraySync()[0];
  const weighted = ids.flatMap((_, t) => (after[t] !== before[t] ? [t] : []));
  assertEquals(
    weighted.map((t) => real.decode([ids[t - 1], ids[t]])),
    [" A fits", " B no", " C alike", " D no"],
  );
  for (const t of weighted) assertEquals(after[t], before[t] * 4);
  const no = real.encode(" no")[0];
  assert(
    ids.filter((id, t) => id === no && before[t] > 0).length >= 6,
    "the exemplar has unweighted ' no' tokens",
  );
  b.dispose();
  // collateWeighted applies both weights: the verdicts 3, the answer block 5, nothing else changes.
  const both = collateWeighted([ex], real, cfg, { answerWeight: 5, verdictWeight: 3 } as SupervisedStageSpec);
  const m = both.lossMask.arraySync()[0], open = ids.lastIndexOf(real.special.answerOpen);
  ids.forEach((_, t) =>
    assertEquals(m[t], before[t] * (weighted.includes(t) ? 3 : t > open ? 5 : 1), `token ${t}`)
  );
  both.dispose();
  // Every verdict word is one token of the real tokenizer; the char tokenizer is refused by name.
  for (const w of VERDICT_WORDS) assertEquals(real.encode(w).length, 1, w);
  const c = collateTrain([pairingExample(1, 4, 2)], tok, testConfig("tiny", 4));
  assertThrows(() => weightVerdictTokens(c, tok, [1], 2), Error, `verdict word " fits" is`);
  c.dispose();
});

Deno.test("answerWeight: the answer block's tokens (through </answer>) weigh w, the reasoning 1, the prompt 0", () => {
  const cfg = testConfig("tiny", 4);
  const b = collateTrain([pairingExample(1, 4, 2), pairingExample(3, 4, 0)], tok, cfg);
  const before = b.lossMask.arraySync();
  weightAnswerTokens(b, tok, 5);
  const after = b.lossMask.arraySync(), ids = b.input.ids.arraySync();
  let weighted = 0;
  ids.forEach((row, r) => {
    const open = row.lastIndexOf(tok.special.answerOpen), close = row.lastIndexOf(tok.special.answerClose);
    assert(open > 0 && close > open, "both exemplars have an answer block");
    row.forEach((_, t) => {
      const inAnswer = t > open && t <= close;
      assertEquals(after[r][t], before[r][t] * (inAnswer ? 5 : 1), `row ${r} token ${t}`);
      if (inAnswer && before[r][t] > 0) weighted++;
    });
  });
  assert(weighted >= 4, `${weighted} answer tokens`);
  b.dispose();
});
