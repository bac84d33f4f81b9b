/**
 * `exp NAME`: resolve an experiment spec, create (or resume) its run directory and manifest, pick the
 * backend, and run the pipeline (lib/pipeline/run.ts).
 * @module
 */
import { UserError } from "../errors.ts";
import { displayPath, listExperiments, loadSpec, resolveExperimentPath } from "../spec/load.ts";
import { nearest } from "../spec/suggest.ts";
import type { BackendName, ExperimentSpec } from "../spec/types.ts";
import type { DataSource } from "../data/source.ts";
import { type PreparedRun, RunDir } from "../run/rundir.ts";
import { checkPath } from "../run/sandbox.ts";
import { removeStaleTemps } from "../run/atomic.ts";
import { join } from "node:path";
import type { Command } from "./command.ts";
import type { Manifest, StageEval } from "../run/records.ts";
import { exists } from "../run/fs.ts";
import { DEFAULT_RUNS_DIR, DEFAULT_STAGE_CACHE_DIR } from "../run/paths.ts";

const BACKEND_NAMES: readonly BackendName[] = ["auto", "wasm", "webgpu", "cpu", "tensorflow"];

/** The `exp` command. */
export const command: Command = {
  name: "exp",
  summary: "run an experiment (base, geo-sft, geo-r1-zero, geo-r1, or a spec file)",
  help: `usage: deno task exp NAME [options]

Resolve the experiment NAME (a file experiments/NAME.json, or a path to a JSON spec), create its run
directory runs/<name>-<hash8>/ (spec.resolved.json, manifest.json), then run its pipeline: every stage,
evaluation and the report. Stages are cached by content hash under ${DEFAULT_STAGE_CACHE_DIR}/.

options:
  --preset NAME       tiny | small | large (deep-merged from the spec's "presets" after "extends")
  --set KEY=VALUE     override one field by dotted path, e.g. --set stages.grpo.steps=50
                      (repeatable; VALUE is JSON if it parses, else a string; checked by the schema)
  --seed N            master seed (derives omitted data/model/stage seeds); same as --set seed=N
  --backend NAME      auto | wasm | webgpu | cpu | tensorflow; same as --set backend=NAME
  --resume            continue an unfinished run directory from its last checkpoints (a finished
                      run, with or without --resume, prints its results and is left as it is)
  --force-resume      resume even if spec, git commit or deno.lock changed (recorded in the manifest)
  --no-cache          retrain every stage instead of reusing cached stage outputs
  --dry-run           print the resolved spec, its hash and run id as JSON, and exit
  --runs-dir DIR      parent of run directories (default: ${DEFAULT_RUNS_DIR})
  --cache-dir DIR     root of the content-addressed stage cache (default: ${DEFAULT_STAGE_CACHE_DIR})
  --reports-dir DIR   where the report is published with index.html (default: reports)
  --verbose           print stack traces of internal errors
  -h, --help          show this help

Overrides apply in this order: extends chain, --preset, --set (in order), --seed, --backend.

examples:
  deno task exp geo-r1
  deno task exp geo-r1 --preset tiny --dry-run
  deno task exp geo-r1-zero --set stages.grpo.grpo.groupSize=4 --seed 1
  deno task exp geo-r1 --resume

available experiments: ${listExperiments().join(", ")}`,
  options: {
    preset: { type: "string" },
    set: { type: "string", multiple: true },
    seed: { type: "string" },
    backend: { type: "string" },
    resume: { type: "boolean" },
    "force-resume": { type: "boolean" },
    "no-cache": { type: "boolean" },
    "dry-run": { type: "boolean" },
    "runs-dir": { type: "string" },
    "cache-dir": { type: "string" },
    "reports-dir": { type: "string" },
    verbose: { type: "boolean" },
  },
  allowPositionals: true,
  run: runExp,
};

/** Values of `exp`'s options as parsed. */
interface ExpValues {
  preset?: string;
  set?: string[];
  seed?: string;
  backend?: string;
  resume?: boolean;
  "force-resume"?: boolean;
  "no-cache"?: boolean;
  "dry-run"?: boolean;
  "runs-dir"?: string;
  "cache-dir"?: string;
  "reports-dir"?: string;
  verbose?: boolean;
}

