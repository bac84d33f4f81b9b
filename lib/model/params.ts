/**
 * The VLM's parameters: their names, shapes and initialisers (`paramSpecs`, the checkpoint's tensor list),
 * and `ParamStore`, the tfjs variables of one model instance looked up by checkpoint name.
 * Weights are initialised deterministically from `cfg.seed` (each tensor from `deriveSeed(seed, name)`).
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { deriveSeed, Rng } from "../rng.ts";
import { aerialPatchSize, imageTokenCounts } from "./config.ts";
import type { ModelConfig } from "./types.ts";
import type { PolarSampler } from "./vision.ts";

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

/** A view of one transformer block's parameters. */
export interface BlockP {
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

/** Instances made so far: each model's variables get their own name prefix in the tfjs registry. */
let instances = 0;

/** The variables of one model, by checkpoint name (no instance prefix), in paramSpecs order. */
export class ParamStore {
  readonly #vars = new Map<string, tf.Variable>();

  /** Variables of `cfg`'s parameters: copies of `from`'s tensors where given, else initialised from the seed. */
  constructor(cfg: ModelConfig, trainable: boolean, from?: Map<string, tf.Tensor>) {
    const prefix = `vlm${instances++}`;
    for (const p of paramSpecs(cfg)) {
      const src = from?.get(p.name);
      const t = src ? src.clone() : tf.tensor(initValues(p, cfg.seed), p.shape, "float32");
      this.#vars.set(p.name, tf.variable(t, trainable, `${prefix}/${p.name}`));
      t.dispose();
    }
  }

  /** The variable of one parameter; throws on an unknown name. */
  get(name: string): tf.Variable {
    const v = this.#vars.get(name);
    if (!v) throw new Error(`no parameter ${name}`);
    return v;
  }

  /** The parameters of the transformer block named `pre` (e.g. `dec.layers.0`). */
  block(pre: string): BlockP {
    const p = (s: string) => this.get(`${pre}.${s}`);
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

  /** [name, variable] pairs in paramSpecs order. */
  entries(): [string, tf.Variable][] {
    return [...this.#vars.entries()];
  }

  /** Overwrite weights from host arrays (checkpoint load / resume); every name must exist with its shape. */
  setWeights(values: Map<string, Float32Array>): void {
    for (const [name, v] of this.#vars) {
      const a = values.get(name);
      if (!a) throw new Error(`setWeights: missing tensor ${name}`);
      if (a.length !== v.size) {
        throw new Error(`setWeights: ${name} has ${a.length} values, expected ${v.size}`);
      }
      tf.tidy(() => v.assign(tf.tensor(a, v.shape, "float32")));
    }
  }

  dispose(): void {
    for (const v of this.#vars.values()) v.dispose();
  }
}

/**
 * What the forward functions of lib/model read: the config, the parameters and the polar-sampling tables of
 * one model instance (`TfVLM` holds one).
 */
export interface Net {
  config: ModelConfig;
  params: ParamStore;
  polar: PolarSampler;
}
