/**
 * Validation of a resolved spec against experiments/schema.json (ajv, JSON Schema draft 2020-12, allErrors)
 * plus the cross-field rules a schema cannot express (pipeline names existing stages, `from` names an
 * earlier stage, negative tiers sum to 1, no retired value of lib/spec/retired.ts). Errors become one line
 * each: origin (file, preset or `--set`), JSON pointer, what was expected and what was found, and for an
 * unknown key the nearest valid key.
 * @module
 */
import { Ajv2020, type ErrorObject, type ValidateFunction } from "ajv/dist/2020.js";
import schema from "../../experiments/schema.json" with { type: "json" };
import { UserError } from "../errors.ts";
import { type JsonObject, Provenance } from "./merge.ts";
import { nearest } from "./suggest.ts";
import { retiredKey } from "./retired.ts";
import { checkResolutions } from "../baselines/grid.ts";
import { retiredProblems } from "./retired.ts";
import type { DataSpec, GrpoStageSpec } from "./types.ts";

/** The JSON Schema of a resolved spec (experiments/schema.json), for reuse by sweep schemas and docs. */
export const SPEC_SCHEMA: JsonObject = schema as JsonObject;

let validator: ValidateFunction | null = null;

function getValidator(): ValidateFunction {
  if (!validator) {
    const ajv = new Ajv2020({ allErrors: true, verbose: true, strict: true, allowUnionTypes: true });
    // `reason`: why a bound exists, shown in the error message when the bound is broken.
    ajv.addKeyword({ keyword: "reason", schemaType: "string" });
    validator = ajv.compile(SPEC_SCHEMA);
  }
  return validator!;
}

/** One problem found in a spec. */
export interface SpecProblem {
  /** JSON pointer of the offending value ("" for the root). */
  pointer: string;
  /** Where the value came from (file path, `preset 'x' (file)`, `--set a.b=c`). */
  origin: string;
  /** What is wrong, e.g. `must be integer, got string "abc"`. */
  message: string;
}

/** Render a value briefly for an error message. */
export function describeValue(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return `array ${truncate(JSON.stringify(v))}`;
  if (typeof v === "object") return `object ${truncate(JSON.stringify(v))}`;
  if (typeof v === "string") return `string ${truncate(JSON.stringify(v))}`;
  return `${typeof v} ${String(v)}`;
}

function truncate(s: string): string {
  return s.length > 60 ? s.slice(0, 57) + "..." : s;
}

function quoteList(xs: unknown[]): string {
  return xs.map((x) => JSON.stringify(x)).join(", ");
}

function problemOf(e: ErrorObject, prov: Provenance, fallbackOrigin: string): SpecProblem | null {
  const ptr = e.instancePath;
  const originOf = (p: string) => prov.lookup(p) ?? fallbackOrigin;
  const got = describeValue(e.data);
  switch (e.keyword) {
    case "if":
      return null; // the then/else branch reports the real problem
    case "additionalProperties": {
      const key = (e.params as { additionalProperty: string }).additionalProperty;
      const p = `${ptr}/${key.replaceAll("~", "~0").replaceAll("/", "~1")}`;
      const retired = retiredKey(p);
      if (retired) return { pointer: p, origin: originOf(p), message: retired };
      const props = Object.keys((e.parentSchema as { properties?: JsonObject })?.properties ?? {});
      const hint = nearest(key, props);
      const tail = hint ? `did you mean '${hint}'?` : `valid keys: ${props.join(", ")}`;
      return { pointer: p, origin: originOf(p), message: `unknown key '${key}'; ${tail}` };
    }
    case "required": {
      const key = (e.params as { missingProperty: string }).missingProperty;
      return { pointer: ptr, origin: originOf(ptr), message: `missing required key '${key}'` };
    }
    case "type": {
      const t = (e.params as { type: string | string[] }).type;
      const ts = Array.isArray(t) ? t.join(" or ") : t;
      return { pointer: ptr, origin: originOf(ptr), message: `must be ${ts}, got ${got}` };
    }
    case "enum": {
      const allowed = (e.params as { allowedValues: unknown[] }).allowedValues;
      return {
        pointer: ptr,
        origin: originOf(ptr),
        message: `must be one of ${quoteList(allowed)}, got ${got}`,
      };
    }
    case "const": {
      const allowed = (e.params as { allowedValue: unknown }).allowedValue;
      return {
        pointer: ptr,
        origin: originOf(ptr),
        message: `must be ${JSON.stringify(allowed)}, got ${got}`,
      };
    }
    case "minimum":
    case "maximum":
    case "exclusiveMinimum":
    case "exclusiveMaximum": {
      const { comparison, limit } = e.params as { comparison: string; limit: number };
      // A bound with a `reason` in the schema says it: "must be >= 2 (GRPO compares ...), got 1".
      const why = (e.parentSchema as { reason?: string } | undefined)?.reason;
      return {
        pointer: ptr,
        origin: originOf(ptr),
        message: `must be ${comparison} ${limit}${why ? ` (${why})` : ""}, got ${got}`,
      };
    }
    case "propertyNames": {
      const name = (e.params as { propertyName: string }).propertyName;
      const p = `${ptr}/${name}`;
      return { pointer: p, origin: originOf(p), message: `invalid name '${name}'` };
    }
    case "pattern":
      return { pointer: ptr, origin: originOf(ptr), message: `${e.message}, got ${got}` };
    default:
      return { pointer: ptr, origin: originOf(ptr), message: `${e.message ?? "is invalid"}, got ${got}` };
  }
}

