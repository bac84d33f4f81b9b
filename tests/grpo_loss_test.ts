/**
 * GRPO math checked against hand arithmetic. Every expected number below is written out from the formulas
 * (branches of the clipped min resolved by hand in the comments), never computed by the functions under
 * test. Backend cpu (float32, exact ops); tolerances are float32-level.
 */
import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, assertThrows } from "./assert.ts";
import {
  computeAdvantages,
  grpoLoss,
  type LossType,
  type ScaleRewards,
  stopGradient,
} from "../lib/train/grpo_loss.ts";

await tf.setBackend("cpu");

function close(actual: number, expected: number, tol = 2e-5, what = "") {
  assert.ok(
    Math.abs(actual - expected) <= tol * Math.max(1, Math.abs(expected)),
    `${what}: ${actual} != ${expected} (tol ${tol})`,
  );
}

// ---------------------------------------------------------------------------------------------------------
// The fixed batch: N = 4 completions, T = 3, two groups of G = 2, eps_low 0.2, eps_high 0.28 (asymmetric).
const E = Math.exp;
const EPS_LOW = 0.2, EPS_HIGH = 0.28;
const MAXLEN = 5; // dr_grpo normaliser, larger than T on purpose
const rewards = [1, 0, 0.5, 2];
const old = [[-1.0, -2.0, -0.5], [-1.5, -0.7, -3.0], [-0.2, -1.0, -2.0], [-2.5, -0.9, -1.1]];
// d = logp - old (so ratio = e^d); masked positions hold junk that must not matter.
const d = [[0.3, 0.1, -0.3], [0.3, -0.3, 5.0], [-0.4, 0.2, 3.0], [0.2, -0.1, 0.4]];
// q = ref - logp (so k3 = e^q - q - 1).
const q = [[0.1, -0.2, 0.0], [0.3, 0.05, 9.0], [-0.1, 7.0, 7.0], [0.2, 0.0, -0.3]];
const mask = [[1, 1, 1], [1, 1, 0], [1, 0, 0], [1, 1, 1]];
const logp = old.map((r, i) => r.map((o, t) => o + d[i][t]));
const ref = logp.map((r, i) => r.map((l, t) => l + q[i][t]));

/** Advantages by hand for each scaling. */
function handAdvantages(scale: ScaleRewards): number[] {
  // Group means: (1 + 0) / 2 = 0.5, (0.5 + 2) / 2 = 1.25. Deviations: +0.5, -0.5, -0.75, +0.75.
  const dev = [0.5, -0.5, -0.75, 0.75];
  if (scale === "none") return dev;
  if (scale === "group") {
    // Sample std (divide by G - 1 = 1): sqrt(0.5^2 + 0.5^2) = sqrt(0.5); sqrt(0.75^2 + 0.75^2) = sqrt(1.125).
    const s1 = Math.sqrt(0.5), s2 = Math.sqrt(1.125);
    return [0.5 / (s1 + 1e-4), -0.5 / (s1 + 1e-4), -0.75 / (s2 + 1e-4), 0.75 / (s2 + 1e-4)];
  }
  // Batch: mean 3.5 / 4 = 0.875; squared deviations 0.015625 + 0.765625 + 0.140625 + 1.265625 = 2.1875;
  // sample variance 2.1875 / 3.
  const sb = Math.sqrt(2.1875 / 3);
  return dev.map((x) => x / (sb + 1e-4));
}

const K = (x: number) => E(x) - x - 1;

/** Per-token loss terms L_it (beta = 0) by hand; signs of A: +, -, -, + under every scaling. */
function handTokenLoss(A: number[]): (number | null)[][] {
  const [A0, A1, A2, A3] = A;
  return [
    [
      -1.28 * A0, // e^0.3 = 1.350 > 1 + 0.28 and A > 0: min picks the clipped 1.28 A   (high-clipped)
      -E(0.1) * A0, // e^0.1 = 1.105 inside [0.8, 1.28]: ratio A
      -E(-0.3) * A0, // e^-0.3 = 0.741 < 0.8 but A > 0: min picks ratio A (unclipped, not counted)
    ],
    [
      -E(0.3) * A1, // e^0.3 > 1.28 but A < 0: min picks ratio A (unclipped, not counted)
      -0.8 * A1, // e^-0.3 = 0.741 < 0.8 and A < 0: min picks 0.8 A                    (low-clipped)
      null, // masked
    ],
    [
      -0.8 * A2, // e^-0.4 = 0.670 < 0.8 and A < 0                                       (low-clipped)
      null,
      null,
    ],
    [
      -E(0.2) * A3, // 1.221 inside
      -E(-0.1) * A3, // 0.905 inside
      -1.28 * A3, // e^0.4 = 1.492 > 1.28 and A > 0                                      (high-clipped)
    ],
  ];
}

