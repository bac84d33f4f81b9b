/**
 * Sweeps: a base experiment, a grid or list of `--set` overrides, and seeds (experiments/sweeps/*.json),
 * expanded into runs whose ids are the hashes of their resolved specs. `runSweep` skips complete runs,
 * resumes unfinished ones, executes the rest locally (N worker processes) or as a Slurm job array, keeps
 * `runs/sweeps/<name>/state.json` (atomic) and writes the sweep report.
 * @module
 */
import { join, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { UserError } from "../errors.ts";
import { atomicWrite, atomicWriteJson } from "../run/atomic.ts";
import { displayPath } from "../spec/load.ts";
import { realPath } from "../run/sandbox.ts";
import { type PlannedRun, planRuns, type Resolver } from "./expand.ts";
import { type LocalResult, runLocal, waitForExit, WRAPPER_MARK } from "./local.ts";
import {
  slurmJobActive,
  slurmScript,
  type SlurmScriptOptions,
  type SlurmTask,
  submitSlurm,
  waitForSlurmJob,
} from "./slurm.ts";
import { type LoadedSweep, loadSweep } from "./spec.ts";
import {
  type Invocation,
  mergeState,
  processAlive,
  readState,
  type RunDirStatus,
  runDirStatus,
  StateStore,
  sweepDir,
  type SweepState,
} from "./state.ts";

export * from "./spec.ts";
export * from "./expand.ts";
export * from "./state.ts";
export {
  acquireRunLock,
  type LocalOptions,
  type LocalResult,
  progressLine,
  RUN_WRAPPER,
  runLocal,
  waitForExit,
  WRAPPER_MARK,
} from "./local.ts";
export * from "./slurm.ts";

/** The repository root (where main.ts lives). */
export const REPO_ROOT: string = fileURLToPath(new URL("../../", import.meta.url));

/**
 * The `--allow-*` flags of `deno task exp`, read from deno.json so a sweep's runs get exactly what `exp`
 * gets. Their paths are relative to the repository root, the per-run command's working directory.
 */
export function expPermissionFlags(): string[] {
  const path = join(REPO_ROOT, "deno.json");
  const task = (JSON.parse(Deno.readTextFileSync(path)).tasks ?? {}).exp;
  if (typeof task !== "string") throw new Error(`${path}: no "exp" task`);
  return task.split(/\s+/).filter((a: string) => a.startsWith("--allow-"));
}

/** The default per-run command: this Deno running `main.ts exp` with the permissions of `deno task exp`. */
export function defaultRunCommand(): string[] {
  return [Deno.execPath(), "run", ...expPermissionFlags(), join(REPO_ROOT, "main.ts"), "exp"];
}

/**
 * Refuse a runs dir that `deno task exp` may not write (real path, links followed): its runs would each
 * fail on their first write, so the sweep stops before starting any.
 */
function checkRunsDirForExp(runsDir: string): void {
  const flag = expPermissionFlags().find((f) => f.startsWith("--allow-write"));
  if (!flag || flag === "--allow-write") return;
  const roots = flag.slice("--allow-write=".length).split(",").map((p) => realPath(resolve(REPO_ROOT, p)));
  const real = realPath(runsDir);
  if (!roots.some((r) => real === r || real.startsWith(r + sep))) {
    throw new UserError(
      `sweep: --runs-dir ${runsDir}${real !== resolve(runsDir) ? ` (resolves to ${real})` : ""} is outside ` +
        `what its runs may write: they get exactly the permissions of deno task exp (${flag}, relative to ` +
        `${REPO_ROOT}); use a directory under ${roots.map(displayPath).join(" or ")}`,
    );
  }
}

/** The per-run argv (without `--resume`, which executors add): command, experiment, preset, sets, seed, runs dir. */
export function perRunArgv(
  command: string[],
  loaded: LoadedSweep,
  run: PlannedRun,
  runsDir: string,
): string[] {
  const argv = [...command, loaded.experimentArg];
  if (loaded.sweep.preset) argv.push("--preset", loaded.sweep.preset);
  for (const s of run.sets) argv.push("--set", s);
  argv.push("--seed", String(run.seed), "--runs-dir", resolve(runsDir));
  return argv;
}

/** Options of {@link runSweep}. */
export interface SweepOptions {
  /** Sweep name (experiments/sweeps/NAME.json) or path. */
  sweep: string;
  /** Parent of run directories (default "runs"); state goes to `<runsDir>/sweeps/<name>/`. */
  runsDir?: string;
  /** Override the sweep's workers / executor. */
  workers?: number;
  executor?: "local" | "slurm";
  /** Print the plan (local) or the job script (slurm) without running anything. */
  dryRun?: boolean;
  /** Per-run command prefix (default {@link defaultRunCommand}); the experiment and flags are appended. */
  command?: string[];
  /** Working directory of the per-run command (default the repository root). */
  cwd?: string;
  /** Resolves run ids (default: loadSpec, like `exp`). */
  resolver?: Resolver;
  /** Write the sweep report at the end (default true). */
  report?: boolean;
  /** Reports directory to copy the report into (default "reports"; null: no copy). */
  reportsDir?: string | null;
  /** Slurm: the sbatch / squeue programs, and whether to wait for the job array (then report). */
  sbatch?: string;
  squeue?: string;
  wait?: boolean;
  pollMs?: number;
  /** Progress lines (default stderr). Plan and script go to `out` (default stdout). */
  log?: (line: string) => void;
  out?: (text: string) => void;
  /** Stop starting runs and kill the running ones. */
  signal?: AbortSignal;
  /** Extra environment of the per-run command (local executor). */
  env?: Record<string, string>;
}

/** What {@link runSweep} did. */
export interface SweepResult {
  state: SweepState;
  statePath: string;
  runs: PlannedRun[];
  local?: LocalResult;
  /** Slurm job id when submitted. */
  jobId?: string | null;
  script?: string;
  reportPath?: string;
  /** 0 all runs done (or submitted), 1 some failed / busy / interrupted. */
  exitCode: number;
}

/** Take the sweep lock (`<sweepDir>/lock.json`); a lock of a dead process is stale and replaced. */
async function lockSweep(dir: string, name: string): Promise<string> {
  const path = join(dir, "lock.json");
  await Deno.mkdir(dir, { recursive: true });
  for (let i = 0; i < 3; i++) {
    try {
      const f = await Deno.open(path, { write: true, createNew: true });
      await f.write(
        new TextEncoder().encode(JSON.stringify({ pid: Deno.pid, at: new Date().toISOString() })),
      );
      f.close();
      return path;
    } catch (e) {
      if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
    }
    let pid = 0;
    try {
      pid = JSON.parse(await Deno.readTextFile(path)).pid;
    } catch { /* torn or vanished: stale */ }
    if (pid && pid !== Deno.pid && processAlive(pid)) {
      throw new UserError(`sweep '${name}' is already running (pid ${pid}); lock ${displayPath(path)}`, 1);
    }
    await Deno.remove(path).catch(() => {});
  }
  throw new UserError(`cannot take the sweep lock ${displayPath(path)}`, 1);
}

/** Run (or resume) a sweep. */
export async function runSweep(o: SweepOptions): Promise<SweepResult> {
  const plan = await planSweep(o);
  if (o.dryRun) return await printDryRun(plan, o.out ?? ((t: string) => console.log(t)));
  const lockPath = await lockSweep(plan.dir, plan.loaded.sweep.name);
  try {
    const { store, inv } = await openInvocation(plan, o.squeue);
    let result: SweepResult;
    if (plan.executor === "local") {
      result = await executeLocally(plan, o, store, inv);
    } else {
      result = { ...(await runSlurm(plan, o, store, inv)), runs: plan.runs };
    }
    const finished = plan.executor === "local" || o.wait;
    if ((o.report ?? true) && finished && !o.signal?.aborted) {
      const { writeSweepReport } = await import("./report.ts");
      result.reportPath = await writeSweepReport({
        sweep: plan.loaded,
        state: store.state,
        runs: plan.runs,
        out: join(plan.dir, "report.html"),
        reportsDir: o.reportsDir === undefined ? "reports" : o.reportsDir,
      });
      plan.log(`sweep report: ${displayPath(result.reportPath)}`);
    }
    return result;
  } finally {
    await Deno.remove(lockPath).catch(() => {});
  }
}

/** A sweep's resolved options, its runs and what each needs, before anything is written. */
interface SweepPlan {
  loaded: LoadedSweep;
  executor: "local" | "slurm";
  workers: number;
  /** Working directory of the per-run command. */
  cwd: string;
  runsDir: string;
  /** Every run of the sweep (a run id may repeat when two cells resolve to one spec). */
  runs: PlannedRun[];
  /** The runs still to do: unique run ids whose run directory is not complete. */
  todo: PlannedRun[];
  dirStatus: Map<string, RunDirStatus>;
  /** The sweep's directory (state, logs, report) and its state file. */
  dir: string;
  statePath: string;
  logOf(r: PlannedRun): string;
  /** The per-run argv, without `--resume`. */
  argvOf(r: PlannedRun): string[];
  log(line: string): void;
}

/** Check the options, expand the sweep into runs and find which are complete. */
async function planSweep(o: SweepOptions): Promise<SweepPlan> {
  const log = o.log ?? ((l: string) => console.error(l));
  const runsDir = resolve(o.runsDir ?? "runs");
  const loaded = await loadSweep(o.sweep);
  const { sweep } = loaded;
  const executor = o.executor ?? sweep.executor ?? "local";
  const workers = o.workers ?? sweep.workers ?? 2;
  if (!Number.isInteger(workers) || workers < 1) {
    throw new UserError(`sweep: --workers must be an integer >= 1, got ${workers}`);
  }
  if (!o.command && !o.dryRun) checkRunsDirForExp(runsDir);
  const command = o.command ?? defaultRunCommand();
  const cwd = o.cwd ?? REPO_ROOT;
  const runs = await planRuns(loaded, { runsDir, resolver: o.resolver });
  const dir = sweepDir(runsDir, sweep.name);
  const statePath = join(dir, "state.json");
  const logOf = (r: PlannedRun) => join(dir, "logs", `${r.runId}.log`);
  const argvOf = (r: PlannedRun) => perRunArgv(command, loaded, r, runsDir);

  // What each run needs: complete runs are skipped, others resumed (dir exists) or started.
  const dirStatus = new Map<string, RunDirStatus>();
  for (const r of runs) if (!dirStatus.has(r.runId)) dirStatus.set(r.runId, await runDirStatus(r.runDir));
  const todo = runs.filter((r, i) =>
    runs.findIndex((x) => x.runId === r.runId) === i && !dirStatus.get(r.runId)!.complete
  );
  return {
    loaded,
    executor,
    workers,
    cwd,
    runsDir,
    runs,
    todo,
    dirStatus,
    dir,
    statePath,
    logOf,
    argvOf,
    log,
  };
}

/**
 * Print what a run would do and write nothing: local, every run (done / resume / new) and its command;
 * Slurm, the job script for the runs still to do.
 */
async function printDryRun(plan: SweepPlan, out: (text: string) => void): Promise<SweepResult> {
  const { loaded, runs, todo, workers, statePath } = plan;
  const { sweep } = loaded;
  const state = () =>
    readState(statePath).then((prev) => mergeState(prev, baseState(loaded), runs, plan.logOf));
  if (plan.executor === "local") {
    const lines = [
      `sweep '${sweep.name}' (${
        displayPath(loaded.path)
      }): ${runs.length} runs, ${todo.length} to run, ${workers} worker${workers === 1 ? "" : "s"}`,
    ];
    for (const r of runs) {
      const s = plan.dirStatus.get(r.runId)!;
      const what = s.complete ? "done (skip)" : s.exists ? "resume" : "new";
      lines.push(`  ${r.runId}  ${what.padEnd(11)}  ${r.label} seed ${r.seed}`);
      if (!s.complete) lines.push(`      ${[...plan.argvOf(r), "--resume"].map(shellWord).join(" ")}`);
    }
    out(lines.join("\n"));
    return { state: await state(), statePath, runs, exitCode: 0 };
  }
  const script = todo.length ? slurmScript(slurmOpts(plan)) : "";
  out(script || `# sweep '${sweep.name}': every run is complete; nothing to submit`);
  return { state: await state(), statePath, runs, script, exitCode: 0 };
}

/**
 * Open the sweep's state for this invocation (the sweep lock is held): refuse while an earlier Slurm job
 * array still owns its runs, wait for the wrappers of a killed sweep, mark each run done or pending, and
 * record the invocation.
 */
async function openInvocation(
  plan: SweepPlan,
  squeue: string | undefined,
): Promise<{ store: StateStore; inv: Invocation }> {
  const { loaded, executor, workers, statePath } = plan;
  const { sweep } = loaded;
  const prev = await readState(statePath);
  // A job array submitted earlier that is still queued or running owns its runs: refuse to run them twice.
  const prevJob = prev?.slurm?.jobId;
  if (prevJob) {
    const active = await slurmJobActive(prevJob, squeue).catch(() => executor === "slurm");
    if (active) {
      throw new UserError(
        `sweep '${sweep.name}': Slurm job ${prevJob} from an earlier submission is still queued or running ` +
          `(or squeue failed); wait for it (squeue -j ${prevJob}) or cancel it (scancel ${prevJob}) first`,
        1,
      );
    }
  }
  const state = mergeState(prev, baseState(loaded), plan.runs, plan.logOf);
  const store = new StateStore(statePath, state);
  // Runs a killed sweep left "running": their wrappers die with it (see local.ts); wait until they have.
  for (const r of state.runs) {
    if (r.status === "running" && r.pid) {
      await waitForExit(r.pid, [WRAPPER_MARK, r.runId], 30_000).catch((e) => {
        throw new UserError(`run ${r.runId}: ${(e as Error).message}`, 1);
      });
    }
  }
  for (const r of state.runs) {
    const s = plan.dirStatus.get(r.runId)!;
    if (s.complete) {
      if (r.status !== "done") r.skipped = r.attempts === 0;
      r.status = "done";
    } else {
      r.status = "pending";
    }
    r.pid = null;
  }
  const inv: Invocation = {
    pid: Deno.pid,
    host: Deno.hostname(),
    executor,
    startedAt: new Date().toISOString(),
    endedAt: null,
    started: 0,
    completed: 0,
    failed: 0,
  };
  state.invocations.push(inv);
  await store.update();
  const nDone = state.runs.filter((r) => r.status === "done").length;
  plan.log(
    `sweep '${sweep.name}': ${state.runs.length} runs (${nDone} complete, ${plan.todo.length} to run), executor ${executor}` +
      (executor === "local" ? `, ${workers} worker${workers === 1 ? "" : "s"}` : "") +
      `; state ${displayPath(statePath)}`,
  );
  return { store, inv };
}

/** Run the runs still to do with the local executor, then record the invocation and print the summary. */
async function executeLocally(
  plan: SweepPlan,
  o: SweepOptions,
  store: StateStore,
  inv: Invocation,
): Promise<SweepResult> {
  const { state } = store;
  const local = plan.todo.length
    ? await runLocal({
      store,
      runs: plan.todo,
      argvOf: (r) => [...plan.argvOf(r), "--resume"],
      cwd: plan.cwd,
      workers: plan.workers,
      locksDir: join(plan.runsDir, "sweeps", ".locks"),
      log: plan.log,
      signal: o.signal,
      env: o.env,
      // Runs of one seed share cached upstream stages (e.g. base and SFT across GRPO cells): never two
      // at once, so no two processes train the same stage into cache/stages/<hash>/ together.
      exclusive: (r) => `seed ${r.seed}`,
    })
    : { completed: 0, failed: 0, busy: 0, interrupted: 0 };
  inv.started =
    state.runs.filter((r) => r.attempts > 0 && r.startedAt && r.startedAt >= inv.startedAt).length;
  inv.completed = local.completed;
  inv.failed = local.failed;
  inv.endedAt = new Date().toISOString();
  await store.update();
  const bad = local.failed + local.busy + local.interrupted;
  plan.log(
    `sweep '${plan.loaded.sweep.name}': ${
      state.runs.filter((r) => r.status === "done").length
    }/${state.runs.length} done` +
      (local.failed ? `, ${local.failed} failed` : "") +
      (local.busy ? `, ${local.busy} busy in another sweep` : "") +
      (local.interrupted ? `, ${local.interrupted} interrupted` : ""),
  );
  return { state, statePath: plan.statePath, runs: plan.runs, local, exitCode: bad ? 1 : 0 };
}

function shellWord(s: string): string {
  return /^[A-Za-z0-9_./:=@%+,-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`;
}

/** The fields of a new sweep state, without its runs (see {@link mergeState}). */
export function baseState(loaded: LoadedSweep): Omit<SweepState, "runs"> {
  const now = new Date().toISOString();
  return {
    version: 1,
    sweep: loaded.sweep.name,
    file: loaded.path,
    experiment: loaded.experimentArg,
    preset: loaded.sweep.preset ?? null,
    createdAt: now,
    updatedAt: now,
    invocations: [],
  };
}

/** The Slurm job array of the runs still to do. */
function slurmOpts(plan: SweepPlan): SlurmScriptOptions {
  const tasks: SlurmTask[] = plan.todo.map((r) => ({
    runId: r.runId,
    runDir: r.runDir,
    log: plan.logOf(r),
    argv: plan.argvOf(r),
  }));
  return {
    sweep: plan.loaded.sweep.name,
    tasks,
    workers: plan.workers,
    cwd: resolve(plan.cwd),
    outDir: join(plan.dir, "slurm"),
    runsJson: join(plan.dir, "slurm", "runs.json"),
    slurm: plan.loaded.sweep.slurm,
  };
}

/**
 * Submit the runs still to do as a Slurm job array and record them as submitted; with `o.wait`, wait for
 * the array and record each run's outcome.
 */
async function runSlurm(
  plan: SweepPlan,
  o: SweepOptions,
  store: StateStore,
  inv: Invocation,
): Promise<SweepResult> {
  const { state } = store;
  const { todo } = plan;
  const base = { state, statePath: store.path, runs: [] as PlannedRun[] };
  if (!todo.length) {
    plan.log(`sweep '${state.sweep}': every run is complete; nothing to submit`);
    inv.endedAt = new Date().toISOString();
    await store.update();
    return { ...base, exitCode: 0, jobId: null };
  }
  const so = slurmOpts(plan);
  const script = slurmScript(so);
  const scriptPath = await writeJobFiles(plan.dir, so, script);
  let jobId: string;
  try {
    jobId = await submitSlurm(scriptPath, o.sbatch);
  } catch (e) {
    throw new UserError(
      `sweep '${state.sweep}': submitting ${displayPath(scriptPath)} failed: ${(e as Error).message}`,
      1,
    );
  }
  await store.update((s) => {
    s.slurm = {
      jobId,
      script: scriptPath,
      submittedAt: new Date().toISOString(),
      tasks: so.tasks.map((t) => t.runId),
    };
    for (const r of todo) {
      const st = s.runs.find((x) => x.runId === r.runId)!;
      st.status = "submitted";
      st.attempts++;
      st.startedAt = new Date().toISOString();
    }
  });
  plan.log(
    `submitted Slurm job array ${jobId} (${todo.length} tasks, at most ${plan.workers} at once): ${
      displayPath(scriptPath)
    }`,
  );
  if (!o.wait) {
    inv.endedAt = new Date().toISOString();
    await store.update();
    return { ...base, exitCode: 0, jobId, script };
  }
  await waitForSlurmJob(jobId, { squeue: o.squeue, pollMs: o.pollMs ?? 5000 });
  const failed = await recordSlurmOutcomes(store, todo, inv);
  plan.log(`Slurm job ${jobId} finished: ${todo.length - failed}/${todo.length} runs done`);
  return { ...base, exitCode: failed ? 1 : 0, jobId, script };
}

/** Write the job array's task list and script (executable) under the sweep's directory; returns the script path. */
async function writeJobFiles(dir: string, so: SlurmScriptOptions, script: string): Promise<string> {
  await Deno.mkdir(so.outDir, { recursive: true });
  await Deno.mkdir(join(dir, "logs"), { recursive: true });
  await atomicWriteJson(so.runsJson, so.tasks);
  const scriptPath = join(so.outDir, "job.sh");
  await atomicWrite(scriptPath, script);
  await Deno.chmod(scriptPath, 0o755).catch(() => {});
  return scriptPath;
}

/**
 * After the job array has ended: each run is done when its run directory is complete, else failed with the
 * exit code and tail of its log. Records the invocation; returns the number of failed runs.
 */
async function recordSlurmOutcomes(store: StateStore, todo: PlannedRun[], inv: Invocation): Promise<number> {
  let failed = 0;
  for (const r of todo) {
    const s = await runDirStatus(r.runDir);
    const st = store.run(r.runId);
    st.endedAt = new Date().toISOString();
    if (s.complete) {
      st.status = "done";
      inv.completed++;
    } else {
      st.status = "failed";
      failed++;
      let text = "";
      try {
        text = await Deno.readTextFile(st.log);
      } catch { /* no log */ }
      const m = /=== exit (\d+)\s*$/.exec(text.trimEnd());
      st.exitCode = m ? Number(m[1]) : null;
      st.error = `Slurm task did not complete the run${m ? ` (exit ${m[1]})` : ""}\n` +
        text.trimEnd().split("\n").slice(-20).join("\n");
    }
  }
  inv.failed = failed;
  inv.endedAt = new Date().toISOString();
  await store.update();
  return failed;
}
