/**
 * The KV-cached decoding step on the wasm backend. The residual stream, embeddings and layer norms live
 * on the host (Float32Arrays), the attention runs in one SIMD kernel call per layer over a preallocated
 * cache (DecodeAttention: in-place append, no concat), and only the dense products go through tfjs
 * (flag-free XNNPACK matmuls, the same `fused.matMul` calls as the training forward), so a step launches
 * ~84 tfjs kernels (39 of them free reshapes) instead of ~268. Same function as decode_step.ts up to float
 * rounding (max |logit difference| ~1e-5; greedy and seeded samples identical in our checks).
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { DecodeAttention } from "./kernels.ts";
import { gelu, layerNormHost } from "./ops.ts";
import { nextSegment } from "./layout.ts";
import type { Prefix, StepDecoder } from "./decode_step.ts";
import type { BlockP, Net } from "./params.ts";

/** Host copies of the embedding tables and layer norms one decoding call reads every step. */
interface HostWeights {
  tokE: Float32Array;
  posE: Float32Array;
  /** Slot embeddings (ModelConfig.slots), null without segments. */
  slotE: Float32Array | null;
  /** The rows' cue text tables ([B * (1 + maxCandidates), d]), null without one. */
  cueE: Float32Array | null;
  layers: { bp: BlockP; ln1g: Float32Array; ln1b: Float32Array; ln2g: Float32Array; ln2b: Float32Array }[];
  lnfG: Float32Array;
  lnfB: Float32Array;
}

function hostWeights(net: Net, hasSegments: boolean, cueTable: tf.Tensor2D | null): HostWeights {
  const host = (t: tf.Tensor) => t.dataSync() as Float32Array;
  const p = (name: string) => net.params.get(name);
  return {
    tokE: host(p("dec.tok_emb")),
    posE: host(p("dec.pos_emb")),
    slotE: hasSegments ? host(p("dec.slot_emb")) : null,
    cueE: hasSegments && cueTable ? host(cueTable) : null,
    layers: Array.from({ length: net.config.nLayers }, (_, l) => {
      const bp = net.params.block(`dec.layers.${l}`);
      return { bp, ln1g: host(bp.ln1g), ln1b: host(bp.ln1b), ln2g: host(bp.ln2g), ln2b: host(bp.ln2b) };
    }),
    lnfG: host(p("dec.ln_f.g")),
    lnfB: host(p("dec.ln_f.b")),
  };
}

/**
 * The input embedding of each row's token into x [B * d]: token + position (pos[b] + s), plus with segments
 * the row's next segment (updated in `seg` from the token's slotTable entry) and its cue text row.
 */
function embedTokens(
  x: Float32Array,
  ids: Int32Array,
  s: number,
  w: HostWeights,
  pos: Int32Array,
  seg: Int32Array | null,
  table: Int32Array | null,
  cueRows: number,
): void {
  const d = x.length / ids.length;
  for (let b = 0; b < ids.length; b++) {
    const te = ids[b] * d, pe = (pos[b] + s) * d;
    for (let i = 0; i < d; i++) x[b * d + i] = w.tokE[te + i] + w.posE[pe + i];
    if (seg && w.slotE && table) {
      seg[b] = nextSegment(seg[b], table[ids[b]]);
      const se = seg[b] * d;
      for (let i = 0; i < d; i++) x[b * d + i] += w.slotE[se + i];
      if (w.cueE) {
        const ce = (b * cueRows + seg[b]) * d;
        for (let i = 0; i < d; i++) x[b * d + i] += w.cueE[ce + i];
      }
    }
  }
}

/** The host step decoder of one generate() call (see the module doc); keeps its own copy of the prefix. */
export function hostDecoder(
  net: Net,
  prefix: Prefix,
  G: number,
  maxNew: number,
  pos0: tf.Tensor1D,
  segStart: Int32Array | null,
  table: Int32Array | null,
  cueTable: tf.Tensor2D | null = null,
): StepDecoder {
  const cfg = net.config;
  const d = cfg.dModel, H = cfg.nHeads, L = cfg.nLayers, P = prefix.P, B = P * G;
  const S0 = prefix.k[0].shape[2];
  const attn = new DecodeAttention(P, G, H, d, S0, maxNew, L);
  for (let l = 0; l < L; l++) {
    attn.setPrefix(l, prefix.k[l].dataSync() as Float32Array, prefix.v[l].dataSync() as Float32Array);
  }
  attn.setPrefixBias(prefix.bias.dataSync() as Float32Array);
  const w = hostWeights(net, segStart !== null, cueTable);
  const pos = pos0.dataSync() as Int32Array;
  const seg = segStart ? Int32Array.from(segStart) : null;
  const cueRows = 1 + cfg.maxCandidates;
  // Per-generate invariant: the tied head's transpose, so each step's head product is flag-free.
  const embT = tf.transpose(net.params.get("dec.tok_emb")) as tf.Tensor2D;
  const x = new Float32Array(B * d), h = new Float32Array(B * d);
  const addFrom = (t: tf.Tensor) => {
    const y = t.dataSync() as Float32Array;
    t.dispose();
    for (let i = 0; i < x.length; i++) x[i] += y[i];
  };
  const dense = (a: Float32Array, wt: tf.Tensor2D, b: tf.Tensor) =>
    tf.tidy(() => tf.fused.matMul({ a: tf.tensor2d(a, [B, a.length / B]), b: wt, bias: b }));
  return {
    step: (tok: tf.Tensor1D, s: number): tf.Tensor2D => {
      embedTokens(x, tok.dataSync() as Int32Array, s, w, pos, seg, table, cueRows);
      for (let l = 0; l < L; l++) {
        const { bp, ln1g, ln1b, ln2g, ln2b } = w.layers[l];
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
      layerNormHost(x, w.lnfG, w.lnfB, h, d);
      return tf.tidy(() => tf.matMul(tf.tensor2d(h, [B, d]), embT));
    },
    dispose: () => {
      embT.dispose();
      attn.release();
    },
  };
}
