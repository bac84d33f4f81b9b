/**
 * `eval TARGET`: evaluate a trained model (a run's stage or a checkpoint directory) on any test set, with the
 * evaluator and report code every run uses (lib/pipeline/evaluate.ts, lib/report). The output directory has
 * a run directory's layout (spec.resolved.json, manifest.json, eval.json, samples/, report.html), is
 * assembled under a temporary name and renamed into place, and never lies inside the evaluated run.
 * @module
 */
import { basename, dirname, join, resolve, sep } from "node:path";
import { UserError } from "../errors.ts";
import { displayPath, loadSpec, resolveExperimentPath } from "../spec/load.ts";
import { canonicalJson, sha256Hex } from "../spec/hash.ts";
import type { ExperimentSpec } from "../spec/types.ts";
import type { EvalFile, Manifest, PredictionRecord, StageEval } from "../run/records.ts";
import { atomicWrite, atomicWriteJson } from "../run/atomic.ts";
import type { Command } from "./command.ts";
import { lexists, renameIntoPlace } from "../run/fs.ts";
import { EVAL_DEFAULTS } from "../spec/defaults.ts";
import type { CheckpointMeta } from "../model/checkpoint.ts";
import type { VLM } from "../model/types.ts";
import type { DataSource } from "../data/source.ts";
import type { ReplicaPool } from "../train/replicas.ts";
import type { BackendRecord } from "../run/manifest.ts";

const TASK_NAMES = ["pairing", "geolocate", "geoqa", "control"];
const BACKEND_NAMES = ["auto", "wasm", "webgpu", "cpu", "tensorflow"];

/** The `eval` command. */
export const command: Command = {
  name: "eval",
  summary: "evaluate a run's stage or a checkpoint on a test set (GeoWorld, another world seed or a folder)",
  help: `usage: deno task eval TARGET [options]

TARGET is a run directory (its last stage, or --stage NAME) or a checkpoint directory (model.json +
model.safetensors, e.g. cache/stages/<hash>/final). The model is evaluated as a run evaluates its stages
(same evaluator, greedy decoding by default) on the test split of the data a spec describes (--split val:
its validation split, where choices are made): the run's own spec, changed by --data and --set. The output
directory holds eval.json (the schema of a run's), samples/, spec.resolved.json, manifest.json and a
self-contained report.html; the summary table is printed. Nothing is written into the evaluated run, and
nothing at all when an input is bad.

options:
  --stage NAME        the run's stage to evaluate (default: its last stage)
  --tasks LIST        comma-separated: pairing,geolocate,geoqa,control (default: the spec's eval.tasks)
  --n N               test examples per task (default: the spec's eval.n)
  --split NAME        test (default) | val: the split the examples come from (validation for choices)
  --data PATH         a spec file (.json: its world, data and eval settings replace the run's), or a folder
                      source (pairs.csv and/or geolocate.csv, as written by data export --format folder);
                      every row of a folder is a test row (add --set 'data.source.split="region"' to
                      evaluate its test split only)
  --set KEY=VALUE     override a world., data. or eval. field, e.g. --set world.seed=8 (repeatable)
  --backend NAME      auto | wasm | webgpu | cpu | tensorflow (default: the spec's backend)
  --out DIR           output directory (default: evals/<target>-<stage>-<hash8>)
  --force             replace an existing --out directory
  --verbose           print stack traces of internal errors
  -h, --help          show this help

A checkpoint directory has no spec: its world, data and eval settings come from --data SPEC, else from
experiments/base.json. A folder outside the project needs its own read permission, e.g.
  deno run --allow-read=.,/data/cvusa <the other flags of the eval task in deno.json> main.ts eval ...

examples:
  deno task eval runs/geo-r1-1a2b3c4d
  deno task eval runs/geo-r1-1a2b3c4d --set world.seed=8 --n 200
  deno task eval runs/geo-r1-1a2b3c4d --stage sft --tasks pairing
  deno task eval runs/geo-r1-1a2b3c4d --split val --tasks geoqa,geolocate --n 200
  deno task eval cache/stages/0123456789abcdef/final --data experiments/geo-r1.json
  deno task eval runs/geo-r1-1a2b3c4d --data data/geoworld-rows --out evals/rows`,
  options: {
    stage: { type: "string" },
    tasks: { type: "string" },
    n: { type: "string" },
    split: { type: "string" },
    data: { type: "string" },
    set: { type: "string", multiple: true },
    backend: { type: "string" },
    out: { type: "string" },
    force: { type: "boolean" },
    verbose: { type: "boolean" },
  },
  allowPositionals: true,
  run: runEval,
};

