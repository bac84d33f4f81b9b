/**
 * Run-record formats: the files a run directory holds. Trainers and evaluation write them; lib/report reads
 * only these files (never live objects), so any finished run can be re-reported anywhere.
 *
 * Layout of a run directory `runs/<name>-<hash8>/`:
 *   spec.resolved.json   the resolved ExperimentSpec
 *   manifest.json        Manifest
 *   metrics.jsonl        one MetricRecord a line (all stages, `stage` field)
 *   rollouts.jsonl       one RolloutRecord a line (GRPO stages)
 *   eval.json            EvalFile
 *   predictions.jsonl    one PredictionRecord a line: every test example of every evaluated row
 *   samples/             PNGs referenced by GalleryItem (ground and aerial views)
 *   report.html          the run report
 * Stage outputs live in the content-addressed cache `cache/stages/<stageHash>/` (checkpoint, metrics.jsonl,
 * eval.json, done.json) and are linked from the manifest's `stages`.
 * @module
 */

export interface Manifest {
  name: string;
  runId: string;
  specHash: string;
  seed: number;
  git: { commit: string | null; dirty: boolean | null };
  lockHash: string | null;
  versions: { deno: string; v8: string; typescript: string; tfjs: string; geoR1: string };
  /** `blas`: the native BLAS behind wasm matmuls (lib/model/blas.ts); absent in manifests that predate it. */
  backend: { name: string; adapter: string | null; isFallbackAdapter: boolean | null; blas?: string | null };
  device: { os: string; arch: string; cpus: number; memGiB: number; hostname: string };
  permissions: Record<string, string>;
  argv: string[];
  /** When the run was first started (kept across resumes). */
  startedAt: string;
  /** When the latest attempt started (absent before a resume). */
  attemptStartedAt?: string;
  endedAt: string | null;
  status: "running" | "done" | "failed";
  error?: string;
  forceResume?: { at: string; mismatches: string[] }[];
  /**
   * Earlier attempts of a resumed run, oldest first: each as the manifest recorded it when the next attempt
   * began (the top-level fields describe the latest attempt).
   */
  history?: RunAttempt[];
  /** Per stage of the pipeline: its content hash, whether it came from the cache, and its cache path. */
  stages: { name: string; kind: string; hash: string; cached: boolean; dir: string }[];
}

/** One attempt of a run as recorded in `Manifest.history`. */
export interface RunAttempt {
  startedAt: string;
  endedAt: string | null;
  status: Manifest["status"];
  error?: string;
  argv: string[];
  git: Manifest["git"];
  lockHash: string | null;
  backend: Manifest["backend"];
  device: Manifest["device"];
  stages: Manifest["stages"];
}

/** One line of metrics.jsonl. Names follow TRL where they exist. */
export interface MetricRecord {
  stage: string;
  /** Training steps by stage kind; "eval": validation during a stage (`evalEvery`); "test": the stage's
   * final test-split evaluation (one record, step = the stage's steps). */
  kind: "pretrain" | "sft" | "grpo" | "baseline" | "eval" | "test";
  step: number;
  /** Unix ms. */
  time: number;
  /** e.g. loss, lr, grad_norm, step_time, tokens_per_s; GRPO: reward, reward_std, rewards/<fn>/mean,
   * rewards/<fn>/std, accuracy, completions/mean_length, completions/min_length, completions/max_length,
   * completions/clipped_ratio, frac_reward_zero_std, kl, entropy, clip_ratio/low_mean, clip_ratio/high_mean,
   * clip_ratio/region_mean. Eval records: eval/val_<task>/<metric>; test records: eval/<task>/<metric>. */
  [metric: string]: number | string;
}

/** One line of rollouts.jsonl. */
export interface RolloutRecord {
  stage: string;
  step: number;
  promptId: string;
  /** The prompt's user text and its verifiable answer (absent in ledgers written before they were kept). */
  prompt?: string;
  answer?: string;
  /** A pairing prompt's candidates in letter order: "match" or the negative's tier (absent for other tasks). */
  tiers?: string[];
  group: number;
  sample: number;
  completion: string;
  tokens: number;
  truncated: boolean;
  rewards: Record<string, number>;
  reward: number;
  advantage: number;
}

