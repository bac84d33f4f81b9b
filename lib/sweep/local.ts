/**
 * Local executor: N worker slots, each running the per-run command (`main.ts exp ...` by default, any argv
 * prefix in tests) as a subprocess, one run at a time.
 *
 * Each run is started through a small POSIX `sh` wrapper (`RUN_WRAPPER`) that
 *  - appends the run's stdout and stderr to its log file (so the run never writes into a pipe of the sweep,
 *    and output survives the sweep);
 *  - is itself started in a session and process group of its own (`detached`), holding the run and a
 *    watcher, so a SIGKILL of the sweep's process group reaches neither;
 *  - watches a pipe from the sweep on its stdin: when the sweep process ends for any reason, SIGKILL
 *    included, the kernel closes the pipe, the watcher reads EOF and SIGKILLs the wrapper's whole process
 *    group (the run, its children and the wrapper).
 * So killing a sweep kills its runs within milliseconds, and a re-run never races an orphan writing the
 * same run directory. The run itself is left exactly as a crash would leave it: `exp --resume` continues
 * from its last checkpoint and repairs a torn last JSONL line.
 *
 * Runs are also locked across sweeps (`<runsDir>/sweeps/.locks/<runId>.json`, created exclusively): two sweeps
 * that share a run (e.g. the default cell of two ablations) never run it twice at once. A lock whose owner
 * is dead is stale and taken over, after waiting for the dead owner's wrapper to exit.
 * @module
 */
import { dirname, join } from "node:path";
import type { PlannedRun } from "./expand.ts";
import { processAlive, runDirStatus, type RunState, type StateStore } from "./state.ts";
import { atomicWrite } from "../run/atomic.ts";

/** The wrapper: `sh -c RUN_WRAPPER geo-r1-sweep-run <runId> <log> <argv...>`. Exit status is the run's. */
export const RUN_WRAPPER = `run_id=$1; log=$2; shift 2
exec 2>>"$log"
exec 3<&0
"$@" >>"$log" 2>&1 </dev/null 3<&- &
child=$!
( while read -r _ <&3; do :; done; kill -s KILL -- -$$ 2>/dev/null || kill -s KILL "$child" ) >/dev/null 2>&1 &
watch=$!
exec 3<&-
wait "$child"
rc=$?
kill -s KILL "$watch" 2>/dev/null
exit $rc
`;

/** The marker in a wrapper's argv (used to recognise a live wrapper by its command line). */
export const WRAPPER_MARK = "geo-r1-sweep-run";

/** Options of {@link runLocal}. */
export interface LocalOptions {
  store: StateStore;
  /** Runs to execute (unique run ids, not complete), in order. */
  runs: PlannedRun[];
  /** Builds the per-run argv (the per-run command plus its arguments). */
  argvOf(run: PlannedRun, resume: boolean): string[];
  /** Working directory of the per-run command. */
  cwd: string;
  workers: number;
  /** Directory of the cross-sweep run locks. */
  locksDir: string;
  /** Progress output (one line per call). */
  log(line: string): void;
  /** Stops starting runs and kills running ones (their entries go back to `pending`). */
  signal?: AbortSignal;
  /** Env for the per-run command (added to the sweep's). */
  env?: Record<string, string>;
  /**
   * Runs with the same key never run at the same time. The sweep uses the seed: runs of one seed share
   * upstream stages (base, SFT) in the content-addressed stage cache, which two processes must not train
   * into at once.
   */
  exclusive?: (run: PlannedRun) => string;
}

/** Counts of what {@link runLocal} did. */
export interface LocalResult {
  completed: number;
  failed: number;
  busy: number;
  interrupted: number;
}

interface LockInfo {
  pid: number;
  sweep: string;
  wrapperPid: number | null;
  at: string;
}

async function readLock(path: string): Promise<LockInfo | null> {
  try {
    return JSON.parse(await Deno.readTextFile(path));
  } catch {
    return null;
  }
}

/**
 * Take the run lock. Returns false when a live sweep holds it. A stale lock (owner dead) is taken over once
 * the old wrapper (if any) has exited; waits up to `waitMs` for it.
 */
