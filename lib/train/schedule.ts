/**
 * Learning-rate schedule: linear warmup over `warmupSteps` (step 0 gets lr / warmupSteps), then cosine decay
 * from lr to lr * minLrRatio, reached at the last step (totalSteps - 1).
 * @module
 */
import type { OptimSpec } from "../spec/types.ts";

/** Learning rate of step `step` (0-based) of a run of `totalSteps` steps. */
export function lrAt(
  optim: Pick<OptimSpec, "lr" | "warmupSteps" | "minLrRatio">,
  step: number,
  totalSteps: number,
): number {
  const { lr, warmupSteps, minLrRatio } = optim;
  if (warmupSteps > 0 && step < warmupSteps) return (lr * (step + 1)) / warmupSteps;
  const span = totalSteps - 1 - warmupSteps;
  if (span <= 0) return lr;
  const progress = Math.min(1, Math.max(0, (step - warmupSteps) / span));
  const min = lr * minLrRatio;
  return min + (lr - min) * 0.5 * (1 + Math.cos(Math.PI * progress));
}
