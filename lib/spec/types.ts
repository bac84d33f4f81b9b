/**
 * The resolved experiment spec (after `extends`, preset and `--set` are applied). experiments/schema.json is
 * the normative definition and must agree with these types; tests check a resolved spec of every shipped
 * experiment against both.
 * @module
 */
import type { TaskName } from "../data/types.ts";
import type { Preset } from "../model/types.ts";

export type BackendName = "auto" | "wasm" | "webgpu" | "cpu" | "tensorflow";

export interface WorldSpec {
  /**
   * Seed of the procedural world (layouts, timestamps) and of the region-cell splits. Required and constant
   * across replicates (the recipe uses 7), so every `--seed` shares one world and one held-out region set.
   */
  seed: number;
  /**
   * Ground panorama [height, width] in pixels. Required; the recipe uses [32, 128], which the small preset
   * cuts into 16 strips of 22.5° azimuth. Larger views show more but cost vision tokens or coarser patches.
   */
  groundShape: [number, number];
  /** Aerial tile size in pixels. Required; the recipe uses 32. */
  aerialSize: number;
  /**
   * Half extent in metres of the area a tile covers. Required; the recipe uses 60 (a ~120 m tile): larger
   * tiles show more context around the camera but smaller roads and buildings.
   */
  tileHalfExtent: number;
}

/**
 * A folder source: data a user brings (lib/data/folder_source.ts). Paths are relative to the working
 * directory; a folder outside the project needs its own `--allow-read` (README "Bring your own data").
 */
export interface FolderSourceSpec {
  /** A CVUSA/VIGOR-style folder holding `pairs.csv` (ground_path, aerial_path, lat, lon), or that CSV. */
  pairing?: string;
  /** An IM2GPS3K-style CSV (path, lat, lon), or a folder holding `geolocate.csv`. Without it, geolocate and
   * geo-qa examples use the ground views of the pairing folder. */
  geolocate?: string;
  /** "region": train/val/test by region cell as GeoWorld (the default); "test": every row is a test row. */
  split: "region" | "test";
}

export interface DataSpec {
  /**
   * Where examples come from. Default "geoworld" (filled by the resolver): the procedural world, unlimited
   * examples with scene cues. A folder source holds a fixed set of rows; the same tasks, tiers and splits
   * are built from their coordinates, but captions, scaffold and control examples need scene cues it lacks.
   */
  source: "geoworld" | FolderSourceSpec;
  /**
   * Seed of sampling examples (locations, negatives, templates); split s uses a generator derived from it.
   * Default: `deriveSeed(seed, "data.seed")`, so `--seed N` draws new training examples.
   */
  seed: number;
  /**
   * Coordinate tokens (lib/data/tokenizer.ts): every whole degree -180..180 with and without a leading space,
   * and the fractions .00-.99, are one token each, so the answer `-12, 130` is 3 tokens instead of 8 digit,
   * sign and space bytes, and each degree has an embedding of its own. Default false (filled by the
   * resolver): the byte-spelled numbers of the `geo-r1-word-v1` tokenizer. The vocabulary grows by 822
   * tokens (embedding and output rows).
   */
  coordTokens: boolean;
  /** Pairing candidates K (letters A..). Required; the recipe uses 4 (chance 25%), as the paper. */
  candidates: number;
  /**
   * Mix of negative tiers for training pairing examples; must sum to 1. Required; the recipe uses about a
   * third each. More `near` (5-50 km, same region style) makes training harder and closer to the test split.
   */
  negatives: { far: number; climate: number; near: number };
  /**
   * Minimum fraction of near negatives among test pairing negatives. Required; the recipe uses 0.34 (at least
   * one third by design), so test accuracy cannot come from region style alone.
   */
  testNearMin: number;
  /**
   * Size in degrees of the split grid cells; a cell belongs to exactly one split. Required; the recipe uses
   * 5. Larger cells hold out whole regions (harder, fewer distinct cells); smaller ones leak region style.
   */
  regionCellDeg: number;
  /** Fractions of region cells held out for val and test (their sum must be < 1). Required. */
  valFraction: number;
  testFraction: number;
  cot: {
    /**
     * Exemplar verbosity (lib/data/cot.ts): 0 short cue phrases (the recipe's; a pairing exemplar lists
     * every tile's cues, about 120 tokens), 1 prose with one prior sentence, 2 prose with every prior (about
     * 150-250 tokens). Required. Prose teaches more priors but costs decode time and the length reward.
     */
    verbosity: number;
    /**
     * Probability that one intermediate cue in an exemplar is stated wrongly (the conclusion always follows
     * the metadata). Required; the recipe uses 0.05, the design's "documented rate of noisy intermediate
     * cues". Higher rates weaken the link between the stated cues and the verdicts.
     */
    noise: number;
    /**
     * Pairing exemplar order. Optional; "candidates-first" (every candidate from its own tile, then the
     * ground) is the only form. Any other value is refused by the resolver (lib/spec/retired.ts).
     */
    order?: "candidates-first";
    /**
     * Pairing verdict line. Optional; "first-fit" (verdicts in letter order up to the match, "A no, B fits.")
     * is the only form. Any other value is refused by the resolver (lib/spec/retired.ts).
     */
    verdict?: "first-fit";
  };
}

