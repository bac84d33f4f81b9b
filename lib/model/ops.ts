/**
 * Differentiable building blocks of the VLM (tfjs ops with hand-written gradients), the layer norm and its
 * host twin, and the GELU approximation. Every forward of lib/model (training, grouped log-probs, decoding)
 * goes through these, so their float results define the model's numbers.
 *
 * Matmuls and the wasm backend. tfjs-backend-wasm runs BatchMatMul through XNNPACK only when neither operand
 * is transposed and both have batch size 1; everything else (transposeA/B flags, batched operands) falls
 * back to a scalar blocked loop that is ~10x slower. tfjs's own matMul gradients use the transpose flags,
 * so a dense layer's backward pass ran at ~1 GFLOP/s. The ops below have hand-written gradients that
 * transpose explicitly (a cheap copy) and then use the fast path. Batched attention matmuls cannot use
 * XNNPACK at all; they are written in the "NT" form (both operands contiguous along the summed axis), the
 * slow loop's best case, and run through a SIMD kernel of our own on wasm (lib/model/kernels.ts).
 *
 * With the native BLAS (lib/model/blas.ts) every layout is at full speed, so there the ops pass transposes to
 * the product as flags instead of copying the operand first: no Transpose kernel, no transposed copy held by
 * the tape. The sums are the same up to float order (tests/blas_test.ts: within 1e-5 of the wasm path).
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { matMulNT } from "./kernels.ts";
import { blasActive } from "./blas.ts";

/** The additive mask value of a forbidden attention score (and of a token outside the top-p nucleus). */
export const NEG = -1e9;

/** LayerNorm over the last axis: (x - mean) / sqrt(var + 1e-5) * g + b. */
export function layerNorm(x: tf.Tensor, g: tf.Tensor, b: tf.Tensor): tf.Tensor {
  const { mean, variance } = tf.moments(x, -1, true);
  return x.sub(mean).mul(variance.add(1e-5).rsqrt()).mul(g).add(b);
}

/**
 * LayerNorm of each d-wide row of x into out (host, f64 accumulation): (x - mean) / sqrt(var + 1e-5) * g + b,
 * the function of `layerNorm`.
 */
export function layerNormHost(
  x: Float32Array,
  g: Float32Array,
  b: Float32Array,
  out: Float32Array,
  d: number,
): void {
  for (let r = 0; r < x.length; r += d) {
    let m = 0;
    for (let i = 0; i < d; i++) m += x[r + i];
    m /= d;
    let v = 0;
    for (let i = 0; i < d; i++) {
      const c = x[r + i] - m;
      v += c * c;
    }
    const inv = 1 / Math.sqrt(v / d + 1e-5);
    for (let i = 0; i < d; i++) out[r + i] = (x[r + i] - m) * inv * g[i] + b[i];
  }
}

/** tf.customGrad with a typed signature (its own typing cannot express (...tensors, save) functions). */
function customOp<F>(
  // deno-lint-ignore no-explicit-any
  f: (...args: any[]) => { value: tf.Tensor; gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.Tensor[] },
): F {
  return tf.customGrad(f as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as F;
}

/** x [N, i] @ w [i, o] + b, with fast-path gradients. */
export const linear = customOp<(x: tf.Tensor2D, w: tf.Tensor2D, b: tf.Tensor) => tf.Tensor2D>(
  (x: tf.Tensor, w: tf.Tensor, b: tf.Tensor, save: tf.GradSaveFunc) => {
    save([x, w]);
    return {
      value: tf.fused.matMul({ a: x as tf.Tensor2D, b: w as tf.Tensor2D, bias: b }),
      gradFunc: (dy: tf.Tensor, [sx, sw]: tf.Tensor[]) =>
        blasActive()
          ? [
            tf.matMul(dy as tf.Tensor2D, sw as tf.Tensor2D, false, true),
            tf.matMul(sx as tf.Tensor2D, dy as tf.Tensor2D, true, false),
            dy.sum(0),
          ]
          : [
            tf.matMul(dy as tf.Tensor2D, sw.transpose() as tf.Tensor2D),
            tf.matMul(sx.transpose() as tf.Tensor2D, dy as tf.Tensor2D),
            dy.sum(0),
          ],
    };
  },
);

/** a [N, k] @ b[M, k]^T -> [N, M] (the tied output projection), with fast-path forward and gradients. */
export const matMulNT2d = customOp<(a: tf.Tensor2D, b: tf.Tensor2D) => tf.Tensor2D>(
  (a: tf.Tensor, b: tf.Tensor, save: tf.GradSaveFunc) => {
    save([a, b]);
    return {
      value: blasActive()
        ? tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D, false, true)
        : tf.matMul(a as tf.Tensor2D, b.transpose() as tf.Tensor2D),
      gradFunc: (dy: tf.Tensor, [sa, sb]: tf.Tensor[]) => [
        tf.matMul(dy as tf.Tensor2D, sb as tf.Tensor2D),
        blasActive()
          ? tf.matMul(dy as tf.Tensor2D, sa as tf.Tensor2D, true, false)
          : tf.matMul(dy.transpose() as tf.Tensor2D, sa as tf.Tensor2D),
      ],
    };
  },
);

