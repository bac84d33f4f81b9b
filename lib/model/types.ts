/**
 * Model contracts: the small VLM's configuration, its batched input, and the generation API the trainers
 * and evaluation use. Implemented in lib/model/*.ts.
 *
 * Conventions
 * - Text positions are the only ones that produce logits; image tokens form a prefix the text attends to.
 * - `ids[b, t]` is predicted from position t-1: `tokenLogProbs()[b, t] = log p(ids[b,t] | ids[b,<t], images)`
 *   and entry t = 0 is 0.
 * - Prompts are LEFT-padded, completions RIGHT-padded; `attn` is 1 on real tokens. Positions count real
 *   tokens only, so padding never shifts a position.
 * @module
 */
import type * as tf from "@tensorflow/tfjs";

export type Preset = "tiny" | "small" | "large";

export interface VisionConfig {
  dModel: number;
  nLayers: number;
  nHeads: number;
  /** Patch height/width of the ground panorama. */
  groundPatch: [number, number];
  /**
   * How aerial tiles become tokens: the tile is resampled (bilinear) onto a polar grid centred on the camera,
   * `polar.radii` rings x `polar.azimuths` bearings (column a looks along azimuth 360 a / azimuths, clockwise
   * from north, exactly like ground column c looks along 360 c / W), and cut into `polar.sectors` full-radius
   * azimuth sectors; sector i covers the same bearings as ground token i and shares its position embedding
   * (`vis.pos_ground`). This is the polar transform of cross-view geo-localisation (Shi et al., SAFA,
   * NeurIPS 2019): it puts what the panorama shows at azimuth b and what the tile shows along bearing b into
   * tokens of the same position. The only layout; a checkpoint with another one does not load.
   */
  aerialLayout: "polar";
  polar: { radii: number; azimuths: number; sectors: number };
  /**
   * Position and view-type embeddings modulate the patch embedding multiplicatively as well as adding to it:
   * `e = p * (1 + pos) * (1 + view) + pos + view` (FiLM-like), with both embeddings initialised at content
   * scale (std 1). With only the additive form at std 0.02, "which azimuth" and "which candidate" were
   * ~2% of a token and the model learned neither in our budget (README, "Model"). Always on; a checkpoint
   * without it does not load.
   */
  embedGating: true;
}

/**
 * Candidate-slot segments of the text (absent: none). Each text token carries the embedding of the latest
 * candidate letter at or before it (`tokens[k]` are the ids naming slot k, e.g. "B" and " B"); a `reset` id
 * (BOS, `<think>`) clears it. The aerial tokens of slot k carry the same embedding, so text about
 * candidate B can find B's tokens by matching one vector, without first attending back to the letter.
 */
export interface SlotSegments {
  tokens: number[][];
  reset: number[];
}

export interface ModelConfig {
  preset: Preset;
  vocabSize: number;
  dModel: number;
  nLayers: number;
  nHeads: number;
  dFF: number;
  /** Longest text (prompt + completion) the model handles. */
  maxText: number;
  /** Image geometry the model was built for. */
  groundShape: [number, number];
  aerialSize: number;
  maxCandidates: number;
  vision: VisionConfig;
  /** Candidate-slot segment embeddings (see SlotSegments); absent in configs saved before they existed. */
  slots?: SlotSegments;
  /**
   * Width of the auxiliary cue heads (lib/data/cue_labels.ts CUE_OUTPUTS): linear maps from one view's
   * vision states to its cue logits, trained by a stage's `cueLoss`. Absent: no heads (older configs).
   */
  cueHead?: number;
  /**
   * Cue-conditioned text (needs cueHead = CUE_OUTPUTS and slots): every text token adds a linear embedding
   * of the ground view's cue probabilities, and a token in candidate k's segment also adds tile k's, so the
   * line "B: ..." carries what the cue head saw in tile B without having to find it by attention.
   */
  cueText?: boolean;
  /**
   * With cueText: candidate k's segment also adds a linear embedding of the per-class product of tile k's
   * and the ground's cue probabilities (their agreement per class), a bilinear cross-view feature from which
   * "does tile k show what the ground view shows" is linear. Absent: off.
   */
  cueMatch?: boolean;
  /**
   * With cueText: every text token also adds a linear embedding of all candidates' agreement vectors (the
   * cueMatch products, concatenated in slot order, absent slots 0). Without it the agreement of tile k reaches
   * text only through candidate k's segment, so a policy that answers without first writing a line per
   * candidate sees at most one tile's agreement at the answer. Absent: off.
   */
  cueMatchAll?: boolean;
  /** Seed of the weight initialiser. */
  seed: number;
}

