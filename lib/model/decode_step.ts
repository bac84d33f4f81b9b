/**
 * One KV-cached decoding step on tfjs (every backend): the token of each of the B = P * G rows attends to
 * its prompt's shared prefix cache and to its own generated-token cache. `deviceDecoder` keeps that cache
 * and the rows' candidate-slot segments across the steps of one generate() call; the wasm backend uses the
 * host decoder instead (host_decoder.ts), which computes the same function.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { matMulNT } from "./kernels.ts";
import { embedLookup, layerNorm, linear } from "./ops.ts";
import { mlp } from "./layers.ts";
import { type KV, project } from "./decoder.ts";
import type { Net } from "./params.ts";

/** The shared prefix cache of P prompts: K [P, H, S0, dh], V transposed [P, H, dh, S0], key mask [P, 1, 1, S0]. */
export type Prefix = { P: number; k: tf.Tensor4D[]; v: tf.Tensor4D[]; bias: tf.Tensor };

/** The per-step decoder of one generate() call: token `tok` of step `s` in, next logits [B, V] out. */
export type StepDecoder = { step(tok: tf.Tensor1D, s: number): tf.Tensor2D; dispose(): void };

/**
 * One decoding step for B rows: token `tok` at text position `pos`, attending to the (shared, tiled)
 * prefix cache and the generated-token cache. Returns logits [B, V] and the grown generated cache.
 */
function decodeStep(
  net: Net,
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
  const cfg = net.config;
  const d = cfg.dModel, H = cfg.nHeads, dh = d / H;
  const B = tok.shape[0], P = prefix.P, G = B / P;
  let x = embedLookup(net.params.get("dec.tok_emb"), tok).add(
    embedLookup(net.params.get("dec.pos_emb"), pos),
  ) as tf.Tensor2D;
  if (seg) x = x.add(embedLookup(net.params.get("dec.slot_emb"), seg)) as tf.Tensor2D;
  if (seg && cueTable) {
    const rows = 1 + cfg.maxCandidates;
    const idx = tf.range(0, B, 1, "int32").mul(tf.scalar(rows, "int32")).add(seg) as tf.Tensor1D;
    x = x.add(embedLookup(cueTable, idx)) as tf.Tensor2D;
  }
  const next: KV = { k: [], v: [] };
  for (let l = 0; l < cfg.nLayers; l++) {
    const bp = net.params.block(`dec.layers.${l}`);
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
    x = x.add(mlp(x, bp)) as tf.Tensor2D;
  }
  const hf = layerNorm(x, net.params.get("dec.ln_f.g"), net.params.get("dec.ln_f.b"));
  return { logits: project(net, hf) as tf.Tensor2D, gen: next };
}

/**
 * The tfjs step decoder: the generated-token cache grows by concat each step; with ModelConfig.slots each
 * row's segment follows its tokens (slotTable entries `table`, starting from `segStart`).
 */
export function deviceDecoder(
  net: Net,
  prefix: Prefix,
  pos0: tf.Tensor1D,
  segStart: Int32Array | null,
  table: Int32Array | null,
  cueTable: tf.Tensor2D | null,
): StepDecoder {
  let segT = segStart ? tf.tensor1d(segStart, "int32") : null;
  const tableT = table ? tf.tensor1d(table, "int32") : null;
  let gen: KV | null = null;
  return {
    step: (tok, s) => {
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
      const out: { logits: tf.Tensor2D; gen: KV } = tf.tidy(() =>
        decodeStep(net, tok, pos0.add(tf.scalar(s, "int32")) as tf.Tensor1D, seg, prefix, prevGen, cueTable)
      );
      if (prevGen) { for (const t of [...prevGen.k, ...prevGen.v]) t.dispose(); }
      gen = out.gen;
      return out.logits;
    },
    dispose: () => {
      if (gen) { for (const t of [...gen.k, ...gen.v]) t.dispose(); }
      segT?.dispose();
      tableT?.dispose();
    },
  };
}
