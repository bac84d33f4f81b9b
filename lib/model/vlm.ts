/**
 * The small VLM: a vision encoder over all image patches of an example, projected into a causal pre-LN
 * transformer decoder over [image tokens ; text tokens].
 *
 * Vision encoder
 * - ground panorama: patches `vision.groundPatch` (small: full-height vertical strips [32, 8], so each token
 *   is one azimuth sector); aerial tiles: polar-resampled and cut into full-radius azimuth sectors on the
 *   ground strips' bearings (VisionConfig.aerialLayout). Pixels are mapped to [-1, 1].
 * - separate patch embeddings per view kind (the patch shapes differ), one learned position embedding per
 *   azimuth sector shared by ground and aerial tokens, learned view-type embeddings (ground, A, B, C, D),
 *   both gating the patch embedding and added to it (VisionConfig.embedGating).
 * - shared transformer layers over ALL image tokens of an example jointly (bidirectional), so the encoder
 *   can compare views; final LayerNorm; a linear projector into the decoder width.
 * Decoder
 * - token embedding (tied with the output projection) + learned position embeddings of TEXT positions,
 *   counted over real tokens only (left padding never shifts a position). Image tokens carry their
 *   position from the vision encoder.
 * - attention mask: image tokens attend to all image tokens (bidirectional prefix); text tokens attend to
 *   all image tokens and to earlier-or-same real text tokens; padding keys are masked. Every query may
 *   always attend to itself, so padded rows stay finite.
 * - blocks: x += Attn(LN(x)); x += MLP(LN(x)), with one fused QKV matmul, batched attention over heads, and
 *   the GELU approximation x * sigmoid(1.702 x) (3 ops instead of 8 on wasm).
 * No dropout: training and inference forwards are identical (this keeps resumed runs bitwise equal).
 * Weights are initialised deterministically from `cfg.seed` (each tensor from `deriveSeed(seed, name)`).
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { stopGradient } from "./grad.ts";
import { deriveSeed, Rng } from "../rng.ts";
import { aerialPatchSize, imageTokenCounts, validateConfig } from "./config.ts";
import { DecodeAttention, matMulNT } from "./kernels.ts";
import { CUE_GROUP_OFFSETS, CUE_GROUPS, CUE_ROAD_OUTPUTS } from "../data/cue_labels.ts";
import type {
  GenerateOptions,
  GenerateResult,
  GroupLayout,
  ModelConfig,
  ModelInput,
  SlotSegments,
  VLM,
} from "./types.ts";

/** Name, shape and initialiser of one parameter tensor. */
export interface ParamSpec {
  name: string;
  shape: number[];
  init: "zeros" | "ones" | "normal";
  std?: number;
}

/** Every parameter of a config, in a fixed order (the checkpoint's tensor list). */
export function paramSpecs(cfg: ModelConfig): ParamSpec[] {
  const out: ParamSpec[] = [];
  const v = cfg.vision;
  const dv = v.dModel, d = cfg.dModel;
  const n = imageTokenCounts(cfg);
  const [ph, pw] = v.groundPatch;
  const lin = (name: string, i: number, o: number, std: number) => {
    out.push({ name: `${name}.w`, shape: [i, o], init: "normal", std });
    out.push({ name: `${name}.b`, shape: [o], init: "zeros" });
  };
  const norm = (name: string, w: number) => {
    out.push({ name: `${name}.g`, shape: [w], init: "ones" });
    out.push({ name: `${name}.b`, shape: [w], init: "zeros" });
  };
  const block = (pre: string, w: number, ff: number, nl: number) => {
    const resid = 0.02 / Math.sqrt(2 * nl);
    norm(`${pre}.ln1`, w);
    lin(`${pre}.attn.qkv`, w, 3 * w, 0.02);
    lin(`${pre}.attn.out`, w, w, resid);
    norm(`${pre}.ln2`, w);
    lin(`${pre}.mlp.fc`, w, ff, 0.02);
    lin(`${pre}.mlp.proj`, ff, w, resid);
  };
  const gIn = ph * pw * 3, aIn = aerialPatchSize(cfg);
  lin("vis.patch_ground", gIn, dv, 1 / Math.sqrt(gIn));
  lin("vis.patch_aerial", aIn, dv, 1 / Math.sqrt(aIn));
  // Gated embeddings start at content scale (VisionConfig.embedGating). Polar aerial sectors share the
  // ground strips' azimuth embedding (VisionConfig.aerialLayout), so there is no aerial position table.
  out.push({ name: "vis.pos_ground", shape: [n.ground, dv], init: "normal", std: 1 });
  out.push({ name: "vis.view_type", shape: [1 + cfg.maxCandidates, dv], init: "normal", std: 1 });
  for (let i = 0; i < v.nLayers; i++) block(`vis.layers.${i}`, dv, 4 * dv, v.nLayers);
  norm("vis.ln_f", dv);
  // Image tokens enter the decoder at the scale of text embeddings (token + position, std 0.02 each), not
  // ~35x above it: otherwise the decoder's pre-LN shrinks every gradient into the vision side by that factor.
  lin("proj", dv, d, (0.02 * Math.SQRT2) / Math.sqrt(dv));
  out.push({ name: "dec.tok_emb", shape: [cfg.vocabSize, d], init: "normal", std: 0.02 });
  out.push({ name: "dec.pos_emb", shape: [cfg.maxText, d], init: "normal", std: 0.02 });
  for (let i = 0; i < cfg.nLayers; i++) block(`dec.layers.${i}`, d, cfg.dFF, cfg.nLayers);
  norm("dec.ln_f", d);
  // Candidate-slot segment embeddings (ModelConfig.slots): row 0 "no slot", row k+1 slot k.
  if (cfg.slots) {
    out.push({ name: "dec.slot_emb", shape: [1 + cfg.maxCandidates, d], init: "normal", std: 0.02 });
  }
  // Auxiliary cue heads (ModelConfig.cueHead): one linear map from the concatenated vision states of one view.
  if (cfg.cueHead) {
    lin("aux.cue_ground", n.ground * dv, cfg.cueHead, 1 / Math.sqrt(n.ground * dv));
    lin("aux.cue_aerial", n.aerial * dv, cfg.cueHead, 1 / Math.sqrt(n.aerial * dv));
    // Cue-conditioned text (ModelConfig.cueText): ground cues to every text token, a tile's to its segment.
    if (cfg.cueText) {
      lin("aux.cue_text_ground", cfg.cueHead, d, 0.02);
      lin("aux.cue_text_aerial", cfg.cueHead, d, 0.02);
      if (cfg.cueMatch) lin("aux.cue_match", cfg.cueHead, d, 0.02);
      if (cfg.cueMatchAll) lin("aux.cue_match_all", cfg.maxCandidates * cfg.cueHead, d, 0.02);
    }
  }
  return out;
}

function initValues(p: ParamSpec, seed: number): Float32Array {
  const size = p.shape.reduce((a, b) => a * b, 1);
  const a = new Float32Array(size);
  if (p.init === "ones") a.fill(1);
  else if (p.init === "normal") {
    const rng = new Rng(deriveSeed(seed, p.name));
    const std = p.std ?? 0.02;
    for (let i = 0; i < size; i++) {
      // Truncated at 2 std, like common transformer inits.
      let z = rng.normal();
      while (z > 2 || z < -2) z = rng.normal();
      a[i] = z * std;
    }
  }
  return a;
}

let instances = 0;

/** A view of one transformer block's parameters. */
interface BlockP {
  ln1g: tf.Tensor;
  ln1b: tf.Tensor;
  qkvW: tf.Tensor2D;
  qkvB: tf.Tensor;
  outW: tf.Tensor2D;
  outB: tf.Tensor;
  ln2g: tf.Tensor;
  ln2b: tf.Tensor;
  fcW: tf.Tensor2D;
  fcB: tf.Tensor;
  projW: tf.Tensor2D;
  projB: tf.Tensor;
}

const NEG = -1e9;

function layerNorm(x: tf.Tensor, g: tf.Tensor, b: tf.Tensor): tf.Tensor {
  const { mean, variance } = tf.moments(x, -1, true);
  return x.sub(mean).mul(variance.add(1e-5).rsqrt()).mul(g).add(b);
}

