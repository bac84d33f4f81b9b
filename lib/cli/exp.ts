/**
 * `exp NAME`: resolve an experiment spec, create (or resume) its run directory and manifest, pick the
 * backend, and run the pipeline (lib/pipeline/run.ts).
 * @module
 */
import { UserError } from "../errors.ts";
import { displayPath, listExperiments, loadSpec, resolveExperimentPath } from "../spec/load.ts";
import { nearest } from "../spec/suggest.ts";
import type { BackendName } from "../spec/types.ts";
import { RunDir } from "../run/rundir.ts";
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
  const { spec, hash, sources } = await loadSpec(path, { preset: v.preset, sets });
  const runId = RunDir.runId(spec.name, hash);
  if (v["dry-run"]) {
    console.log(JSON.stringify({ runId, hash, sources: sources.map(displayPath), spec }, null, 2));
    return 0;
  }

  // A finished run is a record: repeating its command (with or without --resume) prints its results and
  // leaves every file as it is. --no-cache asks for retraining, which the usual checks below handle.
  if (!v["no-cache"]) {
    const finished = await finishedRun(join(v["runs-dir"] ?? DEFAULT_RUNS_DIR, runId));
    if (finished) {
      const { formatTable } = await import("../pipeline/table.ts");
      const m = finished.manifest;
      console.error(
        `run ${displayPath(finished.dir)} is finished (done ${m.endedAt ?? "?"}, commit ${
          (m.git?.commit ?? "unknown").slice(0, 12)
        }); nothing to do. Its results (eval.json):`,
      );
      console.log(formatTable(finished.rows));
      // A crash while the report or the reports index was written leaves temps and a missing file: both
      // are derived from the records, so they are cleaned and written; the records stay as they are.
      const reportsDir = v["reports-dir"] ?? "reports";
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
      return 0;
    }
  }
  // Every output directory is checked (real path, links followed) before the backend starts or any stage
  // trains, so a refusal costs nothing and leaves nothing behind.
  const runsDir = v["runs-dir"] ?? DEFAULT_RUNS_DIR;
  const cacheDir = v["cache-dir"] ?? DEFAULT_STAGE_CACHE_DIR;
  const reportsDir = v["reports-dir"] ?? "reports";
  for (
    const [opt, dir] of [["--runs-dir", runsDir], ["--cache-dir", cacheDir], ["--reports-dir", reportsDir]]
  ) {
    checkPath(dir, "read", opt);
    checkPath(dir, "write", opt);
  }
  checkPath(join(runsDir, runId), "write", "run directory");

  // Loaded here, after the cheap checks, so that --help, --dry-run and a bad spec never load tfjs.
  const pipeline = await import("../pipeline/run.ts");
  // A bad folder source stops here, before the run directory exists.
  const { openDataSource } = await import("../data/source.ts");
  const source = await openDataSource(spec, { stages: spec.pipeline, evalTasks: spec.eval.tasks });
  const { initBackend, tfjsVersion } = await import("../backend.ts");
  const backend = await initBackend(spec.backend);
  const { run, manifest, resumed, mismatches } = await RunDir.prepare({
    runsDir,
    spec,
    hash,
    backend,
    tfjsVersion: tfjsVersion(),
    resume: v.resume ?? false,
    forceResume: v["force-resume"] ?? false,
    cacheDir,
  });
  const where = displayPath(run.path);
  console.error(
    `${resumed ? "resuming" : "run"} ${where} | spec ${hash.slice(0, 12)} | backend ${backend.name}` +
      (backend.adapter
        ? ` (${backend.adapter}${backend.isFallbackAdapter ? ", fallback adapter" : ""})`
        : ""),
  );
  for (const m of mismatches) console.error(`warning: --force-resume: ${m}`);
  try {
    await pipeline.runExperiment({
      spec,
      specHash: hash,
      runDir: run.path,
      manifest,
      cacheRoot: cacheDir,
      noCache: v["no-cache"] ?? false,
      resume: resumed,
      verbose: true,
      source,
    });
    await run.finish("done", undefined, manifest);
  } catch (e) {
    await run.finish("failed", (e as Error).message ?? String(e), manifest).catch(() => {});
    throw e;
  }
  const { writeRunReport } = await import("../report/mod.ts");
  let report: string;
  try {
    report = await writeRunReport(run.path, { reportsDir });
  } catch (e) {
    // Training and eval are done (and cached): a re-run with --resume only rewrites the report.
    const msg = `report: ${(e as Error).message ?? String(e)}`;
    await run.finish("failed", msg, manifest).catch(() => {});
    throw e;
  }
  console.error(`done: ${where} | report ${displayPath(report)}`);
  return 0;
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