interface EvalValues {
  stage?: string;
  tasks?: string;
  n?: string;
  split?: string;
  data?: string;
  set?: string[];
  backend?: string;
  out?: string;
  force?: boolean;
}

/** What TARGET resolves to: the checkpoint to load and what the output records say about it. */
interface Target {
  kind: "run" | "checkpoint";
  /** Directories nothing may be written into. */
  protect: string[];
  checkpoint: string;
  /** The spec file the evaluation starts from. */
  specPath: string;
  experiment: string;
  stage: string;
  stageHash: string;
  label: string;
  name: string;
}

/** The stat of `p`, or null when it does not exist (a denied read still throws: main.ts names the flag). */
async function statOf(p: string): Promise<Deno.FileInfo | null> {
  try {
    return await Deno.stat(p);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory) return null;
    throw e;
  }
}

async function isFile(p: string): Promise<boolean> {
  return (await statOf(p))?.isFile ?? false;
}

async function isDir(p: string): Promise<boolean> {
  return (await statOf(p))?.isDirectory ?? false;
}

async function readJson<T>(path: string): Promise<T> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    throw new UserError(`cannot read ${displayPath(path)}: ${(e as Error).message}`, 1);
  }
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new UserError(`${displayPath(path)}: corrupt JSON: ${(e as Error).message}`, 1);
  }
}

/** Resolve TARGET (a run directory or a checkpoint directory) and `--stage`. */
async function resolveTarget(path: string, stage: string | undefined): Promise<Target> {
  const dir = resolve(path);
  if (!(await isDir(dir))) throw new UserError(`eval: ${path}: no such directory`);
  if (await isFile(join(dir, "manifest.json"))) {
    const manifest = await readJson<Manifest>(join(dir, "manifest.json"));
    const stages = manifest.stages ?? [];
    if (!stages.length) throw new UserError(`eval: ${displayPath(join(dir, "manifest.json"))}: no stages`, 1);
    const st = stage === undefined ? stages[stages.length - 1] : stages.find((s) => s.name === stage);
    if (!st) {
      throw new UserError(
        `eval: --stage ${stage}: the run has stages ${stages.map((s) => s.name).join(", ")}`,
      );
    }
    // Stage directories are recorded relative to where the run was made: the project holding runs/.
    const candidates = [resolve(st.dir), resolve(dir, "..", "..", st.dir)];
    let stageDir: string | null = null;
    for (const c of candidates) if (await isFile(join(c, "final", "model.json"))) stageDir ??= c;
    if (!stageDir) {
      throw new UserError(
        `eval: stage ${st.name} of ${displayPath(dir)} has no final checkpoint (looked in ${
          candidates.map((c) => displayPath(join(c, "final"))).join(" and ")
        }); re-run the experiment to rebuild its stage cache`,
        1,
      );
    }
    let label = st.name;
    try {
      const ev = await readJson<EvalFile>(join(dir, "eval.json"));
      label = ev.rows.find((r) => r.stageHash === st.hash && r.stage === st.name)?.label ?? label;
    } catch {
      // An unfinished run has no eval.json: the stage name labels the row.
    }
    return {
      kind: "run",
      protect: [dir, stageDir],
      checkpoint: join(stageDir, "final"),
      specPath: join(dir, "spec.resolved.json"),
      experiment: manifest.name,
      stage: st.name,
      stageHash: st.hash,
      label,
      name: `${manifest.runId}-${st.name}`,
    };
  }
  if (await isFile(join(dir, "model.json"))) {
    if (stage !== undefined) {
      throw new UserError(`eval: --stage applies to a run directory, not a checkpoint`);
    }
    const meta = await readJson<{ meta?: { stage?: string; hash?: string } }>(join(dir, "model.json"));
    const name = meta.meta?.stage ?? basename(dir);
    return {
      kind: "checkpoint",
      protect: [dir],
      checkpoint: dir,
      specPath: resolveExperimentPath("base"),
      experiment: "checkpoint",
      stage: name,
      stageHash: meta.meta?.hash ?? "",
      label: name,
      name: `${basename(dirname(dir)) || "ckpt"}-${name}`.replace(/[^A-Za-z0-9._-]/g, "_"),
    };
  }
  throw new UserError(
    `eval: ${path} is neither a run directory (manifest.json) nor a checkpoint directory (model.json)`,
  );
}

