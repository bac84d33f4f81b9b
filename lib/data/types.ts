/**
 * Data contracts: examples of every task and the tokenizer. Implemented in lib/data/*.ts; consumed by the
 * model's collate, the trainers, rewards and evaluation.
 * @module
 */
import type { RGBImage, SceneMeta } from "../world/types.ts";
import type { ViewCues } from "./cues.ts";

export const TASKS = ["pairing", "geolocate", "geoqa", "caption", "scaffold", "control"] as const;
export type TaskName = typeof TASKS[number];

/** Difficulty tier of a pairing negative. */
export type NegativeTier = "far" | "climate" | "near";

/** geo-qa question kinds. */
export const QA_KINDS = ["continent", "country", "climate", "settlement", "driving"] as const;
export type QaKind = typeof QA_KINDS[number];

export type Split = "train" | "val" | "test";

/**
 * One example. Image slots are fixed per task so a batch of one task collates without masks:
 * - pairing: ground + K aerial candidates (letters A, B, C, ...)
 * - geolocate, geoqa: ground only
 * - caption: ground only, or one aerial (`aerial.length === 1`), chosen by the sampler
 * - scaffold: ground + its own aerial tile (`aerial.length === 1`), a positive pair (supervised stages only)
 * - control: K aerial tiles of K continents, no ground (GRPO's learn-from-reward control)
 */
export interface Example {
  /** Stable id: task + split + index + data seed. */
  id: string;
  task: TaskName;
  split: Split;
  ground: RGBImage | null;
  aerial: RGBImage[];
  /** The user prompt text (no images; the model places image tokens before it). */
  prompt: string;
  /**
   * The verifiable answer in canonical form: pairing "B"; geolocate "48.86, 2.35"; geoqa e.g. "Europe",
   * "left"; caption: the caption text itself.
   */
  answer: string;
  /** Scene of the ground view (pairing: the true match). */
  scene: SceneMeta;
  /** pairing only: candidate scenes in letter order, the index of the match, and each negative's tier. */
  pairing?: { candidates: SceneMeta[]; correct: number; tiers: (NegativeTier | "match")[] };
  /** geoqa only. */
  qaKind?: QaKind;
  /**
   * Full target completion for supervised stages: `<think>...</think><answer>...</answer>`. For pretraining
   * tasks the think block is short; for SFT exemplars it is the chain of thought from the engine.
   */
  target: string;
  /**
   * geolocate only: the chain-of-thought version of the target (lib/data/cot.ts `geolocateCot`) for SFT
   * stages; `target` keeps the short think block used in pretraining. (Added by lib/data.)
   */
  targetCot?: string;
  /**
   * Discrete view cues (lib/data/cues.ts) of the ground scene and, for pairing, of each candidate in letter
   * order: what captions and the chain of thought talk about; for reports and tests. (Added by lib/data.)
   */
  cues?: { ground: ViewCues; candidates?: ViewCues[] };
}

/** Token ids of the specials every tokenizer has. */
export interface SpecialIds {
  pad: number;
  bos: number;
  eos: number;
  unk: number;
  thinkOpen: number;
  thinkClose: number;
  answerOpen: number;
  answerClose: number;
}

/** A deterministic tokenizer whose vocabulary is fixed by code + its JSON (saved next to checkpoints). */
export interface Tokenizer {
  readonly vocabSize: number;
  readonly special: SpecialIds;
  encode(text: string): number[];
  decode(ids: ArrayLike<number>): string;
  toJSON(): unknown;
}
