/**
 * Loading experiment specs: read a JSON file, follow `extends` (relative paths, recursive, cycles refused),
 * deep-merge (objects merge, arrays replace), apply `--preset NAME` (the merged `presets[NAME]`), then
 * `--set a.b.c=value` overrides, fill omitted seeds from the master seed and `data.source` ("geoworld"), validate against
 * experiments/schema.json, and hash the result.
 * @module
 */
import { dirname, isAbsolute, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { UserError } from "../errors.ts";
import { checkPath } from "../run/sandbox.ts";
import { deriveSeed } from "../rng.ts";
import type { ExperimentSpec } from "./types.ts";
import { specHash } from "./hash.ts";
import { checkKey, escapePointer, isPlainObject, type JsonObject, mergeInto, Provenance } from "./merge.ts";
import { nearest } from "./suggest.ts";
import { describeValue, formatProblems, specProblems } from "./validate.ts";

/** Directory of the shipped experiment specs (`experiments/` at the project root). */
export const EXPERIMENTS_DIR: string = fileURLToPath(new URL("../../experiments/", import.meta.url));

/** The project root (parent of experiments/): `extends` may point anywhere below it. */
const PROJECT_DIR: string = fileURLToPath(new URL("../../", import.meta.url));

function isInside(path: string, dir: string): boolean {
  const rel = relative(dir, path);
  return rel === "" || (!rel.startsWith("..") && !isAbsolute(rel));
}

/** Options of {@link loadSpec}. */
export interface LoadSpecOptions {
  /** Preset name (`tiny`, `small`, `large`, or any key of the merged `presets`). */
  preset?: string;
  /** Overrides `a.b.c=value`, applied in order after the preset. */
  sets?: string[];
}

/** A resolved spec, its content hash and the files it was merged from. */
export interface LoadedSpec {
  spec: ExperimentSpec;
  /** sha256 (hex) of the canonical JSON of `spec`. */
  hash: string;
  /** Absolute paths of the files merged, ancestor first. */
  sources: string[];
}

/** A path for messages: relative to the working directory when inside it, else absolute. */
export function displayPath(path: string): string {
  const abs = resolve(path);
  let cwd: string;
  try {
    cwd = Deno.cwd();
  } catch {
    return abs;
  }
  const rel = relative(cwd, abs);
  return rel && !rel.startsWith("..") && !isAbsolute(rel) ? rel : abs;
}

/** Names of the shipped experiments (JSON files in experiments/ except *schema.json), sorted. */
export function listExperiments(dir = EXPERIMENTS_DIR): string[] {
  const names: string[] = [];
  try {
    for (const e of Deno.readDirSync(dir)) {
      if (e.isFile && e.name.endsWith(".json") && !e.name.endsWith("schema.json")) {
        names.push(e.name.slice(0, -5));
      }
    }
  } catch {
    return [];
  }
  return names.sort();
}

/**
 * Path of an experiment given by name (a file in experiments/) or by path (anything containing a slash or
 * ending in .json). Throws a UserError listing the available experiments when a name is unknown.
 */
export function resolveExperimentPath(nameOrPath: string, dir = EXPERIMENTS_DIR): string {
  if (nameOrPath.endsWith(".json") || nameOrPath.includes("/") || nameOrPath.includes("\\")) {
    return resolve(nameOrPath);
  }
  const path = join(dir, `${nameOrPath}.json`);
  if (!nameOrPath.endsWith("schema") && exists(path)) return path;
  const names = listExperiments(dir);
  const hint = nearest(nameOrPath, names);
  throw new UserError(
    `unknown experiment '${nameOrPath}'${hint ? `; did you mean '${hint}'?` : ""} ` +
      `(available in ${displayPath(dir)}: ${names.join(", ") || "none"})`,
  );
}

function exists(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

function lineCol(text: string, pos: number): string {
  const before = text.slice(0, pos);
  const line = before.split("\n").length;
  const col = pos - before.lastIndexOf("\n");
  return `line ${line} column ${col}`;
}

/** Read and parse one spec file; `via` says who referenced it (for a missing `extends` target). */
async function readSpecFile(path: string, via: { file: string; ref: string } | null): Promise<JsonObject> {
  let text: string;
  checkPath(path, "read", via ? `${displayPath(via.file)}: /extends` : "spec file");
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.IsADirectory) {
      if (via) {
        throw new UserError(
          `${displayPath(via.file)}: /extends: file not found: ${via.ref} (resolved to ${displayPath(path)})`,
        );
      }
      throw new UserError(`spec file not found: ${displayPath(path)}`);
    }
    throw new UserError(`cannot read spec file ${displayPath(path)}: ${(e as Error).message}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    const msg = (e as Error).message;
    const m = /line \d+ column \d+/.test(msg) ? null : /position (\d+)/.exec(msg);
    throw new UserError(`${displayPath(path)}: invalid JSON: ${msg}${m ? ` (${lineCol(text, +m[1])})` : ""}`);
  }
  if (!isPlainObject(value)) {
    throw new UserError(`${displayPath(path)}: /: must be object, got ${describeValue(value)}`);
  }
  const file = displayPath(path);
  if ("$schema" in value && typeof value.$schema !== "string") {
    throw new UserError(`${file}: /$schema: must be string, got ${describeValue(value.$schema)}`);
  }
  if ("extends" in value && typeof value.extends !== "string") {
    throw new UserError(`${file}: /extends: must be string, got ${describeValue(value.extends)}`);
  }
  if ("presets" in value) {
    const presets = value.presets;
    if (!isPlainObject(presets)) {
      throw new UserError(`${file}: /presets: must be object, got ${describeValue(presets)}`);
    }
    for (const [k, v] of Object.entries(presets)) {
      if (!isPlainObject(v)) {
        throw new UserError(`${file}: /presets/${escapePointer(k)}: must be object, got ${describeValue(v)}`);
      }
    }
  }
  return value;
}

/** Resolve `path` and its `extends` chain into one merged object (presets still inside). */
async function mergeChain(
  path: string,
  stack: string[],
  prov: Provenance,
  sources: string[],
  via: { file: string; ref: string } | null,
): Promise<JsonObject> {
  const abs = resolve(path);
  if (stack.includes(abs)) {
    const cycle = [...stack.slice(stack.indexOf(abs)), abs].map(displayPath).join(" -> ");
    throw new UserError(`${displayPath(stack[stack.length - 1])}: /extends: cycle: ${cycle}`);
  }
  const raw = await readSpecFile(abs, via);
  let merged: JsonObject = {};
  if (typeof raw.extends === "string") {
    const target = resolve(dirname(abs), raw.extends);
    const roots = [PROJECT_DIR, dirname(stack[0] ?? abs)];
    if (!roots.some((r) => isInside(target, r))) {
      throw new UserError(
        `${displayPath(abs)}: /extends: ${raw.extends} resolves outside the project and the spec's folder ` +
          `(${target}); specs may only extend files inside them`,
      );
    }
    merged = await mergeChain(target, [...stack, abs], prov, sources, { file: abs, ref: raw.extends });
  }
  sources.push(abs);
  const own: JsonObject = { ...raw };
  delete own.$schema;
  delete own.extends;
  const file = displayPath(abs);
  mergeInto(merged, own, prov, () => file);
  return merged;
}

