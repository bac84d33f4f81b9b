/**
 * Training health checks (docs/DESIGN.md "Stages and experiments"): stop on NaN/Inf, stop when every completion is truncated for
 * several steps, warn when groups carry no signal (frac_reward_zero_std near 1) for many steps or when the
 * policy entropy collapses. Warnings go to stderr once per condition; stops throw `TrainingHealthError`
 * carrying the step, so the caller keeps the last good checkpoint and records the failure.
 * @module
 */
import type { MetricRecord } from "../run/records.ts";

export class TrainingHealthError extends Error {
  readonly step: number;
  constructor(step: number, message: string) {
    super(`step ${step}: ${message}`);
    this.name = "TrainingHealthError";
    this.step = step;
  }
}

export interface HealthLimits {
  /** Consecutive steps with every completion truncated before stopping. */
  allTruncatedSteps: number;
  /** frac_reward_zero_std above this for `zeroStdSteps` consecutive steps -> warning. */
  zeroStdFrac: number;
  zeroStdSteps: number;
  /** Mean completion-token entropy (nats) under this -> warning (collapse). */
  minEntropy: number;
}

export const DEFAULT_HEALTH: HealthLimits = {
  allTruncatedSteps: 5,
  zeroStdFrac: 0.95,
  zeroStdSteps: 20,
  minEntropy: 0.01,
};

export class HealthMonitor {
  #truncRun = 0;
  #zeroRun = 0;
  #warned = new Set<string>();
  readonly warnings: string[] = [];
  constructor(
    readonly limits: HealthLimits = DEFAULT_HEALTH,
    readonly warn = (s: string) => console.error(s),
  ) {}

  /** Inspect one step's metrics; throws TrainingHealthError on a stop condition. */
  check(m: MetricRecord): void {
    const step = m.step;
    for (const [k, v] of Object.entries(m)) {
      if (typeof v === "number" && !Number.isFinite(v) && k !== "time") {
        throw new TrainingHealthError(
          step,
          `${k} is ${v} (NaN/Inf): stopping; the last good checkpoint is kept`,
        );
      }
    }
    if (typeof m["completions/clipped_ratio"] === "number") {
      this.#truncRun = m["completions/clipped_ratio"] >= 1 ? this.#truncRun + 1 : 0;
      if (this.#truncRun >= this.limits.allTruncatedSteps) {
        throw new TrainingHealthError(
          step,
          `every completion was truncated for ${this.#truncRun} steps (raise maxNewTokens or check the stop token)`,
        );
      }
    }
    if (typeof m.frac_reward_zero_std === "number") {
      this.#zeroRun = m.frac_reward_zero_std >= this.limits.zeroStdFrac ? this.#zeroRun + 1 : 0;
      if (this.#zeroRun >= this.limits.zeroStdSteps) {
        this.#once(
          "zero-std",
          step,
          `frac_reward_zero_std >= ${this.limits.zeroStdFrac} for ${this.#zeroRun} steps: groups carry no learning signal`,
        );
      }
    }
    if (typeof m.entropy === "number" && m.entropy < this.limits.minEntropy) {
      this.#once(
        "entropy",
        step,
        `entropy ${m.entropy.toFixed(4)} < ${this.limits.minEntropy}: the policy has collapsed`,
      );
    }
  }

  #once(key: string, step: number, msg: string) {
    if (this.#warned.has(key)) return;
    this.#warned.add(key);
    const line = `warning (step ${step}): ${msg}`;
    this.warnings.push(line);
    this.warn(line);
  }
}
