/**
 * Model presets and cost model.
 *
 * Presets (decoder / vision):
 * - `tiny`: d 32, 1 layer, 2 heads, dFF 64 / d 32, 1 layer; ground strips [H, 16], 8 polar aerial sectors
 *   (tests: seconds).
 * - `small`: d 128, 3 layers, 4 heads, dFF 512 / d 128, 1 layer, 4 heads; ground patches are full-height
 *   vertical strips [H, 8] (one token per azimuth sector: 16 tokens for a 128-wide panorama), and each aerial
 *   tile is 16 polar sectors (VisionConfig.aerialLayout) on the same azimuths. A pairing example with 4
 *   candidates is 16 + 4*16 = 80 image tokens in the decoder. Budgeted for one wasm core.
 * - `large`: d 512, 8 layers, 8 heads, dFF 2048 / d 512, 4 layers, 8 heads, the small preset's image
 *   tokens (GPU).
 *
 * Overrides from `ModelSpec` (dModel, nLayers, nHeads, dFF, maxText) apply to the decoder; when `dModel` is
 * overridden the vision width follows it.
 * @module
 */
import { UserError } from "../errors.ts";
import { CUE_OUTPUTS } from "../data/cue_labels.ts";
import type { Tokenizer } from "../data/types.ts";
import type { ExperimentSpec, ModelSpec } from "../spec/types.ts";
import type { ModelConfig, Preset, SlotSegments, VisionConfig } from "./types.ts";

/** What the data side fixes: vocabulary and image geometry (from the world spec and data spec). */
export interface ModelGeometry {
  vocabSize: number;
  /** Ground panorama [height, width]. */
  groundShape: [number, number];
  aerialSize: number;
  /** Most aerial candidates in any example (pairing K). */
  maxCandidates: number;
  /** Token ids naming each candidate slot and the ids that end a segment (ModelConfig.slots); optional. */
  slots?: SlotSegments;
}

interface PresetDims {
  dModel: number;
  nLayers: number;
  nHeads: number;
  dFF: number;
  maxText: number;
  vision: {
    dModel: number;
    nLayers: number;
    nHeads: number;
    groundPatchW: number;
    /** Polar aerial grid (VisionConfig.aerialLayout); sectors must equal the ground token count. */
    polar: { radii: number; azimuths: number; sectors: number };
  };
}

const PRESETS: Record<Preset, PresetDims> = {
  tiny: {
    dModel: 32,
    nLayers: 1,
    nHeads: 2,
    dFF: 64,
    maxText: 384,
    vision: {
      dModel: 32,
      nLayers: 1,
      nHeads: 2,
      groundPatchW: 16,
      polar: { radii: 8, azimuths: 32, sectors: 8 },
    },
  },
  small: {
    dModel: 128,
    nLayers: 3,
    nHeads: 4,
    dFF: 512,
    maxText: 384,
    vision: {
      dModel: 128,
      nLayers: 1,
      nHeads: 4,
      groundPatchW: 8,
      polar: { radii: 16, azimuths: 64, sectors: 16 },
    },
  },
  large: {
    dModel: 512,
    nLayers: 8,
    nHeads: 8,
    dFF: 2048,
    maxText: 512,
    vision: {
      dModel: 512,
      nLayers: 4,
      nHeads: 8,
      groundPatchW: 8,
      polar: { radii: 16, azimuths: 64, sectors: 16 },
    },
  },
};

/** Names of the presets. */
export const PRESET_NAMES: readonly Preset[] = ["tiny", "small", "large"];

/**
 * Build the ModelConfig of a model spec (preset + overrides) for the given vocabulary and image geometry.
 * Throws UserError on an unknown preset or inconsistent dimensions (named by their spec field).
 */