export interface ModelSpec {
  preset: Preset;
  /** Optional overrides of preset fields (dModel, nLayers, ...). */
  dModel?: number;
  nLayers?: number;
  nHeads?: number;
  dFF?: number;
  maxText?: number;
  /** Candidate-slot segment embeddings (ModelConfig.slots); default true. */
  slotSegments?: boolean;
  /** Auxiliary cue heads on the vision states (ModelConfig.cueHead), trained by a stage's `cueLoss`. */
  cueHead?: boolean;
  /** Text tokens add the ground's and their candidate's cue embeddings (ModelConfig.cueText); needs cueHead. */
  cueText?: boolean;
  /** Candidate segments also add the tile-ground cue agreement (ModelConfig.cueMatch); needs cueText. */
  cueMatch?: boolean;
  /** Every text token adds all candidates' agreement (ModelConfig.cueMatchAll); needs cueText. */
  cueMatchAll?: boolean;
  seed: number;
}

export interface OptimSpec {
  lr: number;
  weightDecay: number;
  beta1: number;
  beta2: number;
  warmupSteps: number;
  /** Cosine decay to lr * minLrRatio at the last step. */
  minLrRatio: number;
  gradClip: number;
}

export interface SupervisedStageSpec {
  kind: "pretrain" | "sft";
  /** Upstream stage name, or null to start from freshly initialised weights. */
  from: string | null;
  /** Task mixture: task -> weight (batches are homogeneous in task, drawn by weight). */
  tasks: Partial<Record<TaskName, number>>;
  steps: number;
  batchSize: number;
  optim: OptimSpec;
  /**
   * Evaluate during the stage every this many steps (and at the end; GRPO also before its first update) on
   * the validation split, logged as `eval/val_<task>/<metric>`; 0 disables.
   */
  evalEvery: number;
  /** Validation examples per task of that evaluation (default 200, filled by the resolver). */
  evalN?: number;
  checkpointEvery: number;
  /**
   * Weight of the auxiliary cue loss (lib/data/cue_labels.ts) added to the token cross-entropy; needs
   * `model.cueHead`. 0 (the default): none.
   */
  cueLoss?: number;
  /** Loss weight of the answer block's tokens relative to the rest (default 1). */
  answerWeight?: number;
  /** Loss weight of the verdict tokens ("A no, B fits") relative to the rest (default 1); see weightVerdictTokens. */
  verdictWeight?: number;
  /**
   * Parameter-name prefixes left untrained in this stage (`vis.` vision tower, `aux.cue_ground` and
   * `aux.cue_aerial` cue heads, `dec.` decoder); absent: every parameter trains.
   */
  freeze?: string[];
  /**
   * Data-parallel model replicas (worker threads, one wasm core each; lib/train/replicas.ts). Default 1.
   * In the stage hash: shard boundaries and rollout seeds depend on it (never on the machine).
   */
  replicas?: number;
  seed: number;
}

