/**
 * Collate examples into model tensors.
 *
 * Text layout of a row: `[pad ... pad, BOS, encode(prompt) | encode(target) ..., pad ... pad]`: the prompt
 * block is left-padded to the longest prompt of the batch, the completion block right-padded. The
 * completion of a supervised example is `encode(example.target)`, ending with the `</answer>` id (appended
 * when the tokenizer's encoding does not already end with it); no EOS: generation stops at `</answer>`.
 * A prompt + completion longer than `cfg.maxText` has its completion cut at the end (counted in
 * `TrainBatch.truncatedRows`); a prompt that alone does not fit throws.
 *
 * Images: RGB Uint8 -> float32 in [0, 1], NHWC; `aerial` is [B, K, S, S, 3]. All examples of a batch must
 * share one task layout (ground or not, same number of aerial images).
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { Example, Tokenizer } from "../data/types.ts";
import type { RGBImage } from "../world/types.ts";
import type { ModelConfig, ModelInput, TrainBatch } from "./types.ts";

/** A TrainBatch with the number of rows whose completion was cut to fit maxText. */
export interface CollatedBatch extends TrainBatch {
  truncatedRows: number;
}

/** The image layout of a batch: whether it has a ground view and how many aerial images. */
export function taskLayout(examples: readonly Example[]): { hasGround: boolean; nAerial: number } {
  if (examples.length === 0) throw new Error("collate: empty batch");
  const hasGround = examples[0].ground !== null;
  const nAerial = examples[0].aerial.length;
  for (const ex of examples) {
    if ((ex.ground !== null) !== hasGround || ex.aerial.length !== nAerial) {
      throw new Error(
        `collate: mixed task layouts in one batch (${
          examples[0].id
        }: ground=${hasGround}, aerial=${nAerial}; ` +
          `${ex.id}: ground=${ex.ground !== null}, aerial=${ex.aerial.length})`,
      );
    }
  }
  return { hasGround, nAerial };
}

/** Prompt ids of an example: BOS + encode(prompt). */
export function promptIds(ex: Example, tok: Tokenizer): number[] {
  return [tok.special.bos, ...tok.encode(ex.prompt)];
}

/** Completion ids of a supervised example: encode(target), ending with `</answer>`. */
export function targetIds(ex: Example, tok: Tokenizer): number[] {
  const ids = tok.encode(ex.target);
  if (ids[ids.length - 1] !== tok.special.answerClose) ids.push(tok.special.answerClose);
  return ids;
}

function copyImage(img: RGBImage, h: number, w: number, out: Float32Array, off: number, what: string): void {
  if (img.width !== w || img.height !== h || img.data.length !== h * w * 3) {
    throw new Error(
      `collate: ${what} is ${img.width}x${img.height} (${img.data.length} bytes), the model expects ${w}x${h} RGB`,
    );
  }
  const d = img.data;
  for (let i = 0; i < d.length; i++) out[off + i] = d[i] / 255;
}

/** Image tensors of `examples`, each example repeated `repeat` times (group-contiguous). */
function imageTensors(
  examples: readonly Example[],
  cfg: ModelConfig,
  repeat: number,
): { ground: tf.Tensor4D | null; aerial: tf.Tensor5D | null } {
  const { hasGround, nAerial } = taskLayout(examples);
  const B = examples.length * repeat;
  let ground: tf.Tensor4D | null = null;
  let aerial: tf.Tensor5D | null = null;
  if (hasGround) {
    const [h, w] = cfg.groundShape;
    const n = h * w * 3;
    const buf = new Float32Array(B * n);
    examples.forEach((ex, i) => {
      copyImage(ex.ground!, h, w, buf, i * repeat * n, `ground image of ${ex.id}`);
      for (let r = 1; r < repeat; r++) {
        buf.copyWithin((i * repeat + r) * n, i * repeat * n, (i * repeat + 1) * n);
      }
    });
    ground = tf.tensor4d(buf, [B, h, w, 3]);
  }
  if (nAerial > 0) {
    if (nAerial > cfg.maxCandidates) {
      throw new Error(
        `collate: ${nAerial} aerial images but the model has ${cfg.maxCandidates} candidate slots`,
      );
    }
    const s = cfg.aerialSize;
    const n = s * s * 3;
    const per = n * nAerial;
    const buf = new Float32Array(B * per);
    examples.forEach((ex, i) => {
      ex.aerial.forEach((img, k) =>
        copyImage(img, s, s, buf, i * repeat * per + k * n, `aerial image ${k} of ${ex.id}`)
      );
      for (let r = 1; r < repeat; r++) {
        buf.copyWithin((i * repeat + r) * per, i * repeat * per, (i * repeat + 1) * per);
      }
    });
    aerial = tf.tensor5d(buf, [B, nAerial, s, s, 3]);
  }
  return { ground, aerial };
}