/** The `--set` overrides `--data` stands for. */
async function dataSets(data: string): Promise<string[]> {
  if (await isDir(data)) {
    const pairs = await isFile(join(data, "pairs.csv"));
    const geo = await isFile(join(data, "geolocate.csv"));
    if (!pairs && !geo) {
      throw new UserError(`eval: --data ${data}: the folder has neither pairs.csv nor geolocate.csv`);
    }
    const source = {
      ...(pairs ? { pairing: data } : {}),
      ...(geo ? { geolocate: data } : {}),
      split: "test",
    };
    return [`data.source=${JSON.stringify(source)}`];
  }
  if (!(await isFile(data))) throw new UserError(`eval: --data ${data}: no such file or folder`);
  const { spec } = await loadSpec(resolveExperimentPath(data));
  return [
    `world=${JSON.stringify(spec.world)}`,
    `data=${JSON.stringify(spec.data)}`,
    `eval=${JSON.stringify(spec.eval)}`,
  ];
}

function parseCount(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 1_000_000) {
    throw new UserError(`eval: --n must be an integer in [1, 1000000], got '${v}'`);
  }
  return n;
}

async function runEval(values: Record<string, unknown>, positionals: string[]): Promise<number> {
  const v = values as EvalValues;
  if (positionals.length !== 1) {
    throw new UserError(
      positionals.length
        ? `eval: expected one TARGET, got ${positionals.join(" ")}`
        : "eval: missing TARGET (see --help)",
    );
  }
  const split = parseSplit(v.split);
  const target = await resolveTarget(positionals[0], v.stage);
  const { spec } = await loadSpec(target.specPath, { sets: await specOverrides(v) });

  const { readCheckpointMeta } = await import("../model/checkpoint.ts");
  const ckptMeta = await readCheckpointMeta(target.checkpoint);
  checkShapes(ckptMeta.config, spec, target.checkpoint);

  // Everything a bad input can break is read and checked before anything is written.
  const { openDataSource } = await import("../data/source.ts");
  const source = await openDataSource(spec, { stages: [], evalTasks: spec.eval.tasks, evalSplit: split });
  const evalHash = sha256Hex(canonicalJson({
    model: ckptMeta.files,
    world: spec.world,
    data: spec.data,
    eval: spec.eval,
    content: source.contentHash,
    // The test split keeps the hash (and default folder name) it always had.
    ...(split === "test" ? {} : { split }),
  }));
  const out = await outputDir(v, target, evalHash);
  await evaluateInto(out, { target, targetArg: positionals[0], spec, ckptMeta, source, split });
  console.error(`done: ${displayPath(out)} | report ${displayPath(join(out, "report.html"))}`);
  return 0;
}

/** The `--set` overrides the options stand for, checked: --data, --tasks, --n, --set, --backend in that order. */
async function specOverrides(v: EvalValues): Promise<string[]> {
  for (const s of v.set ?? []) {
    if (!/^(world|data|eval)\./.test(s)) {
      throw new UserError(`eval: --set ${s}: eval changes world., data. and eval. fields only`);
    }
  }
  if (v.backend !== undefined && !BACKEND_NAMES.includes(v.backend)) {
    throw new UserError(`eval: --backend must be one of ${BACKEND_NAMES.join(", ")}, got '${v.backend}'`);
  }
  const sets = v.data !== undefined ? await dataSets(v.data) : [];
  if (v.tasks !== undefined) {
    const tasks = v.tasks.split(",").map((t) => t.trim()).filter(Boolean);
    const bad = tasks.filter((t) => !TASK_NAMES.includes(t));
    if (!tasks.length || bad.length) {
      throw new UserError(
        `eval: --tasks: ${bad.join(", ") || "empty"}: choose from ${TASK_NAMES.join(", ")}`,
      );
    }
    sets.push(`eval.tasks=${JSON.stringify(tasks)}`);
  }
  if (v.n !== undefined) sets.push(`eval.n=${parseCount(v.n)}`);
  sets.push(...(v.set ?? []));
  if (v.backend !== undefined) sets.push(`backend=${v.backend}`);
  return sets;
}