async function runExp(values: Record<string, unknown>, positionals: string[]): Promise<number> {
  const v = values as ExpValues;
  const { path, sets } = checkArgs(v, positionals);
  const { spec, hash, sources } = await loadSpec(path, { preset: v.preset, sets });
  const runId = RunDir.runId(spec.name, hash);
  if (v["dry-run"]) {
    console.log(JSON.stringify({ runId, hash, sources: sources.map(displayPath), spec }, null, 2));
    return 0;
  }
  const dirs: OutputDirs = {
    runsDir: v["runs-dir"] ?? DEFAULT_RUNS_DIR,
    cacheDir: v["cache-dir"] ?? DEFAULT_STAGE_CACHE_DIR,
    reportsDir: v["reports-dir"] ?? "reports",
  };
  // A finished run is a record: repeating its command (with or without --resume) prints its results and
  // leaves every file as it is. --no-cache asks for retraining, which the usual checks below handle.
  if (!v["no-cache"]) {
    const finished = await finishedRun(join(dirs.runsDir, runId));
    if (finished) {
      await showFinishedRun(finished, dirs.reportsDir);
      return 0;
    }
  }
  checkOutputDirs(dirs, runId);
  const started = await startRun(spec, hash, dirs, v);
  await runPipeline(started, spec, hash, dirs.cacheDir, v["no-cache"] ?? false);
  const report = await writeReport(started, dirs.reportsDir);
  console.error(`done: ${displayPath(started.run.path)} | report ${displayPath(report)}`);
  return 0;
}

/** Where `exp` writes: run directories, the stage cache and the published reports. */
interface OutputDirs {
  runsDir: string;
  cacheDir: string;
  reportsDir: string;
}

/** Check the positional NAME, `--seed` and `--backend`; returns the spec path and the `--set` overrides. */
function checkArgs(v: ExpValues, positionals: string[]): { path: string; sets: string[] } {
  if (positionals.length === 0) {
    throw new UserError(`exp: missing experiment NAME (available: ${listExperiments().join(", ")})`);
  }
  if (positionals.length > 1) {
    throw new UserError(`exp: expected one experiment NAME, got ${positionals.join(" ")}`);
  }
  const path = resolveExperimentPath(positionals[0]);
  const sets = [...(v.set ?? [])];
  if (v.seed !== undefined) {
    if (!/^\d+$/.test(v.seed) || Number(v.seed) > 0xffffffff) {
      throw new UserError(`exp: --seed must be an integer in [0, 4294967295], got '${v.seed}'`);
    }
    sets.push(`seed=${v.seed}`);
  }
  if (v.backend !== undefined) {
    if (!BACKEND_NAMES.includes(v.backend as BackendName)) {
      const hint = nearest(v.backend, BACKEND_NAMES);
      throw new UserError(
        `exp: --backend must be one of ${BACKEND_NAMES.join(", ")}, got '${v.backend}'` +
          (hint ? `; did you mean '${hint}'?` : ""),
      );
    }
    sets.push(`backend=${v.backend}`);
  }
  return { path, sets };
}

/**
 * Print a finished run's results and leave its records as they are. A crash while the report or the
 * reports index was written leaves temps and a missing file: both are derived from the records, so they
 * are cleaned and written.
 */
async function showFinishedRun(
  finished: { dir: string; manifest: Manifest; rows: StageEval[] },
  reportsDir: string,
): Promise<void> {
  const { formatTable } = await import("../pipeline/table.ts");
  const m = finished.manifest;
  console.error(
    `run ${displayPath(finished.dir)} is finished (done ${m.endedAt ?? "?"}, commit ${
      (m.git?.commit ?? "unknown").slice(0, 12)
    }); nothing to do. Its results (eval.json):`,
  );
  console.log(formatTable(finished.rows));
  await removeStaleTemps(finished.dir);
  let report = join(finished.dir, "report.html");
  if (!(await exists(report))) {
    const { writeRunReport } = await import("../report/mod.ts");
    report = await writeRunReport(finished.dir, { reportsDir });
  } else if (await indexNeedsRepair(reportsDir)) {
    const { writeReportsIndex } = await import("../report/index_page.ts");
    await writeReportsIndex(reportsDir);
  }
  console.error(
    `report ${displayPath(report)} (remove the run directory, or pass --no-cache, to re-run)`,
  );
}

/**
 * Every output directory is checked (real path, links followed) before the backend starts or any stage
 * trains, so a refusal costs nothing and leaves nothing behind.
 */