/** Parse one `--set a.b.c=value` into path segments and a value (JSON when it parses, else the string). */
export function parseSet(arg: string): { path: string[]; value: unknown; text: string } {
  const eq = arg.indexOf("=");
  if (eq <= 0) throw new UserError(`--set ${arg}: expected KEY.PATH=VALUE, e.g. --set stages.grpo.steps=100`);
  const key = arg.slice(0, eq);
  const text = arg.slice(eq + 1);
  const path = key.split(".");
  if (path.some((s) => s === "")) throw new UserError(`--set ${arg}: empty segment in key '${key}'`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    value = text;
  }
  return { path, value, text };
}

/** Apply one `--set` to `spec`. Intermediate objects must exist; the last key may be new (schema-checked). */
function applySet(spec: JsonObject, arg: string, prov: Provenance): { pointer: string; text: string } {
  const { path, value, text } = parseSet(arg);
  const origin = `--set ${arg}`;
  let obj: JsonObject = spec;
  let ptr = "";
  for (let i = 0; i < path.length - 1; i++) {
    const seg = path[i];
    checkKey(seg, origin, ptr);
    const next = obj[seg];
    const p = `${ptr}/${escapePointer(seg)}`;
    if (next === undefined) {
      const hint = nearest(seg, Object.keys(obj));
      const tail = hint ? `did you mean '${hint}'?` : `valid keys: ${Object.keys(obj).join(", ")}`;
      throw new UserError(`${origin}: ${p}: unknown key '${seg}'; ${tail}`);
    }
    if (!isPlainObject(next)) {
      throw new UserError(
        `${origin}: ${p}: is ${describeValue(next)}, not an object, so it has no key '${path[i + 1]}'`,
      );
    }
    obj = next;
    ptr = p;
  }
  const last = path[path.length - 1];
  checkKey(last, origin, ptr);
  obj[last] = value;
  const pointer = `${ptr}/${escapePointer(last)}`;
  prov.set(pointer, origin);
  return { pointer, text };
}