export function makeModelConfig(spec: ModelSpec, geom: ModelGeometry): ModelConfig {
  const p = PRESETS[spec.preset];
  if (!p) throw new UserError(`model.preset: unknown preset "${spec.preset}" (tiny | small | large)`);
  const dModel = spec.dModel ?? p.dModel;
  const visionD = spec.dModel !== undefined ? dModel : p.vision.dModel;
  const [gh, gw] = geom.groundShape;
  const vision: VisionConfig = {
    dModel: visionD,
    nLayers: p.vision.nLayers,
    nHeads: p.vision.nHeads,
    groundPatch: [gh, p.vision.groundPatchW],
    aerialLayout: "polar",
    embedGating: true,
    polar: { ...p.vision.polar },
  };
  const cfg: ModelConfig = {
    preset: spec.preset,
    vocabSize: geom.vocabSize,
    dModel,
    nLayers: spec.nLayers ?? p.nLayers,
    nHeads: spec.nHeads ?? p.nHeads,
    dFF: spec.dFF ?? p.dFF,
    maxText: spec.maxText ?? p.maxText,
    groundShape: [gh, gw],
    aerialSize: geom.aerialSize,
    maxCandidates: geom.maxCandidates,
    vision,
    ...(geom.slots ? { slots: structuredClone(geom.slots) } : {}),
    ...(spec.cueHead ? { cueHead: CUE_OUTPUTS } : {}),
    ...(spec.cueText ? { cueText: true } : {}),
    ...(spec.cueMatch ? { cueMatch: true } : {}),
    ...(spec.cueMatchAll ? { cueMatchAll: true } : {}),
    seed: spec.seed >>> 0,
  };
  validateConfig(cfg, "model");
  return cfg;
}

/**
 * The candidate-slot segments of a tokenizer (ModelConfig.slots) for K candidates: slot k is named by the
 * letter with and without a leading space when either is a single token. BOS and `<think>` end a segment, so
 * the prompt's letter list does not leak into the reasoning, while the answer continues the segment of the
 * last candidate the reasoning named ("... so B.</think><answer>B", "aerial view B ...</think><answer>...").
 */
export function slotSegmentsFor(tok: Tokenizer, K: number): SlotSegments {
  const tokens = Array.from({ length: K }, (_, k) => {
    const L = String.fromCharCode(65 + k);
    const ids = [L, ` ${L}`].map((s) => tok.encode(s)).filter((e) => e.length === 1).map((e) => e[0]);
    return [...new Set(ids)];
  });
  const sp = tok.special;
  // The ground line of a candidates-first exemplar ("... D: ... ground: ...") starts a segment of its own.
  const ground = ["ground", " ground", "panorama", " panorama"].map((s) => tok.encode(s))
    .filter((e) => e.length === 1).map((e) => e[0]);
  return { tokens, reset: [sp.bos, sp.thinkOpen, ...new Set(ground)] };
}

/**
 * The ModelConfig of an experiment spec: its model spec with the geometry its world and data fix, and the
 * candidate-slot segments of `tok` unless `model.slotSegments` is false. The one place that maps a spec to a
 * model config (the pipeline and the benchmarks use it).
 */
export function modelConfigForSpec(spec: ExperimentSpec, tok: Tokenizer): ModelConfig {
  return makeModelConfig(spec.model, {
    vocabSize: tok.vocabSize,
    groundShape: spec.world.groundShape,
    aerialSize: spec.world.aerialSize,
    maxCandidates: spec.data.candidates,
    ...(spec.model.slotSegments === false ? {} : { slots: slotSegmentsFor(tok, spec.data.candidates) }),
  });
}

