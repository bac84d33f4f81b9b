/**
 * Sweep state (`<runsDir>/sweeps/<name>/state.json`, written atomically after every change) and the checks
 * that decide what a (re-)run of a sweep does with each run: skip it when its manifest says `done` and its
 * eval.json and report.html exist, resume it (`--resume`) when its run directory exists, else start it fresh.
 * (`exp` marks the manifest done before it writes the report, so a run killed in between is resumed, which
 * only rewrites the report from the cached stages.)
 * @module
 */
import { join } from "node:path";
import { atomicWriteJson } from "../run/atomic.ts";
import type { PlannedRun } from "./expand.ts";

/** Status of one run in a sweep. `busy`: another live sweep holds the run's lock. */
export type RunStatus = "pending" | "running" | "done" | "failed" | "busy" | "submitted";

/** One run's entry in the sweep state. */
export interface RunState {
  runId: string;
  index: number;
  cell: number;
  label: string;
  params: Record<string, unknown>;
  seed: number;
  hash: string;
  runDir: string;
  /** Live log of every attempt (appended); copied to `<runDir>/log.txt` when an attempt ends. */
  log: string;
  status: RunStatus;
  /** Attempts started by sweeps (0 when the run was already complete). */
  attempts: number;
  startedAt: string | null;
  endedAt: string | null;
  elapsedS: number | null;
  exitCode: number | null;
  /** Last lines of the log of a failed attempt. */
  error: string | null;
  /** pid of the attempt's wrapper process while running. */
  pid: number | null;
  /** Complete before this sweep invocation began (not run by it). */
  skipped: boolean;
}

/** One invocation of `sweep` on this state. */
export interface Invocation {
  pid: number;
  host: string;
  executor: "local" | "slurm";
  startedAt: string;
  endedAt: string | null;
  /** Runs this invocation started / completed / failed. */
  started: number;
  completed: number;
  failed: number;
}

export interface SweepState {
  version: 1;
  sweep: string;
  file: string;
  experiment: string;
  preset: string | null;
  createdAt: string;
  updatedAt: string;
  invocations: Invocation[];
  slurm?: { jobId: string | null; script: string; submittedAt: string; tasks: string[] };
  runs: RunState[];
}

/** Directory of a sweep's state, logs and report. */
export function sweepDir(runsDir: string, name: string): string {
  return join(runsDir, "sweeps", name);
}

/** Read a sweep state, or null when there is none (or it is unreadable: it is rebuilt from run dirs). */
export async function readState(path: string): Promise<SweepState | null> {
  try {
    const v = JSON.parse(await Deno.readTextFile(path));
    return v && v.version === 1 && Array.isArray(v.runs) ? v as SweepState : null;
  } catch {
    return null;
  }
}

/** Serialises updates of a state file: each update is applied in order and written atomically. */
export class StateStore {
  readonly path: string;
  readonly state: SweepState;
  #chain: Promise<void> = Promise.resolve();

  constructor(path: string, state: SweepState) {
    this.path = path;
    this.state = state;
  }

  /** Apply `fn` to the state and write it (atomic temp + rename). */
  update(fn: (s: SweepState) => void = () => {}): Promise<void> {
    const next = this.#chain.then(async () => {
      fn(this.state);
      this.state.updatedAt = new Date().toISOString();
      await atomicWriteJson(this.path, this.state);
    });
    this.#chain = next.catch(() => {});
    return next;
  }

  run(runId: string): RunState {
    const r = this.state.runs.find((x) => x.runId === runId);
    if (!r) throw new Error(`no run ${runId} in sweep state`);
    return r;
  }
}

/** What a run directory says about a run. */
export interface RunDirStatus {
  exists: boolean;
  manifest: { status: string; startedAt: string; endedAt: string | null } | null;
  hasEval: boolean;
  /** manifest status done, eval.json present and parseable, and report.html present. */
  complete: boolean;
}