/** A gallery rollout kept by evaluation, with its images saved as PNG files relative to the run dir. */
export interface GalleryItem {
  task: string;
  exampleId: string;
  prompt: string;
  completion: string;
  answer: string;
  correct: boolean;
  groundPng: string | null;
  aerialPngs: string[];
}

/**
 * One line of predictions.jsonl: one test example as one model answered it. The stage cache keeps the lines
 * of a stage's evaluation (`predictions-<evalHash>.jsonl`, without `label`); the run's file adds the row
 * label of eval.json, so two rows (or two runs) can be compared example by example.
 */
export interface PredictionRecord {
  /** Row label in eval.json ("Geo-R1", ...); set in the run's file. */
  label?: string;
  stage: string;
  stageHash: string;
  task: string;
  exampleId: string;
  prompt: string;
  completion: string;
  /** The answer block as parsed (null when the completion breaks the format). */
  parsed: string | null;
  /** The correct answer (canonical form, lib/data/types.ts Example.answer). */
  answer: string;
  /** pairing / geoqa: the answer is right; geolocate: within 25 km (the accuracy reward's radius). */
  correct: boolean;
  formatOk: boolean;
  /** geolocate: great-circle error in km (Infinity when unparsable is written as null). */
  km?: number | null;
  /** pairing: the hardest negative tier; geoqa: the question kind. */
  tier?: string;
  qaKind?: string;
  tokens: number;
  /** Images saved for the worst cases (paths relative to the run directory). */
  groundPng?: string | null;
  aerialPngs?: string[];
}

/** Evaluation of one model (one stage's checkpoint) on the test split. */
export interface StageEval {
  stage: string;
  /** Row label in tables: "Base", "Geo-SFT", "Geo-R1-Zero", "Geo-R1", or a baseline's (lib/baselines). */
  label: string;
  /** Baseline rows: the method (`geoclip`, `cells`, `nearest-prior`); absent for model rows. */
  baseline?: string;
  stageHash: string;
  pairing?: {
    n: number;
    accuracy: number;
    ci: [number, number];
    meanLength: number;
    lengthCi: [number, number];
    formatRate: number;
    /** Share of completions whose think block names exactly one match (absent in older eval files). */
    namedMatchRate?: number;
    /** Among those, the share whose answer is that match. */
    answerFollowsMatch?: number;
    byTier: Record<string, { n: number; accuracy: number }>;
    /** How the CIs resample: whole region cells of the test views, or single examples (absent: example). */
    bootstrap?: "cluster" | "example";
    /** Distinct region cells among the test views (cluster bootstrap only). */
    clusters?: number;
  };
  geolocate?: {
    n: number;
    /** threshold km (1, 25, 200, 750, 2500) -> accuracy. */
    thresholds: Record<string, number>;
    thresholdCi: Record<string, [number, number]>;
    medianKm: number;
    meanLength: number;
    /** Share of answers that are a well-formed `lat, lon` in range (absent in older eval files). */
    parseRate?: number;
    /** Share of completions with a repeated token 6-gram (degenerate repetition). */
    repetitionRate?: number;
    /** Different points among the parsed answers (to 0.01 degree); absent in older eval files. */
    distinctAnswers?: number;
    /** Share of all views answered with the most common point (absent in older eval files). */
    topAnswerShare?: number;
    /** How the CIs resample: whole region cells of the test views, or single examples (absent: example). */
    bootstrap?: "cluster" | "example";
    /** Distinct region cells among the test views (cluster bootstrap only). */
    clusters?: number;
    /** Error in km of each test view in test order (unparseable: pi * R); for paired comparisons. */
    errorsKm?: number[];
    /** Region cell of each test view in test order (cluster bootstrap only). */
    cells?: string[];
    /**
     * Baselines: the share of test views whose nearest gallery (training) location lies within each
     * threshold, i.e. the best any prediction that picks a training location can score, and the gallery size.
     */
    galleryOracle?: { n: number; thresholds: Record<string, number> };
  };
  geoqa?: { n: number; byKind: Record<string, { n: number; accuracy: number }>; accuracy: number };
  /** The learn-from-reward control task (lib/data/tasks.ts controlExample): letter accuracy and length. */
  control?: { n: number; accuracy: number; ci: [number, number]; meanLength: number; formatRate: number };
  gallery: GalleryItem[];
}

export interface EvalFile {
  experiment: string;
  runId: string;
  /** In pipeline order; may also hold rows from cached sibling experiments for the four-row table. */
  rows: StageEval[];
}
