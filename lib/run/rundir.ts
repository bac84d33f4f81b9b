/**
 * A run directory `runs/<name>-<hash8>/` (layout in records.ts). Created atomically: the directory is
 * assembled under a temporary name with spec.resolved.json and manifest.json, then renamed into place, so
 * a run directory without a manifest never exists. Reopening an existing run requires `resume`, and
 * resume refuses when the spec hash, git commit or deno.lock differ from the manifest unless
 * `forceResume` is set, in which case the mismatches are recorded in `manifest.forceResume`.
 * @module
 */
import { join, resolve } from "node:path";
import { UserError } from "../errors.ts";
import type { ExperimentSpec } from "../spec/types.ts";
import { displayPath } from "../spec/load.ts";
import { atomicWriteJson, removeStaleTemps, removeTempsOf, withDirLock } from "./atomic.ts";
import { appendJsonl } from "./jsonl.ts";
import { checkPath } from "./sandbox.ts";
import { type BackendRecord, buildManifest, manifestMismatches } from "./manifest.ts";
import type { Manifest, MetricRecord, RolloutRecord, RunAttempt } from "./records.ts";
import { exists } from "./fs.ts";

/** Options of {@link RunDir.prepare}. */
export interface PrepareRunOptions {
  /** Parent directory of run directories (default "runs"). */
  runsDir?: string;
  spec: ExperimentSpec;
  /** Content hash of `spec` (from loadSpec). */
  hash: string;
  backend: BackendRecord;
  tfjsVersion: string;
  argv?: string[];
  /** Continue an existing run directory instead of refusing. */
  resume?: boolean;
  /** Resume despite manifest mismatches (recorded in the manifest). */
  forceResume?: boolean;
  /** The stage cache root, recorded with the run dir in the manifest's permission states. */
  cacheDir?: string;
}

/** The outcome of {@link RunDir.prepare}. */
export interface PreparedRun {
  run: RunDir;
  /** The manifest as now on disk (status "running"). */
  manifest: Manifest;
  /** Whether an existing run directory was reopened. */
  resumed: boolean;
  /** Mismatches overridden by forceResume (empty otherwise). */
  mismatches: string[];
}

/** A run directory and its files. */
export class RunDir {
  /** Absolute path of the directory. */
  readonly path: string;

  constructor(path: string) {
    this.path = resolve(path);
  }

  /** The run id of an experiment: `<name>-<first 8 hex of the spec hash>`. */
  static runId(name: string, hash: string): string {
    return `${name}-${hash.slice(0, 8)}`;
  }

  /** The directory name (the run id). */
  get runId(): string {
    return this.path.split(/[\\/]/).pop()!;
  }
  /** Path of a file inside the run directory. */
  file(name: string): string {
    return join(this.path, name);
  }
  /** Path of spec.resolved.json. */
  get specPath(): string {
    return this.file("spec.resolved.json");
  }
  /** Path of manifest.json. */
  get manifestPath(): string {
    return this.file("manifest.json");
  }
  /** Path of metrics.jsonl. */
  get metricsPath(): string {
    return this.file("metrics.jsonl");
  }
  /** Path of rollouts.jsonl. */
  get rolloutsPath(): string {
    return this.file("rollouts.jsonl");
  }
  /** Path of eval.json. */
  get evalPath(): string {
    return this.file("eval.json");
  }
  /** Path of report.html. */
  get reportPath(): string {
    return this.file("report.html");
  }
  /** Path of samples/ (gallery PNGs). */
  get samplesDir(): string {
    return this.file("samples");
  }

  /** Read manifest.json (UserError naming the file when missing or corrupt). */
  async readManifest(): Promise<Manifest> {
    let text: string;
    try {
      text = await Deno.readTextFile(this.manifestPath);
    } catch {
      throw new UserError(`${displayPath(this.manifestPath)}: missing; not a run directory`, 1);
    }
    try {
      return JSON.parse(text) as Manifest;
    } catch (e) {
      throw new UserError(`${displayPath(this.manifestPath)}: corrupt JSON: ${(e as Error).message}`, 1);
    }
  }

  /** Atomically replace manifest.json. */
  writeManifest(m: Manifest): Promise<void> {
    return atomicWriteJson(this.manifestPath, m);
  }

  /** Read, modify (in place or by returning a new object), write back; returns the new manifest. */
  async updateManifest(fn: (m: Manifest) => Manifest | void): Promise<Manifest> {
    const m = await this.readManifest();
    const next = fn(m) ?? m;
    await this.writeManifest(next);
    return next;
  }