export interface GrpoSpec {
  /** Prompts per step (P). */
  promptsPerStep: number;
  /** Samples per prompt (G), at least 2: advantages compare a prompt's samples, so G = 1 learns nothing. */
  groupSize: number;
  maxNewTokens: number;
  temperature: number;
  topP: number;
  /** KL coefficient to the frozen reference (k3 estimator); 0 skips the reference model. */
  beta: number;
  epsilonLow: number;
  epsilonHigh: number;
  lossType: "grpo" | "dr_grpo" | "dapo";
  scaleRewards: "group" | "batch" | "none";
  /** Optimisation passes over each batch of rollouts (mu). */
  numIterations: number;
  /** Exclude truncated completions from the loss. */
  maskTruncated: boolean;
  /**
   * Most rows per forward/backward of the policy update (whole groups; gradients are summed, so the update
   * is that of the full batch). Default 32 (lib/spec/defaults.ts, filled by the resolver).
   */
  microBatchRows?: number;
  /**
   * Reward function name -> weight (lib/reward/rewards.ts). The recipe uses the authors' four, equally
   * weighted: accuracy, format, length and repetition; geodesic is for geolocation prompts.
   */
  rewards: { format: number; accuracy: number; geodesic: number; length: number; repetition: number };
  /**
   * tau (km) of the geodesic reward exp(-d/tau). The recipe's 2,500 km is of the order of the SFT model's
   * errors (median ~3,800 km on validation): with 500 km every sample of a group scores ~0, the length reward
   * alone sets the advantages, and mixed RL stopped writing coordinates (docs/RESULTS.md, fourth session).
   */
  geodesicTauKm: number;
  /**
   * Cosine length reward: `max` at 0 tokens down to `min` at `maxTokens`. The authors use 1 / 0.5 / 1024
   * for completions of up to 2,048 tokens; the recipe scales maxTokens to this model's completion budget.
   */
  length: { max: number; min: number; maxTokens: number };
  /** Repetition penalty over word n-grams: n and the penalty of an all-repeats completion (authors: 6, -1). */
  repetition: { n: number; maxPenalty: number };
}

export interface GrpoStageSpec {
  kind: "grpo";
  from: string | null;
  tasks: Partial<Record<TaskName, number>>;
  steps: number;
  optim: OptimSpec;
  grpo: GrpoSpec;
  /**
   * Evaluate during the stage every this many steps (and at the end; GRPO also before its first update) on
   * the validation split, logged as `eval/val_<task>/<metric>`; 0 disables.
   */
  evalEvery: number;
  /** Validation examples per task of that evaluation (default 200, filled by the resolver). */
  evalN?: number;
  checkpointEvery: number;
  /**
   * Parameter-name prefixes left untrained in this stage (`vis.` vision tower, `aux.cue_ground` and
   * `aux.cue_aerial` cue heads, `dec.` decoder); absent: every parameter trains.
   */
  freeze?: string[];
  /**
   * Data-parallel model replicas (worker threads, one wasm core each; lib/train/replicas.ts). Default 1.
   * In the stage hash: shard boundaries and rollout seeds depend on it (never on the machine).
   */
  replicas?: number;
  /**
   * A schedule of negative tiers for this stage's pairing prompts (a curriculum): points `{step, far,
   * climate, near}` in increasing step order, each mix summing to 1; the mix at a step is linear between
   * the points around it, the first point's before it and the last point's after it. Absent: the
   * prompts follow `data.negatives`. Only the stage's training prompts change; validation and test
   * examples never do.
   */
  negatives?: { step: number; far: number; climate: number; near: number }[];
  /**
   * A label-free anchor against forgetting: each step also samples G completions for `promptsPerStep`
   * train prompts of `tasks` (drawn by weight, one task a step), which are never scored (no reward, zero
   * advantage) and enter the loss only as `beta` times the mean per-token k3 KL to the frozen reference
   * (the stage's starting policy). Absent: no anchor prompts.
   */
  anchor?: { tasks: Partial<Record<TaskName, number>>; promptsPerStep: number; beta: number };
  seed: number;
}

/** Methods of a baseline stage (lib/baselines). */
export type BaselineMethod = "geoclip" | "cells" | "nearest-prior";

/**
 * A geolocation baseline trained on the same world and evaluated by the same geolocation evaluation as the
 * VLM rows (lib/baselines): no text, no upstream model. Each method reads its own block.
 */