function handLoss(scale: ScaleRewards, lossType: LossType, beta: number): number {
  const L = handTokenLoss(handAdvantages(scale));
  const tok = (i: number, t: number) => L[i][t]! + beta * K(q[i][t]);
  const row0 = tok(0, 0) + tok(0, 1) + tok(0, 2);
  const row1 = tok(1, 0) + tok(1, 1);
  const row2 = tok(2, 0);
  const row3 = tok(3, 0) + tok(3, 1) + tok(3, 2);
  if (lossType === "grpo") return (row0 / 3 + row1 / 2 + row2 / 1 + row3 / 3) / 4;
  if (lossType === "dr_grpo") return (row0 + row1 + row2 + row3) / (4 * MAXLEN);
  return (row0 + row1 + row2 + row3) / 9; // dapo: 3 + 2 + 1 + 3 = 9 completion tokens
}

function inputs(scale: ScaleRewards, lossType: LossType, beta: number, lp: tf.Tensor2D = tf.tensor2d(logp)) {
  return {
    logp: lp as tf.Tensor2D,
    oldLogp: tf.tensor2d(old),
    refLogp: tf.tensor2d(ref),
    mask: tf.tensor2d(mask),
    advantages: tf.tensor1d(Array.from(computeAdvantages(rewards, 2, scale).advantages)),
    beta,
    epsilonLow: EPS_LOW,
    epsilonHigh: EPS_HIGH,
    lossType,
    maxCompletionLength: MAXLEN,
  };
}

function dispose(x: ReturnType<typeof inputs>) {
  tf.dispose([x.logp, x.oldLogp, x.refLogp, x.mask, x.advantages]);
}

// ---------------------------------------------------------------------------------------------------------

Deno.test("computeAdvantages matches hand arithmetic for every scale_rewards", () => {
  for (const scale of ["group", "batch", "none"] as const) {
    const a = computeAdvantages(rewards, 2, scale);
    const h = handAdvantages(scale);
    for (let i = 0; i < 4; i++) close(a.advantages[i], h[i], 1e-6, `${scale} A[${i}]`);
    close(a.groupStd[0], Math.sqrt(0.5), 1e-6, "group std 0 (sample)");
    close(a.groupStd[1], Math.sqrt(1.125), 1e-6, "group std 1 (sample)");
    close(a.groupMean[1], 1.25, 1e-7, "group mean 1");
    close(a.batchStd, Math.sqrt(2.1875 / 3), 1e-9, "batch std (sample)");
    assertEquals(a.fracZeroStd, 0);
  }
});

Deno.test("computeAdvantages: sample (not population) std, zero-std groups, G = 1, bad sizes", () => {
  // One group [0, 0, 1]: mean 1/3, squared deviations 1/9 + 1/9 + 4/9 = 6/9; sample var (6/9) / 2 = 1/3.
  const a = computeAdvantages([0, 0, 1], 3, "group");
  close(a.groupStd[0], Math.sqrt(1 / 3), 1e-6, "sample std");
  close(a.advantages[2], (2 / 3) / (Math.sqrt(1 / 3) + 1e-4), 1e-6, "A of the 1");
  // Groups [1, 1] (all equal: no signal) and [0, 1]: half the groups have zero std.
  const z = computeAdvantages([1, 1, 0, 1], 2, "group");
  assertEquals(z.fracZeroStd, 0.5);
  assertEquals(Array.from(z.advantages.slice(0, 2)), [0, 0]);
  // batch scaling still reports the fraction from the group std.
  assertEquals(computeAdvantages([1, 1, 0, 1], 2, "batch").fracZeroStd, 0.5);
  const g1 = computeAdvantages([3, 5], 1, "group");
  assertEquals(Array.from(g1.advantages), [0, 0]);
  assertEquals(g1.fracZeroStd, 1);
  assertThrows(() => computeAdvantages([1, 2, 3], 2, "group"));
  assertThrows(() => computeAdvantages([1, 2], 2, "bogus" as ScaleRewards));
});