/**
 * The output folder (absolute): `--out`, else `evals/<target>-<hash8>`. It may not overlap the evaluated
 * run or checkpoint, its name must be a file-name-safe word, and it must not exist unless `--force`.
 */
async function outputDir(v: EvalValues, target: Target, evalHash: string): Promise<string> {
  const out = resolve(v.out ?? join("evals", `${target.name}-${evalHash.slice(0, 8)}`));
  for (const p of target.protect) {
    if (out === p || out.startsWith(p + sep) || p.startsWith(out + sep)) {
      throw new UserError(
        `eval: --out ${displayPath(out)} overlaps the evaluated ${target.kind} ${displayPath(p)}`,
      );
    }
  }
  // The folder's name is the evaluation's run id, which reports accept as a file-name-safe word only.
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(basename(out))) {
    throw new UserError(
      `eval: --out ${v.out}: the folder name may hold only letters, digits, '.', '_' and '-'`,
    );
  }
  if ((await lexists(out)) && !v.force) {
    throw new UserError(`eval: ${displayPath(out)} already exists (use --force to replace it)`);
  }
  return out;
}

/** An evaluation whose inputs are all read and checked. */
interface EvalJob {
  target: Target;
  /** TARGET as given on the command line. */
  targetArg: string;
  spec: ExperimentSpec;
  ckptMeta: CheckpointMeta;
  source: DataSource;
  /** The split the examples come from. */
  split: EvalSplit;
}

/** The splits `eval` draws from: test, or validation for choices. */
type EvalSplit = "test" | "val";

function parseSplit(v: string | undefined): EvalSplit {
  if (v === undefined || v === "test" || v === "val") return v ?? "test";
  throw new UserError(`eval: --split must be test or val, got '${v}'`);
}

/**
 * Evaluate the target's model and write the output folder: assembled under a temporary sibling name, renamed
 * into place, removed on failure; then print the summary table.
 */
async function evaluateInto(out: string, job: EvalJob): Promise<void> {
  const { target, spec } = job;
  const { initBackend, tfjsVersion } = await import("../backend.ts");
  const backend = await initBackend(spec.backend);
  const { loadCheckpoint } = await import("../model/checkpoint.ts");
  const { formatTable } = await import("../pipeline/run.ts");
  const { ReplicaPool } = await import("../train/replicas.ts");
  const runId = basename(out);
  console.error(
    `eval ${displayPath(target.checkpoint)} (${target.label}) | ${
      spec.eval.tasks.join(", ")
    } x ${spec.eval.n} (${job.split === "val" ? "validation" : "test"} split) | ` +
      `world seed ${spec.world.seed} | data ${
        typeof spec.data.source === "string" ? spec.data.source : "folder"
      } | ` +
      `backend ${backend.name}`,
  );
  await Deno.mkdir(dirname(out), { recursive: true });
  const tmp = join(dirname(out), `.${runId}.partial-${Deno.pid}-${Date.now().toString(36)}`);
  const { model } = await loadCheckpoint(target.checkpoint, { trainable: false });
  const replicaCount = spec.eval.replicas ?? EVAL_DEFAULTS.replicas;
  const replicas = replicaCount > 1 && (backend.name === "wasm" || backend.name === "cpu")
    ? await ReplicaPool.start(replicaCount, model.config, backend.name)
    : undefined;
  try {
    await Deno.mkdir(join(tmp, "samples"), { recursive: true });
    const manifest = await evalManifest(job, runId, backend, tfjsVersion());
    const predictions: PredictionRecord[] = [];
    const row = await evaluateTarget(job, model, tmp, predictions, replicas);
    await writeEvalFolder(tmp, job, runId, row, predictions, manifest);
    await renameIntoPlace(tmp, out);
    console.log(formatTable([row]));
  } catch (e) {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    throw e;
  } finally {
    replicas?.close();
    model.dispose();
  }
}

/** The output's manifest: a run's, whose one stage is the evaluated model, plus what was evaluated. */
async function evalManifest(
  job: EvalJob,
  runId: string,
  backend: BackendRecord,
  tfjsVersion: string,
): Promise<Manifest & { evalOf: Record<string, unknown> }> {
  const { target, spec } = job;
  const { buildManifest } = await import("../run/manifest.ts");
  return {
    ...(await buildManifest({ spec, specHash: sha256Hex(canonicalJson(spec)), runId, backend, tfjsVersion })),
    stages: [{
      name: target.stage,
      kind: "eval",
      hash: target.stageHash,
      cached: true,
      dir: target.checkpoint,
    }],
    evalOf: {
      target: displayPath(job.targetArg),
      kind: target.kind,
      experiment: target.experiment,
      stage: target.stage,
      checkpoint: displayPath(target.checkpoint),
      split: job.split,
      dataContentHash: job.source.contentHash,
    },
  };
}