export interface BaselineStageSpec {
  kind: "baseline";
  method: BaselineMethod;
  /** Always null: a baseline starts from nothing. */
  from: null;
  /**
   * Train-split geolocation views (the first N, with their images) it learns from; their locations are the
   * cells' points and the prior's points.
   */
  trainViews: number;
  /**
   * Train-split locations in the retrieval gallery (geoclip) and in the nearest-training-location figures
   * reported beside every baseline row; metadata only, no images.
   */
  gallery: number;
  /** Optimiser steps (0 for nearest-prior) of batches of `batchSize` views drawn from the train views. */
  steps: number;
  batchSize: number;
  optim: OptimSpec;
  /** Ground-view encoder (geoclip, cells). */
  encoder: { patchWidth: number; hidden: number; embed: number };
  /** geoclip: GPS encoder, contrastive temperature and the queue of train-split GPS negatives. */
  geoclip?: {
    sigmas: number[];
    features: number;
    hidden: number;
    /** Train-split locations (the previous batches', first in first out) scored as extra negatives. */
    queue: number;
    /** Softmax temperature of the image-GPS similarities (GeoCLIP learns it; here fixed). */
    temperature: number;
  };
  /**
   * cells: classification over latitude/longitude grid cells (`regionKeyFor`) at each resolution, coarse to
   * fine; each must be a whole multiple of the next so cells nest. Prediction: the finest cell with the best
   * summed log-probability of itself and its parents (ISN's hierarchy), answered as the mean of its
   * training points.
   */
  cells?: { resolutionsDeg: number[] };
  /** nearest-prior: the train views' medoid, or the mean of the most common cell at `cellDeg`. */
  prior?: { kind: "medoid" | "common-cell"; cellDeg: number };
  seed: number;
}

export type StageSpec = SupervisedStageSpec | GrpoStageSpec | BaselineStageSpec;

export interface EvalSpec {
  /**
   * Test examples per task. Required; the recipe uses 400: CIs narrow with n, and greedy decoding of n
   * examples per task and model is most of an experiment's evaluation time.
   */
  n: number;
  /** Tasks of the final test-split table. Required; the recipe uses pairing, geolocate and geo-qa. */
  tasks: TaskName[];
  /** Bootstrap resamples for confidence intervals. Required; the recipe uses 1000 (tiny preset: 50). */
  bootstrap: number;
  /** Decoding for evaluation: greedy when temperature is 0 (the recipe's, so a model has one answer). */
  temperature: number;
  /**
   * Completion budget of evaluation in tokens. Required; the recipe uses 160, above GRPO's rollout budget
   * (96), so a completion a little longer than training's still ends inside it; only completions that never
   * stop pay for a larger budget.
   */
  maxNewTokens: number;
  /** Rollouts kept (with images) for the report gallery. Required; the recipe uses 12. */
  gallery: number;
  /**
   * Model replicas sharing the decoding batches (lib/train/replicas.ts); the metrics equal one replica's.
   * Default 1.
   */
  replicas?: number;
  seed: number;
}

export interface ExperimentSpec {
  name: string;
  description: string;
  /**
   * Master seed (what a sweep's `seeds` varies). `data.seed`, `model.seed` and every `stages.*.seed` may be
   * omitted in spec files: the resolver fills each with `deriveSeed(seed, "<json path>")` and writes it
   * into spec.resolved.json. `world.seed` and `eval.seed` are explicit constants so that all replicates
   * share one world and one test set.
   */
  seed: number;
  backend: BackendName;
  world: WorldSpec;
  data: DataSpec;
  model: ModelSpec;
  /** All stage definitions by name; `pipeline` picks and orders the ones this experiment runs. */
  stages: Record<string, StageSpec>;
  pipeline: string[];
  eval: EvalSpec;
}

/**
 * A spec file on disk: may `extends` another file (relative path), may carry `presets` (name -> partial
 * spec deep-merged when `--preset name` is given). Neither key survives into the resolved spec.
 */
export interface SpecFile extends Partial<ExperimentSpec> {
  $schema?: string;
  extends?: string;
  presets?: Record<string, unknown>;
}