Deno.test("grpoLoss equals the hand-computed loss for each loss_type x scale_rewards x beta", () => {
  for (const scale of ["group", "batch", "none"] as const) {
    for (const lossType of ["grpo", "dr_grpo", "dapo"] as const) {
      for (const beta of [0, 0.04]) {
        const inp = inputs(scale, lossType, beta);
        const { loss, stats } = grpoLoss(inp);
        close(loss.dataSync()[0], handLoss(scale, lossType, beta), 2e-6, `${scale}/${lossType}/beta=${beta}`);
        // Clip stats (masked means over the 9 completion tokens): low = {row1 t1, row2 t0}, high = {row0 t0,
        // row3 t2}.
        close(stats["clip_ratio/low_mean"], 2 / 9, 1e-6, "low");
        close(stats["clip_ratio/high_mean"], 2 / 9, 1e-6, "high");
        close(stats["clip_ratio/region_mean"], 4 / 9, 1e-6, "region");
        const klHand = (K(0.1) + K(-0.2) + K(0) + K(0.3) + K(0.05) + K(-0.1) + K(0.2) + K(0) + K(-0.3)) / 9;
        close(stats.kl, klHand, 1e-5, "kl");
        loss.dispose();
        dispose(inp);
      }
    }
  }
});

Deno.test("grpoLoss: beta 0 ignores the reference; beta > 0 without a reference throws", () => {
  const inp = inputs("group", "grpo", 0);
  const a = grpoLoss(inp);
  const b = grpoLoss({ ...inp, refLogp: null });
  close(a.loss.dataSync()[0], b.loss.dataSync()[0], 1e-7, "same loss");
  assertEquals(b.stats.kl, undefined);
  assertThrows(() => grpoLoss({ ...inp, beta: 0.1, refLogp: null }));
  tf.dispose([a.loss, b.loss]);
  dispose(inp);
});

Deno.test("grpoLoss gradient wrt logp: analytic per token and finite differences", () => {
  const beta = 0.04;
  const A = handAdvantages("group");
  for (const lossType of ["grpo", "dr_grpo", "dapo"] as const) {
    const lens = [3, 2, 1, 3];
    const w = (i: number) =>
      lossType === "grpo" ? 1 / (4 * lens[i]) : lossType === "dapo" ? 1 / 9 : 1 / (4 * MAXLEN);
    // d/dl of -ratio A is -ratio A on tokens where the unclipped branch is active, 0 where clipped; d/dl of
    // k3 = e^(f - l) - (f - l) - 1 is 1 - e^q. Clipped: row0 t0, row1 t1, row2 t0, row3 t2.
    const surr = [
      [0, -E(0.1) * A[0], -E(-0.3) * A[0]],
      [-E(0.3) * A[1], 0, 0],
      [0, 0, 0],
      [-E(0.2) * A[3], -E(-0.1) * A[3], 0],
    ];
    const inp = inputs("group", lossType, beta);
    const g = tf.grad((lp: tf.Tensor) => grpoLoss({ ...inp, logp: lp as tf.Tensor2D, stats: false }).loss)(
      inp.logp,
    );
    const gv = g.arraySync() as number[][];
    for (let i = 0; i < 4; i++) {
      for (let t = 0; t < 3; t++) {
        const expected = mask[i][t] ? w(i) * (surr[i][t] + beta * (1 - E(q[i][t]))) : 0;
        close(gv[i][t], expected, 1e-5, `${lossType} grad[${i}][${t}]`);
      }
    }
    // Central finite differences on smooth (unclipped, away from the clip edges) tokens.
    const f = (i: number, t: number, h: number) => {
      const lp = logp.map((r) => r.slice());
      lp[i][t] += h;
      const x = tf.tensor2d(lp);
      const l = grpoLoss({ ...inp, logp: x, stats: false }).loss;
      const v = l.dataSync()[0];
      tf.dispose([x, l]);
      return v;
    };
    for (const [i, t] of [[0, 1], [1, 0], [3, 0], [3, 1]]) {
      const h = 1e-2;
      const fd = (f(i, t, h) - f(i, t, -h)) / (2 * h);
      assert.ok(
        Math.abs(fd - gv[i][t]) <= 2e-3 * Math.abs(gv[i][t]) + 1e-5,
        `${lossType} fd[${i}][${t}] ${fd} vs ${gv[i][t]}`,
      );
    }
    g.dispose();
    dispose(inp);
  }
});

