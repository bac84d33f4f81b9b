/**
 * The small VLM: a vision encoder over all image patches of an example, projected into a causal pre-LN
 * transformer decoder over [image tokens ; text tokens]. `TfVLM` is the VLM the trainers use; the work is
 * split by concern:
 * - params.ts: parameter names, shapes and deterministic initialisation; one model's variables
 * - ops.ts: differentiable building blocks with wasm-fast gradients (linear, NT matmuls, embedding lookup)
 * - layers.ts: the transformer blocks (full sequence, and completions of G-row groups)
 * - vision.ts: the image encoder (ground strips, polar aerial sectors, cue heads)
 * - decoder.ts: the full and grouped decoder forward, log-probs and entropy
 * - layout.ts: attention masks, group layout checks, candidate-slot segments
 * - generate.ts, decode_step.ts, host_decoder.ts: sampling with a shared prefix KV cache
 * No dropout: training and inference forwards are identical (this keeps resumed runs bitwise equal).
 * Weights are initialised deterministically from `cfg.seed` (each tensor from `deriveSeed(seed, name)`).
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { stopGradient } from "./grad.ts";
import { validateConfig } from "./config.ts";
import { bmm, bmmNT, embedLookup, linear, matMulNT2d } from "./ops.ts";
import { type Net, ParamStore } from "./params.ts";
import { PolarSampler, type VisionStates } from "./vision.ts";
import { checkTemperature, entropyOf, forward, nextLogProbs, picked, project } from "./decoder.ts";
import { generate } from "./generate.ts";
import type { GenerateOptions, GenerateResult, GroupLayout, ModelConfig, ModelInput, VLM } from "./types.ts";

export { type ParamSpec, paramSpecs } from "./params.ts";
export { polarSampling } from "./vision.ts";
export { slotSegments } from "./layout.ts";
export { sampleTokens } from "./generate.ts";

/** The tfjs implementation of VLM. */
export class TfVLM implements VLM {
  readonly config: ModelConfig;
  readonly #net: Net;
  readonly #trainable: boolean;
  #disposed = false;

  constructor(cfg: ModelConfig, opts: { trainable?: boolean; from?: Map<string, tf.Tensor> } = {}) {
    validateConfig(cfg, "config");
    this.config = structuredClone(cfg);
    this.#trainable = opts.trainable ?? true;
    this.#net = {
      config: this.config,
      params: new ParamStore(cfg, this.#trainable, opts.from),
      polar: new PolarSampler(),
    };
  }

  trainable(): tf.Variable[] {
    return this.#trainable ? this.#net.params.entries().map(([, v]) => v) : [];
  }

  /** Parameters by checkpoint name (no instance prefix), in paramSpecs order. */
  namedParams(): [string, tf.Variable][] {
    return this.#net.params.entries();
  }

  /** Overwrite weights from host arrays (checkpoint load / resume); every name must exist with its shape. */
  setWeights(values: Map<string, Float32Array>): void {
    this.#net.params.setWeights(values);
  }

  logits(input: ModelInput, _training = false): tf.Tensor3D {
    this.#check();
    return tf.tidy(() => project(this.#net, forward(this.#net, input).h) as tf.Tensor3D);
  }

  tokenLogProbs(input: ModelInput, _training = false, temperature = 1, groups?: GroupLayout): tf.Tensor2D {
    this.#check();
    checkTemperature(temperature);
    return tf.tidy(() => {
      const [B, T] = input.ids.shape;
      if (T < 2) return tf.zeros([B, T]) as tf.Tensor2D;
      return picked(this.#net, nextLogProbs(this.#net, input, undefined, temperature, groups), input.ids);
    });
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
      const lp = nextLogProbs(this.#net, input, undefined, temperature, groups);
      return { logp: picked(this.#net, lp, input.ids), entropy: entropyOf(stopGradient(lp)) };
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
        forward(this.#net, input, { states });
        logp = tf.zeros([B, T]) as tf.Tensor2D;
      } else logp = picked(this.#net, nextLogProbs(this.#net, input, states), input.ids);
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
      return entropyOf(nextLogProbs(this.#net, input));
    });
  }

  generate(prompt: ModelInput, opts: GenerateOptions): Promise<GenerateResult> {
    this.#check();
    return generate(this.#net, prompt, opts);
  }

  cloneFrozen(): VLM {
    this.#check();
    return new TfVLM(this.config, { trainable: false, from: new Map(this.namedParams()) });
  }

  /** A trainable deep copy (same weights). */
  clone(): TfVLM {
    this.#check();
    return new TfVLM(this.config, { trainable: true, from: new Map(this.namedParams()) });
  }

  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#net.params.dispose();
    this.#net.polar.dispose();
  }

  #check(): void {
    if (this.#disposed) throw new Error("model is disposed");
  }
}

/** Differentiable building blocks, exported for gradient tests only. */
export const _ops = { linear, matMulNT2d, bmmNT, bmm, embedLookup };

/** Create a model with freshly initialised weights (deterministic in cfg.seed). */
export function createModel(cfg: ModelConfig): TfVLM {
  return new TfVLM(cfg);
}