export async function acquireRunLock(path: string, sweep: string, waitMs = 30_000): Promise<boolean> {
  const info: LockInfo = { pid: Deno.pid, sweep, wrapperPid: null, at: new Date().toISOString() };
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const f = await Deno.open(path, { write: true, createNew: true });
      try {
        await f.write(new TextEncoder().encode(JSON.stringify(info)));
      } finally {
        f.close();
      }
      return true;
    } catch (e) {
      if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
    }
    const old = await readLock(path);
    if (old && old.pid !== Deno.pid && processAlive(old.pid)) return false;
    if (old && old.pid === Deno.pid) return false;
    if (old?.wrapperPid) await waitForExit(old.wrapperPid, [WRAPPER_MARK], waitMs);
    await Deno.remove(path).catch(() => {});
  }
  return false;
}

/** Wait until `pid` (recognised by `marks` in its cmdline) has exited; throws after `waitMs`. */
export async function waitForExit(pid: number, marks: string[], waitMs: number): Promise<void> {
  const until = Date.now() + waitMs;
  while (processAlive(pid, marks)) {
    if (Date.now() > until) {
      throw new Error(`process ${pid} from an earlier sweep is still running; wait for it or kill it`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

function fmtS(s: number): string {
  if (s < 60) return `${s.toFixed(1)}s`;
  const m = Math.floor(s / 60);
  return `${m}m${String(Math.round(s - 60 * m)).padStart(2, "0")}s`;
}

/** Overall progress line of a sweep state. */
export function progressLine(runs: RunState[], elapsedS: number): string {
  const n = runs.length;
  const done = runs.filter((r) => r.status === "done").length;
  const failed = runs.filter((r) => r.status === "failed").length;
  const running = runs.filter((r) => r.status === "running").length;
  const width = 24;
  const fill = n ? Math.round((width * (done + failed)) / n) : width;
  const bar = "#".repeat(fill) + ".".repeat(width - fill);
  return `[${bar}] ${done + failed}/${n} finished (${done} done, ${failed} failed), ${running} running, ` +
    `${n - done - failed - running} waiting | ${fmtS(elapsedS)}`;
}

/** The last `lines` lines of a text (at most `chars` characters). */
export function tail(text: string, lines = 20, chars = 2000): string {
  const t = text.trimEnd().split("\n").slice(-lines).join("\n");
  return t.length > chars ? t.slice(t.length - chars) : t;
}

/** Run the given runs with `workers` parallel subprocesses, recording everything in the state. */
export async function runLocal(o: LocalOptions): Promise<LocalResult> {
  const executor = new LocalExecutor(o);
  const onAbort = () => executor.killAll();
  o.signal?.addEventListener("abort", onAbort);
  await Deno.mkdir(o.locksDir, { recursive: true });
  try {
    await runPool(o, (run) => executor.execOne(run));
  } finally {
    o.signal?.removeEventListener("abort", onAbort);
  }
  return executor.result;
}

/**
 * Run `exec` on every run with at most `o.workers` at once: each worker takes the first pending run whose
 * exclusivity key is not running, and waits while every pending run's key is.
 */
async function runPool(
  o: Pick<LocalOptions, "runs" | "workers" | "signal" | "exclusive">,
  exec: (run: PlannedRun) => Promise<void>,
): Promise<void> {
  const pending = [...o.runs];
  const activeKeys = new Set<string>();
  const waiters: (() => void)[] = [];
  const notify = () => {
    for (const w of waiters.splice(0)) w();
  };
  o.signal?.addEventListener("abort", notify);
  const take = (): PlannedRun | null | "wait" => {
    if (!pending.length) return null;
    const i = pending.findIndex((r) => !o.exclusive || !activeKeys.has(o.exclusive(r)));
    return i < 0 ? "wait" : pending.splice(i, 1)[0];
  };
  const worker = async () => {
    while (!o.signal?.aborted) {
      const r = take();
      if (r === null) return;
      if (r === "wait") {
        await new Promise<void>((res) => waiters.push(res));
        continue;
      }
      const key = o.exclusive?.(r);
      if (key !== undefined) activeKeys.add(key);
      try {
        await exec(r);
      } finally {
        if (key !== undefined) activeKeys.delete(key);
        notify();
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.max(1, Math.min(o.workers, o.runs.length)) }, worker));
  } finally {
    o.signal?.removeEventListener("abort", notify);
  }
}

/** How a run's wrapper ended. */
interface RunExit {
  status: Deno.CommandStatus;
  elapsedS: number;
  /** The run's output of this attempt (the log after its header). */
  logText: string;
  /** The sweep was stopped before the run completed: it goes back to `pending`. */
  interrupted: boolean;
  complete: boolean;
}

/** One sweep invocation's runs: locks, wrapper processes, state updates and progress lines. */
class LocalExecutor {
  /** Counts of what the runs did so far. */
  readonly result: LocalResult = { completed: 0, failed: 0, busy: 0, interrupted: 0 };
  readonly #o: LocalOptions;
  readonly #t0 = performance.now();
  readonly #children = new Set<{ kill(): void }>();
  readonly #total: number;

  constructor(o: LocalOptions) {
    this.#o = o;
    this.#total = o.store.state.runs.length;
  }

  /** Kill every running wrapper (its run's entry goes back to `pending` when it has exited). */
  killAll(): void {
    for (const c of this.#children) c.kill();
  }

  /** Lock, run and record one run; a run another sweep holds is recorded as busy. */
  async execOne(run: PlannedRun): Promise<void> {
    const st = this.#o.store.run(run.runId);
    const lockPath = join(this.#o.locksDir, `${run.runId}.json`);
    if (!(await acquireRunLock(lockPath, this.#o.store.state.sweep))) {
      await this.#markBusy(run, st, lockPath);
      return;
    }
    try {
      const before = await runDirStatus(run.runDir);
      if (before.complete) {
        await this.#o.store.update(() => {
          st.status = "done";
          st.skipped = true;
        });
        return;
      }
      const exit = await this.#runWrapper(run, st, lockPath, before.exists);
      await this.#recordExit(st, exit);
      this.#logOutcome(run, st, exit);
      this.#o.log(progressLine(this.#o.store.state.runs, (performance.now() - this.#t0) / 1000));
    } finally {
      await Deno.remove(lockPath).catch(() => {});
    }
  }

  /** `i/n`: the run's place in the sweep. */
  #pos(run: PlannedRun): string {
    return `${this.#o.store.state.runs.findIndex((x) => x.runId === run.runId) + 1}/${this.#total}`;
  }

  async #markBusy(run: PlannedRun, st: RunState, lockPath: string): Promise<void> {
    const holder = await readLock(lockPath);
    await this.#o.store.update(() => {
      st.status = "busy";
      st.error = `run is being run by another sweep (${holder?.sweep ?? "?"}, pid ${holder?.pid ?? "?"})`;
    });
    this.result.busy++;
    this.#o.log(`busy    ${this.#pos(run)} ${run.label} seed ${run.seed}: ${st.error}`);
  }

  /** Start the run's wrapper, record it as running, and wait for it to exit. */
  async #runWrapper(run: PlannedRun, st: RunState, lockPath: string, resume: boolean): Promise<RunExit> {
    const o = this.#o;
    const argv = o.argvOf(run, resume);
    const offset = await appendLogHeader(st.log, o.store.state.sweep, st.attempts + 1, argv);
    const started = performance.now();
    const child = spawnWrapper(run.runId, st.log, argv, o.cwd, o.env);
    const writer = child.stdin.getWriter();
    const handle = { kill: () => writer.close().catch(() => {}) };
    this.#children.add(handle);
    await Deno.writeTextFile(
      lockPath,
      JSON.stringify({
        pid: Deno.pid,
        sweep: o.store.state.sweep,
        wrapperPid: child.pid,
        at: new Date().toISOString(),
      }),
    );
    await o.store.update(() => {
      st.status = "running";
      st.attempts++;
      st.startedAt = new Date().toISOString();
      st.endedAt = null;
      st.elapsedS = null;
      st.exitCode = null;
      st.error = null;
      st.pid = child.pid;
    });
    o.log(
      `start   ${this.#pos(run)} ${run.label} seed ${run.seed} -> ${run.runId}${resume ? " (resume)" : ""}`,
    );
    const status = await child.status;
    this.#children.delete(handle);
    await writer.close().catch(() => {});
    const elapsedS = (performance.now() - started) / 1000;
    const after = await runDirStatus(run.runDir);
    const logText = await readAttemptLog(st.log, offset, after.exists ? run.runDir : null);
    const interrupted = (o.signal?.aborted ?? false) && !after.complete;
    return { status, elapsedS, logText, interrupted, complete: after.complete };
  }

  async #recordExit(st: RunState, exit: RunExit): Promise<void> {
    const { status } = exit;
    await this.#o.store.update(() => {
      st.pid = null;
      st.endedAt = new Date().toISOString();
      st.elapsedS = Math.round(exit.elapsedS * 100) / 100;
      st.exitCode = status.code;
      if (exit.interrupted) {
        st.status = "pending";
        st.error = "interrupted (the sweep was stopped)";
      } else if (status.code === 0 && exit.complete) {
        st.status = "done";
      } else {
        st.status = "failed";
        const why = status.code === 0
          ? "exited 0 but the run directory has no done manifest, eval.json and report.html"
          : `exit code ${status.code}${status.signal ? ` (${status.signal})` : ""}`;
        st.error = `${why}\n${tail(exit.logText)}`;
      }
    });
  }

  /** Count the outcome and print its line (a failure also prints the log's tail and path). */
  #logOutcome(run: PlannedRun, st: RunState, exit: RunExit): void {
    const o = this.#o;
    const what = `${this.#pos(run)} ${run.label} seed ${run.seed}`;
    if (exit.interrupted) {
      this.result.interrupted++;
      o.log(`stopped ${what} after ${fmtS(exit.elapsedS)}`);
    } else if (st.status === "done") {
      this.result.completed++;
      o.log(`done    ${what} in ${fmtS(exit.elapsedS)}`);
    } else {
      this.result.failed++;
      o.log(`FAILED  ${what} after ${fmtS(exit.elapsedS)}: ${st.error?.split("\n")[0]}`);
      const t = tail(exit.logText, 5, 800);
      if (t) o.log(t.split("\n").map((l) => `        | ${l}`).join("\n"));
      o.log(`        log: ${st.log}`);
    }
  }
}