/** x with its last two axes swapped. */
export function swapLast2(x: tf.Tensor): tf.Tensor {
  const r = x.rank;
  const perm = [...Array(r).keys()];
  [perm[r - 2], perm[r - 1]] = [perm[r - 1], perm[r - 2]];
  return x.transpose(perm);
}

/** Batched a [..., n, k] @ b [..., m, k]^T -> [..., n, m]; gradients also in NT form. */
export const bmmNT = customOp<(a: tf.Tensor, b: tf.Tensor) => tf.Tensor>(
  (a: tf.Tensor, b: tf.Tensor, save: tf.GradSaveFunc) => {
    save([a, b]);
    return {
      value: matMulNT(a, b),
      gradFunc: (dy: tf.Tensor, [sa, sb]: tf.Tensor[]) =>
        blasActive() ? [tf.matMul(dy, sb), tf.matMul(dy, sa, true, false)] : [
          // da = dy @ b = dy @ (b^T)^T ; db = dy^T @ a = dy^T @ (a^T)^T
          matMulNT(dy, swapLast2(sb)),
          matMulNT(swapLast2(dy), swapLast2(sa)),
        ],
    };
  },
);

/** Batched a [..., n, k] @ b [..., k, m] -> [..., n, m] with the native BLAS (every layout by flags). */
const bmmNNBlas = customOp<(a: tf.Tensor, b: tf.Tensor) => tf.Tensor>(
  (a: tf.Tensor, b: tf.Tensor, save: tf.GradSaveFunc) => {
    save([a, b]);
    return {
      value: tf.matMul(a, b),
      gradFunc: (dy: tf.Tensor, [sa, sb]: tf.Tensor[]) => [
        tf.matMul(dy, sb, false, true),
        tf.matMul(sa, dy, true, false),
      ],
    };
  },
);

/**
 * Batched a [..., n, k] @ b [..., k, m] -> [..., n, m] (attention weights times values): one product with the
 * native BLAS; elsewhere b is transposed first and the NT form runs (bmmNT).
 */
export function bmm(a: tf.Tensor, b: tf.Tensor): tf.Tensor {
  return blasActive() ? bmmNNBlas(a, b) : bmmNT(a, swapLast2(b));
}

/** The GELU approximation x * sigmoid(1.702 x): 3 ops instead of 8 on wasm. */
export function gelu(x: tf.Tensor): tf.Tensor {
  return x.mul(tf.sigmoid(x.mul(1.702)));
}

/**
 * Embedding lookup with a gradient that works on every backend: tf.gather's gradient needs
 * UnsortedSegmentSum, which the wasm backend lacks; ScatterNd (which sums duplicate indices) does exist.
 */
export const embedLookup = customOp<(table: tf.Tensor, idx: tf.Tensor) => tf.Tensor2D>(
  (table: tf.Tensor, idx: tf.Tensor, save: tf.GradSaveFunc) => {
    save([idx]);
    const shape = table.shape;
    return {
      value: tf.gather(table, idx),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [ix] = saved;
        return [tf.scatterND(ix.reshape([-1, 1]), dy, shape), tf.zerosLike(ix)];
      },
    };
  },
);
