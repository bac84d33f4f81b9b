/**
 * Expanding a sweep into runs: cells (grid cartesian product in key order, or the explicit list) x seeds.
 * Every run is resolved exactly as `main.ts exp` resolves it (`loadSpec(experiment, {preset, sets})` with the
 * master seed set), so its run id, the hash of the resolved spec, names the same run directory
 * `<runsDir>/<name>-<hash8>/` that `exp` writes.
 * @module
 */
import { join, resolve } from "node:path";
import { loadSpec } from "../spec/load.ts";
import { RunDir } from "../run/rundir.ts";
import type { LoadedSweep, SweepSpec } from "./spec.ts";

/** One cell of a sweep: a label and the overrides it applies. */
export interface Cell {
  index: number;
  label: string;
  /** The swept parameters of this cell (grid: path -> value; list: its `set`). */
  params: Record<string, unknown>;
}

/** One run of a sweep: a cell at a seed, resolved to its run directory. */
export interface PlannedRun {
  /** Position in the sweep (cell-major, then seed). */
  index: number;
  cell: number;
  label: string;
  params: Record<string, unknown>;
  seed: number;
  /** `--set` arguments in order: the sweep's `sets`, then the cell's. */
  sets: string[];
  /** Resolved spec name and hash (sha256 hex of the canonical resolved spec). */
  name: string;
  hash: string;
  /** `<name>-<hash8>`: the run id used in state, logs and links. */
  runId: string;
  /** Absolute run directory. */
  runDir: string;
}

/** Resolves one run to the name and hash of its resolved spec. */
export type Resolver = (
  experimentPath: string,
  opts: { preset?: string; sets: string[]; seed: number },
) => Promise<{ name: string; hash: string }>;

/**
 * The resolver of `main.ts exp`: loadSpec with the preset and the sets, with `seed=S` applied last (as
 * `--seed S` does, before omitted seeds are derived from it).
 */
export const defaultResolver: Resolver = async (experimentPath, { preset, sets, seed }) => {
  const loaded = await loadSpec(experimentPath, { preset, sets: [...sets, `seed=${seed}`] });
  return { name: loaded.spec.name, hash: loaded.hash };
};

/** `path=<JSON value>`: JSON keeps strings, numbers, booleans and arrays unambiguous for `--set`. */
export function formatSet(path: string, value: unknown): string {
  return `${path}=${JSON.stringify(value)}`;
}

/** Short display of a value in a label. */
export function displayValue(v: unknown): string {
  return typeof v === "string" ? v : JSON.stringify(v);
}

/** The run directory name of a resolved spec (lib/run's `RunDir.runId`). */
export function runDirName(name: string, hash: string): string {
  return RunDir.runId(name, hash);
}

/** Short names of swept paths: the last segment, or the full path where last segments collide. */
export function shortNames(paths: string[]): Map<string, string> {
  const last = (p: string) => p.slice(p.lastIndexOf(".") + 1);
  const out = new Map<string, string>();
  for (const p of paths) out.set(p, paths.filter((q) => last(q) === last(p)).length > 1 ? p : last(p));
  return out;
}

/** The cells of a sweep: the grid's cartesian product (first key varies slowest) or the list. */
export function expandCells(sweep: SweepSpec): Cell[] {
  if (sweep.list) return sweep.list.map((c, index) => ({ index, label: c.label, params: { ...c.set } }));
  const grid = sweep.grid ?? {};
  const keys = Object.keys(grid);
  const names = shortNames(keys);
  let combos: Record<string, unknown>[] = [{}];
  for (const k of keys) combos = combos.flatMap((c) => grid[k].map((v) => ({ ...c, [k]: v })));
  return combos.map((params, index) => ({
    index,
    label: keys.map((k) => `${names.get(k)}=${displayValue(params[k])}`).join(", "),
    params,
  }));
}

/** The swept parameters (grid keys, or every path some list cell sets), in order of first appearance. */
export function sweptParams(sweep: SweepSpec): string[] {
  if (sweep.grid) return Object.keys(sweep.grid);
  const out: string[] = [];
  for (const c of sweep.list ?? []) for (const k of Object.keys(c.set)) if (!out.includes(k)) out.push(k);
  return out;
}

/** Expand a loaded sweep into runs (cells x seeds), resolving each run's spec hash and directory. */
export async function planRuns(
  loaded: LoadedSweep,
  opts: { runsDir: string; resolver?: Resolver },
): Promise<PlannedRun[]> {
  const resolver = opts.resolver ?? defaultResolver;
  const { sweep } = loaded;
  const base = Object.entries(sweep.sets ?? {}).map(([k, v]) => formatSet(k, v));
  const runs: PlannedRun[] = [];
  for (const cell of expandCells(sweep)) {
    const sets = [...base, ...Object.entries(cell.params).map(([k, v]) => formatSet(k, v))];
    for (const seed of sweep.seeds) {
      let r: { name: string; hash: string };
      try {
        r = await resolver(loaded.experimentPath, { preset: sweep.preset, sets, seed });
      } catch (e) {
        const err = e as Error;
        err.message = `sweep cell '${cell.label}' (seed ${seed}): ${err.message}`;
        throw err;
      }
      const runId = runDirName(r.name, r.hash);
      runs.push({
        index: runs.length,
        cell: cell.index,
        label: cell.label,
        params: cell.params,
        seed,
        sets,
        name: r.name,
        hash: r.hash,
        runId,
        runDir: join(resolve(opts.runsDir), runId),
      });
    }
  }
  return runs;
}