/** Append the attempt's header to the run's log; returns the log's size before it (the attempt's start). */
async function appendLogHeader(log: string, sweep: string, attempt: number, argv: string[]): Promise<number> {
  await Deno.mkdir(dirname(log), { recursive: true });
  const logFile = await Deno.open(log, { append: true, create: true });
  const offset = (await logFile.stat()).size;
  await logFile.write(
    new TextEncoder().encode(
      `=== geo-r1 sweep '${sweep}' attempt ${attempt} at ${new Date().toISOString()}` +
        ` (pid ${Deno.pid})\n=== ${argv.map((a) => JSON.stringify(a)).join(" ")}\n`,
    ),
  );
  logFile.close();
  return offset;
}

/** Start `argv` inside {@link RUN_WRAPPER}, its output appended to `log`; its stdin is the watched pipe. */
function spawnWrapper(
  runId: string,
  log: string,
  argv: string[],
  cwd: string,
  env: Record<string, string> | undefined,
): Deno.ChildProcess {
  return new Deno.Command("sh", {
    args: ["-c", RUN_WRAPPER, WRAPPER_MARK, runId, log, ...argv],
    cwd,
    stdin: "piped",
    stdout: "null",
    stderr: "null",
    env,
    // A session and process group of its own (setsid): killing the sweep's group spares the watcher.
    detached: true,
  }).spawn();
}

/**
 * The log from `offset` on (this attempt's output), and a copy of the whole log as `<runDir>/log.txt` when
 * the run directory exists. An unreadable log gives "".
 */
async function readAttemptLog(log: string, offset: number, runDir: string | null): Promise<string> {
  let logText = "";
  try {
    const all = await Deno.readFile(log);
    logText = new TextDecoder().decode(all.subarray(offset));
    if (runDir !== null) await atomicWrite(join(runDir, "log.txt"), all);
  } catch { /* log unreadable: keep going */ }
  return logText;
}