/** Format problems as one line each: `<origin>: <pointer>: <message>`. */
export function formatProblems(problems: SpecProblem[]): string {
  const lines = problems.map((p) => `${p.origin}: ${p.pointer || "/"}: ${p.message}`);
  if (lines.length === 1) return lines[0];
  return `${lines.length} problems in the experiment spec:\n` + lines.map((l) => `  ${l}`).join("\n");
}

/** Schema and cross-field problems of a resolved spec (empty when it is valid). */
export function specProblems(spec: unknown, prov = new Provenance(), fallbackOrigin = "spec"): SpecProblem[] {
  const validate = getValidator();
  if (!validate(spec)) {
    // The same pointer can fail in a stage's discriminator and in its branch (e.g. `kind`): report it
    // once, keeping the error that allows the most values.
    const best = new Map<string, { p: SpecProblem; width: number }>();
    for (const e of validate.errors ?? []) {
      const p = problemOf(e, prov, fallbackOrigin);
      if (!p) continue;
      const key = `${p.pointer}\u0000${e.keyword}`;
      const width = (e.params as { allowedValues?: unknown[] }).allowedValues?.length ?? 0;
      const prev = best.get(key);
      if (!prev || width > prev.width) best.set(key, { p, width });
    }
    return [...best.values()].map((b) => b.p);
  }
  return crossFieldProblems(spec as JsonObject, prov, fallbackOrigin);
}

function crossFieldProblems(spec: JsonObject, prov: Provenance, fallback: string): SpecProblem[] {
  const out: SpecProblem[] = [];
  const add = (pointer: string, message: string) =>
    out.push({ pointer, origin: prov.lookup(pointer) ?? fallback, message });
  const stages = spec.stages as Record<string, JsonObject>;
  const names = Object.keys(stages);
  for (const r of retiredProblems(spec)) add(r.pointer, r.message);
  const pipeline = spec.pipeline as string[];
  pipeline.forEach((s, i) => {
    if (!(s in stages)) {
      const hint = nearest(s, names);
      add(
        `/pipeline/${i}`,
        `unknown stage '${s}'; ${hint ? `did you mean '${hint}'?` : `stages: ${names.join(", ")}`}`,
      );
    }
  });
  for (const [name, st] of Object.entries(stages)) {
    if (st.kind === "baseline") {
      baselineProblems(spec, name, st, pipeline.includes(name), add);
      continue;
    }
    emptyTaskMixProblem(st.tasks as Record<string, number>, `/stages/${name}/tasks`, add);
    if (typeof st.cueLoss === "number" && st.cueLoss > 0 && !(spec.model as JsonObject).cueHead) {
      add(`/stages/${name}/cueLoss`, "needs model.cueHead: true (the cue heads this loss trains)");
    }
    if (Array.isArray(st.negatives)) negativeScheduleProblems(name, st, add);
    const anchor = st.anchor as { tasks: Record<string, number> } | undefined;
    if (anchor) emptyTaskMixProblem(anchor.tasks, `/stages/${name}/anchor/tasks`, add);
    const from = st.from as string | null;
    const ptr = `/stages/${name}/from`;
    if (from === null) continue;
    if (!(from in stages)) {
      const hint = nearest(from, names);
      add(
        ptr,
        `unknown stage '${from}'; ${hint ? `did you mean '${hint}'?` : `stages: ${names.join(", ")}`}`,
      );
      continue;
    }
    const at = pipeline.indexOf(name);
    if (at >= 0 && !pipeline.slice(0, at).includes(from)) {
      add(ptr, `stage '${from}' must come before '${name}' in the pipeline [${pipeline.join(", ")}]`);
    }
  }
  mixSumProblem((spec.data as JsonObject).negatives as DataSpec["negatives"], "/data/negatives", add);
  const data = spec.data as { valFraction: number; testFraction: number };
  if (data.valFraction + data.testFraction >= 1) {
    add("/data/testFraction", "valFraction + testFraction must be < 1 (the train split would be empty)");
  }
  return out;
}

