/**
 * A stage's cache directory on disk: the lock held while a stage is trained and evaluated, `done.json` (written
 * last: its presence means the stage is complete, its file hashes what complete means) and the gallery PNGs
 * copied into each run that uses the stage.
 * A stage directory holds `ckpt/` (latest checkpoint + optimiser state, removed once final), `final/`,
 * `metrics.jsonl`, `rollouts.jsonl`, `eval-<evalHash>.json`, `predictions-<evalHash>.jsonl`, `samples/`
 * and `done.json`.
 * @module
 */
import { dirname, join } from "node:path";
import { exists, readTextIf } from "../run/fs.ts";
import { atomicWriteJson } from "../run/atomic.ts";
import type { StagePlan } from "./plan.ts";

/** Size and sha256 of one file of a finished stage. */
interface FileRecord {
  bytes: number;
  sha256: string;
}

/** `done.json`: written last; its presence marks the stage complete, `files` what complete means. */
interface DoneFile {
  hash: string;
  stage: string;
  at: string;
  /**
   * The stage's files when it finished, by path relative to the stage dir. JSONL files only grow after
   * that (test records are appended), so their recorded bytes must be an unchanged prefix.
   */
  files: Record<string, FileRecord>;
}

/**
 * The files a finished stage is verified by: its records. The final checkpoint verifies itself (model.json
 * holds each tensor file's size and sha256; loading checks them, shapes and config) and stops with an error
 * naming the file, rather than retraining over a tampered checkpoint.
 */
const DONE_FILES = ["metrics.jsonl", "rollouts.jsonl"];

async function stageFiles(dir: string): Promise<Record<string, FileRecord>> {
  const out: Record<string, FileRecord> = {};
  for (const f of DONE_FILES) {
    let bytes: Uint8Array;
    try {
      bytes = await Deno.readFile(join(dir, f));
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) continue;
      throw e;
    }
    out[f] = { bytes: bytes.length, sha256: await fileSha256(bytes) };
  }
  return out;
}

async function fileSha256(bytes: Uint8Array): Promise<string> {
  const h = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
  return Array.from(h, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Whether the stage in `plan.dir` is complete and intact: done.json parses and every file it records is
 * there with its recorded size and hash (JSONL files: as a prefix). On a mismatch it logs a warning naming
 * the file, removes done.json and returns false, so the stage is trained again (deterministically).
 */
export async function verifyDone(plan: StagePlan, log: (line: string) => void): Promise<boolean> {
  const path = join(plan.dir, "done.json");
  const text = await readTextIf(path);
  if (text === null) return false;
  const problem = await (async () => {
    let done: Partial<DoneFile>;
    try {
      done = JSON.parse(text);
    } catch {
      return `${path}: corrupt JSON`;
    }
    if (!done.files || typeof done.files !== "object") return `${path}: records no files`;
    for (const [f, want] of Object.entries(done.files)) {
      const p = join(plan.dir, f);
      let bytes: Uint8Array;
      try {
        bytes = await Deno.readFile(p);
      } catch {
        return `${p}: missing`;
      }
      const head = f.endsWith(".jsonl") ? bytes.subarray(0, want.bytes) : bytes;
      if (head.length !== want.bytes || (!f.endsWith(".jsonl") && bytes.length !== want.bytes)) {
        return `${p}: ${bytes.length} bytes, done.json records ${want.bytes}`;
      }
      if ((await fileSha256(head)) !== want.sha256) return `${p}: content differs from done.json's sha256`;
    }
    return null;
  })();
  if (problem === null) return true;
  log(`warning: ${problem}; re-running stage ${plan.name}`);
  await Deno.remove(path);
  return false;
}

/** Write `done.json` for a stage whose records are final. */
export async function writeDone(plan: StagePlan): Promise<void> {
  await atomicWriteJson(
    join(plan.dir, "done.json"),
    {
      hash: plan.hash,
      stage: plan.name,
      at: new Date().toISOString(),
      files: await stageFiles(plan.dir),
    } satisfies DoneFile,
  );
}

/** Copy a stage's gallery PNGs (`<stageDir>/samples/*`) into the run's `samples/`. */
export async function copySamples(stageDir: string, runDir: string): Promise<void> {
  const from = join(stageDir, "samples");
  if (!(await exists(from))) return;
  await Deno.mkdir(join(runDir, "samples"), { recursive: true });
  for await (const e of Deno.readDir(from)) {
    if (e.isFile) await Deno.copyFile(join(from, e.name), join(runDir, "samples", e.name));
  }
}

/**
 * An exclusive advisory lock (flock) on `<stageDir>.lock`, held while a stage is trained and evaluated. The
 * OS releases it when the holder exits, even on SIGKILL, so a crash never leaves a stale lock behind.
 */
export async function lockStage(stageDir: string, log: (line: string) => void): Promise<Deno.FsFile> {
  await Deno.mkdir(dirname(stageDir), { recursive: true });
  const f = await Deno.open(`${stageDir}.lock`, { read: true, write: true, create: true });
  const t0 = performance.now();
  const waiting = setTimeout(() => log(`waiting for another process to finish stage ${stageDir}`), 2000);
  try {
    await f.lock(true);
  } finally {
    clearTimeout(waiting);
  }
  if (performance.now() - t0 > 2000) log(`stage ${stageDir}: lock acquired`);
  return f;
}