/**
 * Evaluate the model on the job's split (samples into `<tmp>/samples`, one record per example into
 * `predictions`) with a progress bar.
 */
async function evaluateTarget(
  job: EvalJob,
  model: VLM,
  tmp: string,
  predictions: PredictionRecord[],
  replicas?: ReplicaPool,
): Promise<StageEval> {
  const { target, spec, source } = job;
  const { tokenizerFromJSON } = await import("../data/tokenizer.ts");
  const { evaluateModel } = await import("../pipeline/evaluate.ts");
  const { progress } = await import("../run/progress.ts");
  const tasks = spec.eval.tasks.filter((t) => t !== "caption");
  const bar = progress(tasks.length * spec.eval.n, `eval ${target.stage}`);
  const drawn = new Map<string, ReturnType<typeof source.sampler.examples>>();
  try {
    return await evaluateModel({
      predictions,
      model,
      tokenizer: tokenizerFromJSON(job.ckptMeta.tokenizer),
      testExamples: (task, n) => {
        const key = `${task}/${n}`;
        if (!drawn.has(key)) drawn.set(key, source.sampler.examples(task, job.split, 0, n));
        return drawn.get(key)!;
      },
      spec: spec.eval,
      samplesDir: join(tmp, "samples"),
      samplesRel: "samples",
      stage: target.stage,
      label: target.label,
      stageHash: target.stageHash,
      progress: (d) => bar?.update(d),
      replicas,
      clusterOf: (ex) => source.sampler.regionKey(ex.scene.lat, ex.scene.lon),
    });
  } finally {
    bar?.stop();
  }
}

/** Write the run-directory records of the evaluation into `tmp`, then its report. */
async function writeEvalFolder(
  tmp: string,
  job: EvalJob,
  runId: string,
  row: StageEval,
  predictions: PredictionRecord[],
  manifest: Manifest,
): Promise<void> {
  const { writeRunReport } = await import("../report/run_report.ts");
  const evalFile: EvalFile = { experiment: job.target.experiment, runId, rows: [row] };
  await atomicWriteJson(join(tmp, "spec.resolved.json"), job.spec);
  await atomicWriteJson(join(tmp, "eval.json"), evalFile);
  // As in a run's folder: every example with its row label, for the report's worst cases and for comparing
  // two evaluations example by example.
  await atomicWrite(
    join(tmp, "predictions.jsonl"),
    predictions.map((p) => JSON.stringify({ label: row.label, ...p }) + "\n").join(""),
  );
  await atomicWriteJson(join(tmp, "manifest.json"), {
    ...manifest,
    status: "done",
    endedAt: new Date().toISOString(),
  });
  // An evaluation trains nothing: an empty metrics file keeps the report free of a missing-file warning.
  await Deno.writeTextFile(join(tmp, "metrics.jsonl"), "");
  await writeRunReport(tmp, { publish: false });
}

/** The spec's view shapes and candidate count must be the ones the model was built for. */
function checkShapes(
  cfg: { groundShape: [number, number]; aerialSize: number; maxCandidates: number },
  spec: ExperimentSpec,
  ckpt: string,
): void {
  const bad = (field: string, want: unknown, got: unknown) => {
    throw new UserError(
      `eval: ${field} is ${JSON.stringify(got)}, but the model in ${displayPath(ckpt)} takes ${
        JSON.stringify(want)
      }`,
    );
  };
  if (canonicalJson(cfg.groundShape) !== canonicalJson(spec.world.groundShape)) {
    bad("world.groundShape", cfg.groundShape, spec.world.groundShape);
  }
  if (cfg.aerialSize !== spec.world.aerialSize) {
    bad("world.aerialSize", cfg.aerialSize, spec.world.aerialSize);
  }
  if (spec.data.candidates > cfg.maxCandidates) {
    bad("data.candidates", `at most ${cfg.maxCandidates}`, spec.data.candidates);
  }
}
