/**
 * Reading a run directory's records for reports (files only; see lib/run/records.ts). Everything is read and
 * checked before any report is written, so an error leaves nothing partial. Errors a user can cause (missing
 * directory, missing or corrupt eval.json / manifest.json, a corrupt JSONL line) throw `UserError` naming the
 * file (and line or field).
 * @module
 */
import { join, resolve, sep } from "node:path";
import { UserError } from "../errors.ts";
import { checkPath } from "../run/sandbox.ts";
import type {
  EvalFile,
  GalleryItem,
  Manifest,
  MetricRecord,
  PredictionRecord,
  RolloutRecord,
  StageEval,
} from "../run/records.ts";

/** Per-stage summary of rollouts.jsonl, plus a few rollouts to show (first and last step). */
export interface RolloutStageSummary {
  stage: string;
  count: number;
  firstStep: number;
  lastStep: number;
  meanReward: number;
  truncatedFrac: number;
  meanTokens: number;
  /** Up to 3 rollouts of the first step and the best and worst of the last step. */
  samples: RolloutRecord[];
}

export interface RunRecords {
  dir: string;
  spec: Record<string, unknown> | null;
  manifest: Manifest;
  metrics: MetricRecord[];
  rollouts: RolloutStageSummary[] | null;
  eval: EvalFile;
  /** predictions.jsonl (empty when the run has none). */
  predictions: PredictionRecord[];
  /** Problems that do not stop a report (e.g. a torn last JSONL line); shown in the report. */
  warnings: string[];
}

const RUN_ID_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

async function readText(path: string, what: string, required: boolean): Promise<string | null> {
  checkPath(path, "read", what);
  try {
    return await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      if (!required) return null;
      throw new UserError(`${what} not found: ${path}`, 1);
    }
    throw new UserError(`cannot read ${what} ${path}: ${(e as Error).message}`, 1);
  }
}

function parseJson(text: string, path: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new UserError(`corrupt JSON in ${path}: ${(e as Error).message}`, 1);
  }
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function need(cond: unknown, path: string, field: string, expected: string): void {
  if (!cond) throw new UserError(`${path}: field ${field} must be ${expected}`, 1);
}

/** Check the shape of eval.json that reports rely on; fills `gallery: []` when absent. */
export function validateEvalFile(v: unknown, path: string): EvalFile {
  need(isObj(v), path, "(root)", "an object");
  const o = v as Record<string, unknown>;
  need(Array.isArray(o.rows), path, "rows", "an array");
  const rows = o.rows as unknown[];
  rows.forEach((r, i) => {
    const f = `rows[${i}]`;
    need(isObj(r), path, f, "an object");
    const row = r as Record<string, unknown>;
    need(typeof row.label === "string", path, `${f}.label`, "a string");
    need(typeof row.stage === "string", path, `${f}.stage`, "a string");
    if (row.gallery === undefined) row.gallery = [];
    need(Array.isArray(row.gallery), path, `${f}.gallery`, "an array");
    if (row.pairing !== undefined) {
      const p = row.pairing as Record<string, unknown>;
      need(isObj(p) && typeof p.accuracy === "number", path, `${f}.pairing.accuracy`, "a number");
      need(typeof p.meanLength === "number", path, `${f}.pairing.meanLength`, "a number");
    }
    if (row.geolocate !== undefined) {
      const g = row.geolocate as Record<string, unknown>;
      need(isObj(g) && isObj(g.thresholds), path, `${f}.geolocate.thresholds`, "an object");
    }
    if (row.geoqa !== undefined) {
      const q = row.geoqa as Record<string, unknown>;
      need(isObj(q) && isObj(q.byKind), path, `${f}.geoqa.byKind`, "an object");
    }
    (row.gallery as unknown[]).forEach((g, j) => {
      need(isObj(g), path, `${f}.gallery[${j}]`, "an object");
      const it = g as Record<string, unknown>;
      need(typeof it.completion === "string", path, `${f}.gallery[${j}].completion`, "a string");
      if (!Array.isArray(it.aerialPngs)) it.aerialPngs = [];
      if (it.groundPng === undefined) it.groundPng = null;
    });
  });
  if (typeof o.experiment !== "string") o.experiment = "";
  if (typeof o.runId !== "string") o.runId = "";
  return o as unknown as EvalFile;
}