/** One collated batch. Images are float32 in [0, 1], NHWC. All examples in a batch share one task layout. */
export interface ModelInput {
  B: number;
  /** ground: [B, Hg, Wg, 3] or null when the task has no ground view. */
  ground: tf.Tensor4D | null;
  /** aerial: [B, K, Ha, Wa, 3] or null. */
  aerial: tf.Tensor5D | null;
  /** ids: int32 [B, T]: left-padded prompt (starting with BOS) then right-padded completion. */
  ids: tf.Tensor2D;
  /** attn: float32 [B, T]: 1 on real tokens, 0 on padding. */
  attn: tf.Tensor2D;
}

/** A collated supervised batch: the input plus which positions are completion targets. */
export interface TrainBatch {
  input: ModelInput;
  /** float32 [B, T]: 1 where ids[b, t] is a completion token to be predicted (incl. the final stop). */
  lossMask: tf.Tensor2D;
  /** Length of the (left-padded) prompt block; completion tokens start at this index. */
  promptLen: number;
  dispose(): void;
}

export interface GenerateOptions {
  /** Samples per prompt (G). The image+prompt prefix is encoded once and shared by the G samples. */
  groupSize: number;
  maxNewTokens: number;
  /** 0 means greedy. */
  temperature: number;
  /** Nucleus mass in (0, 1]; 1 disables top-p. */
  topP: number;
  /** Seed of the sampler; same seed + backend -> same completions on CPU backends. */
  seed: number;
  /** Generation of a row stops after it emits one of these ids (included in its completion). */
  stopIds: number[];
  /** Read back finished flags every k tokens (fewer readbacks on GPUs). Default 8. */
  readbackEvery?: number;
  /** false: recompute the full forward every step (no KV cache); for tests and benchmarks. Default true. */
  useCache?: boolean;
  /** Token fed and emitted by rows that already stopped. Default 0 (the tokenizer's pad by convention). */
  padId?: number;
  /** Tests: return the logits of every decoding step (host copies, [P*G * V] per step). */
  returnLogits?: boolean;
}

export interface GenerateResult {
  /** P*G completions, group-contiguous: sample g of prompt p is at index p*G + g. Stop id included. */
  completions: number[][];
  /** True where a row hit maxNewTokens without a stop id. */
  truncated: boolean[];
  /** Only with `returnLogits`: logits of each step, row-major [P*G, V]. */
  stepLogits?: Float32Array[];
}

/**
 * Groups of a GRPO batch (collateCompletions' layout): rows p*size .. p*size+size-1 hold one prompt's
 * samples, with the same images and the same first `promptLen` text tokens (the left-padded prompt block).
 * Given to the log-prob methods, the model encodes each group's images and prompt once and runs only the
 * completions per row (the result equals the per-row computation up to float summation order).
 */
export interface GroupLayout {
  size: number;
  promptLen: number;
}

/** The model object the trainers use. */
export interface VLM {
  readonly config: ModelConfig;
  /** Trainable variables (the optimiser's list). */
  trainable(): tf.Variable[];
  /** Logits over text positions: [B, T, V]. */
  logits(input: ModelInput, training?: boolean): tf.Tensor3D;
  /**
   * Per-token log-probabilities of `input.ids`: [B, T] (see module conventions), under softmax(logits /
   * temperature) (default 1): the distribution generate() samples from at that temperature.
   */
  tokenLogProbs(
    input: ModelInput,
    training?: boolean,
    temperature?: number,
    groups?: GroupLayout,
  ): tf.Tensor2D;
  /** Per-token entropy of the predictive distribution at each text position: [B, T]. */
  tokenEntropy(input: ModelInput): tf.Tensor2D;
  /** Both from one forward pass; only `logp` carries gradient (GRPO's per-step need). */
  tokenLogProbsAndEntropy(
    input: ModelInput,
    training?: boolean,
    temperature?: number,
    groups?: GroupLayout,
  ): { logp: tf.Tensor2D; entropy: tf.Tensor2D };
  /**
   * With `config.cueHead`: token log-probs and each view's cue logits (ground [B, n], aerial [B*K, n]) from
   * one forward pass.
   */
  tokenLogProbsAndCues?(
    input: ModelInput,
  ): { logp: tf.Tensor2D; ground: tf.Tensor2D | null; aerial: tf.Tensor2D | null };
  /**
   * Sample completions. `prompt` is a ModelInput holding only the prompt block (ids/attn [P, Tp]).
   * Never leaks tensors.
   */
  generate(prompt: ModelInput, opts: GenerateOptions): Promise<GenerateResult>;
  /** A deep copy with frozen (non-trainable) weights, e.g. the GRPO reference model. */
  cloneFrozen(): VLM;
  dispose(): void;
}