Deno.test("numIterations = 1: old = stopGradient(logp) gives ratio 1 and gradient -A / (N len)", () => {
  const A = handAdvantages("group");
  const inp = inputs("group", "grpo", 0);
  const lossOf = (lp: tf.Tensor) =>
    grpoLoss({
      ...inp,
      logp: lp as tf.Tensor2D,
      oldLogp: stopGradient(lp as tf.Tensor2D),
      refLogp: null,
      stats: false,
    }).loss;
  const l = lossOf(inp.logp);
  // Loss value: mean_i of -A_i (each row's token mean of -1 * A_i) = -(A0 + A1 + A2 + A3) / 4 ~ 0 (groups).
  close(l.dataSync()[0], -(A[0] + A[1] + A[2] + A[3]) / 4, 1e-6, "value");
  const g = tf.grad(lossOf)(inp.logp).arraySync() as number[][];
  const lens = [3, 2, 1, 3];
  for (let i = 0; i < 4; i++) {
    for (let t = 0; t < 3; t++) close(g[i][t], mask[i][t] ? -A[i] / (4 * lens[i]) : 0, 1e-6, `g[${i}][${t}]`);
  }
  const s = grpoLoss({ ...inp, oldLogp: inp.logp }).stats;
  assertEquals(s["clip_ratio/region_mean"], 0);
  l.dispose();
  dispose(inp);
});

Deno.test("grpoLoss: non-finite values at masked positions change neither loss nor gradient", () => {
  const base = inputs("group", "grpo", 0.04);
  const clean = grpoLoss(base).loss.dataSync()[0];
  const dirtyLogp = logp.map((r) => r.slice());
  dirtyLogp[1][2] = NaN;
  dirtyLogp[2][1] = -Infinity;
  const dirtyRef = ref.map((r) => r.slice());
  dirtyRef[2][2] = -Infinity;
  const lp = tf.tensor2d(dirtyLogp);
  const rf = tf.tensor2d(dirtyRef);
  const fn = (x: tf.Tensor) => grpoLoss({ ...base, logp: x as tf.Tensor2D, refLogp: rf, stats: false }).loss;
  const v = fn(lp);
  close(v.dataSync()[0], clean, 1e-7, "loss");
  const g = tf.grad(fn)(lp);
  assert.ok(Array.from(g.dataSync()).every(Number.isFinite), "finite gradient");
  tf.dispose([v, g, lp, rf]);
  dispose(base);
});

Deno.test("grpoLoss: a fully masked row (truncated) adds 0 but counts in N for grpo", () => {
  const inp = inputs("none", "grpo", 0);
  const m = tf.tensor2d([[1, 1, 1], [1, 1, 0], [0, 0, 0], [1, 1, 1]]);
  const l = grpoLoss({ ...inp, mask: m }).loss.dataSync()[0];
  const L = handTokenLoss(handAdvantages("none"));
  const expected = ((L[0][0]! + L[0][1]! + L[0][2]!) / 3 + (L[1][0]! + L[1][1]!) / 2 + 0 +
    (L[3][0]! + L[3][1]! + L[3][2]!) / 3) / 4;
  close(l, expected, 2e-6, "loss");
  m.dispose();
  dispose(inp);
});

Deno.test("grpoLoss leaks no tensors, also under tf.grad", () => {
  const inp = inputs("group", "dapo", 0.04);
  const before = tf.memory().numTensors;
  const r = grpoLoss(inp);
  r.loss.dispose();
  const g = tf.grad((lp: tf.Tensor) => grpoLoss({ ...inp, logp: lp as tf.Tensor2D }).loss)(inp.logp);
  g.dispose();
  assertEquals(tf.memory().numTensors, before);
  assertThrows(() => grpoLoss({ ...inp, mask: tf.ones([4, 2]) as tf.Tensor2D }));
  dispose(inp);
});