function validateManifest(v: unknown, path: string): Manifest {
  need(isObj(v), path, "(root)", "an object");
  const m = v as Record<string, unknown>;
  need(typeof m.runId === "string" && RUN_ID_RE.test(m.runId), path, "runId", "a file-name-safe string");
  need(typeof m.name === "string", path, "name", "a string");
  for (const k of ["git", "versions", "backend", "device", "permissions"]) if (!isObj(m[k])) m[k] = {};
  if (!Array.isArray(m.stages)) m.stages = [];
  if (!Array.isArray(m.argv)) m.argv = [];
  return m as unknown as Manifest;
}

/** Iterate the lines of a text file without holding it whole (rollout ledgers can be large). */
async function* lines(path: string): AsyncGenerator<string> {
  const f = await Deno.open(path, { read: true });
  const dec = new TextDecoder();
  let buf = "";
  try {
    for await (const chunk of f.readable) {
      buf += dec.decode(chunk, { stream: true });
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        yield buf.slice(0, nl);
        buf = buf.slice(nl + 1);
      }
    }
    buf += dec.decode();
    if (buf.length) yield buf;
  } finally {
    try {
      f.close();
    } catch {
      // already closed by the stream
    }
  }
}

/**
 * Parse a JSONL file line by line. A torn last line (crash mid-append) is skipped with a warning; a corrupt
 * line elsewhere throws UserError naming file and line.
 */
async function readJsonl(path: string, warnings: string[], each: (v: Record<string, unknown>) => void) {
  let pending: { n: number; text: string } | null = null;
  let n = 0;
  for await (const line of lines(path)) {
    n++;
    if (pending) {
      throw new UserError(`corrupt JSON at ${path}:${pending.n}: ${pending.text.slice(0, 80)}`, 1);
    }
    if (!line.trim()) continue;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch {
      pending = { n, text: line };
      continue;
    }
    if (isObj(v)) each(v);
  }
  if (pending) warnings.push(`${path}: torn last line ${pending.n} skipped`);
}

function summarizeRollouts() {
  const by = new Map<string, {
    count: number;
    first: number;
    last: number;
    reward: number;
    trunc: number;
    tokens: number;
    firstSamples: RolloutRecord[];
    lastSamples: RolloutRecord[];
  }>();
  return {
    add(r: RolloutRecord) {
      const stage = String(r.stage ?? "");
      const step = Number(r.step ?? 0);
      let s = by.get(stage);
      if (!s) {
        s = {
          count: 0,
          first: step,
          last: step,
          reward: 0,
          trunc: 0,
          tokens: 0,
          firstSamples: [],
          lastSamples: [],
        };
        by.set(stage, s);
      }
      s.count++;
      s.reward += Number(r.reward) || 0;
      s.trunc += r.truncated ? 1 : 0;
      s.tokens += Number(r.tokens) || 0;
      if (step < s.first) {
        s.first = step;
        s.firstSamples = [];
      }
      if (step === s.first && s.firstSamples.length < 3) s.firstSamples.push(r);
      if (step > s.last) {
        s.last = step;
        s.lastSamples = [];
      }
      if (step === s.last) {
        // keep best and worst by reward of the last step
        const ls = s.lastSamples;
        if (ls.length < 2) ls.push(r);
        else {
          ls.sort((a, b) => b.reward - a.reward);
          if (r.reward > ls[0].reward) ls[0] = r;
          else if (r.reward < ls[1].reward) ls[1] = r;
        }
      }
    },
    result(): RolloutStageSummary[] {
      return [...by.entries()].map(([stage, s]) => ({
        stage,
        count: s.count,
        firstStep: s.first,
        lastStep: s.last,
        meanReward: s.reward / s.count,
        truncatedFrac: s.trunc / s.count,
        meanTokens: s.tokens / s.count,
        samples: s.first === s.last
          ? s.firstSamples
          : [...s.firstSamples, ...s.lastSamples.sort((a, b) => b.reward - a.reward)],
      }));
    },
  };
}

