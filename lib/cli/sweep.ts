/**
 * `sweep NAME`: run an ablation sweep (experiments/sweeps/NAME.json) locally with N worker processes or as a
 * Slurm job array; re-running skips complete runs and resumes unfinished ones; writes the sweep report.
 * Also runnable directly: `deno run <permissions> --allow-run lib/cli/sweep.ts NAME ...`.
 * @module
 */
import { UserError } from "../errors.ts";
import type { Command } from "./command.ts";
import { listSweeps } from "../sweep/spec.ts";

const HELP = `usage: deno task sweep NAME [options]

Expand the sweep NAME (experiments/sweeps/NAME.json, or a path to a sweep file) into cells x seeds; each run
is \`main.ts exp <experiment> [--preset P] [--set k=v ...] --seed S --resume --runs-dir DIR\`, and its run
id is the hash of its resolved spec, so the run directory is the one \`exp\` writes. Complete runs (manifest
status done and eval.json present) are skipped; unfinished ones are resumed. State is kept (atomically) in
<runs-dir>/sweeps/<name>/state.json; each run's output goes to <runs-dir>/sweeps/<name>/logs/<run>.log and is
copied to <runDir>/log.txt when it ends. At the end the sweep report is written to
<runs-dir>/sweeps/<name>/report.html and reports/sweep-<name>.html.

options:
  --workers N          parallel runs (local) / max simultaneous array tasks (slurm); default: the sweep's, else 2
  --executor E         local | slurm (default: the sweep's, else local)
  --dry-run            local: print every run (done / resume / new) and its command; slurm: print the job
                       script. Nothing runs, nothing is written.
  --runs-dir DIR       parent of run directories (default: runs)
  --wait               slurm: wait for the job array to finish, then write the report
  --report-only        only (re)write the sweep report from the runs on disk
  --no-report          do not write the report
  --run-command JSON   per-run command prefix as a JSON array of strings (default: this deno running
                       main.ts exp with the permissions of \`deno task exp\`); the experiment and flags are
                       appended
  --verbose            print stack traces of internal errors
  -h, --help           show this help

Exit codes: 0 every run done (or the array submitted), 1 a run failed (the others still ran), 2 bad usage
or sweep spec. SIGINT/SIGTERM stop the sweep and its runs; SIGKILL of the sweep kills its runs too (their
wrapper watches a pipe from the sweep); run the same command again to continue.

examples:
  deno task sweep group-size --workers 2
  deno task sweep tiny-smoke --dry-run
  deno task sweep kl-beta --executor slurm --dry-run

available sweeps: ${listSweeps().join(", ")}`;

interface SweepValues {
  workers?: string;
  executor?: string;
  "dry-run"?: boolean;
  "runs-dir"?: string;
  wait?: boolean;
  "report-only"?: boolean;
  "no-report"?: boolean;
  "run-command"?: string;
  verbose?: boolean;
}

function parseRunCommand(text: string | undefined): string[] | undefined {
  if (text === undefined) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new UserError(`sweep: --run-command must be a JSON array of strings: ${(e as Error).message}`);
  }
  if (!Array.isArray(v) || !v.length || !v.every((x) => typeof x === "string")) {
    throw new UserError(`sweep: --run-command must be a non-empty JSON array of strings, got ${text}`);
  }
  return v;
}

async function runSweepCommand(values: Record<string, unknown>, positionals: string[]): Promise<number> {
  const v = values as SweepValues;
  const args = checkArgs(v, positionals);
  const { runSweep } = await import("../sweep/mod.ts");
  const runsDir = v["runs-dir"] ?? "runs";
  if (v["report-only"]) return await reportOnly(args.name, runsDir);
  return await untilStopped(async (signal) => {
    const res = await runSweep({
      sweep: args.name,
      runsDir,
      workers: args.workers,
      executor: args.executor,
      dryRun: v["dry-run"] ?? false,
      wait: v.wait ?? false,
      report: !(v["no-report"] ?? false),
      command: args.command,
      signal,
    });
    return res.exitCode;
  });
}

