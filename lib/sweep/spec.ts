/**
 * Sweep specs (`experiments/sweeps/*.json`): one base experiment, a `grid` (cartesian product) or a `list` of
 * `--set` overrides, and seeds. Validated against experiments/sweep.schema.json (ajv, JSON Schema draft
 * 2020-12, allErrors) with one line per problem naming the file and the JSON pointer, plus the cross-field
 * rules a schema cannot express (exactly one of grid/list, no `seed` in overrides, unique cell labels).
 * @module
 */
import { Ajv2020, type ErrorObject, type ValidateFunction } from "ajv/dist/2020.js";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import schema from "../../experiments/sweep.schema.json" with { type: "json" };
import { UserError } from "../errors.ts";
import { checkPath } from "../run/sandbox.ts";
import { displayPath, EXPERIMENTS_DIR, resolveExperimentPath } from "../spec/load.ts";
import { describeValue } from "../spec/validate.ts";
import { nearest } from "../spec/suggest.ts";

/** Slurm options of a sweep (each becomes an `#SBATCH` line). */
export interface SlurmOptions {
  partition?: string;
  /** `--time`, e.g. "01:00:00". */
  time?: string;
  cpusPerTask?: number;
  /** `--mem`, e.g. "8G". */
  mem?: string;
  /** Extra `#SBATCH` arguments, e.g. ["--gres=gpu:1"]. */
  extraArgs?: string[];
}

/** One explicit cell of a `list` sweep. */
export interface ListCell {
  label: string;
  /** Dotted spec path -> value (passed as `--set path=<JSON value>`). */
  set: Record<string, unknown>;
}

/** A sweep file as written on disk (experiments/sweep.schema.json is normative). */
export interface SweepSpec {
  $schema?: string;
  name: string;
  description?: string;
  /** Experiment name under experiments/ or a path relative to the sweep file. */
  experiment: string;
  preset?: "tiny" | "small" | "large";
  /** Overrides applied to every cell first. */
  sets?: Record<string, unknown>;
  grid?: Record<string, unknown[]>;
  list?: ListCell[];
  seeds: number[];
  workers?: number;
  executor?: "local" | "slurm";
  slurm?: SlurmOptions;
}

/** A loaded sweep: the spec, its file, and the experiment spec path it runs. */
export interface LoadedSweep {
  sweep: SweepSpec;
  /** Absolute path of the sweep file. */
  path: string;
  /** Absolute path of the base experiment's spec file. */
  experimentPath: string;
  /** What to pass as the experiment argument of `main.ts exp`: the name, or the absolute path. */
  experimentArg: string;
}

/** Directory of the shipped sweeps. */
export const SWEEPS_DIR: string = fileURLToPath(new URL("../../experiments/sweeps/", import.meta.url));

/** The JSON Schema of a sweep file. */
export const SWEEP_SCHEMA: Record<string, unknown> = schema as Record<string, unknown>;

let validator: ValidateFunction | null = null;
function getValidator(): ValidateFunction {
  if (!validator) {
    const ajv = new Ajv2020({
      allErrors: true,
      verbose: true,
      strict: true,
      strictRequired: false,
      allowUnionTypes: true,
    });
    validator = ajv.compile(SWEEP_SCHEMA);
  }
  return validator!;
}

/** Names of the shipped sweeps, sorted. */
export function listSweeps(dir = SWEEPS_DIR): string[] {
  const out: string[] = [];
  try {
    for (const e of Deno.readDirSync(dir)) {
      if (e.isFile && e.name.endsWith(".json")) out.push(e.name.slice(0, -5));
    }
  } catch {
    return [];
  }
  return out.sort();
}

/** Path of a sweep given by name (experiments/sweeps/NAME.json) or by path (contains a slash or ends in .json). */
export function resolveSweepPath(nameOrPath: string, dir = SWEEPS_DIR): string {
  if (nameOrPath.endsWith(".json") || nameOrPath.includes("/") || nameOrPath.includes("\\")) {
    return resolve(nameOrPath);
  }
  const path = join(dir, `${nameOrPath}.json`);
  try {
    if (Deno.statSync(path).isFile) return path;
  } catch { /* fall through */ }
  const names = listSweeps(dir);
  const hint = nearest(nameOrPath, names);
  throw new UserError(
    `unknown sweep '${nameOrPath}'${hint ? `; did you mean '${hint}'?` : ""} ` +
      `(available in ${displayPath(dir)}: ${names.join(", ") || "none"})`,
  );
}