function checkOutputDirs(dirs: OutputDirs, runId: string): void {
  const options: [string, string][] = [
    ["--runs-dir", dirs.runsDir],
    ["--cache-dir", dirs.cacheDir],
    ["--reports-dir", dirs.reportsDir],
  ];
  for (const [opt, dir] of options) {
    checkPath(dir, "read", opt);
    checkPath(dir, "write", opt);
  }
  checkPath(join(dirs.runsDir, runId), "write", "run directory");
}

/** A run directory made (or reopened) and ready to train into. */
interface StartedRun extends PreparedRun {
  source: DataSource;
  pipeline: typeof import("../pipeline/run.ts");
}

/**
 * Open the data source and the backend, then create (or reopen, with --resume) the run directory and
 * print its header line.
 */
async function startRun(
  spec: ExperimentSpec,
  hash: string,
  dirs: OutputDirs,
  v: ExpValues,
): Promise<StartedRun> {
  // Loaded here, after the cheap checks, so that --help, --dry-run and a bad spec never load tfjs.
  const pipeline = await import("../pipeline/run.ts");
  // A bad folder source stops here, before the run directory exists.
  const { openDataSource } = await import("../data/source.ts");
  const source = await openDataSource(spec, { stages: spec.pipeline, evalTasks: spec.eval.tasks });
  const { initBackend, tfjsVersion } = await import("../backend.ts");
  const backend = await initBackend(spec.backend);
  const prepared = await RunDir.prepare({
    runsDir: dirs.runsDir,
    spec,
    hash,
    backend,
    tfjsVersion: tfjsVersion(),
    resume: v.resume ?? false,
    forceResume: v["force-resume"] ?? false,
    cacheDir: dirs.cacheDir,
  });
  console.error(
    `${prepared.resumed ? "resuming" : "run"} ${displayPath(prepared.run.path)} | spec ${
      hash.slice(0, 12)
    } | backend ${backend.name}` +
      (backend.adapter
        ? ` (${backend.adapter}${backend.isFallbackAdapter ? ", fallback adapter" : ""})`
        : ""),
  );
  for (const m of prepared.mismatches) console.error(`warning: --force-resume: ${m}`);
  return { ...prepared, source, pipeline };
}

/** Train and evaluate every stage, then mark the run done (or failed, with the error, and rethrow). */
async function runPipeline(
  started: StartedRun,
  spec: ExperimentSpec,
  hash: string,
  cacheDir: string,
  noCache: boolean,
): Promise<void> {
  const { run, manifest } = started;
  try {
    await started.pipeline.runExperiment({
      spec,
      specHash: hash,
      runDir: run.path,
      manifest,
      cacheRoot: cacheDir,
      noCache,
      resume: started.resumed,
      verbose: true,
      source: started.source,
    });
    await run.finish("done", undefined, manifest);
  } catch (e) {
    await run.finish("failed", (e as Error).message ?? String(e), manifest).catch(() => {});
    throw e;
  }
}

/** Write and publish the run's report; returns its path. A failure marks the run failed and rethrows. */
async function writeReport(started: StartedRun, reportsDir: string): Promise<string> {
  const { writeRunReport } = await import("../report/mod.ts");
  try {
    return await writeRunReport(started.run.path, { reportsDir });
  } catch (e) {
    // Training and eval are done (and cached): a re-run with --resume only rewrites the report.
    const msg = `report: ${(e as Error).message ?? String(e)}`;
    await started.run.finish("failed", msg, started.manifest).catch(() => {});
    throw e;
  }
}

/** The manifest and eval rows of `dir` when it holds a finished run (status done, eval.json readable). */
async function finishedRun(
  dir: string,
): Promise<{ dir: string; manifest: Manifest; rows: StageEval[] } | null> {
  let manifest: Manifest;
  let rows: StageEval[];
  try {
    manifest = JSON.parse(await Deno.readTextFile(join(dir, "manifest.json")));
    rows = JSON.parse(await Deno.readTextFile(join(dir, "eval.json"))).rows;
  } catch {
    return null;
  }
  return manifest?.status === "done" && Array.isArray(rows) ? { dir, manifest, rows } : null;
}

/** The reports index is missing, or a crashed write left a temp of it. */
async function indexNeedsRepair(reportsDir: string): Promise<boolean> {
  if (!(await exists(join(reportsDir, "index.html")))) return await exists(reportsDir);
  for await (const e of Deno.readDir(reportsDir)) {
    if (/^index\.html\.\d+(\.\d+)?\.tmp$/.test(e.name)) return true;
  }
  return false;
}