/** A task mix (a stage's `tasks`, an anchor's) must give some task weight. */
function emptyTaskMixProblem(
  mix: Record<string, number>,
  pointer: string,
  add: (pointer: string, message: string) => void,
): void {
  if (Object.values(mix).reduce((a, b) => a + b, 0) <= 0) add(pointer, "weights must not all be 0");
}

/** A mix of negative tiers (`data.negatives`, a schedule's point) must sum to 1. */
function mixSumProblem(
  m: DataSpec["negatives"],
  pointer: string,
  add: (pointer: string, message: string) => void,
): void {
  const sum = m.far + m.climate + m.near;
  if (Math.abs(sum - 1) > 1e-6) add(pointer, `weights must sum to 1, got ${+sum.toFixed(6)}`);
}

/** A stage's tier schedule: mixes that sum to 1, steps that increase, a stage that draws pairing prompts. */
function negativeScheduleProblems(
  name: string,
  st: JsonObject,
  add: (pointer: string, message: string) => void,
) {
  const points = st.negatives as NonNullable<GrpoStageSpec["negatives"]>;
  points.forEach((p, i) => {
    mixSumProblem(p, `/stages/${name}/negatives/${i}`, add);
    if (i > 0 && !(p.step > points[i - 1].step)) {
      add(
        `/stages/${name}/negatives/${i}/step`,
        `steps must increase: ${p.step} after ${points[i - 1].step}`,
      );
    }
  });
  if (!((st.tasks as Record<string, number>).pairing > 0)) {
    add(`/stages/${name}/negatives`, "has no effect: the stage's tasks give pairing no weight");
  }
}

/** Cross-field rules of a baseline stage (the schema has checked each field on its own). */
function baselineProblems(
  spec: JsonObject,
  name: string,
  st: JsonObject,
  inPipeline: boolean,
  add: (pointer: string, message: string) => void,
): void {
  const at = `/stages/${name}`;
  const width = ((spec.world as JsonObject).groundShape as number[])[1];
  const pw = (st.encoder as JsonObject).patchWidth as number;
  if (width % pw !== 0) add(`${at}/encoder/patchWidth`, `${pw} must divide the panorama width ${width}`);
  const cells = st.cells as JsonObject | undefined;
  const bad = cells ? checkResolutions(cells.resolutionsDeg as number[]) : null;
  if (bad) add(`${at}/cells/resolutionsDeg`, bad);
  const tasks = (spec.eval as JsonObject).tasks as string[];
  if (inPipeline && !tasks.includes("geolocate")) {
    add("/eval/tasks", `stage '${name}' is a geolocation baseline: eval.tasks must include "geolocate"`);
  }
}

/** Throw a UserError (exit 2) listing every problem of `spec`, if any. */
export function validateSpec(spec: unknown, prov = new Provenance(), fallbackOrigin = "spec"): void {
  const problems = specProblems(spec, prov, fallbackOrigin);
  if (problems.length) throw new UserError(formatProblems(problems));
}