function problemLine(e: ErrorObject): string | null {
  const ptr = e.instancePath || "/";
  const got = describeValue(e.data);
  if (e.schemaPath.startsWith("#/oneOf/")) return null; // reported once by the oneOf error
  switch (e.keyword) {
    case "oneOf":
      return `${ptr}: needs exactly one of 'grid' or 'list'`;
    case "additionalProperties": {
      const key = (e.params as { additionalProperty: string }).additionalProperty;
      const props = Object.keys(
        (e.parentSchema as { properties?: Record<string, unknown> })?.properties ?? {},
      );
      const hint = nearest(key, props);
      return `${e.instancePath}/${key}: unknown key '${key}'; ${
        hint ? `did you mean '${hint}'?` : `valid keys: ${props.join(", ")}`
      }`;
    }
    case "required":
      return `${ptr}: missing required key '${(e.params as { missingProperty: string }).missingProperty}'`;
    case "type":
      return `${ptr}: must be ${(e.params as { type: string }).type}, got ${got}`;
    case "enum":
      return `${ptr}: must be one of ${
        (e.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(", ")
      }, got ${got}`;
    case "propertyNames":
      return null; // the nested pattern error names the key
    case "pattern":
      if (e.propertyName !== undefined) {
        return `${ptr}: invalid key '${e.propertyName}' (expected a dotted spec path like stages.grpo.grpo.beta)`;
      }
      return `${ptr}: ${e.message}, got ${got}`;
    default:
      return `${ptr}: ${e.message ?? "is invalid"}, got ${got}`;
  }
}

/** Schema and cross-field problems of a parsed sweep file, as `pointer: message` lines (empty when valid). */
export function sweepProblems(value: unknown): string[] {
  const validate = getValidator();
  if (!validate(value)) {
    const lines = (validate.errors ?? []).map(problemLine).filter((l): l is string => l !== null);
    return [...new Set(lines)];
  }
  const s = value as SweepSpec;
  const out: string[] = [];
  const checkKeys = (obj: Record<string, unknown>, ptr: string) => {
    for (const k of Object.keys(obj)) {
      if (k === "seed") out.push(`${ptr}/seed: the master seed is swept by 'seeds', not by an override`);
    }
  };
  if (s.sets) checkKeys(s.sets, "/sets");
  if (s.grid) checkKeys(s.grid, "/grid");
  if (s.list) {
    const seen = new Map<string, number>();
    s.list.forEach((c, i) => {
      checkKeys(c.set, `/list/${i}/set`);
      if (seen.has(c.label)) {
        out.push(`/list/${i}/label: duplicate label '${c.label}' (also /list/${seen.get(c.label)})`);
      }
      seen.set(c.label, i);
    });
  }
  if (s.grid) {
    for (const [k, vs] of Object.entries(s.grid)) {
      const keys = vs.map((v) => JSON.stringify(v));
      const dup = keys.find((x, i) => keys.indexOf(x) !== i);
      if (dup !== undefined) out.push(`/grid/${k}: duplicate value ${dup}`);
    }
  }
  return out;
}

/** Validate a parsed sweep; throws a UserError (exit 2) naming `file` and every problem. */
export function validateSweep(value: unknown, file: string): SweepSpec {
  const problems = sweepProblems(value);
  if (problems.length === 1) throw new UserError(`${file}: ${problems[0]}`);
  if (problems.length) {
    throw new UserError(
      `${problems.length} problems in sweep ${file}:\n` + problems.map((p) => `  ${file}: ${p}`).join("\n"),
    );
  }
  return value as SweepSpec;
}

/** Read, parse and validate a sweep by name or path, and locate its base experiment. */
export async function loadSweep(nameOrPath: string, dir = SWEEPS_DIR): Promise<LoadedSweep> {
  const path = resolveSweepPath(nameOrPath, dir);
  const file = displayPath(path);
  let text: string;
  checkPath(path, "read", "sweep file");
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw new UserError(`sweep file not found: ${file}`);
    throw new UserError(`cannot read sweep file ${file}: ${(e as Error).message}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new UserError(`${file}: invalid JSON: ${(e as Error).message}`);
  }
  const sweep = validateSweep(value, file);
  const exp = sweep.experiment;
  const isPath = exp.endsWith(".json") || exp.includes("/") || exp.includes("\\");
  let experimentPath: string;
  try {
    experimentPath = isPath ? resolve(dirname(path), exp) : resolveExperimentPath(exp, EXPERIMENTS_DIR);
  } catch (e) {
    if (e instanceof UserError) throw new UserError(`${file}: /experiment: ${e.message}`);
    throw e;
  }
  try {
    Deno.statSync(experimentPath);
  } catch {
    throw new UserError(
      `${file}: /experiment: file not found: ${exp} (resolved to ${displayPath(experimentPath)})`,
    );
  }
  return { sweep, path, experimentPath, experimentArg: isPath ? experimentPath : exp };
}
