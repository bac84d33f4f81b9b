/**
 * The decoder's full forward (training, log-probs, the prefix of generation) over [image tokens ; text
 * tokens], the grouped forward that encodes each group's images and prompt once, and the log-prob and
 * entropy read-outs the trainers use.
 * - token embedding (tied with the output projection) + learned position embeddings of TEXT positions,
 *   counted over real tokens only (left padding never shifts a position). Image tokens carry their
 *   position from the vision encoder.
 * - attention mask: see layout.ts maskBias.
 * No dropout: training and inference forwards are identical (this keeps resumed runs bitwise equal).
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { embedLookup, layerNorm, matMulNT2d } from "./ops.ts";
import { blockFull, blockGroup } from "./layers.ts";
import { type CueText, encodeImages, type VisionStates } from "./vision.ts";
import { checkGroups, firstOfGroups, groupBias, maskBias, repeatGroups, slotSegments } from "./layout.ts";
import type { Net } from "./params.ts";
import type { GroupLayout, ModelInput } from "./types.ts";

/** Per-layer keys [B, H, t, dh] and values (layout per use: see where a KV is made). */
export type KV = {
  k: tf.Tensor4D[];
  v: tf.Tensor4D[];
};

/** Text positions (real tokens only) as int32 [B, T]. */
function textPositions(net: Net, attn: tf.Tensor2D): tf.Tensor2D {
  return tf.cumsum(attn, 1).sub(1).clipByValue(0, net.config.maxText - 1).toInt() as tf.Tensor2D;
}

/** Options of `forward`. */
export interface ForwardOptions {
  /** Only the last text position's hidden state ([B, d]). */
  lastOnly?: boolean;
  /** Return every layer's K and V ([B, H, S, dh]). */
  collectKV?: boolean;
  /** Filled with the cue logits of the views (ModelConfig.cueHead). */
  states?: VisionStates;
  /** Filled with the cue-conditioned text table (ModelConfig.cueText). */
  text?: CueText;
  groups?: GroupLayout;
}

/**
 * Full forward of the decoder. Returns the final hidden states of text positions ([B, T, d] after ln_f) or,
 * with `lastOnly`, of the last text position ([B, d]); with `collectKV`, every layer's K and V. With
 * `groups` (GroupLayout), images and prompt are encoded once per group (`states` then hold one row per
 * group) and the completions run by decodeGroups; `lastOnly` and `collectKV` do not apply.
 */
export function forward(
  net: Net,
  input: ModelInput,
  opts: ForwardOptions = {},
): { h: tf.Tensor; Ni: number; kv: KV } {
  const cfg = net.config;
  const d = cfg.dModel;
  const [B, T] = input.ids.shape;
  const text: CueText = opts.text ?? { table: null };
  const groups = opts.groups;
  const img = encodeImages(net, groups ? firstOfGroups(input, groups.size) : input, opts.states, text);
  if (groups && text.table) text.table = repeatGroups(text.table, groups.size, 1 + cfg.maxCandidates);
  const Ni = img ? img.shape[1] : 0;
  const S = Ni + T;
  const txt = textEmbeddings(net, input, text).reshape([B, T, d]);
  if (groups) {
    return { h: decodeGroups(net, img, txt as tf.Tensor3D, input.attn, groups), Ni, kv: { k: [], v: [] } };
  }
  let x = (img ? tf.concat([img, txt], 1) : txt).reshape([B * S, d]) as tf.Tensor2D;
  const bias = maskBias(input.attn, Ni);
  const kv: KV = { k: [], v: [] };
  for (let l = 0; l < cfg.nLayers; l++) {
    const r = blockFull(x, net.params.block(`dec.layers.${l}`), B, S, cfg.nHeads, bias);
    x = r.x;
    if (opts.collectKV) {
      kv.k.push(r.k);
      kv.v.push(r.v);
    }
  }
  const x3 = x.reshape([B, S, d]);
  const g = net.params.get("dec.ln_f.g"), b = net.params.get("dec.ln_f.b");
  if (opts.lastOnly) {
    return { h: layerNorm(x3.slice([0, S - 1, 0], [B, 1, d]).reshape([B, d]), g, b), Ni, kv };
  }
  return { h: layerNorm(x3.slice([0, Ni, 0], [B, T, d]), g, b), Ni, kv };
}

/**
 * Input embeddings of the text tokens [B * T, d]: token + text position, plus with ModelConfig.slots the
 * segment embedding and, with a cue text table, the row of its segment.
 */