  /** Mark the run finished: status, endedAt and (for a failure) the error message. */
  finish(status: "done" | "failed", error?: string, manifest?: Manifest): Promise<Manifest> {
    const apply = (m: Manifest) => {
      m.status = status;
      m.endedAt = new Date().toISOString();
      if (error !== undefined) m.error = error;
      else delete m.error;
    };
    if (manifest) {
      apply(manifest);
      return this.writeManifest(manifest).then(() => manifest);
    }
    return this.updateManifest(apply);
  }

  /** Append one record to metrics.jsonl. */
  appendMetric(rec: MetricRecord): Promise<void> {
    return appendJsonl(this.metricsPath, rec);
  }

  /** Append one record to rollouts.jsonl. */
  appendRollout(rec: RolloutRecord): Promise<void> {
    return appendJsonl(this.rolloutsPath, rec);
  }

  /**
   * Create the run directory of `spec` under `runsDir`, or reopen it when `resume` is set. Refuses (exit 2)
   * to reuse an existing directory without `resume`, and to resume across a spec/commit/lockfile change
   * without `forceResume`.
   */
  static async prepare(o: PrepareRunOptions): Promise<PreparedRun> {
    const runsDir = resolve(o.runsDir ?? "runs");
    const runId = RunDir.runId(o.spec.name, o.hash);
    const run = new RunDir(join(runsDir, runId));
    checkPath(runsDir, "write", "runs directory");
    checkPath(run.path, "write", "run directory");
    const fresh = await buildManifest({
      spec: o.spec,
      specHash: o.hash,
      runId,
      backend: o.backend,
      tfjsVersion: o.tfjsVersion,
      argv: o.argv,
      paths: [runsDir, ...(o.cacheDir ? [o.cacheDir] : [])],
    });
    // Creators of one run id take turns, so a temp dir found under the lock is a crashed creator's.
    const created = await withDirLock(runsDir, async () => {
      await removeTempsOf(runsDir, `.${runId}`);
      if (await exists(run.path)) return false;
      const tmp = join(runsDir, `.${runId}.${Deno.pid}.tmp`);
      await Deno.mkdir(tmp);
      try {
        await atomicWriteJson(join(tmp, "spec.resolved.json"), o.spec);
        await atomicWriteJson(join(tmp, "manifest.json"), fresh);
        await Deno.rename(tmp, run.path);
      } catch (e) {
        await Deno.remove(tmp, { recursive: true }).catch(() => {});
        throw e;
      }
      return true;
    });
    if (created) return { run, manifest: fresh, resumed: false, mismatches: [] };

    const where = displayPath(run.path);
    if (!(await exists(run.manifestPath))) {
      throw new UserError(`${where} exists but has no manifest.json; it is not a run directory (remove it)`);
    }
    const stored = await run.readManifest();
    if (!o.resume) {
      throw new UserError(
        `run directory ${where} already exists (status: ${stored.status}); ` +
          `pass --resume to continue it, or remove the directory to start over`,
      );
    }
    const mismatches = manifestMismatches(stored, fresh);
    if (mismatches.length && !o.forceResume) {
      throw new UserError(
        `refusing to resume ${where}: it was started with a different setup:\n` +
          mismatches.map((m) => `  ${m}`).join("\n") +
          `\npass --force-resume to continue anyway (recorded in the manifest)`,
      );
    }
    // The interrupted attempt goes into the history; the top level describes this one.
    const previous: RunAttempt = {
      startedAt: stored.attemptStartedAt ?? stored.startedAt,
      endedAt: stored.endedAt,
      status: stored.status,
      ...(stored.error !== undefined ? { error: stored.error } : {}),
      argv: stored.argv,
      git: stored.git,
      lockHash: stored.lockHash,
      backend: stored.backend,
      device: stored.device,
      stages: stored.stages,
    };
    const manifest: Manifest = {
      ...stored,
      history: [...(stored.history ?? []), previous],
      attemptStartedAt: fresh.startedAt,
      git: fresh.git,
      lockHash: fresh.lockHash,
      versions: fresh.versions,
      backend: fresh.backend,
      device: fresh.device,
      permissions: fresh.permissions,
      argv: fresh.argv,
      endedAt: null,
      status: "running",
    };
    delete manifest.error;
    if (mismatches.length) {
      manifest.forceResume = [...(stored.forceResume ?? []), { at: new Date().toISOString(), mismatches }];
    }
    // Temp files orphaned by a crashed atomic write of the interrupted run.
    await removeStaleTemps(run.path);
    await run.writeManifest(manifest);
    return { run, manifest, resumed: true, mismatches };
  }
}
