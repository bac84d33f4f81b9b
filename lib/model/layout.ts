/**
 * Where each token may look and which segment it belongs to: the additive attention masks of the per-row
 * forward (`maskBias`) and of G-row groups (`groupBias`), the group layout checks and gathers, and the
 * candidate-slot segments of text tokens (ModelConfig.slots). Masks are built on the host from a readback
 * of `attn` (small): broadcasting elementwise ops are slow on wasm.
 *
 * group: the G rows of one prompt (rows p*G .. p*G+G-1, GroupLayout); P prompts, so B = P * G rows.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { NEG } from "./ops.ts";
import type { GroupLayout, ModelInput, SlotSegments } from "./types.ts";

/**
 * Additive attention mask [B, 1, S, S] over [Ni image tokens ; T text tokens]: 0 where allowed, -1e9
 * elsewhere. Image tokens attend to all image tokens (bidirectional prefix); text tokens attend to all image
 * tokens and to earlier-or-same real text tokens; padding keys are masked. Every query may always attend to
 * itself, so padded rows stay finite.
 */
export function maskBias(attn: tf.Tensor2D, Ni: number): tf.Tensor4D {
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
 * Additive mask [P, 1, G*Tc, S0 + Tc] of the completion queries of G-row groups (layers.ts blockGroup) over [the
 * prefix: Ni image tokens + Tp prompt tokens ; the row's own Tc completion tokens], by maskBias's rule: image
 * keys always, text keys where attn is 1 and not later than the query, and the query itself.
 */
export function groupBias(
  attn: Float32Array,
  P: number,
  G: number,
  T: number,
  Tp: number,
  Ni: number,
): tf.Tensor4D {
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

/**
 * The group layout to use for `input`, or undefined for the per-row forward (no groups, groups of one, no
 * completion tokens). Throws when the rows of a group differ in their prompt block or images.
 */
export function checkGroups(input: ModelInput, groups?: GroupLayout): GroupLayout | undefined {
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

function badGroups(why: string): never {
  throw new Error(`groups: ${why}`);
}

/** The first row of each group of G (no gradient: images, ids and attn are inputs). */
export function firstOfGroups(input: ModelInput, G: number): ModelInput {
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
export function repeatGroups(table: tf.Tensor2D, G: number, rows: number): tf.Tensor2D {
  const [n, d] = table.shape, P = n / rows;
  return table.reshape([P, 1, rows * d]).tile([1, G, 1]).reshape([P * G * rows, d]) as tf.Tensor2D;
}

/** [0,0,..,1,1,..]: row p repeated G times (group-contiguous). */
export function repeatIndex(P: number, G: number): number[] {
  const out: number[] = [];
  for (let p = 0; p < P; p++) for (let g = 0; g < G; g++) out.push(p);
  return out;
}

/** Slot of each token id for SlotSegments: k + 1 names slot k, -1 resets, 0 keeps the current segment. */
export function slotTable(slots: SlotSegments, vocab: number): Int32Array {
  const t = new Int32Array(vocab);
  slots.tokens.forEach((ids, k) => ids.forEach((id) => (t[id] = k + 1)));
  for (const id of slots.reset) t[id] = -1;
  return t;
}

/** Next segment from the current one and a token's slotTable entry. */
export function nextSegment(cur: number, entry: number): number {
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
