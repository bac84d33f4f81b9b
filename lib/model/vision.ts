/**
 * The vision encoder: every image of an example becomes tokens in the decoder's width.
 * - ground panorama: patches `vision.groundPatch` (small: full-height vertical strips [32, 8], so each token
 *   is one azimuth sector); aerial tiles: polar-resampled and cut into full-radius azimuth sectors on the
 *   ground strips' bearings (VisionConfig.aerialLayout). Pixels are mapped to [-1, 1].
 * - separate patch embeddings per view kind (the patch shapes differ), one learned position embedding per
 *   azimuth sector shared by ground and aerial tokens, learned view-type embeddings (ground, A, B, C, D),
 *   both gating the patch embedding and added to it (VisionConfig.embedGating).
 * - shared transformer layers over ALL image tokens of an example jointly (bidirectional), so the encoder
 *   can compare views; final LayerNorm; a linear projector into the decoder width.
 * With `cueHead`, each view's states also give cue logits (and, with `cueText`, the cue-conditioned text
 * table the decoder adds to text tokens).
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { imageTokenCounts } from "./config.ts";
import { CUE_GROUP_OFFSETS, CUE_GROUPS, CUE_ROAD_OUTPUTS } from "../data/cue_labels.ts";
import { layerNorm, linear } from "./ops.ts";
import { blockFull } from "./layers.ts";
import type { Net } from "./params.ts";
import type { ModelInput } from "./types.ts";

/** Cue logits of one forward (ModelConfig.cueHead): ground [B, n] and aerial [B * K, n], null when absent. */
export type VisionStates = { ground: tf.Tensor2D | null; aerial: tf.Tensor2D | null };

/** Holder for the cue-conditioned text table of one forward (see `cueTextTable`). */
export type CueText = { table: tf.Tensor2D | null };

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

/**
 * Tiles [N, S, S, 3] -> polar sectors [N, sectors, radii * width * 3] (see `polarSampling`): each token is
 * one full-radius azimuth sector, like a full-height ground strip. Keeps the gather tables of the last tile
 * size on the device until `dispose`.
 */
export class PolarSampler {
  #cache: { key: string; idx: tf.Tensor1D; w: tf.Tensor } | null = null;

  sectors(a: tf.Tensor4D, polar: { radii: number; azimuths: number; sectors: number }): tf.Tensor3D {
    const [N, S] = a.shape;
    const { radii: R, azimuths: A, sectors } = polar;
    const key = `${S}/${R}/${A}`;
    if (this.#cache?.key !== key) {
      this.#cache?.idx.dispose();
      this.#cache?.w.dispose();
      const { idx, w } = polarSampling(S, R, A);
      this.#cache = {
        key,
        idx: tf.keep(tf.tensor1d(idx, "int32")),
        w: tf.keep(tf.tensor(w, [1, R * A, 4, 1])),
      };
    }
    const { idx, w } = this.#cache;
    const img = tf.gather(a.reshape([N, S * S, 3]), idx, 1).reshape([N, R * A, 4, 3]).mul(w).sum(2);
    // [N, R, A, 3] -> sectors of width A / sectors (same as patchify with full-height patches).
    return patchify(img.reshape([N, R, A, 3]) as tf.Tensor4D, R, A / sectors);
  }

  dispose(): void {
    this.#cache?.idx.dispose();
    this.#cache?.w.dispose();
    this.#cache = null;
  }
}

/** Patch embeddings gated by position and view-type embeddings, which are then added (embedGating). */
function embedWith(e: tf.Tensor, pos: tf.Tensor, view: tf.Tensor): tf.Tensor {
  return e.mul(pos.add(1)).mul(view.add(1)).add(pos).add(view);
}

/** Embedded ground-panorama tokens [B, n.ground, dv], before the encoder layers. */
function groundTokens(net: Net, ground: tf.Tensor4D, B: number): tf.Tensor3D {
  const cfg = net.config, v = cfg.vision, dv = v.dModel, n = imageTokenCounts(cfg);
  const [, gh, gw] = ground.shape;
  if (gh !== cfg.groundShape[0] || gw !== cfg.groundShape[1]) {
    throw new Error(`ground image is ${gh}x${gw}, the model expects ${cfg.groundShape.join("x")}`);
  }
  const g = ground.sub(0.5).mul(2) as tf.Tensor4D;
  const pt = patchify(g, v.groundPatch[0], v.groundPatch[1]);
  const e = linear(
    pt.reshape([B * n.ground, -1]),
    net.params.get("vis.patch_ground.w") as tf.Tensor2D,
    net.params.get("vis.patch_ground.b"),
  )
    .reshape([B, n.ground, dv]);
  const vt = net.params.get("vis.view_type");
  return embedWith(e, net.params.get("vis.pos_ground"), vt.slice([0, 0], [1, dv])) as tf.Tensor3D;
}

