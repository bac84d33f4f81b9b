/**
 * The model's hand-written ops (wasm fast paths) against plain tfjs: forward values and gradients, and the
 * SIMD attention kernel on odd shapes. Tolerance: 1e-4 absolute (float summation order differs).
 */
import * as tf from "@tensorflow/tfjs";
import { assert } from "./assert.ts";
import { useWasm } from "./helpers_model.ts";
import { _ops } from "../lib/model/vlm.ts";
import { matMulNT, useSimdKernel } from "../lib/model/kernels.ts";
import { blasActive, disableBlas, enableBlas } from "../lib/model/blas.ts";

await useWasm();

function close(a: tf.Tensor, b: tf.Tensor, tol = 1e-4, what = ""): void {
  const d = tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
  assert(d <= tol, `${what}: max abs diff ${d}`);
}

/** Run `fn` on tfjs-wasm's own matmul kernels, then put the native BLAS back. */
function onWasmMatmuls(fn: () => void): void {
  disableBlas();
  try {
    fn();
  } finally {
    enableBlas();
  }
}

Deno.test("SIMD NT kernel equals tf.matMul on odd shapes", () => {
  // The kernel serves wasm without native BLAS (with it, tf.matMul's NT products run on the BLAS).
  onWasmMatmuls(simdCases);
});

function simdCases(): void {
  assert(useSimdKernel(), "the SIMD kernel should load on wasm");
  for (
    const [lead, n, m, k] of [[[3], 5, 7, 6], [[2, 3], 1, 9, 4], [[4], 17, 3, 33], [[1], 2, 4, 8]] as const
  ) {
    const a = tf.randomNormal([...lead, n, k], 0, 1, "float32", 1),
      b = tf.randomNormal([...lead, m, k], 0, 1, "float32", 2);
    const x = tf.matMul(a, b, false, true), y = matMulNT(a, b);
    assert(JSON.stringify(x.shape) === JSON.stringify(y.shape));
    close(x, y, 1e-4, `shape ${lead},${n},${m},${k}`);
    tf.dispose([a, b, x, y]);
  }
}

Deno.test("custom ops: values and gradients equal plain tfjs (tfjs-wasm matmuls, transposes copied)", () => {
  onWasmMatmuls(customOpCases);
});

const NATIVE = blasActive();

Deno.test({
  name: "custom ops: values and gradients equal plain tfjs (native BLAS, transposes passed as flags)",
  ignore: !NATIVE,
  fn: () => {
    assert(blasActive());
    customOpCases();
  },
});

function customOpCases(): void {
  tf.tidy(() => {
    const x = tf.randomNormal([6, 5], 0, 1, "float32", 3), w = tf.randomNormal([5, 4], 0, 1, "float32", 4);
    const b = tf.randomNormal([4], 0, 1, "float32", 5), up = tf.randomNormal([6, 4], 0, 1, "float32", 6);
    const f1 = (x: tf.Tensor, w: tf.Tensor, b: tf.Tensor) =>
      _ops.linear(x as tf.Tensor2D, w as tf.Tensor2D, b).mul(up).sum();
    const r1 = (x: tf.Tensor, w: tf.Tensor, b: tf.Tensor) => tf.matMul(x, w).add(b).mul(up).sum();
    const g1 = tf.grads(f1)([x, w, b]), h1 = tf.grads(r1)([x, w, b]);
    g1.forEach((g, i) => close(g, h1[i], 1e-4, `linear grad ${i}`));

    const e = tf.randomNormal([7, 5], 0, 1, "float32", 7), up2 = tf.randomNormal([6, 7], 0, 1, "float32", 8);
    const f2 = (a: tf.Tensor, e: tf.Tensor) =>
      _ops.matMulNT2d(a as tf.Tensor2D, e as tf.Tensor2D).mul(up2).sum();
    const r2 = (a: tf.Tensor, e: tf.Tensor) => tf.matMul(a, e, false, true).mul(up2).sum();
    const g2 = tf.grads(f2)([x, e]), h2 = tf.grads(r2)([x, e]);
    g2.forEach((g, i) => close(g, h2[i], 1e-4, `tied projection grad ${i}`));

    const q = tf.randomNormal([2, 3, 5, 4], 0, 1, "float32", 9),
      k = tf.randomNormal([2, 3, 6, 4], 0, 1, "float32", 10);
    const up3 = tf.randomNormal([2, 3, 5, 6], 0, 1, "float32", 11);
    const f3 = (q: tf.Tensor, k: tf.Tensor) => _ops.bmmNT(q, k).mul(up3).sum();
    const r3 = (q: tf.Tensor, k: tf.Tensor) => tf.matMul(q, k, false, true).mul(up3).sum();
    close(_ops.bmmNT(q, k), tf.matMul(q, k, false, true), 1e-4, "bmmNT value");
    const g3 = tf.grads(f3)([q, k]), h3 = tf.grads(r3)([q, k]);
    g3.forEach((g, i) => close(g, h3[i], 1e-4, `bmmNT grad ${i}`));

    const v = tf.randomNormal([2, 3, 6, 4], 0, 1, "float32", 14);
    const f5 = (p: tf.Tensor, v: tf.Tensor) =>
      _ops.bmm(p, v).mul(up3.slice([0, 0, 0, 0], [2, 3, 5, 4])).sum();
    const r5 = (p: tf.Tensor, v: tf.Tensor) =>
      tf.matMul(p, v).mul(up3.slice([0, 0, 0, 0], [2, 3, 5, 4])).sum();
    const p = tf.softmax(tf.randomNormal([2, 3, 5, 6], 0, 1, "float32", 15));
    close(_ops.bmm(p, v), tf.matMul(p, v), 1e-4, "bmm value");
    const g5 = tf.grads(f5)([p, v]), h5 = tf.grads(r5)([p, v]);
    g5.forEach((g, i) => close(g, h5[i], 1e-4, `bmm grad ${i}`));

    const table = tf.randomNormal([5, 3], 0, 1, "float32", 12);
    const idx = tf.tensor1d([1, 1, 4, 0], "int32");
    const up4 = tf.randomNormal([4, 3], 0, 1, "float32", 13);
    const g4 = tf.grad((t: tf.Tensor) => _ops.embedLookup(t, idx).mul(up4).sum())(table);
    const h4 = tf.grad((t: tf.Tensor) => tf.matMul(tf.oneHot(idx, 5), t).mul(up4).sum())(table);
    close(g4, h4, 1e-5, "embedding grad (duplicate indices sum)");
  });
}