/** Read and check everything a report needs from `runDir`. */
export async function readRunRecords(runDir: string): Promise<RunRecords> {
  const dir = resolve(runDir);
  let st: Deno.FileInfo;
  try {
    st = await Deno.stat(dir);
  } catch {
    throw new UserError(`run directory not found: ${runDir}`, 2);
  }
  if (!st.isDirectory) throw new UserError(`not a run directory: ${runDir}`, 2);
  const warnings: string[] = [];

  const evalPath = join(dir, "eval.json");
  const evalFile = validateEvalFile(
    parseJson((await readText(evalPath, "eval.json", true))!, evalPath),
    evalPath,
  );
  const manPath = join(dir, "manifest.json");
  const manifest = validateManifest(
    parseJson((await readText(manPath, "manifest.json", true))!, manPath),
    manPath,
  );
  const specPath = join(dir, "spec.resolved.json");
  const specText = await readText(specPath, "spec.resolved.json", false);
  let spec: Record<string, unknown> | null = null;
  if (specText === null) warnings.push(`${specPath} is missing`);
  else {
    const v = parseJson(specText, specPath);
    spec = isObj(v) ? v : null;
  }

  const metrics: MetricRecord[] = [];
  const metricsPath = join(dir, "metrics.jsonl");
  checkPath(metricsPath, "read", "metrics.jsonl");
  try {
    await readJsonl(metricsPath, warnings, (v) => metrics.push(v as unknown as MetricRecord));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) warnings.push(`${metricsPath} is missing: no training curves`);
    else throw e;
  }

  let rollouts: RolloutStageSummary[] | null = null;
  const rolloutsPath = join(dir, "rollouts.jsonl");
  checkPath(rolloutsPath, "read", "rollouts.jsonl");
  try {
    const sum = summarizeRollouts();
    await readJsonl(rolloutsPath, warnings, (v) => sum.add(v as unknown as RolloutRecord));
    rollouts = sum.result();
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  const predictions: PredictionRecord[] = [];
  const predictionsPath = join(dir, "predictions.jsonl");
  try {
    await readJsonl(predictionsPath, warnings, (v) => {
      if (typeof v.exampleId === "string" && typeof v.task === "string") {
        predictions.push(v as unknown as PredictionRecord);
      }
    });
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return { dir, spec, manifest, metrics, rollouts, eval: evalFile, predictions, warnings };
}

/** Rows of eval.json by label, in file order. */
export function evalRows(r: RunRecords): StageEval[] {
  return r.eval.rows;
}

/**
 * Read a gallery PNG as a data: URI. Paths are relative to the run directory and must stay inside it; the
 * file must be a PNG (signature checked). Returns null (and a warning) otherwise.
 */
export async function pngDataUri(runDir: string, rel: string, warnings: string[]): Promise<string | null> {
  const root = resolve(runDir);
  const abs = resolve(root, rel);
  if (!abs.startsWith(root + sep)) {
    warnings.push(`image path outside the run directory ignored: ${rel}`);
    return null;
  }
  try {
    checkPath(abs, "read", "image");
  } catch (e) {
    if (!(e instanceof UserError)) throw e;
    warnings.push(`image outside the allowed tree ignored: ${rel}`);
    return null;
  }
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(abs);
  } catch {
    warnings.push(`image missing: ${rel}`);
    return null;
  }
  const sig = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  if (bytes.length < 8 || sig.some((b, i) => bytes[i] !== b)) {
    warnings.push(`not a PNG: ${rel}`);
    return null;
  }
  return `data:image/png;base64,${encodeBase64(bytes)}`;
}

function encodeBase64(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

export type { GalleryItem };
