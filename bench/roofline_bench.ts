/**
 * Matmul throughput of the current backend: the roofline squares, and the matmul shapes of one decoding
 * step of the bench preset at 64 rows (including the tied output head as lib/model computes it, with
 * transposeB). GFLOP/s = 2 m k n / time; `deno bench` prints the times.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { benchContext } from "./common.ts";
import { decodeMatmulShapes } from "./roofline.ts";

const ctx = await benchContext();

function matmulBench(group: string, m: number, k: number, n: number, transposeB: boolean, label: string) {
  const a = tf.randomNormal([m, k]) as tf.Tensor2D;
  const b = (transposeB ? tf.randomNormal([n, k]) : tf.randomNormal([k, n])) as tf.Tensor2D;
  const gf = (2 * m * k * n) / 1e9;
  Deno.bench({
    name: `${label} [${m},${k}]x[${k},${n}]${transposeB ? " tB" : ""} (${gf.toFixed(4)} GFLOP)`,
    group,
    warmup: 3,
    n: 20,
    async fn() {
      const c = tf.matMul(a, b, false, transposeB);
      await c.data();
      c.dispose();
    },
  });
}

for (const s of [256, 512]) matmulBench("roofline", s, s, s, false, `square ${s}`);
for (const s of decodeMatmulShapes(ctx.cfg, 64)) {
  matmulBench("decode-step matmuls (64 rows)", s.m, s.k, s.n, s.transposeB ?? false, s.label ?? "");
}