/** Embedded aerial tokens [B, K * n.aerial, dv] of the K candidate tiles, before the encoder layers. */
function aerialTokens(net: Net, aerial: tf.Tensor5D, B: number): tf.Tensor3D {
  const cfg = net.config, v = cfg.vision, dv = v.dModel, n = imageTokenCounts(cfg);
  const [, K, ah, aw] = aerial.shape;
  if (K > cfg.maxCandidates) {
    throw new Error(`${K} aerial images, the model has ${cfg.maxCandidates} slots`);
  }
  if (ah !== cfg.aerialSize || aw !== cfg.aerialSize) {
    throw new Error(`aerial image is ${ah}x${aw}, the model expects ${cfg.aerialSize}x${cfg.aerialSize}`);
  }
  const a = aerial.reshape([B * K, ah, aw, 3]).sub(0.5).mul(2) as tf.Tensor4D;
  const na = n.aerial;
  const pt = net.polar.sectors(a, v.polar);
  const pos = net.params.get("vis.pos_ground");
  const e = linear(
    pt.reshape([B * K * na, -1]),
    net.params.get("vis.patch_aerial.w") as tf.Tensor2D,
    net.params.get("vis.patch_aerial.b"),
  )
    .reshape([B, K, na, dv]);
  const vt = net.params.get("vis.view_type");
  const posA = pos.reshape([1, 1, na, dv]), vtA = vt.slice([1, 0], [K, dv]).reshape([1, K, 1, dv]);
  return embedWith(e, posA, vtA).reshape([B, K * na, dv]) as tf.Tensor3D;
}

/** Image tokens in decoder space: [B, Ni, d] (Ni may be 0 -> null). */
export function encodeImages(
  net: Net,
  input: ModelInput,
  states?: VisionStates,
  text?: CueText,
): tf.Tensor3D | null {
  const cfg = net.config, v = cfg.vision;
  const dv = v.dModel;
  const B = input.ids.shape[0];
  const parts: tf.Tensor3D[] = [];
  if (input.ground) parts.push(groundTokens(net, input.ground, B));
  const K = input.aerial ? input.aerial.shape[1] : 0;
  if (input.aerial) parts.push(aerialTokens(net, input.aerial, B));
  if (parts.length === 0) return null;
  const x0 = parts.length === 1 ? parts[0] : tf.concat(parts, 1);
  const Ni = x0.shape[1];
  let x = x0.reshape([B * Ni, dv]) as tf.Tensor2D;
  for (let l = 0; l < v.nLayers; l++) {
    x = blockFull(x, net.params.block(`vis.layers.${l}`), B, Ni, v.nHeads, null).x;
  }
  x = layerNorm(x, net.params.get("vis.ln_f.g"), net.params.get("vis.ln_f.b")) as tf.Tensor2D;
  const out = x.reshape([B, Ni, dv]) as tf.Tensor3D;
  // Cue logits of every view (ModelConfig.cueHead): needed for the loss (`states`) and for cue text.
  const cues = cfg.cueHead && (states || cfg.cueText) ? cueLogits(net, out, input.ground !== null, K) : null;
  if (cues && states) (states.ground = cues.ground), (states.aerial = cues.aerial);
  const Nd = out.shape[1];
  const projected = linear(
    out.reshape([B * Nd, dv]),
    net.params.get("proj.w") as tf.Tensor2D,
    net.params.get("proj.b"),
  )
    .reshape([B, Nd, cfg.dModel]);
  if (cfg.cueText && text) {
    text.table = cueTextTable(net, B, K, cues?.ground ?? null, cues?.aerial ?? null);
  }
  if (!(cfg.slots && K > 0)) return projected as tf.Tensor3D;
  return projected.add(slotEmbeddings(net, input.ground !== null, K)) as tf.Tensor3D;
}

/**
 * Cue logits of each view from the encoder states `out` [B, Ni, dv]: ground [B, cueHead] (null without a
 * ground view) and aerial [B * K, cueHead] (null without tiles).
 */