/** tf.customGrad with a typed signature (its own typing cannot express (...tensors, save) functions). */
function customOp<F>(
  // deno-lint-ignore no-explicit-any
  f: (...args: any[]) => { value: tf.Tensor; gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.Tensor[] },
): F {
  return tf.customGrad(f as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as F;
}

/*
 * Matmuls and the wasm backend. tfjs-backend-wasm runs BatchMatMul through XNNPACK only when neither operand
 * is transposed and both have batch size 1; everything else (transposeA/B flags, batched operands) falls
 * back to a scalar blocked loop that is ~10x slower. tfjs's own matMul gradients use the transpose flags,
 * so a dense layer's backward pass ran at ~1 GFLOP/s. The ops below have hand-written gradients that
 * transpose explicitly (a cheap copy) and then use the fast path. Batched attention matmuls cannot use
 * XNNPACK at all; they are written in the "NT" form (both operands contiguous along the summed axis), the
 * slow loop's best case, and run through a SIMD kernel of our own on wasm (lib/model/kernels.ts).
 */

/** x [N, i] @ w [i, o] + b, with fast-path gradients. */
const linear = customOp<(x: tf.Tensor2D, w: tf.Tensor2D, b: tf.Tensor) => tf.Tensor2D>(
  (x: tf.Tensor, w: tf.Tensor, b: tf.Tensor, save: tf.GradSaveFunc) => {
    save([x, w]);
    return {
      value: tf.fused.matMul({ a: x as tf.Tensor2D, b: w as tf.Tensor2D, bias: b }),
      gradFunc: (dy: tf.Tensor, [sx, sw]: tf.Tensor[]) => [
        tf.matMul(dy as tf.Tensor2D, sw.transpose() as tf.Tensor2D),
        tf.matMul(sx.transpose() as tf.Tensor2D, dy as tf.Tensor2D),
        dy.sum(0),
      ],
    };
  },
);

/** a [N, k] @ b[M, k]^T -> [N, M] (the tied output projection), with fast-path forward and gradients. */
const matMulNT2d = customOp<(a: tf.Tensor2D, b: tf.Tensor2D) => tf.Tensor2D>(
  (a: tf.Tensor, b: tf.Tensor, save: tf.GradSaveFunc) => {
    save([a, b]);
    return {
      value: tf.matMul(a as tf.Tensor2D, b.transpose() as tf.Tensor2D),
      gradFunc: (dy: tf.Tensor, [sa, sb]: tf.Tensor[]) => [
        tf.matMul(dy as tf.Tensor2D, sb as tf.Tensor2D),
        tf.matMul(dy.transpose() as tf.Tensor2D, sa as tf.Tensor2D),
      ],
    };
  },
);

function swapLast2(x: tf.Tensor): tf.Tensor {
  const r = x.rank;
  const perm = [...Array(r).keys()];
  [perm[r - 2], perm[r - 1]] = [perm[r - 1], perm[r - 2]];
  return x.transpose(perm);
}

/** Batched a [..., n, k] @ b [..., m, k]^T -> [..., n, m]; gradients also in NT form. */
const bmmNT = customOp<(a: tf.Tensor, b: tf.Tensor) => tf.Tensor>(
  (a: tf.Tensor, b: tf.Tensor, save: tf.GradSaveFunc) => {
    save([a, b]);
    return {
      value: matMulNT(a, b),
      gradFunc: (dy: tf.Tensor, [sa, sb]: tf.Tensor[]) => [
        // da = dy @ b = dy @ (b^T)^T ; db = dy^T @ a = dy^T @ (a^T)^T
        matMulNT(dy, swapLast2(sb)),
        matMulNT(swapLast2(dy), swapLast2(sa)),
      ],
    };
  },
);

function gelu(x: tf.Tensor): tf.Tensor {
  return x.mul(tf.sigmoid(x.mul(1.702)));
}

/**
 * Embedding lookup with a gradient that works on every backend: tf.gather's gradient needs
 * UnsortedSegmentSum, which the wasm backend lacks; ScatterNd (which sums duplicate indices) does exist.
 */
const embedLookup = customOp<(table: tf.Tensor, idx: tf.Tensor) => tf.Tensor2D>(
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

/** [N, H, W, 3] -> [N, (H/ph)*(W/pw), ph*pw*3] in raster order of the patch grid. */
function patchify(x: tf.Tensor4D, ph: number, pw: number): tf.Tensor3D {
  const [N, H, W, C] = x.shape;
  const nh = H / ph, nw = W / pw;
  return x.reshape([N, nh, ph, nw, pw, C]).transpose([0, 1, 3, 2, 4, 5]).reshape([N, nh * nw, ph * pw * C]);
}

/**
 * Bilinear polar resampling of an S x S tile as a gather: for each of the radii x azimuths polar samples
 * (row-major, ring r innermost first, column a at azimuth 360 a / azimuths clockwise from north), the four
 * neighbouring pixel indices (into the flattened S*S tile) and their weights. North is up in the tile, so the
 * point at bearing t and distance rho (pixels) from the centre is (x, y) = (S/2 + rho sin t, S/2 - rho cos t)
 * in continuous pixel coordinates (pixel i spans [i, i+1)); ring r samples rho = (r + 0.5) / radii * S/2.
 */
export function polarSampling(
  S: number,
  radii: number,
  azimuths: number,
): { idx: Int32Array; w: Float32Array } {
  const n = radii * azimuths;
  const idx = new Int32Array(n * 4), w = new Float32Array(n * 4);
  const clamp = (v: number) => Math.min(S - 1, Math.max(0, v));
  for (let r = 0; r < radii; r++) {
    const rho = ((r + 0.5) / radii) * (S / 2);
    for (let a = 0; a < azimuths; a++) {
      const t = (2 * Math.PI * a) / azimuths;
      // Continuous coordinates -> pixel-centre coordinates.
      const x = S / 2 + rho * Math.sin(t) - 0.5, y = S / 2 - rho * Math.cos(t) - 0.5;
      const x0 = Math.floor(x), y0 = Math.floor(y);
      const fx = x - x0, fy = y - y0;
      const o = (r * azimuths + a) * 4;
      const corners: [number, number, number][] = [
        [x0, y0, (1 - fx) * (1 - fy)],
        [x0 + 1, y0, fx * (1 - fy)],
        [x0, y0 + 1, (1 - fx) * fy],
        [x0 + 1, y0 + 1, fx * fy],
      ];
      corners.forEach(([cx, cy, cw], j) => {
        idx[o + j] = clamp(cy) * S + clamp(cx);
        w[o + j] = cw;
      });
    }
  }
  return { idx, w };
}

/** Generated-token cache, per layer: K [B, H, t, dh] and V transposed [B, H, dh, t]. */
type KV = {
  k: tf.Tensor4D[];
  v: tf.Tensor4D[];
};

/** Cue logits of one forward (ModelConfig.cueHead): ground [B, n] and aerial [B * K, n], null when absent. */
type VisionStates = { ground: tf.Tensor2D | null; aerial: tf.Tensor2D | null };

/** Holder for the cue-conditioned text table of one forward (see TfVLM#cueTextTable). */
type CueText = { table: tf.Tensor2D | null };

/**
 * Cue logits -> probabilities in the head's layout (lib/data/cue_labels.ts): a sigmoid per road axis and a
 * softmax per categorical group. What a cue token embeds.
 */
function cueProbabilities(lg: tf.Tensor2D): tf.Tensor2D {
  const n = lg.shape[0];
  const parts = [tf.sigmoid(lg.slice([0, 0], [n, CUE_ROAD_OUTPUTS]))];
  CUE_GROUPS.forEach((g, j) =>
    parts.push(tf.softmax(lg.slice([0, CUE_GROUP_OFFSETS[j]], [n, g.classes.length])))
  );
  return tf.concat(parts, 1) as tf.Tensor2D;
}

/** The shared prefix cache of P prompts: K [P, H, S0, dh], V transposed [P, H, dh, S0], key mask [P, 1, 1, S0]. */
type Prefix = { P: number; k: tf.Tensor4D[]; v: tf.Tensor4D[]; bias: tf.Tensor };

/** The host-side decoding step of one generate() call on wasm (see TfVLM#hostDecoder). */
type HostDecoder = { step(tok: tf.Tensor1D, s: number): tf.Tensor2D; dispose(): void };

/**
 * LayerNorm of each d-wide row of x into out (host, f64 accumulation): (x - mean) / sqrt(var + 1e-5) * g + b,
 * the function of `layerNorm` below.
 */
function layerNormHost(
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

/** The tfjs implementation of VLM. */
export class TfVLM implements VLM {
  readonly config: ModelConfig;
  readonly #params = new Map<string, tf.Variable>();
  readonly #trainable: boolean;
  #disposed = false;

  constructor(cfg: ModelConfig, opts: { trainable?: boolean; from?: Map<string, tf.Tensor> } = {}) {
    validateConfig(cfg, "config");
    this.config = structuredClone(cfg);
    this.#trainable = opts.trainable ?? true;
    const prefix = `vlm${instances++}`;
    for (const p of paramSpecs(cfg)) {
      const src = opts.from?.get(p.name);
      const t = src ? src.clone() : tf.tensor(initValues(p, cfg.seed), p.shape, "float32");
      this.#params.set(p.name, tf.variable(t, this.#trainable, `${prefix}/${p.name}`));
      t.dispose();
    }
  }

  trainable(): tf.Variable[] {
    return this.#trainable ? [...this.#params.values()] : [];
  }

  /** Parameters by checkpoint name (no instance prefix), in paramSpecs order. */
  namedParams(): [string, tf.Variable][] {
    return [...this.#params.entries()];
  }

  /** Overwrite weights from host arrays (checkpoint load / resume); every name must exist with its shape. */
  setWeights(values: Map<string, Float32Array>): void {
    for (const [name, v] of this.#params) {
      const a = values.get(name);
      if (!a) throw new Error(`setWeights: missing tensor ${name}`);
      if (a.length !== v.size) {
        throw new Error(`setWeights: ${name} has ${a.length} values, expected ${v.size}`);
      }
      tf.tidy(() => v.assign(tf.tensor(a, v.shape, "float32")));
    }
  }

  #p(name: string): tf.Variable {
    const v = this.#params.get(name);
    if (!v) throw new Error(`no parameter ${name}`);
    return v;
  }

  #block(pre: string): BlockP {
    const p = (s: string) => this.#p(`${pre}.${s}`);
    return {
      ln1g: p("ln1.g"),
      ln1b: p("ln1.b"),
      qkvW: p("attn.qkv.w") as tf.Tensor2D,
      qkvB: p("attn.qkv.b"),
      outW: p("attn.out.w") as tf.Tensor2D,
      outB: p("attn.out.b"),
      ln2g: p("ln2.g"),
      ln2b: p("ln2.b"),
      fcW: p("mlp.fc.w") as tf.Tensor2D,
      fcB: p("mlp.fc.b"),
      projW: p("mlp.proj.w") as tf.Tensor2D,
      projB: p("mlp.proj.b"),
    };
  }

  /**
   * One block over a full sequence. x: [B*S, w]; bias: [B, 1, S, S] additive mask or null (no mask).
   * Returns the new residual stream and this layer's K, V ([B, H, S, dh]).
   */
  #blockFull(
    x: tf.Tensor2D,
    bp: BlockP,
    B: number,
    S: number,
    H: number,
    bias: tf.Tensor | null,
  ): { x: tf.Tensor2D; k: tf.Tensor4D; v: tf.Tensor4D } {
    const w = x.shape[1];
    const dh = w / H;
    const h = layerNorm(x, bp.ln1g, bp.ln1b) as tf.Tensor2D;
    // Split first: a rank-5 transpose falls off the wasm fast path (~50x slower than rank 4).
    const heads = (t: tf.Tensor) => t.reshape([B, S, H, dh]).transpose([0, 2, 1, 3]) as tf.Tensor4D;
    const [q0, k0, v0] = tf.split(linear(h, bp.qkvW, bp.qkvB), 3, 1);
    const q = heads(q0.mul(1 / Math.sqrt(dh)));
    const k = heads(k0), v = heads(v0);
    let scores: tf.Tensor = bmmNT(q, k);
    if (bias) scores = scores.add(bias);
    const att = bmmNT(tf.softmax(scores), swapLast2(v)).transpose([0, 2, 1, 3]).reshape([
      B * S,
      w,
    ]) as tf.Tensor2D;
    const x1 = x.add(linear(att, bp.outW, bp.outB)) as tf.Tensor2D;
    const x2 = x1.add(this.#mlp(x1, bp)) as tf.Tensor2D;
    return { x: x2, k, v };
  }

  #mlp(x: tf.Tensor2D, bp: BlockP): tf.Tensor2D {
    const h = layerNorm(x, bp.ln2g, bp.ln2b) as tf.Tensor2D;
    return linear(gelu(linear(h, bp.fcW, bp.fcB)) as tf.Tensor2D, bp.projW, bp.projB);
  }

  /** Image tokens in decoder space: [B, Ni, d] (Ni may be 0 -> null). */
  #encodeImages(input: ModelInput, states?: VisionStates, text?: CueText): tf.Tensor3D | null {
    const cfg = this.config, v = cfg.vision;
    const dv = v.dModel;
    const n = imageTokenCounts(cfg);
    const B = input.ids.shape[0];
    const parts: tf.Tensor3D[] = [];
    const vt = this.#p("vis.view_type");
    let K = 0;
    if (input.ground) {
      const [, gh, gw] = input.ground.shape;
      if (gh !== cfg.groundShape[0] || gw !== cfg.groundShape[1]) {
        throw new Error(`ground image is ${gh}x${gw}, the model expects ${cfg.groundShape.join("x")}`);
      }
      const g = input.ground.sub(0.5).mul(2) as tf.Tensor4D;
      const pt = patchify(g, v.groundPatch[0], v.groundPatch[1]);
      const e = linear(
        pt.reshape([B * n.ground, -1]),
        this.#p("vis.patch_ground.w") as tf.Tensor2D,
        this.#p("vis.patch_ground.b"),
      )
        .reshape([B, n.ground, dv]);
      const eg = embedWith(e, this.#p("vis.pos_ground"), vt.slice([0, 0], [1, dv]));
      parts.push(eg as tf.Tensor3D);
    }
    if (input.aerial) {
      const [, k, ah, aw] = input.aerial.shape;
      K = k;
      if (K > cfg.maxCandidates) {
        throw new Error(`${K} aerial images, the model has ${cfg.maxCandidates} slots`);
      }
      if (ah !== cfg.aerialSize || aw !== cfg.aerialSize) {
        throw new Error(`aerial image is ${ah}x${aw}, the model expects ${cfg.aerialSize}x${cfg.aerialSize}`);
      }
      const a = input.aerial.reshape([B * K, ah, aw, 3]).sub(0.5).mul(2) as tf.Tensor4D;
      const na = n.aerial;
      const pt = this.#polarSectors(a, v.polar);
      const pos = this.#p("vis.pos_ground");
      const e = linear(
        pt.reshape([B * K * na, -1]),
        this.#p("vis.patch_aerial.w") as tf.Tensor2D,
        this.#p("vis.patch_aerial.b"),
      )
        .reshape([B, K, na, dv]);
      const posA = pos.reshape([1, 1, na, dv]), vtA = vt.slice([1, 0], [K, dv]).reshape([1, K, 1, dv]);
      const ea = embedWith(e, posA, vtA).reshape([B, K * na, dv]);
      parts.push(ea as tf.Tensor3D);
    }
    if (parts.length === 0) return null;
    const x0 = parts.length === 1 ? parts[0] : tf.concat(parts, 1);
    const Ni = x0.shape[1];
    let x = x0.reshape([B * Ni, dv]) as tf.Tensor2D;
    for (let l = 0; l < v.nLayers; l++) {
      x = this.#blockFull(x, this.#block(`vis.layers.${l}`), B, Ni, v.nHeads, null).x;
    }
    x = layerNorm(x, this.#p("vis.ln_f.g"), this.#p("vis.ln_f.b")) as tf.Tensor2D;
    const out = x.reshape([B, Ni, dv]) as tf.Tensor3D;
    // Cue logits of every view (ModelConfig.cueHead): needed for the loss (`states`) and for cue text.
    let cueG: tf.Tensor2D | null = null, cueA: tf.Tensor2D | null = null;
    if (cfg.cueHead && (states || cfg.cueText)) {
      const ng = input.ground ? n.ground : 0;
      const head = (x: tf.Tensor2D, name: string) =>
        linear(x, this.#p(`${name}.w`) as tf.Tensor2D, this.#p(`${name}.b`));
      if (ng > 0) cueG = head(out.slice([0, 0, 0], [B, ng, dv]).reshape([B, ng * dv]), "aux.cue_ground");
      if (K > 0) {
        const flat = out.slice([0, ng, 0], [B, K * n.aerial, dv]).reshape([B * K, n.aerial * dv]);
        cueA = head(flat as tf.Tensor2D, "aux.cue_aerial");
      }
      if (states) (states.ground = cueG), (states.aerial = cueA);
    }
    const Nd = out.shape[1];
    const projected = linear(out.reshape([B * Nd, dv]), this.#p("proj.w") as tf.Tensor2D, this.#p("proj.b"))
      .reshape([B, Nd, cfg.dModel]);
    if (cfg.cueText && text) text.table = this.#cueTextTable(B, K, cueG, cueA);
    let withSlots = projected as tf.Tensor3D;
    if (cfg.slots && K > 0) {
      // Slot k's tokens carry slot embedding k + 1, the segment embedding of text about candidate k.
      const ng = input.ground ? n.ground : 0;
      const lab = this.#p("dec.slot_emb").slice([1, 0], [K, cfg.dModel]);
      const per = tf.concat([
        ...(ng > 0 ? [tf.zeros([ng, cfg.dModel])] : []),
        lab.reshape([K, 1, cfg.dModel]).tile([1, n.aerial, 1]).reshape([K * n.aerial, cfg.dModel]),
      ], 0);
      withSlots = projected.add(per.reshape([1, Nd, cfg.dModel])) as tf.Tensor3D;
    }
    return withSlots;
  }

  /**
   * Cue-conditioned text (ModelConfig.cueText): row s of example b is what a text token of segment s adds,
   * the ground's cue embedding plus, for s = k + 1, tile k's: [B * (1 + maxCandidates), d] (absent tiles 0).
   */
  #cueTextTable(B: number, K: number, cueG: tf.Tensor2D | null, cueA: tf.Tensor2D | null): tf.Tensor2D {
    const d = this.config.dModel, M = this.config.maxCandidates;
    const emb = (lg: tf.Tensor2D, name: string) =>
      linear(cueProbabilities(lg), this.#p(`${name}.w`) as tf.Tensor2D, this.#p(`${name}.b`));
    const g = cueG ? emb(cueG, "aux.cue_text_ground").reshape([B, 1, d]) : tf.zeros([B, 1, d]);
    const rows: tf.Tensor[] = [tf.zeros([B, 1, d])];
    if (cueA) {
      let a = emb(cueA, "aux.cue_text_aerial").reshape([B, K, d]);
      if (cueG && this.config.cueMatch) {
        // Cross-view agreement (ModelConfig.cueMatch): tile k's probabilities times the ground's, per class.
        const pg = cueProbabilities(cueG).reshape([B, 1, -1]);
        const pa = cueProbabilities(cueA).reshape([B, K, -1]);
        const agree = pa.mul(pg).reshape([B * K, -1]) as tf.Tensor2D;
        const w = this.#p("aux.cue_match.w") as tf.Tensor2D, bm = this.#p("aux.cue_match.b");
        a = a.add(linear(agree, w, bm).reshape([B, K, d]));
      }
      rows.push(a);
    }
    if (M - K > 0) rows.push(tf.zeros([B, M - K, d]));
    let everywhere = g;
    if (cueG && cueA && this.config.cueMatchAll) {
      // All candidates' agreement with the ground (ModelConfig.cueMatchAll), in slot order, absent slots 0:
      // the same vector reaches every text token, so the answer position can compare the tiles.
      const pg = cueProbabilities(cueG).reshape([B, 1, -1]);
      const pa = cueProbabilities(cueA).reshape([B, K, -1]);
      let agree = pa.mul(pg);
      if (M - K > 0) agree = tf.concat([agree, tf.zeros([B, M - K, agree.shape[2]!])], 1);
      const w = this.#p("aux.cue_match_all.w") as tf.Tensor2D, bm = this.#p("aux.cue_match_all.b");
      everywhere = g.add(linear(agree.reshape([B, -1]) as tf.Tensor2D, w, bm).reshape([B, 1, d]));
    }
    return tf.concat(rows, 1).add(everywhere).reshape([B * (1 + M), d]) as tf.Tensor2D;
  }

  #polarCache: { key: string; idx: tf.Tensor1D; w: tf.Tensor } | null = null;

  /**
   * Tiles [N, S, S, 3] -> polar sectors [N, sectors, radii * width * 3] (see `polarSampling`): each token is
   * one full-radius azimuth sector, like a full-height ground strip.
   */
  #polarSectors(a: tf.Tensor4D, polar: { radii: number; azimuths: number; sectors: number }): tf.Tensor3D {
    const [N, S] = a.shape;
    const { radii: R, azimuths: A, sectors } = polar;
    const key = `${S}/${R}/${A}`;
    if (this.#polarCache?.key !== key) {
      this.#polarCache?.idx.dispose();
      this.#polarCache?.w.dispose();
      const { idx, w } = polarSampling(S, R, A);
      this.#polarCache = {
        key,
        idx: tf.keep(tf.tensor1d(idx, "int32")),
        w: tf.keep(tf.tensor(w, [1, R * A, 4, 1])),
      };
    }
    const { idx, w } = this.#polarCache;
    const img = tf.gather(a.reshape([N, S * S, 3]), idx, 1).reshape([N, R * A, 4, 3]).mul(w).sum(2);
    // [N, R, A, 3] -> sectors of width A / sectors (same as patchify with full-height patches).
    return patchify(img.reshape([N, R, A, 3]) as tf.Tensor4D, R, A / sectors);
  }

  /** Text positions (real tokens only) as int32 [B, T]. */
  #textPositions(attn: tf.Tensor2D): tf.Tensor2D {
    return tf.cumsum(attn, 1).sub(1).clipByValue(0, this.config.maxText - 1).toInt() as tf.Tensor2D;
  }

  /**
   * Full forward of the decoder. Returns the final hidden states of text positions ([B, T, d] after ln_f) or,
   * with `lastOnly`, of the last text position ([B, d]); with `collectKV`, every layer's K and V. With
   * `groups` (GroupLayout), images and prompt are encoded once per group (`states` then hold one row per
   * group) and the completions run by #decodeGroups; `lastOnly` and `collectKV` do not apply.
   */
  #forward(
    input: ModelInput,
    opts: {
      lastOnly?: boolean;
      collectKV?: boolean;
      states?: VisionStates;
      text?: CueText;
      groups?: GroupLayout;
    } = {},
  ): {
    h: tf.Tensor;
    Ni: number;
    kv: KV;
  } {
    const cfg = this.config;
    const d = cfg.dModel;
    const [B, T] = input.ids.shape;
    const text: CueText = opts.text ?? { table: null };
    const groups = opts.groups;
    const img = this.#encodeImages(groups ? firstOfGroups(input, groups.size) : input, opts.states, text);
    if (groups && text.table) text.table = repeatGroups(text.table, groups.size, 1 + cfg.maxCandidates);
    const Ni = img ? img.shape[1] : 0;
    const S = Ni + T;
    const emb = this.#p("dec.tok_emb");
    const tokE = embedLookup(emb, input.ids.reshape([B * T]));
    const posE = embedLookup(this.#p("dec.pos_emb"), this.#textPositions(input.attn).reshape([B * T]));
    let txtE = tokE.add(posE);
    if (cfg.slots) {
      const segs = slotSegments(cfg.slots, cfg.vocabSize, input.ids.dataSync() as Int32Array, B, T).seg;
      const seg = tf.tensor1d(segs, "int32");
      txtE = txtE.add(embedLookup(this.#p("dec.slot_emb"), seg));
      if (text.table) {
        const rows = 1 + cfg.maxCandidates;
        const idx = tf.tensor1d(segs.map((sg, i) => Math.floor(i / T) * rows + sg), "int32");
        txtE = txtE.add(embedLookup(text.table, idx));
      }
    }
    const txt = txtE.reshape([B, T, d]);
    if (groups) {
      return { h: this.#decodeGroups(img, txt as tf.Tensor3D, input.attn, groups), Ni, kv: { k: [], v: [] } };
    }
    let x = (img ? tf.concat([img, txt], 1) : txt).reshape([B * S, d]) as tf.Tensor2D;
    const bias = maskBias(input.attn, Ni);
    const kv: KV = { k: [], v: [] };
    for (let l = 0; l < cfg.nLayers; l++) {
      const r = this.#blockFull(x, this.#block(`dec.layers.${l}`), B, S, cfg.nHeads, bias);
      x = r.x;
      if (opts.collectKV) {
        kv.k.push(r.k);
        kv.v.push(r.v);
      }
    }
    const x3 = x.reshape([B, S, d]);
    const g = this.#p("dec.ln_f.g"), b = this.#p("dec.ln_f.b");
    if (opts.lastOnly) {
      return { h: layerNorm(x3.slice([0, S - 1, 0], [B, 1, d]).reshape([B, d]), g, b), Ni, kv };
    }
    return { h: layerNorm(x3.slice([0, Ni, 0], [B, T, d]), g, b), Ni, kv };
  }

  /**
   * The decoder over groups (GroupLayout): each group's prefix (image tokens + prompt, `img` [P, Ni, d] and
   * the prompt part of `txt`) runs once through every layer, and the completion tokens of its G rows attend
   * to that layer's prefix keys and values and to their own earlier completion tokens (#blockGroup). The same
   * mask as maskBias: a prefix never attends to completions, so its states equal the per-row ones. Returns
   * the final text hidden states [B, T, d] (prompt positions repeated over the group), after ln_f.
   */
  #decodeGroups(
    img: tf.Tensor3D | null,
    txt: tf.Tensor3D,
    attn: tf.Tensor2D,
    groups: GroupLayout,
  ): tf.Tensor {
    const cfg = this.config, d = cfg.dModel;
    const [B, T] = attn.shape;
    const G = groups.size, P = B / G, Tp = groups.promptLen, Tc = T - Tp;
    const Ni = img ? img.shape[1] : 0, S0 = Ni + Tp;
    const a = attn.dataSync() as Float32Array;
    const txtP = txt.reshape([P, G, T, d]).slice([0, 0, 0, 0], [P, 1, Tp, d]).reshape([P, Tp, d]);
    let xP = (img ? tf.concat([img, txtP], 1) : txtP).reshape([P * S0, d]) as tf.Tensor2D;
    const attnP = attn.reshape([P, G, T]).slice([0, 0, 0], [P, 1, Tp]).reshape([P, Tp]) as tf.Tensor2D;
    const biasP = maskBias(attnP, Ni);
    const biasC = groupBias(a, P, G, T, Tp, Ni);
    let xC = txt.slice([0, Tp, 0], [B, Tc, d]).reshape([B * Tc, d]) as tf.Tensor2D;
    for (let l = 0; l < cfg.nLayers; l++) {
      const bp = this.#block(`dec.layers.${l}`);
      const pre = this.#blockFull(xP, bp, P, S0, cfg.nHeads, biasP);
      xC = this.#blockGroup(xC, bp, pre.k, pre.v, G, Tc, cfg.nHeads, biasC);
      xP = pre.x;
    }
    const hP = xP.reshape([P, S0, d]).slice([0, Ni, 0], [P, Tp, d]).reshape([P, 1, Tp * d]).tile([1, G, 1]);
    const h = tf.concat([hP.reshape([B, Tp, d]), xC.reshape([B, Tc, d])], 1);
    return layerNorm(h, this.#p("dec.ln_f.g"), this.#p("dec.ln_f.b"));
  }

  /**
   * One block over the completion tokens of G-row groups. x: [B*Tc, w] (rows p, g, t); kP, vP: the layer's
   * prefix keys and values [P, H, S0, dh]; bias: [P, 1, G*Tc, S0 + Tc] (groupBias). The G*Tc queries of a
   * prompt score its prefix in one product, and each row's own completion keys in one product per row.
   */
  #blockGroup(
    x: tf.Tensor2D,
    bp: BlockP,
    kP: tf.Tensor4D,
    vP: tf.Tensor4D,
    G: number,
    Tc: number,
    H: number,
    bias: tf.Tensor,
  ): tf.Tensor2D {
    const w = x.shape[1], dh = w / H;
    const P = x.shape[0] / (G * Tc), S0 = kP.shape[2];
    const h = layerNorm(x, bp.ln1g, bp.ln1b) as tf.Tensor2D;
    // Rows (p, g, t) -> [P, H, G*Tc, dh]: each prompt's queries of all its samples, head by head.
    const heads = (t: tf.Tensor) => t.reshape([P, G * Tc, H, dh]).transpose([0, 2, 1, 3]) as tf.Tensor4D;
    const perRow = (t: tf.Tensor) => t.reshape([P * H * G, Tc, dh]);
    const [q0, k0, v0] = tf.split(linear(h, bp.qkvW, bp.qkvB), 3, 1);
    const q = heads(q0.mul(1 / Math.sqrt(dh)));
    const k = heads(k0), v = heads(v0);
    const sPre = bmmNT(q, kP);
    const sOwn = bmmNT(perRow(q), perRow(k)).reshape([P, H, G * Tc, Tc]);
    const p = tf.softmax(tf.concat([sPre, sOwn], 3).add(bias));
    const pPre = p.slice([0, 0, 0, 0], [P, H, G * Tc, S0]);
    const pOwn = p.slice([0, 0, 0, S0], [P, H, G * Tc, Tc]).reshape([P * H * G, Tc, Tc]);
    const att = bmmNT(pPre, swapLast2(vP))
      .add(bmmNT(pOwn, swapLast2(perRow(v))).reshape([P, H, G * Tc, dh]))
      .transpose([0, 2, 1, 3])
      .reshape([P * G * Tc, w]) as tf.Tensor2D;
    const x1 = x.add(linear(att, bp.outW, bp.outB)) as tf.Tensor2D;
    return x1.add(this.#mlp(x1, bp)) as tf.Tensor2D;
  }

  #project(h: tf.Tensor): tf.Tensor {
    const d = this.config.dModel;
    const shape = h.shape.slice(0, -1);
    const out = matMulNT2d(h.reshape([-1, d]) as tf.Tensor2D, this.#p("dec.tok_emb") as tf.Tensor2D);
    return out.reshape([...shape, this.config.vocabSize]);
  }

  logits(input: ModelInput, _training = false): tf.Tensor3D {
    this.#check();
    return tf.tidy(() => this.#project(this.#forward(input).h) as tf.Tensor3D);
  }

  /**
   * Log-softmax of logits / temperature at text positions 0..T-2 (each predicts the next id): [B, T-1, V].
   */
  #nextLogProbs(
    input: ModelInput,
    states?: VisionStates,
    temperature = 1,
    groups?: GroupLayout,
  ): tf.Tensor3D {
    const [B, T] = input.ids.shape;
    const h = this.#forward(input, { states, groups: this.#checkGroups(input, groups) }).h;
    const lg = this.#project(h).slice([0, 0, 0], [B, T - 1, this.config.vocabSize]);
    return tf.logSoftmax(temperature === 1 ? lg : lg.div(temperature)) as tf.Tensor3D;
  }

  /** log p(ids[b, t]) from `#nextLogProbs`, aligned to ids with a 0 in front: [B, T]. */
  #picked(lp: tf.Tensor3D, ids: tf.Tensor2D): tf.Tensor2D {
    const [B, T] = ids.shape;
    const tgt = tf.oneHot(ids.slice([0, 1], [B, T - 1]).toInt(), this.config.vocabSize);
    return padFront(lp.mul(tgt).sum(-1) as tf.Tensor2D);
  }

  tokenLogProbs(input: ModelInput, _training = false, temperature = 1, groups?: GroupLayout): tf.Tensor2D {
    this.#check();
    checkTemperature(temperature);
    return tf.tidy(() => {
      const [B, T] = input.ids.shape;
      if (T < 2) return tf.zeros([B, T]) as tf.Tensor2D;
      return this.#picked(this.#nextLogProbs(input, undefined, temperature, groups), input.ids);
    });
  }

  /**
   * The group layout to use for `input`, or undefined for the per-row forward (no groups, groups of one, no
   * completion tokens). Throws when the rows of a group differ in their prompt block.
   */
  #checkGroups(input: ModelInput, groups?: GroupLayout): GroupLayout | undefined {
    if (!groups || groups.size <= 1) return undefined;
    const [B, T] = input.ids.shape, G = groups.size, Tp = groups.promptLen;
    if (!Number.isInteger(G) || B % G !== 0) throw new Error(`groups: ${B} rows are not groups of ${G}`);
    if (!(Tp >= 1 && Tp < T)) return Tp === T ? undefined : badGroups(`promptLen ${Tp} of ${T} positions`);
    const ids = input.ids.dataSync(), attn = input.attn.dataSync();
    for (let b = 0; b < B; b++) {
      const f = b - (b % G);
      for (let t = 0; t < Tp; t++) {
        if (ids[b * T + t] !== ids[f * T + t] || attn[b * T + t] !== attn[f * T + t]) {
          return badGroups(`row ${b} differs from row ${f} in its prompt block (position ${t})`);
        }
      }
    }
    for (const [what, img] of [["ground image", input.ground], ["aerial images", input.aerial]] as const) {
      if (!img) continue;
      const v = img.dataSync(), n = v.length / B;
      for (let b = 0; b < B; b++) {
        const f = b - (b % G);
        if (b === f) continue;
        for (let i = 0; i < n; i++) {
          if (v[b * n + i] !== v[f * n + i]) {
            return badGroups(`row ${b} differs from row ${f} in its ${what}`);
          }
        }
      }
    }
    return groups;
  }

  /**
   * `tokenLogProbs` and `tokenEntropy` from ONE forward pass (GRPO needs both each step). The entropy is
   * computed from detached log-probs, so only `logp` carries gradient.
   */
  tokenLogProbsAndEntropy(
    input: ModelInput,
    _training = false,
    temperature = 1,
    groups?: GroupLayout,
  ): { logp: tf.Tensor2D; entropy: tf.Tensor2D } {
    this.#check();
    checkTemperature(temperature);
    return tf.tidy(() => {
      const [B, T] = input.ids.shape;
      if (T < 2) return { logp: tf.zeros([B, T]) as tf.Tensor2D, entropy: tf.zeros([B, T]) as tf.Tensor2D };
      const lp = this.#nextLogProbs(input, undefined, temperature, groups);
      return { logp: this.#picked(lp, input.ids), entropy: entropyOf(stopGradient(lp)) };
    });
  }

  /**
   * `tokenLogProbs` and the cue logits of every view (ModelConfig.cueHead) from ONE forward pass: ground
   * [B, cueHead] and aerial [B * K, cueHead] (example-major, slot by slot), null where the layout has no such
   * view. Throws when the config has no cue head.
   */
  tokenLogProbsAndCues(input: ModelInput): {
    logp: tf.Tensor2D;
    ground: tf.Tensor2D | null;
    aerial: tf.Tensor2D | null;
  } {
    this.#check();
    if (!this.config.cueHead) {
      throw new Error("tokenLogProbsAndCues: the model has no cue head (model.cueHead)");
    }
    const r = tf.tidy(() => {
      const [B, T] = input.ids.shape;
      const states: VisionStates = { ground: null, aerial: null };
      let logp: tf.Tensor2D;
      if (T < 2) {
        this.#forward(input, { states });
        logp = tf.zeros([B, T]) as tf.Tensor2D;
      } else logp = this.#picked(this.#nextLogProbs(input, states), input.ids);
      const out: Record<string, tf.Tensor> = { logp };
      if (states.ground) out.ground = states.ground;
      if (states.aerial) out.aerial = states.aerial;
      return out;
    });
    return {
      logp: r.logp as tf.Tensor2D,
      ground: (r.ground ?? null) as tf.Tensor2D | null,
      aerial: (r.aerial ?? null) as tf.Tensor2D | null,
    };
  }

  /**
   * Entropy (nats) of the distribution that predicts ids[b, t], aligned like tokenLogProbs: entry t is the
   * entropy of the softmax at position t-1; entry 0 is 0.
   */
  tokenEntropy(input: ModelInput): tf.Tensor2D {
    this.#check();
    return tf.tidy(() => {
      const [B, T] = input.ids.shape;
      if (T < 2) return tf.zeros([B, T]) as tf.Tensor2D;
      return entropyOf(this.#nextLogProbs(input));
    });
  }

  /**
   * One decoding step for B rows: token `tok` at text position `pos`, attending to the (shared, tiled)
   * prefix cache and the generated-token cache. Returns logits [B, V] and the grown generated cache.
   */
  #decodeStep(
    tok: tf.Tensor1D,
    pos: tf.Tensor1D,
    seg: tf.Tensor1D | null,
    prefix: Prefix,
    gen: KV | null,
    cueTable: tf.Tensor2D | null = null,
  ): {
    logits: tf.Tensor2D;
    gen: KV;
  } {
    const cfg = this.config;
    const d = cfg.dModel, H = cfg.nHeads, dh = d / H;
    const B = tok.shape[0], P = prefix.P, G = B / P;
    let x = embedLookup(this.#p("dec.tok_emb"), tok).add(
      embedLookup(this.#p("dec.pos_emb"), pos),
    ) as tf.Tensor2D;
    if (seg) x = x.add(embedLookup(this.#p("dec.slot_emb"), seg)) as tf.Tensor2D;
    if (seg && cueTable) {
      const rows = 1 + cfg.maxCandidates;
      const idx = tf.range(0, B, 1, "int32").mul(tf.scalar(rows, "int32")).add(seg) as tf.Tensor1D;
      x = x.add(embedLookup(cueTable, idx)) as tf.Tensor2D;
    }
    const next: KV = { k: [], v: [] };
    for (let l = 0; l < cfg.nLayers; l++) {
      const bp = this.#block(`dec.layers.${l}`);
      const h = layerNorm(x, bp.ln1g, bp.ln1b) as tf.Tensor2D;
      const [q0, k1, v1] = tf.split(linear(h, bp.qkvW, bp.qkvB), 3, 1);
      const qs = q0.mul(1 / Math.sqrt(dh));
      // Shared prefix: the G queries of a prompt attend to its one copy of the prefix cache.
      const S0 = prefix.k[l].shape[2];
      const qg = qs.reshape([P, G, H, dh]).transpose([0, 2, 1, 3]);
      const sp = matMulNT(qg, prefix.k[l]).add(prefix.bias).transpose([0, 2, 1, 3]).reshape([B, H, 1, S0]);
      // Generated tokens: per-row cache, K as [B, H, t, dh], V transposed as [B, H, dh, t].
      const k = gen ? tf.concat([gen.k[l], k1.reshape([B, H, 1, dh])], 2) : k1.reshape([B, H, 1, dh]);
      const vT = gen ? tf.concat([gen.v[l], v1.reshape([B, H, dh, 1])], 3) : v1.reshape([B, H, dh, 1]);
      next.k.push(k as tf.Tensor4D);
      next.v.push(vT as tf.Tensor4D);
      const t = (k as tf.Tensor4D).shape[2];
      const sg = tf.matMul(qs.reshape([B, H, 1, dh]), k, false, true);
      const p = tf.softmax(tf.concat([sp, sg], 3));
      const pp = p.slice([0, 0, 0, 0], [B, H, 1, S0]).reshape([P, G, H, S0]).transpose([0, 2, 1, 3]);
      const pg = p.slice([0, 0, 0, S0], [B, H, 1, t]);
      const attP = matMulNT(pp, prefix.v[l]).transpose([0, 2, 1, 3]).reshape([B, d]);
      const att = attP.add(tf.matMul(pg, vT, false, true).reshape([B, d])) as tf.Tensor2D;
      x = x.add(linear(att, bp.outW, bp.outB)) as tf.Tensor2D;
      x = x.add(this.#mlp(x, bp)) as tf.Tensor2D;
    }
    const hf = layerNorm(x, this.#p("dec.ln_f.g"), this.#p("dec.ln_f.b"));
    return { logits: this.#project(hf) as tf.Tensor2D, gen: next };
  }

  async generate(prompt: ModelInput, opts: GenerateOptions): Promise<GenerateResult> {
    this.#check();
    const G = opts.groupSize;
    if (!Number.isInteger(G) || G < 1) {
      throw new Error(`generate: groupSize must be a positive integer (got ${G})`);
    }
    if (opts.maxNewTokens < 1) throw new Error(`generate: maxNewTokens must be >= 1`);
    const lensT = prompt.attn.sum(1);
    const realLens = Array.from(await lensT.data()).map(Math.round);
    lensT.dispose();
    const longest = Math.max(...realLens);
    if (longest + opts.maxNewTokens > this.config.maxText) {
      throw new Error(
        `generate: prompt (${longest} tokens) + maxNewTokens (${opts.maxNewTokens}) exceeds maxText ${this.config.maxText}`,
      );
    }
    return opts.useCache === false
      ? this.#generateRecompute(prompt, opts)
      : this.#generateCached(prompt, opts);
  }

  async #generateCached(prompt: ModelInput, opts: GenerateOptions): Promise<GenerateResult> {
    const P = prompt.ids.shape[0], G = opts.groupSize, B = P * G;
    const every = Math.max(1, opts.readbackEvery ?? 8);
    const pad = opts.padId ?? 0;
    const rep = repeatIndex(P, G);
    const cfg = this.config;
    // wasm: the decoding step runs on the host around the dense matmuls (#hostDecoder); else all on tfjs.
    const onHost = DecodeAttention.available(cfg.dModel / cfg.nHeads);
    // Prefix: image tokens + prompt encoded once per prompt, then tiled to the G samples of its group.
    const pre = tf.tidy(() => {
      const text: CueText = { table: null };
      const f = this.#forward(prompt, { lastOnly: true, collectKV: true, text });
      const ix = tf.tensor1d(rep, "int32");
      const tile = (t: tf.Tensor) => (G === 1 ? t.clone() : tf.gather(t, ix));
      const rows = 1 + cfg.maxCandidates;
      const keys = f.Ni > 0 ? tf.concat([tf.ones([P, f.Ni]), prompt.attn], 1) : prompt.attn;
      return {
        logits: tile(this.#project(f.h)) as tf.Tensor2D,
        // The prefix cache is NOT tiled: one copy per prompt, shared by its G samples.
        k: f.kv.k,
        // V kept transposed ([P, H, dh, S0]) so P @ V is in the NT form.
        v: (onHost ? f.kv.v : f.kv.v.map((t) => swapLast2(t))) as tf.Tensor4D[],
        bias: keys.sub(1).mul(-NEG).reshape([P, 1, 1, -1]),
        pos0: tile(prompt.attn.sum(1)).toInt() as tf.Tensor1D,
        // Cue-conditioned text: each sample's rows of the table ([B * rows, d]); empty without cueText.
        cue: text.table
          ? [tile(text.table.reshape([P, rows, cfg.dModel])).reshape([B * rows, cfg.dModel]) as tf.Tensor2D]
          : [],
      };
    });
    const prefix: Prefix = { P, k: pre.k, v: pre.v, bias: pre.bias };
    const cueTable: tf.Tensor2D | null = pre.cue[0] ?? null;
    // Candidate-slot segment of each row's next input token, continuing from its prompt (ModelConfig.slots).
    const slots = this.config.slots;
    const table = slots ? slotTable(slots, this.config.vocabSize) : null;
    const promptLast = slots
      ? slotSegments(
        slots,
        this.config.vocabSize,
        prompt.ids.dataSync() as Int32Array,
        P,
        prompt.ids.shape[1],
      ).last
      : null;
    const segStart = promptLast ? Int32Array.from(rep, (p) => promptLast[p]) : null;
    let segT = segStart ? tf.tensor1d(segStart, "int32") : null;
    const tableT = table ? tf.tensor1d(table, "int32") : null;
    let host: HostDecoder | null = null;
    let logits = pre.logits;
    let gen: KV | null = null;
    let finished = tf.zeros([B], "bool") as tf.Tensor1D;
    const tokens: tf.Tensor1D[] = [];
    const stepLogits: Float32Array[] = [];
    const stopT = tf.tensor1d(opts.stopIds.length ? opts.stopIds : [-1], "int32");
    try {
      if (onHost) {
        host = this.#hostDecoder(prefix, G, opts.maxNewTokens, pre.pos0, segStart, table, cueTable);
        // The host decoder keeps its own copy of the prefix cache.
        for (const t of [...pre.k, ...pre.v]) t.dispose();
      }
      for (let s = 0; s < opts.maxNewTokens; s++) {
        if (opts.returnLogits) stepLogits.push((await logits.data()) as Float32Array);
        const fin0 = finished;
        const { tok, fin } = sampleStep(logits, fin0, s, opts, stopT, pad);
        fin0.dispose();
        finished = fin;
        tokens.push(tok);
        if (s === opts.maxNewTokens - 1) break;
        if ((s + 1) % every === 0) {
          const all = tf.tidy(() => finished.all());
          const done = (await all.data())[0];
          all.dispose();
          if (done) break;
        }
        if (host) {
          const next = host.step(tok, s);
          logits.dispose();
          logits = next;
          continue;
        }
        const prevGen: KV | null = gen;
        if (segT && tableT) {
          const cur: tf.Tensor1D = segT;
          segT = tf.tidy(() => {
            const e = tf.gather(tableT, tok);
            return tf.where(e.less(0), tf.zerosLike(e), tf.where(e.greater(0), e, cur)) as tf.Tensor1D;
          });
          cur.dispose();
        }
        const seg = segT;
        const step: { logits: tf.Tensor2D; gen: KV } = tf.tidy(() =>
          this.#decodeStep(
            tok,
            pre.pos0.add(tf.scalar(s, "int32")) as tf.Tensor1D,
            seg,
            prefix,
            prevGen,
            cueTable,
          )
        );
        logits.dispose();
        logits = step.logits;
        if (prevGen) { for (const t of [...prevGen.k, ...prevGen.v]) t.dispose(); }
        gen = step.gen;
      }
      return await collectCompletions(tokens, B, opts.stopIds, opts.returnLogits ? stepLogits : undefined);
    } finally {
      logits.dispose();
      finished.dispose();
      stopT.dispose();
      for (const t of tokens) t.dispose();
      if (gen) { for (const t of [...gen.k, ...gen.v]) t.dispose(); }
      host?.dispose();
      segT?.dispose();
      tableT?.dispose();
      for (const t of [...pre.k, ...pre.v, pre.bias, pre.pos0]) t.dispose();
      cueTable?.dispose();
    }
  }

  /**
   * The KV-cached decoding step on the wasm backend. The residual stream, embeddings and layer norms live
   * on the host (Float32Arrays), the attention runs in one SIMD kernel call per layer over a preallocated
   * cache (DecodeAttention: in-place append, no concat), and only the dense products go through tfjs
   * (flag-free XNNPACK matmuls, the same `fused.matMul` calls as the training forward), so a step launches
   * ~84 tfjs kernels (39 of them free reshapes) instead of ~268. Same function as #decodeStep up to float
   * rounding (max |logit difference| ~1e-5; greedy and seeded samples identical in our checks).
   */
  #hostDecoder(
    prefix: Prefix,
    G: number,
    maxNew: number,
    pos0: tf.Tensor1D,
    segStart: Int32Array | null,
    table: Int32Array | null,
    cueTable: tf.Tensor2D | null = null,
  ): HostDecoder {
    const cfg = this.config;
    const d = cfg.dModel, H = cfg.nHeads, L = cfg.nLayers, P = prefix.P, B = P * G;
    const S0 = prefix.k[0].shape[2];
    const attn = new DecodeAttention(P, G, H, d, S0, maxNew, L);
    for (let l = 0; l < L; l++) {
      attn.setPrefix(l, prefix.k[l].dataSync() as Float32Array, prefix.v[l].dataSync() as Float32Array);
    }
    attn.setPrefixBias(prefix.bias.dataSync() as Float32Array);
    const host = (t: tf.Tensor) => t.dataSync() as Float32Array;
    const tokE = host(this.#p("dec.tok_emb")), posE = host(this.#p("dec.pos_emb"));
    const pos = pos0.dataSync() as Int32Array;
    const seg = segStart ? Int32Array.from(segStart) : null;
    const slotE = seg ? host(this.#p("dec.slot_emb")) : null;
    const cueE = seg && cueTable ? host(cueTable) : null, cueRows = 1 + cfg.maxCandidates;
    const layers = Array.from({ length: L }, (_, l) => {
      const bp = this.#block(`dec.layers.${l}`);
      return { bp, ln1g: host(bp.ln1g), ln1b: host(bp.ln1b), ln2g: host(bp.ln2g), ln2b: host(bp.ln2b) };
    });
    const lnfG = host(this.#p("dec.ln_f.g")), lnfB = host(this.#p("dec.ln_f.b"));
    // Per-generate invariant: the tied head's transpose, so each step's head product is flag-free.
    const embT = tf.transpose(this.#p("dec.tok_emb")) as tf.Tensor2D;
    const x = new Float32Array(B * d), h = new Float32Array(B * d);
    const addFrom = (t: tf.Tensor) => {
      const y = t.dataSync() as Float32Array;
      t.dispose();
      for (let i = 0; i < x.length; i++) x[i] += y[i];
    };
    const dense = (a: Float32Array, w: tf.Tensor2D, b: tf.Tensor) =>
      tf.tidy(() => tf.fused.matMul({ a: tf.tensor2d(a, [B, a.length / B]), b: w, bias: b }));
    return {
      step: (tok: tf.Tensor1D, s: number): tf.Tensor2D => {
        const ids = tok.dataSync() as Int32Array;
        for (let b = 0; b < B; b++) {
          const te = ids[b] * d, pe = (pos[b] + s) * d;
          for (let i = 0; i < d; i++) x[b * d + i] = tokE[te + i] + posE[pe + i];
          if (seg && slotE && table) {
            seg[b] = nextSegment(seg[b], table[ids[b]]);
            const se = seg[b] * d;
            for (let i = 0; i < d; i++) x[b * d + i] += slotE[se + i];
            if (cueE) {
              const ce = (b * cueRows + seg[b]) * d;
              for (let i = 0; i < d; i++) x[b * d + i] += cueE[ce + i];
            }
          }
        }
        for (let l = 0; l < L; l++) {
          const { bp, ln1g, ln1b, ln2g, ln2b } = layers[l];
          layerNormHost(x, ln1g, ln1b, h, d);
          const qkv = dense(h, bp.qkvW, bp.qkvB);
          const att = attn.step(l, qkv.dataSync() as Float32Array);
          qkv.dispose();
          addFrom(dense(att, bp.outW, bp.outB));
          layerNormHost(x, ln2g, ln2b, h, d);
          addFrom(tf.tidy(() => {
            const f = dense(h, bp.fcW, bp.fcB);
            return tf.fused.matMul({ a: gelu(f) as tf.Tensor2D, b: bp.projW, bias: bp.projB });
          }));
        }
        attn.advance();
        layerNormHost(x, lnfG, lnfB, h, d);
        return tf.tidy(() => tf.matMul(tf.tensor2d(h, [B, d]), embT));
      },
      dispose: () => {
        embT.dispose();
        attn.release();
      },
    };
  }

  /** Generation without a KV cache: the full forward over prompt + generated tokens at every step. */
  async #generateRecompute(prompt: ModelInput, opts: GenerateOptions): Promise<GenerateResult> {
    const P = prompt.ids.shape[0], G = opts.groupSize, B = P * G;
    const every = Math.max(1, opts.readbackEvery ?? 8);
    const pad = opts.padId ?? 0;
    const rep = tf.tensor1d(repeatIndex(P, G), "int32");
    const tiled: ModelInput = {
      B,
      ground: prompt.ground ? tf.gather(prompt.ground, rep) as tf.Tensor4D : null,
      aerial: prompt.aerial ? tf.gather(prompt.aerial, rep) as tf.Tensor5D : null,
      ids: tf.gather(prompt.ids, rep) as tf.Tensor2D,
      attn: tf.gather(prompt.attn, rep) as tf.Tensor2D,
    };
    let finished = tf.zeros([B], "bool") as tf.Tensor1D;
    const tokens: tf.Tensor1D[] = [];
    const stepLogits: Float32Array[] = [];
    const stopT = tf.tensor1d(opts.stopIds.length ? opts.stopIds : [-1], "int32");
    try {
      for (let s = 0; s < opts.maxNewTokens; s++) {
        const logits = tf.tidy(() => {
          const ids = s === 0 ? tiled.ids : tf.concat([tiled.ids, tf.stack(tokens, 1)], 1) as tf.Tensor2D;
          const attn = s === 0 ? tiled.attn : tf.concat([tiled.attn, tf.ones([B, s])], 1) as tf.Tensor2D;
          return this.#project(this.#forward({ ...tiled, ids, attn }, { lastOnly: true }).h) as tf.Tensor2D;
        });
        if (opts.returnLogits) stepLogits.push((await logits.data()) as Float32Array);
        const fin0 = finished;
        const { tok, fin } = sampleStep(logits, fin0, s, opts, stopT, pad);
        logits.dispose();
        fin0.dispose();
        finished = fin;
        tokens.push(tok);
        if ((s + 1) % every === 0) {
          const all = tf.tidy(() => finished.all());
          const done = (await all.data())[0];
          all.dispose();
          if (done) break;
        }
      }
      return await collectCompletions(tokens, B, opts.stopIds, opts.returnLogits ? stepLogits : undefined);
    } finally {
      finished.dispose();
      stopT.dispose();
      rep.dispose();
      for (const t of tokens) t.dispose();
      for (const t of [tiled.ground, tiled.aerial, tiled.ids, tiled.attn]) t?.dispose();
    }
  }

  cloneFrozen(): VLM {
    this.#check();
    return new TfVLM(this.config, { trainable: false, from: new Map(this.#params) });
  }

  /** A trainable deep copy (same weights). */
  clone(): TfVLM {
    this.#check();
    return new TfVLM(this.config, { trainable: true, from: new Map(this.#params) });
  }

  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    for (const v of this.#params.values()) v.dispose();
    this.#polarCache?.idx.dispose();
    this.#polarCache?.w.dispose();
    this.#polarCache = null;
  }

  #check(): void {
    if (this.#disposed) throw new Error("model is disposed");
  }
}

/** Differentiable building blocks, exported for gradient tests only. */
export const _ops = { linear, matMulNT2d, bmmNT, embedLookup };

/** Create a model with freshly initialised weights (deterministic in cfg.seed). */
export function createModel(cfg: ModelConfig): TfVLM {
  return new TfVLM(cfg);
}

function badGroups(why: string): never {
  throw new Error(`groups: ${why}`);
}

/** The first row of each group of G (no gradient: images, ids and attn are inputs). */
function firstOfGroups(input: ModelInput, G: number): ModelInput {
  const B = input.ids.shape[0], P = B / G;
  const ix = tf.range(0, B, G, "int32");
  return {
    B: P,
    ground: input.ground ? tf.gather(input.ground, ix) as tf.Tensor4D : null,
    aerial: input.aerial ? tf.gather(input.aerial, ix) as tf.Tensor5D : null,
    ids: tf.gather(input.ids, ix) as tf.Tensor2D,
    attn: tf.gather(input.attn, ix) as tf.Tensor2D,
  };
}

/** A per-example table [P * rows, d] repeated for the G rows of each group: [P * G * rows, d]. */
function repeatGroups(table: tf.Tensor2D, G: number, rows: number): tf.Tensor2D {
  const [n, d] = table.shape, P = n / rows;
  return table.reshape([P, 1, rows * d]).tile([1, G, 1]).reshape([P * G * rows, d]) as tf.Tensor2D;
}

/**
 * Additive mask [P, 1, G*Tc, S0 + Tc] of the completion queries of G-row groups (#blockGroup) over [the
 * prefix: Ni image tokens + Tp prompt tokens ; the row's own Tc completion tokens], by maskBias's rule: image
 * keys always, text keys where attn is 1 and not later than the query, and the query itself.
 */
function groupBias(attn: Float32Array, P: number, G: number, T: number, Tp: number, Ni: number): tf.Tensor4D {
  const Tc = T - Tp, S0 = Ni + Tp, W = S0 + Tc;
  const out = new Float32Array(P * G * Tc * W);
  for (let p = 0; p < P; p++) {
    for (let g = 0; g < G; g++) {
      const b = p * G + g;
      for (let t = 0; t < Tc; t++) {
        const row = ((p * G + g) * Tc + t) * W;
        for (let j = 0; j < Tp; j++) if (!(attn[b * T + j] > 0)) out[row + Ni + j] = NEG;
        for (let u = 0; u < Tc; u++) {
          if (u !== t && !(u < t && attn[b * T + Tp + u] > 0)) out[row + S0 + u] = NEG;
        }
      }
    }
  }
  return tf.tensor4d(out, [P, 1, G * Tc, W]);
}

/** [0,0,..,1,1,..]: row p repeated G times (group-contiguous). */
function repeatIndex(P: number, G: number): number[] {
  const out: number[] = [];
  for (let p = 0; p < P; p++) for (let g = 0; g < G; g++) out.push(p);
  return out;
}

/** Log-probs are of softmax(logits / temperature): only a positive finite temperature defines one. */
function checkTemperature(t: number): void {
  if (!(t > 0 && Number.isFinite(t))) throw new RangeError(`temperature must be > 0 (got ${t})`);
}

/** Patch embeddings gated by position and view-type embeddings, which are then added (embedGating). */
function embedWith(e: tf.Tensor, pos: tf.Tensor, view: tf.Tensor): tf.Tensor {
  return e.mul(pos.add(1)).mul(view.add(1)).add(pos).add(view);
}

/** Slot of each token id for SlotSegments: k + 1 names slot k, -1 resets, 0 keeps the current segment. */
function slotTable(slots: SlotSegments, vocab: number): Int32Array {
  const t = new Int32Array(vocab);
  slots.tokens.forEach((ids, k) => ids.forEach((id) => (t[id] = k + 1)));
  for (const id of slots.reset) t[id] = -1;
  return t;
}

/** Next segment from the current one and a token's slotTable entry. */
function nextSegment(cur: number, entry: number): number {
  return entry < 0 ? 0 : entry > 0 ? entry : cur;
}

/**
 * Segment id (0: none, k + 1: slot k) of every token of ids [B, T] (row-major), and each row's segment after
 * its last token (where generation continues).
 */
export function slotSegments(
  slots: SlotSegments,
  vocab: number,
  ids: Int32Array,
  B: number,
  T: number,
): { seg: Int32Array; last: Int32Array } {
  const table = slotTable(slots, vocab);
  const seg = new Int32Array(B * T), last = new Int32Array(B);
  for (let b = 0; b < B; b++) {
    let cur = 0;
    for (let t = 0; t < T; t++) {
      cur = nextSegment(cur, table[ids[b * T + t]]);
      seg[b * T + t] = cur;
    }
    last[b] = cur;
  }
  return { seg, last };
}

/**
 * Additive attention mask [B, 1, S, S] over [Ni image tokens ; T text tokens]: 0 where allowed, -1e9
 * elsewhere (see the module doc for the rule).
 */
function maskBias(attn: tf.Tensor2D, Ni: number): tf.Tensor4D {
  // Built on the host from a readback of attn (small): broadcasting elementwise ops are slow on wasm.
  const [B, T] = attn.shape;
  const S = Ni + T;
  const a = attn.dataSync();
  const out = new Float32Array(B * S * S);
  for (let b = 0; b < B; b++) {
    const base = b * S * S;
    for (let i = 0; i < S; i++) {
      const row = base + i * S;
      for (let j = 0; j < S; j++) {
        const allowed = j === i || ((j < Ni || j <= i) && (j < Ni || a[b * T + j - Ni] > 0));
        if (!allowed) out[row + j] = NEG;
      }
    }
  }
  return tf.tensor4d(out, [B, 1, S, S]);
}

/**
 * Next tokens [B] (int32) from logits [B, V], on the device: greedy when temperature <= 0; otherwise
 * softmax(logits / temperature) restricted to the top-p nucleus (sorted with tf.topk; the most likely token
 * is always kept), sampled with tf.multinomial under `seed`.
 */
/** A column of zeros in front: [B, T-1] -> [B, T] (position 0 predicts nothing). */
function padFront(x: tf.Tensor2D): tf.Tensor2D {
  return tf.concat([tf.zeros([x.shape[0], 1]), x], 1) as tf.Tensor2D;
}

/** Entropy (nats) of each distribution in log-probs [B, T-1, V], aligned to ids with a 0 in front: [B, T]. */
function entropyOf(lp: tf.Tensor3D): tf.Tensor2D {
  return padFront(lp.exp().mul(lp).sum(-1).neg() as tf.Tensor2D);
}

/**
 * One sampling step shared by the cached and recompute generators: sample from `logits` (seeded by the step),
 * emit `pad` on rows already finished, and mark rows that emitted a stop id as finished.
 */
function sampleStep(
  logits: tf.Tensor2D,
  finished: tf.Tensor1D,
  step: number,
  opts: GenerateOptions,
  stopT: tf.Tensor1D,
  pad: number,
): { tok: tf.Tensor1D; fin: tf.Tensor1D } {
  return tf.tidy(() => {
    const B = logits.shape[0];
    const t = sampleTokens(logits, opts.temperature, opts.topP, deriveSeed(opts.seed, `sample/${step}`));
    const out = tf.where(finished, tf.fill([B], pad, "int32"), t) as tf.Tensor1D;
    const hit = tf.equal(out.reshape([B, 1]), stopT.reshape([1, -1])).any(1);
    return { tok: out, fin: tf.logicalOr(finished, hit) as tf.Tensor1D };
  });
}

export function sampleTokens(
  logits: tf.Tensor2D,
  temperature: number,
  topP: number,
  seed: number,
): tf.Tensor1D {
  return tf.tidy(() => {
    const [B, V] = logits.shape;
    if (temperature <= 0) return tf.argMax(logits, 1).toInt() as tf.Tensor1D;
    const l = logits.div(temperature) as tf.Tensor2D;
    if (topP >= 1) return tf.multinomial(l, 1, seed).reshape([B]).toInt() as tf.Tensor1D;
    const { values, indices } = tf.topk(l, V, true);
    const probs = tf.softmax(values);
    const before = tf.cumsum(probs, 1).sub(probs);
    const kept = tf.where(before.less(topP), values, tf.fill([B, V], NEG)) as tf.Tensor2D;
    const choice = tf.multinomial(kept, 1, seed).reshape([B]).toInt();
    const flat = choice.add(tf.range(0, B * V, V, "int32")).toInt();
    return tf.gather(indices.reshape([B * V]), flat).toInt() as tf.Tensor1D;
  });
}

async function collectCompletions(
  tokens: tf.Tensor1D[],
  B: number,
  stopIds: number[],
  stepLogits?: Float32Array[],
): Promise<GenerateResult> {
  const n = tokens.length;
  const stacked = tf.stack(tokens, 1);
  const data = await stacked.data();
  stacked.dispose();
  const stops = new Set(stopIds);
  const completions: number[][] = [];
  const truncated: boolean[] = [];
  for (let b = 0; b < B; b++) {
    const row: number[] = [];
    let stopped = false;
    for (let s = 0; s < n; s++) {
      const t = data[b * n + s];
      row.push(t);
      if (stops.has(t)) {
        stopped = true;
        break;
      }
    }
    completions.push(row);
    truncated.push(!stopped);
  }
  const res: GenerateResult = { completions, truncated };
  if (stepLogits) res.stepLogits = stepLogits;
  return res;
}