/** Check a config's internal consistency; `where` prefixes messages (a spec path or a file name). */
export function validateConfig(cfg: ModelConfig, where: string): void {
  const bad = (field: string, why: string): never => {
    throw new UserError(`${where}.${field}: ${why}`);
  };
  const posInt = (v: number, field: string) => {
    if (!Number.isInteger(v) || v <= 0) bad(field, `must be a positive integer (got ${v})`);
  };
  retiredFlags(cfg, bad);
  posInt(cfg.vocabSize, "vocabSize");
  posInt(cfg.dModel, "dModel");
  posInt(cfg.nLayers, "nLayers");
  posInt(cfg.nHeads, "nHeads");
  posInt(cfg.dFF, "dFF");
  posInt(cfg.maxText, "maxText");
  posInt(cfg.maxCandidates, "maxCandidates");
  posInt(cfg.vision.dModel, "vision.dModel");
  posInt(cfg.vision.nLayers, "vision.nLayers");
  posInt(cfg.vision.nHeads, "vision.nHeads");
  if (cfg.cueHead !== undefined) posInt(cfg.cueHead, "cueHead");
  if (cfg.cueText && cfg.cueHead !== CUE_OUTPUTS) {
    bad(
      "cueText",
      `needs cue heads of width ${CUE_OUTPUTS} (model.cueHead: true), got ${cfg.cueHead ?? "none"}`,
    );
  }
  if (cfg.cueText && !cfg.slots) bad("cueText", "needs candidate-slot segments (model.slotSegments)");
  if (cfg.cueMatch && !cfg.cueText) bad("cueMatch", "needs cue-conditioned text (model.cueText: true)");
  if (cfg.cueMatchAll && !cfg.cueText) bad("cueMatchAll", "needs cue-conditioned text (model.cueText: true)");
  if (cfg.slots) {
    if (cfg.slots.tokens.length > cfg.maxCandidates) {
      bad("slots.tokens", `${cfg.slots.tokens.length} slots, the model has ${cfg.maxCandidates} candidates`);
    }
    for (const id of [...cfg.slots.tokens.flat(), ...cfg.slots.reset]) {
      if (!Number.isInteger(id) || id < 0 || id >= cfg.vocabSize) {
        bad("slots", `token id ${id} is not in the vocabulary`);
      }
    }
  }
  if (cfg.dModel % cfg.nHeads !== 0) {
    bad("nHeads", `dModel ${cfg.dModel} is not divisible by nHeads ${cfg.nHeads}`);
  }
  if (cfg.vision.dModel % cfg.vision.nHeads !== 0) {
    bad("vision.nHeads", `vision dModel ${cfg.vision.dModel} is not divisible by ${cfg.vision.nHeads}`);
  }
  const [gh, gw] = cfg.groundShape;
  const [ph, pw] = cfg.vision.groundPatch;
  if (gh % ph !== 0 || gw % pw !== 0) {
    bad("vision.groundPatch", `[${ph}, ${pw}] does not tile the ground panorama [${gh}, ${gw}]`);
  }
  const polar = cfg.vision.polar;
  if (!polar) bad("vision.polar", "missing (the polar aerial grid)");
  posInt(polar.radii, "vision.polar.radii");
  posInt(polar.azimuths, "vision.polar.azimuths");
  posInt(polar.sectors, "vision.polar.sectors");
  if (polar.azimuths % polar.sectors !== 0) {
    bad("vision.polar.sectors", `${polar.sectors} sectors do not divide ${polar.azimuths} azimuths`);
  }
  const ground = (gh / ph) * (gw / pw);
  if (ph !== gh || polar.sectors !== ground) {
    bad(
      "vision.polar.sectors",
      `polar sectors share the ground tokens' azimuth embedding: need full-height ground strips and ` +
        `${ground} sectors (got ${polar.sectors})`,
    );
  }
}

/**
 * Reject a config (in practice an old checkpoint's) that needs a model branch this version no longer has:
 * cue tokens, the grid aerial layout, aerial pooling or additive-only embeddings. Loading it would build a
 * different network, so it fails naming the flag; such a checkpoint is retrained.
 */
function retiredFlags(cfg: ModelConfig, bad: (field: string, why: string) => never): void {
  const old = cfg as unknown as { cueTokens?: unknown; vision: Record<string, unknown> };
  const v = old.vision;
  const retrain = "retrain it with this version";
  if (old.cueTokens !== undefined && old.cueTokens !== false) {
    bad(
      "cueTokens",
      `${JSON.stringify(old.cueTokens)}: cue tokens are retired (no decoder token per view); ${retrain}`,
    );
  }
  if (v.aerialLayout !== "polar") {
    const got = v.aerialLayout === undefined ? "absent (the grid layout)" : JSON.stringify(v.aerialLayout);
    bad("vision.aerialLayout", `${got}: only the "polar" aerial layout is supported; ${retrain}`);
  }
  if (v.aerialPool !== undefined && v.aerialPool !== 1) {
    bad(
      "vision.aerialPool",
      `${JSON.stringify(v.aerialPool)}: aerial pooling is retired (1 token per sector); ${retrain}`,
    );
  }
  if (v.embedGating !== true) {
    const got = v.embedGating === undefined ? "absent (additive embeddings)" : JSON.stringify(v.embedGating);
    bad("vision.embedGating", `${got}: only gated embeddings (true) are supported; ${retrain}`);
  }
}

