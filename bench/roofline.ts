/**
 * The roofline of the current tfjs backend: measured dense matmul throughput (GFLOP/s), and the arithmetic
 * that turns a measured rollout throughput (tokens/s) into a fraction of it using the model's FLOPs per token
 * (lib/model/config.ts `flopsPerToken`, multiply-add = 2 FLOPs).
 *
 * The roofline is the best matmul rate the backend reaches on one large square product (default 512^3,
 * the roofline of docs/DESIGN.md "Benchmark targets"); `decodeMatmuls` also measures the matmul shapes a
 * decoding step actually runs, which is the honest ceiling for small batches.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { ModelConfig } from "../lib/model/types.ts";

/** Median and spread of repeated timings, in milliseconds. */
export interface Timing {
  medianMs: number;
  minMs: number;
  maxMs: number;
  reps: number;
}

/** Median of a list of numbers (the list is not modified). */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/**
 * Time `fn` (which must return a tensor or a promise; its result is read back with `data()` so asynchronous
 * backends are timed to completion, then disposed) `reps` times after `warmup` untimed calls.
 */
export async function timeOp(
  fn: () => tf.Tensor,
  opts: { reps?: number; warmup?: number } = {},
): Promise<Timing> {
  const reps = Math.max(1, opts.reps ?? 10), warmup = opts.warmup ?? 2;
  const once = async () => {
    const t0 = performance.now();
    const out = fn();
    await out.data();
    const dt = performance.now() - t0;
    out.dispose();
    return dt;
  };
  for (let i = 0; i < warmup; i++) await once();
  const ts: number[] = [];
  for (let i = 0; i < reps; i++) ts.push(await once());
  return { medianMs: median(ts), minMs: Math.min(...ts), maxMs: Math.max(...ts), reps };
}

/** A matmul shape: [m, k] x [k, n] (b stored as [n, k] when transposeB). */
export interface MatmulShape {
  m: number;
  k: number;
  n: number;
  transposeB?: boolean;
  /** Label for reports. */
  label?: string;
}

export interface MatmulResult extends MatmulShape {
  gflops: number;
  timing: Timing;
}

/** Measure one matmul shape on the current backend: GFLOP/s at the median time (2*m*k*n FLOPs per call). */
export async function measureMatmul(
  shape: MatmulShape,
  opts: { reps?: number; warmup?: number } = {},
): Promise<MatmulResult> {
  const { m, k, n } = shape;
  const a = tf.randomNormal([m, k]) as tf.Tensor2D;
  const b = (shape.transposeB ? tf.randomNormal([n, k]) : tf.randomNormal([k, n])) as tf.Tensor2D;
  try {
    const timing = await timeOp(() => tf.matMul(a, b, false, shape.transposeB ?? false), opts);
    return { ...shape, gflops: (2 * m * k * n) / (timing.medianMs * 1e6), timing };
  } finally {
    a.dispose();
    b.dispose();
  }
}

/**
 * The backend's roofline: the best median GFLOP/s over square matmuls of the given sizes (default 256, 512;
 * 1024 is added on GPU backends where small products are dispatch-bound).
 */
export async function measureRoofline(opts: { sizes?: number[]; reps?: number } = {}): Promise<{
  gflops: number;
  bySize: MatmulResult[];
}> {
  const gpu = tf.getBackend() === "webgpu" || tf.getBackend() === "webgl";
  const sizes = opts.sizes ?? (gpu ? [512, 1024, 2048] : [256, 512]);
  const bySize: MatmulResult[] = [];
  for (const s of sizes) {
    bySize.push(await measureMatmul({ m: s, k: s, n: s, label: `${s}^3` }, { reps: opts.reps }));
  }
  return { gflops: Math.max(...bySize.map((r) => r.gflops)), bySize };
}

/** The matmuls of one KV-cached decoding step of `cfg` at batch B (per layer: qkv, out, fc, proj; then the head). */
export function decodeMatmulShapes(cfg: ModelConfig, B: number): MatmulShape[] {
  const d = cfg.dModel;
  return [
    { m: B, k: d, n: 3 * d, label: "qkv" },
    { m: B, k: d, n: d, label: "attn.out" },
    { m: B, k: d, n: cfg.dFF, label: "mlp.fc" },
    { m: B, k: cfg.dFF, n: d, label: "mlp.proj" },
    { m: B, k: d, n: cfg.vocabSize, label: "head [d,V]" },
    {
      m: B,
      k: d,
      n: cfg.vocabSize,
      transposeB: true,
      label: "head [V,d] via the transposeB flag (tfjs-wasm slow path)",
    },
  ];
}

/** Measure the decode-step matmul shapes of `cfg` at batch B. */
export async function decodeMatmuls(cfg: ModelConfig, B: number, reps = 10): Promise<MatmulResult[]> {
  const out: MatmulResult[] = [];
  for (const s of decodeMatmulShapes(cfg, B)) out.push(await measureMatmul(s, { reps }));
  return out;
}

/** The roofline throughput in tokens/s for a model costing `flopsPerToken` FLOPs per token. */
export function rooflineTokensPerSec(gflops: number, flopsPerToken: number): number {
  return (gflops * 1e9) / flopsPerToken;
}

/** Measured tokens/s as a percentage of the roofline (tokens/s x FLOPs/token over the matmul FLOP/s). */
export function pctOfRoofline(tokensPerSec: number, flopsPerToken: number, gflops: number): number {
  return (100 * tokensPerSec * flopsPerToken) / (gflops * 1e9);
}
