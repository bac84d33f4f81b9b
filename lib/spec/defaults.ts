/**
 * Defaults of the knobs a spec may omit, filled into the resolved spec by the resolver
 * ({@link fillDefaults}), so that a run's `spec.resolved.json` shows every value it used and the stage hash
 * covers it. Code that takes a stage spec directly (tests, benches, the `eval` command reading an older run)
 * falls back to the same constants.
 * @module
 */
import { escapePointer, isPlainObject, type JsonObject, type Provenance } from "./merge.ts";

/** Defaults of every training stage (`stages.<name>`, kinds pretrain, sft and grpo). */
export const STAGE_DEFAULTS = {
  /** Validation examples per task of an in-stage evaluation: 200 put a 95% interval of +-7 points around 50%. */
  evalN: 200,
  /** One model replica (this thread); data-parallel replicas split the work but change float order. */
  replicas: 1,
} as const;

/** Defaults of supervised stages (pretrain, sft). */
export const SUPERVISED_DEFAULTS = {
  /** Weight of the auxiliary cue loss; 0 trains no cue head. */
  cueLoss: 0,
  /** Loss weight of the answer block's tokens relative to the others; 1 weighs every token alike. */
  answerWeight: 1,
  /** Loss weight of verdict tokens relative to the others; 1 weighs every token alike. */
  verdictWeight: 1,
} as const;

/** Defaults of `stages.<name>.grpo` in GRPO stages. */
export const GRPO_DEFAULTS = {
  /**
   * Most rows per forward/backward of the update: the small model's full batch of 64 rows x ~220 tokens
   * outgrows the wasm heap (tfjs-backend-wasm aborts), so updates run in micro-batches of whole groups. The
   * gradients are summed, so the update is the full batch's whatever the value (only float summation order
   * and peak memory depend on it).
   */
  microBatchRows: 32,
} as const;

/** Defaults of `data`. */
export const DATA_DEFAULTS = {
  /**
   * Byte-spelled numbers (tokenizer `geo-r1-word-v1`); true gives every whole degree and every fraction
   * .00-.99 a token of its own (`geo-r1-word-v2`, 822 more embedding and output rows).
   */
  coordTokens: false,
} as const;

/** Defaults of `eval`. */
export const EVAL_DEFAULTS = {
  /** Replicas sharing the decoding batches; the metrics equal one thread's. */
  replicas: 1,
} as const;

/** Fill every omitted knob above with its default, recording "default" as its origin. */
export function fillDefaults(spec: JsonObject, prov?: Provenance): void {
  const fill = (obj: JsonObject, pointer: string, defaults: Record<string, unknown>) => {
    for (const [k, v] of Object.entries(defaults)) {
      if (obj[k] !== undefined) continue;
      obj[k] = v as JsonObject[string];
      prov?.set(`${pointer}/${k}`, "default");
    }
  };
  if (isPlainObject(spec.stages)) {
    for (const [name, stage] of Object.entries(spec.stages)) {
      if (!isPlainObject(stage)) continue;
      const ptr = `/stages/${escapePointer(name)}`;
      if (stage.kind === "pretrain" || stage.kind === "sft") {
        fill(stage, ptr, { ...STAGE_DEFAULTS, ...SUPERVISED_DEFAULTS });
      } else if (stage.kind === "grpo") {
        fill(stage, ptr, STAGE_DEFAULTS);
        if (isPlainObject(stage.grpo)) fill(stage.grpo, `${ptr}/grpo`, GRPO_DEFAULTS);
      }
    }
  }
  if (isPlainObject(spec.data)) fill(spec.data, "/data", DATA_DEFAULTS);
  if (isPlainObject(spec.eval)) fill(spec.eval, "/eval", EVAL_DEFAULTS);
}