function textEmbeddings(net: Net, input: ModelInput, text: CueText): tf.Tensor {
  const cfg = net.config;
  const [B, T] = input.ids.shape;
  const emb = net.params.get("dec.tok_emb");
  const tokE = embedLookup(emb, input.ids.reshape([B * T]));
  const posE = embedLookup(net.params.get("dec.pos_emb"), textPositions(net, input.attn).reshape([B * T]));
  let txtE = tokE.add(posE);
  if (cfg.slots) {
    const segs = slotSegments(cfg.slots, cfg.vocabSize, input.ids.dataSync() as Int32Array, B, T).seg;
    const seg = tf.tensor1d(segs, "int32");
    txtE = txtE.add(embedLookup(net.params.get("dec.slot_emb"), seg));
    if (text.table) {
      const rows = 1 + cfg.maxCandidates;
      const idx = tf.tensor1d(segs.map((sg, i) => Math.floor(i / T) * rows + sg), "int32");
      txtE = txtE.add(embedLookup(text.table, idx));
    }
  }
  return txtE;
}

/**
 * The decoder over groups (GroupLayout): each group's prefix (image tokens + prompt, `img` [P, Ni, d] and
 * the prompt part of `txt`) runs once through every layer, and the completion tokens of its G rows attend
 * to that layer's prefix keys and values and to their own earlier completion tokens (blockGroup). The same
 * mask as maskBias: a prefix never attends to completions, so its states equal the per-row ones. Returns
 * the final text hidden states [B, T, d] (prompt positions repeated over the group), after ln_f.
 */
function decodeGroups(
  net: Net,
  img: tf.Tensor3D | null,
  txt: tf.Tensor3D,
  attn: tf.Tensor2D,
  groups: GroupLayout,
): tf.Tensor {
  const cfg = net.config, d = cfg.dModel;
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
    const bp = net.params.block(`dec.layers.${l}`);
    const pre = blockFull(xP, bp, P, S0, cfg.nHeads, biasP);
    xC = blockGroup(xC, bp, pre.k, pre.v, G, Tc, cfg.nHeads, biasC);
    xP = pre.x;
  }
  const hP = xP.reshape([P, S0, d]).slice([0, Ni, 0], [P, Tp, d]).reshape([P, 1, Tp * d]).tile([1, G, 1]);
  const h = tf.concat([hP.reshape([B, Tp, d]), xC.reshape([B, Tc, d])], 1);
  return layerNorm(h, net.params.get("dec.ln_f.g"), net.params.get("dec.ln_f.b"));
}

/** Hidden states [..., d] -> logits [..., V] through the tied token embedding. */
export function project(net: Net, h: tf.Tensor): tf.Tensor {
  const d = net.config.dModel;
  const shape = h.shape.slice(0, -1);
  const out = matMulNT2d(h.reshape([-1, d]) as tf.Tensor2D, net.params.get("dec.tok_emb") as tf.Tensor2D);
  return out.reshape([...shape, net.config.vocabSize]);
}

/**
 * Log-softmax of logits / temperature at text positions 0..T-2 (each predicts the next id): [B, T-1, V].
 */
export function nextLogProbs(
  net: Net,
  input: ModelInput,
  states?: VisionStates,
  temperature = 1,
  groups?: GroupLayout,
): tf.Tensor3D {
  const [B, T] = input.ids.shape;
  const h = forward(net, input, { states, groups: checkGroups(input, groups) }).h;
  const lg = project(net, h).slice([0, 0, 0], [B, T - 1, net.config.vocabSize]);
  return tf.logSoftmax(temperature === 1 ? lg : lg.div(temperature)) as tf.Tensor3D;
}

/** log p(ids[b, t]) from `nextLogProbs`, aligned to ids with a 0 in front: [B, T]. */
export function picked(net: Net, lp: tf.Tensor3D, ids: tf.Tensor2D): tf.Tensor2D {
  const [B, T] = ids.shape;
  const tgt = tf.oneHot(ids.slice([0, 1], [B, T - 1]).toInt(), net.config.vocabSize);
  return padFront(lp.mul(tgt).sum(-1) as tf.Tensor2D);
}

/** A column of zeros in front: [B, T-1] -> [B, T] (position 0 predicts nothing). */
function padFront(x: tf.Tensor2D): tf.Tensor2D {
  return tf.concat([tf.zeros([x.shape[0], 1]), x], 1) as tf.Tensor2D;
}

/** Entropy (nats) of each distribution in log-probs [B, T-1, V], aligned to ids with a 0 in front: [B, T]. */
export function entropyOf(lp: tf.Tensor3D): tf.Tensor2D {
  return padFront(lp.exp().mul(lp).sum(-1).neg() as tf.Tensor2D);
}

/** Log-probs are of softmax(logits / temperature): only a positive finite temperature defines one. */
export function checkTemperature(t: number): void {
  if (!(t > 0 && Number.isFinite(t))) throw new RangeError(`temperature must be > 0 (got ${t})`);
}
