/**
 * The trainable pieces the baselines share: dense layers on tf.Variables with seeded initialisation, and a
 * patch encoder for ground panoramas.
 *
 * Image encoder: the panorama [H, W, 3] is cut into full-height vertical strips of `patchWidth` columns (one
 * token per azimuth sector, as the VLM's vision encoder cuts it), each strip goes through a shared two-layer
 * MLP, and the strip features are concatenated in azimuth order (north first) and projected to `embed`.
 * Concatenating rather than pooling keeps where things are: the sun's side and the driving side are cues
 * of latitude and country.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { RGBImage } from "../world/types.ts";
import { Rng } from "../rng.ts";

/** A dense layer y = x W + b. */
export class Dense {
  readonly w: tf.Variable;
  readonly b: tf.Variable;

  /** He-normal weights (std sqrt(2 / fanIn)) from `rng`, zero bias. */
  constructor(fanIn: number, fanOut: number, rng: Rng, name: string) {
    const std = Math.sqrt(2 / fanIn);
    const w = new Float32Array(fanIn * fanOut);
    for (let i = 0; i < w.length; i++) w[i] = rng.normal() * std;
    const w0 = tf.tensor2d(w, [fanIn, fanOut]);
    const b0 = tf.zeros([fanOut]);
    this.w = tf.variable(w0, true, `${name}/w`);
    this.b = tf.variable(b0, true, `${name}/b`);
    // The variables hold their own reference to the data.
    tf.dispose([w0, b0]);
  }

  apply(x: tf.Tensor2D): tf.Tensor2D {
    return tf.add(tf.matMul(x, this.w), this.b) as tf.Tensor2D;
  }

  get variables(): tf.Variable[] {
    return [this.w, this.b];
  }

  dispose(): void {
    this.w.dispose();
    this.b.dispose();
  }
}

/** Shape of the ground encoder (`stages.<name>.encoder`). */
export interface EncoderSpec {
  /** Columns per vertical strip; must divide the panorama width. */
  patchWidth: number;
  /** Width of the per-strip MLP. */
  hidden: number;
  /** Size of the image embedding. */
  embed: number;
}

/** Patch encoder of ground panoramas (see the module doc). */
export class PatchEncoder {
  readonly strips: number;
  readonly #inDim: number;
  readonly #l1: Dense;
  readonly #l2: Dense;
  readonly #out: Dense;

  constructor(readonly shape: [number, number], readonly spec: EncoderSpec, rng: Rng, name: string) {
    const [h, w] = shape;
    if (!(spec.patchWidth >= 1 && w % spec.patchWidth === 0)) {
      throw new RangeError(`encoder.patchWidth ${spec.patchWidth} must divide the panorama width ${w}`);
    }
    this.strips = w / spec.patchWidth;
    this.#inDim = h * spec.patchWidth * 3;
    this.#l1 = new Dense(this.#inDim, spec.hidden, rng, `${name}/strip1`);
    this.#l2 = new Dense(spec.hidden, spec.hidden, rng, `${name}/strip2`);
    this.#out = new Dense(this.strips * spec.hidden, spec.embed, rng, `${name}/out`);
  }

  /** Embeddings [B, embed] (after a ReLU) of images [B, H, W, 3] scaled to [0, 1]. */
  apply(images: tf.Tensor4D): tf.Tensor2D {
    const [B, H] = images.shape;
    const pw = this.spec.patchWidth;
    const strips = images.reshape([B, H, this.strips, pw, 3]).transpose([0, 2, 1, 3, 4])
      .reshape([B * this.strips, this.#inDim]) as tf.Tensor2D;
    const f = tf.relu(this.#l2.apply(tf.relu(this.#l1.apply(strips)))) as tf.Tensor2D;
    return tf.relu(this.#out.apply(f.reshape([B, this.strips * this.spec.hidden]))) as tf.Tensor2D;
  }

  get variables(): tf.Variable[] {
    return [this.#l1, this.#l2, this.#out].flatMap((l) => l.variables);
  }

  dispose(): void {
    for (const l of [this.#l1, this.#l2, this.#out]) l.dispose();
  }
}

/** Panoramas kept on the host as one Uint8Array [N, H, W, 3], batched into float tensors on demand. */
export class ImageBank {
  readonly n: number;
  readonly #data: Uint8Array;
  readonly #size: number;

  constructor(images: readonly RGBImage[], readonly shape: [number, number]) {
    const [h, w] = shape;
    this.n = images.length;
    this.#size = h * w * 3;
    this.#data = new Uint8Array(this.n * this.#size);
    images.forEach((img, i) => {
      if (img.height !== h || img.width !== w) {
        throw new RangeError(`image ${i} is ${img.width}x${img.height}, expected ${w}x${h}`);
      }
      this.#data.set(img.data, i * this.#size);
    });
  }

  /** Images `indices` as a float tensor [B, H, W, 3] in [0, 1]. */
  batch(indices: readonly number[]): tf.Tensor4D {
    const out = new Float32Array(indices.length * this.#size);
    indices.forEach((idx, b) => {
      const src = this.#data.subarray(idx * this.#size, (idx + 1) * this.#size);
      const o = b * this.#size;
      for (let k = 0; k < this.#size; k++) out[o + k] = src[k] / 255;
    });
    return tf.tensor4d(out, [indices.length, this.shape[0], this.shape[1], 3]);
  }
}
