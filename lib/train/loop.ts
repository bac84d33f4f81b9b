/**
 * What the two trainers (supervised and GRPO) share around their own update: resume from the newest valid
 * checkpoint, evaluation on the validation split every `evalEvery` updates, a health check of every step's
 * record, and a checkpoint every `checkpointEvery` updates and after the last.
 *
 * Steps count updates: step `s` turns `s` updates done into `s + 1`, and an `eval` record's `step` is the
 * number of updates done when it was taken, as for the pipeline's `test` records. A trainer's loop reads:
 *
 * ```ts
 * const loop = await StageLoop.open({ ...o, optimizer, evalAtStart: true });
 * for (let step = loop.start; step < loop.end; step++) {
 *   await loop.evaluateIfDue(step);
 *   const metrics = await update(step); // the trainer's own step
 *   await o.onMetrics?.(metrics);
 *   await loop.closeStep(metrics);
 * }
 * await loop.finish();
 * ```
 * @module
 */
import type { Tokenizer } from "../data/types.ts";
import type { VLM } from "../model/types.ts";
import type { MetricRecord } from "../run/records.ts";
import { RotatingCheckpoints } from "./checkpoints.ts";
import { HealthMonitor } from "./health.ts";
import type { AdamW } from "./optim.ts";

/** The callbacks and switches a pipeline stage gives either trainer. */
export interface StageHooks {
  stageName: string;
  model: VLM;
  tokenizer: Tokenizer;
  /** Every training and eval record, in order (the stage's metrics.jsonl). */
  onMetrics?(record: MetricRecord): void | Promise<void>;
  /**
   * Called once the resume point `startStep` is known (0 on a fresh start), after the checkpoint restored
   * cleanly and before any record is written: the caller drops its records of steps >= startStep (written
   * after the last checkpoint by an interrupted run). A corrupt checkpoint throws first, so nothing is lost.
   */
  onResume?(startStep: number): void | Promise<void>;
  /**
   * Evaluation during the stage, called with the number of updates done at every multiple of
   * `spec.evalEvery` and after the last update (when `spec.evalEvery` > 0). The numbers returned are logged
   * as an eval record (`kind: "eval"`, `step` = updates done) under their own names (e.g.
   * `eval/val_pairing/accuracy`). A resumed stage evaluates its resume point again: same weights, so the same
   * record as the one its `onResume` dropped.
   */
  evaluate?(
    updatesDone: number,
    model: VLM,
  ): Promise<Record<string, number> | void> | Record<string, number> | void;
  /** Checkpoints every `spec.checkpointEvery` updates and after the last; resume from the newest. */
  checkpointDir?: string;
  /** Resume from the newest checkpoint in checkpointDir when present. Default true. */
  resume?: boolean;
  /** Stop after this many steps in total, as if interrupted (no extra checkpoint); for tests. */
  stopAfter?: number;
  progress?(stepsDone: number, total: number, info: Record<string, number>): void;
}

/** The stage spec fields the loop reads. */
export interface LoopSpec {
  kind: string;
  steps: number;
  evalEvery: number;
  checkpointEvery: number;
}

export interface StageLoopOptions extends StageHooks {
  spec: LoopSpec;
  optimizer: AdamW;
  /**
   * Evaluate the starting model too (updates done = 0). GRPO does: its start is the SFT policy it improves
   * on. Supervised stages do not: a base stage starts from random weights.
   */
  evalAtStart: boolean;
}

/** Resume, periodic evaluation, health checks and checkpoints of one training stage (see the module doc). */
export class StageLoop {
  /** First step to run: 0, or the step of the checkpoint resumed from. */
  readonly start: number;
  /** Step to stop before: `spec.steps`, or `stopAfter` in tests. */
  readonly end: number;
  readonly resumedFrom: number | null;
  readonly #o: StageLoopOptions;
  readonly #ckpts: RotatingCheckpoints | null;
  readonly #health = new HealthMonitor();

  private constructor(o: StageLoopOptions, ckpts: RotatingCheckpoints | null, resumedFrom: number | null) {
    this.#o = o;
    this.#ckpts = ckpts;
    this.resumedFrom = resumedFrom;
    this.start = resumedFrom ?? 0;
    this.end = Math.min(o.spec.steps, o.stopAfter ?? o.spec.steps);
  }

  /** Restore the newest checkpoint (weights and optimizer moments) when resuming, then call `onResume`. */
  static async open(o: StageLoopOptions): Promise<StageLoop> {
    const ckpts = o.checkpointDir ? new RotatingCheckpoints(o.checkpointDir) : null;
    const resumedFrom = ckpts && (o.resume ?? true) ? await ckpts.restore(o.model, o.optimizer) : null;
    const loop = new StageLoop(o, ckpts, resumedFrom);
    await o.onResume?.(loop.start);
    return loop;
  }

  /** Warnings the health monitor printed (conditions that do not stop training). */
  get warnings(): string[] {
    return this.#health.warnings;
  }

  /** Evaluate the model and record it when `updatesDone` is a multiple of `evalEvery` or the last update. */
  async evaluateIfDue(updatesDone: number): Promise<void> {
    const { spec, evaluate } = this.#o;
    if (!evaluate || !(spec.evalEvery > 0)) return;
    const due = updatesDone === spec.steps ||
      (updatesDone % spec.evalEvery === 0 && (updatesDone > 0 || this.#o.evalAtStart));
    if (!due) return;
    const res = await evaluate(updatesDone, this.#o.model);
    if (res) {
      await this.#o.onMetrics?.({
        stage: this.#o.stageName,
        kind: "eval",
        step: updatesDone,
        time: Date.now(),
        ...res,
      });
    }
  }

  /**
   * After a step's records are written: stop on a health condition (NaN/Inf, every completion truncated;
   * the last good checkpoint stays), then checkpoint when `checkpointEvery` or the last update is due.
   */
  async closeStep(metrics: MetricRecord): Promise<void> {
    this.#health.check(metrics);
    const { spec } = this.#o;
    const done = metrics.step + 1;
    if ((spec.checkpointEvery > 0 && done % spec.checkpointEvery === 0) || done === spec.steps) {
      await this.#ckpts?.save(done, this.#o.model, this.#o.optimizer, this.#o.tokenizer.toJSON(), {
        stage: this.#o.stageName,
        kind: spec.kind,
      });
    }
  }

  /** After the loop: the final evaluation when the stage ran to its last update. */
  async finish(): Promise<void> {
    if (this.end === this.#o.spec.steps) await this.evaluateIfDue(this.end);
  }
}