/** Values per aerial token before the patch embedding: one polar sector (radii x width x RGB). */
export function aerialPatchSize(cfg: ModelConfig): number {
  const polar = cfg.vision.polar;
  return polar.radii * (polar.azimuths / polar.sectors) * 3;
}

/** Image tokens per view in the encoder and the decoder: ground strips, and polar sectors per aerial tile. */
export function imageTokenCounts(cfg: ModelConfig): { ground: number; aerial: number } {
  const [gh, gw] = cfg.groundShape;
  const [ph, pw] = cfg.vision.groundPatch;
  return { ground: (gh / ph) * (gw / pw), aerial: cfg.vision.polar.sectors };
}

/** Decoder image-prefix length for a task layout. */
export function imagePrefixLen(cfg: ModelConfig, hasGround: boolean, nAerial: number): number {
  const n = imageTokenCounts(cfg);
  return (hasGround ? n.ground : 0) + nAerial * n.aerial;
}

/**
 * Forward FLOPs (multiply-add = 2 FLOPs) of the decoder for ONE generated token with a KV cache holding
 * `contextLen` positions (image prefix + text so far): per layer the QKV, output and MLP matmuls
 * (2 * (4 d^2 + 2 d dFF)) plus attention scores and weighted sum (4 * contextLen * d), and the tied output
 * projection (2 d V). Elementwise ops (norms, GELU, softmax) are excluded; they are < 2% at small d.
 * The vision encoder runs once per prompt and is not counted.
 */
export function flopsPerToken(cfg: ModelConfig, contextLen: number): number {
  const d = cfg.dModel;
  const perLayer = 2 * (4 * d * d + 2 * d * cfg.dFF) + 4 * contextLen * d;
  return cfg.nLayers * perLayer + 2 * d * cfg.vocabSize;
}

/** Forward FLOPs of the vision encoder + projector for one example of the given layout (per prompt). */
export function visionFlops(cfg: ModelConfig, hasGround: boolean, nAerial: number): number {
  const v = cfg.vision;
  const n = imageTokenCounts(cfg);
  const [ph, pw] = v.groundPatch;
  const tokens = (hasGround ? n.ground : 0) + nAerial * n.aerial;
  const patchIn = (hasGround ? n.ground * ph * pw * 3 : 0) + nAerial * n.aerial * aerialPatchSize(cfg);
  const dv = v.dModel;
  const layer = tokens * 2 * (4 * dv * dv + 8 * dv * dv) + 4 * tokens * tokens * dv;
  return 2 * patchIn * dv + v.nLayers * layer + 2 * imagePrefixLen(cfg, hasGround, nAerial) * dv * cfg.dModel;
}

/** Number of scalar parameters of a config (matches createModel's variables). */
export function paramCount(cfg: ModelConfig): number {
  const d = cfg.dModel, v = cfg.vision, dv = v.dModel;
  const n = imageTokenCounts(cfg);
  const [ph, pw] = v.groundPatch;
  const block = (w: number, ff: number) =>
    2 * 2 * w + (w * 3 * w + 3 * w) + (w * w + w) + (w * ff + ff) + (ff * w + w);
  return ph * pw * 3 * dv + dv + aerialPatchSize(cfg) * dv + dv + n.ground * dv +
    (1 + cfg.maxCandidates) * dv + v.nLayers * block(dv, 4 * dv) + 2 * dv + dv * d + d +
    cfg.vocabSize * d + cfg.maxText * d + cfg.nLayers * block(d, cfg.dFF) + 2 * d +
    (cfg.slots ? (1 + cfg.maxCandidates) * d : 0) +
    (cfg.cueHead ? (n.ground * dv + 1 + n.aerial * dv + 1) * cfg.cueHead : 0) +
    (cfg.cueText ? (cfg.cueMatch ? 3 : 2) * (cfg.cueHead! + 1) * d : 0) +
    (cfg.cueText && cfg.cueMatchAll ? (cfg.maxCandidates * cfg.cueHead! + 1) * d : 0);
}