/** Fill omitted data/model/stage seeds with `deriveSeed(spec.seed, "<json path>")`. */
export function fillSeeds(spec: JsonObject, prov?: Provenance): void {
  const master = spec.seed;
  if (typeof master !== "number" || !Number.isInteger(master)) return;
  const fill = (obj: unknown, path: string, pointer: string) => {
    if (isPlainObject(obj) && obj.seed === undefined) {
      obj.seed = deriveSeed(master, path);
      prov?.set(pointer, "derived from /seed");
    }
  };
  fill(spec.data, "data.seed", "/data/seed");
  fill(spec.model, "model.seed", "/model/seed");
  if (isPlainObject(spec.stages)) {
    for (const name of Object.keys(spec.stages)) {
      fill(spec.stages[name], `stages.${name}.seed`, `/stages/${escapePointer(name)}/seed`);
    }
  }
}

/**
 * Fill `data.source` ("geoworld"), a folder source's `split` ("region") and `data.coordTokens` (false) when
 * omitted.
 */
export function fillDataSource(spec: JsonObject, prov?: Provenance): void {
  const data = spec.data;
  if (!isPlainObject(data)) return;
  if (data.coordTokens === undefined) {
    data.coordTokens = false;
    prov?.set("/data/coordTokens", "default");
  }
  if (data.source === undefined) {
    data.source = "geoworld";
    prov?.set("/data/source", "default");
  } else if (isPlainObject(data.source) && data.source.split === undefined) {
    data.source.split = "region";
    prov?.set("/data/source/split", "default");
  }
}

/**
 * Resolve an experiment spec file: `extends` chain, preset, `--set` overrides, derived seeds, schema
 * validation. Throws UserError (exit 2) with one line per problem naming the origin and JSON pointer.
 */
export async function loadSpec(path: string, opts: LoadSpecOptions = {}): Promise<LoadedSpec> {
  const prov = new Provenance();
  const sources: string[] = [];
  const top = displayPath(path);
  const merged = await mergeChain(path, [], prov, sources, null);

  const presets = isPlainObject(merged.presets) ? merged.presets : {};
  delete merged.presets;
  if (opts.preset !== undefined) {
    const chosen = presets[opts.preset];
    if (!isPlainObject(chosen)) {
      const names = Object.keys(presets);
      const hint = nearest(opts.preset, names);
      throw new UserError(
        `${top}: unknown preset '${opts.preset}'${hint ? `; did you mean '${hint}'?` : ""} ` +
          `(available: ${names.join(", ") || "none"})`,
      );
    }
    const presetPtr = `/presets/${escapePointer(opts.preset)}`;
    mergeInto(merged, chosen, prov, (p) => `preset '${opts.preset}' (${prov.lookup(presetPtr + p) ?? top})`);
  }
  prov.deleteUnder("/presets");

  const setPointers = new Map<string, string>();
  for (const s of opts.sets ?? []) {
    const { pointer, text } = applySet(merged, s, prov);
    setPointers.set(pointer, text);
  }
  fillSeeds(merged, prov);
  fillDataSource(merged, prov);

  let problems = specProblems(merged, prov, top);
  // Schema-driven coercion: a `--set` value that parsed as JSON but where the schema wants a string
  // (e.g. --set name=123) is retried as the literal text.
  let retried = false;
  for (const p of problems) {
    const text = setPointers.get(p.pointer);
    if (text !== undefined && /^must be string/.test(p.message)) {
      setAt(merged, p.pointer, text);
      retried = true;
    }
  }
  if (retried) problems = specProblems(merged, prov, top);
  if (problems.length) {
    throw new UserError(formatProblems(problems));
  }
  const spec = merged as unknown as ExperimentSpec;
  return { spec, hash: specHash(spec), sources };
}

function setAt(obj: JsonObject, pointer: string, value: unknown): void {
  const segs = pointer.split("/").slice(1).map((s) => s.replaceAll("~1", "/").replaceAll("~0", "~"));
  let o = obj;
  for (const s of segs.slice(0, -1)) o = o[s] as JsonObject;
  o[segs[segs.length - 1]] = value;
}