function cueLogits(net: Net, out: tf.Tensor3D, hasGround: boolean, K: number): VisionStates {
  const n = imageTokenCounts(net.config), dv = net.config.vision.dModel, B = out.shape[0];
  const ng = hasGround ? n.ground : 0;
  const head = (x: tf.Tensor2D, name: string) =>
    linear(x, net.params.get(`${name}.w`) as tf.Tensor2D, net.params.get(`${name}.b`));
  let ground: tf.Tensor2D | null = null, aerial: tf.Tensor2D | null = null;
  if (ng > 0) ground = head(out.slice([0, 0, 0], [B, ng, dv]).reshape([B, ng * dv]), "aux.cue_ground");
  if (K > 0) {
    const flat = out.slice([0, ng, 0], [B, K * n.aerial, dv]).reshape([B * K, n.aerial * dv]);
    aerial = head(flat as tf.Tensor2D, "aux.cue_aerial");
  }
  return { ground, aerial };
}

/**
 * What the image tokens add with ModelConfig.slots: [1, Nd, d], 0 on ground tokens and slot embedding k + 1
 * on tile k's tokens (the segment embedding of text about candidate k).
 */
function slotEmbeddings(net: Net, hasGround: boolean, K: number): tf.Tensor {
  const cfg = net.config, n = imageTokenCounts(cfg);
  const ng = hasGround ? n.ground : 0;
  const lab = net.params.get("dec.slot_emb").slice([1, 0], [K, cfg.dModel]);
  const per = tf.concat([
    ...(ng > 0 ? [tf.zeros([ng, cfg.dModel])] : []),
    lab.reshape([K, 1, cfg.dModel]).tile([1, n.aerial, 1]).reshape([K * n.aerial, cfg.dModel]),
  ], 0);
  return per.reshape([1, ng + K * n.aerial, cfg.dModel]);
}

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

/**
 * Cue-conditioned text (ModelConfig.cueText): row s of example b is what a text token of segment s adds,
 * the ground's cue embedding plus, for s = k + 1, tile k's: [B * (1 + maxCandidates), d] (absent tiles 0).
 */
function cueTextTable(
  net: Net,
  B: number,
  K: number,
  cueG: tf.Tensor2D | null,
  cueA: tf.Tensor2D | null,
): tf.Tensor2D {
  const cfg = net.config, d = cfg.dModel, M = cfg.maxCandidates;
  const p = (name: string) => net.params.get(name);
  const emb = (lg: tf.Tensor2D, name: string) =>
    linear(cueProbabilities(lg), p(`${name}.w`) as tf.Tensor2D, p(`${name}.b`));
  const g = cueG ? emb(cueG, "aux.cue_text_ground").reshape([B, 1, d]) : tf.zeros([B, 1, d]);
  const rows: tf.Tensor[] = [tf.zeros([B, 1, d])];
  if (cueA) {
    let a = emb(cueA, "aux.cue_text_aerial").reshape([B, K, d]);
    if (cueG && cfg.cueMatch) {
      // Cross-view agreement (ModelConfig.cueMatch): tile k's probabilities times the ground's, per class.
      const pg = cueProbabilities(cueG).reshape([B, 1, -1]);
      const pa = cueProbabilities(cueA).reshape([B, K, -1]);
      const agree = pa.mul(pg).reshape([B * K, -1]) as tf.Tensor2D;
      const w = p("aux.cue_match.w") as tf.Tensor2D, bm = p("aux.cue_match.b");
      a = a.add(linear(agree, w, bm).reshape([B, K, d]));
    }
    rows.push(a);
  }
  if (M - K > 0) rows.push(tf.zeros([B, M - K, d]));
  let everywhere = g;
  if (cueG && cueA && cfg.cueMatchAll) {
    // All candidates' agreement with the ground (ModelConfig.cueMatchAll), in slot order, absent slots 0:
    // the same vector reaches every text token, so the answer position can compare the tiles.
    const pg = cueProbabilities(cueG).reshape([B, 1, -1]);
    const pa = cueProbabilities(cueA).reshape([B, K, -1]);
    let agree = pa.mul(pg);
    if (M - K > 0) agree = tf.concat([agree, tf.zeros([B, M - K, agree.shape[2]!])], 1);
    const w = p("aux.cue_match_all.w") as tf.Tensor2D, bm = p("aux.cue_match_all.b");
    everywhere = g.add(linear(agree.reshape([B, -1]) as tf.Tensor2D, w, bm).reshape([B, 1, d]));
  }
  return tf.concat(rows, 1).add(everywhere).reshape([B * (1 + M), d]) as tf.Tensor2D;
}