/** Build ids/attn/lossMask from per-row prompt and completion ids. */
function textTensors(
  prompts: number[][],
  completions: number[][],
  pad: number,
  maxText: number,
  ids: (string | number)[],
): { ids: tf.Tensor2D; attn: tf.Tensor2D; lossMask: tf.Tensor2D; promptLen: number; truncatedRows: number } {
  const B = prompts.length;
  let truncatedRows = 0;
  const comps = completions.map((c, i) => {
    const room = maxText - prompts[i].length;
    if (room < 1) {
      throw new Error(`collate: prompt of ${ids[i]} is ${prompts[i].length} tokens, maxText is ${maxText}`);
    }
    if (c.length > room) {
      truncatedRows++;
      return c.slice(0, room);
    }
    return c;
  });
  const Tp = Math.max(...prompts.map((p) => p.length));
  const Tc = Math.max(0, ...comps.map((c) => c.length));
  const T = Tp + Tc;
  const idArr = new Int32Array(B * T).fill(pad);
  const attn = new Float32Array(B * T);
  const mask = new Float32Array(B * T);
  for (let b = 0; b < B; b++) {
    const p = prompts[b], c = comps[b];
    const off = b * T + Tp - p.length;
    for (let i = 0; i < p.length; i++) {
      idArr[off + i] = p[i];
      attn[off + i] = 1;
    }
    for (let i = 0; i < c.length; i++) {
      idArr[b * T + Tp + i] = c[i];
      attn[b * T + Tp + i] = 1;
      mask[b * T + Tp + i] = 1;
    }
  }
  return {
    ids: tf.tensor2d(idArr, [B, T], "int32"),
    attn: tf.tensor2d(attn, [B, T]),
    lossMask: tf.tensor2d(mask, [B, T]),
    promptLen: Tp,
    truncatedRows,
  };
}

function makeBatch(
  input: ModelInput,
  lossMask: tf.Tensor2D,
  promptLen: number,
  truncatedRows: number,
): CollatedBatch {
  const batch: CollatedBatch = {
    input,
    lossMask,
    promptLen,
    truncatedRows,
    dispose() {
      disposeInput(batch.input);
      batch.lossMask.dispose();
    },
  };
  return batch;
}

/** Dispose every tensor of a ModelInput. */
export function disposeInput(input: ModelInput): void {
  input.ground?.dispose();
  input.aerial?.dispose();
  input.ids.dispose();
  input.attn.dispose();
}

/** A supervised batch: prompt + target completion, loss on the completion (incl. the final `</answer>`). */
export function collateTrain(examples: readonly Example[], tok: Tokenizer, cfg: ModelConfig): CollatedBatch {
  taskLayout(examples);
  const prompts = examples.map((ex) => promptIds(ex, tok));
  const targets = examples.map((ex) => targetIds(ex, tok));
  const txt = textTensors(prompts, targets, tok.special.pad, cfg.maxText, examples.map((e) => e.id));
  const img = imageTensors(examples, cfg, 1);
  return makeBatch(
    { B: examples.length, ...img, ids: txt.ids, attn: txt.attn },
    txt.lossMask,
    txt.promptLen,
    txt.truncatedRows,
  );
}

/** The prompt block only (ids/attn [P, Tp], left-padded), for generate(). */
export function collatePrompts(examples: readonly Example[], tok: Tokenizer, cfg: ModelConfig): ModelInput {
  taskLayout(examples);
  const prompts = examples.map((ex) => promptIds(ex, tok));
  const txt = textTensors(
    prompts,
    prompts.map(() => []),
    tok.special.pad,
    cfg.maxText,
    examples.map((e) => e.id),
  );
  txt.lossMask.dispose();
  const img = imageTensors(examples, cfg, 1);
  return { B: examples.length, ...img, ids: txt.ids, attn: txt.attn };
}

/**
 * GRPO batch: example p repeated G times (rows p*G .. p*G+G-1) with its sampled completions (stop id
 * included, as generate() returns them); lossMask is 1 on completion tokens.
 */
export function collateCompletions(
  examples: readonly Example[],
  completions: number[][],
  tok: Tokenizer,
  cfg: ModelConfig,
  groupSize: number,
): CollatedBatch {
  taskLayout(examples);
  const B = examples.length * groupSize;
  if (completions.length !== B) {
    throw new Error(
      `collateCompletions: ${completions.length} completions for ${examples.length} x ${groupSize}`,
    );
  }
  const prompts: number[][] = [];
  const names: string[] = [];
  for (const ex of examples) {
    const p = promptIds(ex, tok);
    for (let g = 0; g < groupSize; g++) {
      prompts.push(p);
      names.push(ex.id);
    }
  }
  const txt = textTensors(prompts, completions, tok.special.pad, cfg.maxText, names);
  const img = imageTensors(examples, cfg, groupSize);
  return makeBatch(
    { B, ...img, ids: txt.ids, attn: txt.attn },
    txt.lossMask,
    txt.promptLen,
    txt.truncatedRows,
  );
}