/** Inspect a run directory. */
export async function runDirStatus(runDir: string): Promise<RunDirStatus> {
  let exists = false;
  try {
    exists = (await Deno.stat(runDir)).isDirectory;
  } catch { /* missing */ }
  if (!exists) return { exists, manifest: null, hasEval: false, complete: false };
  let manifest: RunDirStatus["manifest"] = null;
  try {
    manifest = JSON.parse(await Deno.readTextFile(join(runDir, "manifest.json")));
  } catch { /* none yet */ }
  let hasEval = false;
  try {
    const ev = JSON.parse(await Deno.readTextFile(join(runDir, "eval.json")));
    hasEval = !!ev && Array.isArray(ev.rows);
  } catch { /* none */ }
  let hasReport = false;
  try {
    hasReport = (await Deno.stat(join(runDir, "report.html"))).isFile;
  } catch { /* none */ }
  return { exists, manifest, hasEval, complete: manifest?.status === "done" && hasEval && hasReport };
}

/** A fresh run entry for a planned run. */
export function newRunState(r: PlannedRun, logPath: string): RunState {
  return {
    runId: r.runId,
    index: r.index,
    cell: r.cell,
    label: r.label,
    params: r.params,
    seed: r.seed,
    hash: r.hash,
    runDir: r.runDir,
    log: logPath,
    status: "pending",
    attempts: 0,
    startedAt: null,
    endedAt: null,
    elapsedS: null,
    exitCode: null,
    error: null,
    pid: null,
    skipped: false,
  };
}

/**
 * Merge the plan into a previous state: runs keep their history (attempts, errors) by run id; runs no longer
 * in the plan are dropped; order follows the plan. Runs of the plan that share a run id appear once.
 */
export function mergeState(
  prev: SweepState | null,
  base: Omit<SweepState, "runs">,
  runs: PlannedRun[],
  logOf: (r: PlannedRun) => string,
): SweepState {
  const old = new Map((prev?.runs ?? []).map((r) => [r.runId, r]));
  const seen = new Set<string>();
  const out: RunState[] = [];
  for (const r of runs) {
    if (seen.has(r.runId)) continue;
    seen.add(r.runId);
    const o = old.get(r.runId);
    out.push(
      o
        ? {
          ...o,
          index: r.index,
          cell: r.cell,
          label: r.label,
          params: r.params,
          runDir: r.runDir,
          log: logOf(r),
        }
        : newRunState(r, logOf(r)),
    );
  }
  return {
    ...base,
    createdAt: prev?.createdAt ?? base.createdAt,
    invocations: prev?.invocations ?? [],
    runs: out,
  };
}

/**
 * Live (non-zombie) processes with their command lines, from `ps` (needs --allow-run=ps). Deno only lets
 * `--allow-all` read /proc, so the task's narrower permissions go through ps instead. `pid` limits the listing
 * to one process.
 */
export function liveProcesses(pid?: number): { pid: number; cmd: string }[] {
  const args = pid === undefined
    ? ["-eo", "pid=,stat=,args="]
    : ["-o", "pid=,stat=,args=", "-p", String(pid)];
  let out: Deno.CommandOutput;
  try {
    out = new Deno.Command("ps", { args, stdout: "piped", stderr: "null" }).outputSync();
  } catch {
    return [];
  }
  const procs: { pid: number; cmd: string }[] = [];
  for (const line of new TextDecoder().decode(out.stdout).split("\n")) {
    const m = line.match(/^\s*(\d+)\s+(\S+)\s+(.*)$/);
    if (m && !m[2].startsWith("Z")) procs.push({ pid: Number(m[1]), cmd: m[3] });
  }
  return procs;
}

/** Whether a process is alive (not a zombie) and its command line contains every string of `marks`. */
export function processAlive(pid: number, marks: string[] = []): boolean {
  const p = liveProcesses(pid).find((x) => x.pid === pid);
  return p !== undefined && marks.every((m) => p.cmd.includes(m));
}
