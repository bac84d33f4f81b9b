/**
 * The command-line options the GRPO step benchmarks share (bench/grpo_step.ts, bench/grpo_ab.ts): the
 * model preset, P prompts x G samples per step and the number of data-parallel replicas, parsed and checked
 * in one place. Each script adds its own options (all strings) through `extra`.
 * @module
 */
import { parseArgs } from "node:util";
import type { Preset } from "../lib/model/types.ts";

/** The shared options, checked, and every option's raw value (the script's own included). */
export interface GrpoBenchArgs {
  preset: Preset;
  prompts: number;
  groupSize: number;
  replicas: number;
  values: Record<string, string | undefined>;
}

/** Parse `args`: --preset (default small), --prompts and --group (default 8), --replicas (default 1). */
export function parseGrpoBenchArgs(
  args: string[],
  extra: Record<string, { type: "string"; default?: string }>,
): GrpoBenchArgs {
  const { values } = parseArgs({
    args,
    options: {
      preset: { type: "string", default: "small" },
      prompts: { type: "string", default: "8" },
      group: { type: "string", default: "8" },
      replicas: { type: "string", default: "1" },
      ...extra,
    },
  });
  const v = values as Record<string, string | undefined>;
  return {
    preset: v.preset as Preset,
    prompts: wholeNumber("--prompts", v.prompts),
    groupSize: wholeNumber("--group", v.group),
    replicas: wholeNumber("--replicas", v.replicas),
    values: v,
  };
}

/** A flag's value as a whole number >= 1; throws naming the flag otherwise. */
export function wholeNumber(flag: string, value: string | undefined): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${flag}: a whole number >= 1, got ${value}`);
  return n;
}