/** The checked arguments of `sweep`. */
function checkArgs(v: SweepValues, positionals: string[]): {
  name: string;
  workers: number | undefined;
  executor: "local" | "slurm" | undefined;
  command: string[] | undefined;
} {
  if (positionals.length !== 1) {
    throw new UserError(
      `sweep: expected one sweep NAME${positionals.length ? `, got ${positionals.join(" ")}` : ""} ` +
        `(available: ${listSweeps().join(", ")})`,
    );
  }
  let workers: number | undefined;
  if (v.workers !== undefined) {
    if (!/^\d+$/.test(v.workers) || Number(v.workers) < 1) {
      throw new UserError(`sweep: --workers must be an integer >= 1, got '${v.workers}'`);
    }
    workers = Number(v.workers);
  }
  if (v.executor !== undefined && v.executor !== "local" && v.executor !== "slurm") {
    throw new UserError(`sweep: --executor must be local or slurm, got '${v.executor}'`);
  }
  const command = parseRunCommand(v["run-command"]);
  return { name: positionals[0], workers, executor: v.executor, command };
}

/** `--report-only`: (re)write the sweep report from the run directories on disk; nothing runs. */
async function reportOnly(name: string, runsDir: string): Promise<number> {
  const mod = await import("../sweep/mod.ts");
  const { join } = await import("node:path");
  const loaded = await mod.loadSweep(name);
  const runs = await mod.planRuns(loaded, { runsDir });
  const dir = mod.sweepDir(runsDir, loaded.sweep.name);
  const statePath = join(dir, "state.json");
  const state = mod.mergeState(
    await mod.readState(statePath),
    mod.baseState(loaded),
    runs,
    (r) => join(dir, "logs", `${r.runId}.log`),
  );
  for (const r of state.runs) if ((await mod.runDirStatus(r.runDir)).complete) r.status = "done";
  const { writeSweepReport } = await import("../sweep/report.ts");
  const out = await writeSweepReport({
    sweep: loaded,
    state,
    runs,
    out: join(dir, "report.html"),
    reportsDir: "reports",
  });
  console.error(`sweep report: ${out}`);
  return 0;
}

/**
 * Run `fn` with SIGINT (and SIGTERM) aborting its signal: the sweep stops its runs, and the exit code is
 * 130 once a signal came.
 */
async function untilStopped(fn: (signal: AbortSignal) => Promise<number>): Promise<number> {
  const ac = new AbortController();
  const signals: Deno.Signal[] = Deno.build.os === "windows" ? ["SIGINT"] : ["SIGINT", "SIGTERM"];
  let stoppedBy: string | null = null;
  const handler = (sig: Deno.Signal) => () => {
    if (stoppedBy) return;
    stoppedBy = sig;
    console.error(`\nsweep: ${sig}: stopping the running runs (re-run the same command to continue)`);
    ac.abort();
  };
  const installed = signals.map((s) => {
    const h = handler(s);
    Deno.addSignalListener(s, h);
    return [s, h] as const;
  });
  try {
    const code = await fn(ac.signal);
    return stoppedBy ? 130 : code;
  } finally {
    for (const [s, h] of installed) Deno.removeSignalListener(s, h);
  }
}

/** The `sweep` command (register as `sweep: () => import("./sweep.ts")`; export name `command`). */
export const command: Command = {
  name: "sweep",
  summary: "run an ablation sweep (grid/list of overrides x seeds) locally or on Slurm, then its report",
  help: HELP,
  options: {
    workers: { type: "string" },
    executor: { type: "string" },
    "dry-run": { type: "boolean" },
    "runs-dir": { type: "string" },
    wait: { type: "boolean" },
    "report-only": { type: "boolean" },
    "no-report": { type: "boolean" },
    "run-command": { type: "string" },
    verbose: { type: "boolean" },
  },
  allowPositionals: true,
  run: runSweepCommand,
};

if (import.meta.main) {
  const { parseArgs } = await import("node:util");
  let code: number;
  try {
    if (Deno.args.includes("--help") || Deno.args.includes("-h")) {
      console.log(HELP);
      Deno.exit(0);
    }
    let parsed;
    try {
      parsed = parseArgs({ args: Deno.args, options: command.options, allowPositionals: true, strict: true });
    } catch (e) {
      throw new UserError(`sweep: ${(e as Error).message}`);
    }
    code = await command.run(parsed.values as Record<string, unknown>, parsed.positionals);
  } catch (e) {
    if (e instanceof UserError) {
      console.error(e.message);
      code = e.exitCode;
    } else {
      console.error(Deno.args.includes("--verbose") ? (e as Error).stack : `error: ${(e as Error).message}`);
      code = 1;
    }
  }
  Deno.exit(code);
}
