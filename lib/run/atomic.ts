/**
 * Crash-safe file writes: write a temp file in the same directory, fsync it, rename over the target, fsync
 * the directory. A reader never sees a half-written file; a crash leaves the old file or the new one (plus,
 * at worst, an orphaned `<name>.<pid>.<n>.tmp`, removed by {@link removeStaleTemps}).
 *
 * Fault injection (tests/reliability): the environment variable `GEO_R1_FAULT` holds comma-separated rules
 * `KIND:SUBSTRING[:N]`, each firing at the N-th (default 1st) write whose path contains SUBSTRING:
 * - `crash`: the temp file is written and fsynced, then the process dies (exit 137, like SIGKILL: no
 *   `finally`, no rename), as a crash in the middle of a checkpoint/report write would.
 * - `enospc`: the write fails with "No space left on device (os error 28)", as on a full disk.
 * - `torn`: (JSONL appends, lib/run/jsonl.ts) half of the line is written, then the process dies.
 * Unset (the normal case) costs one environment lookup per process; without env permission it is off.
 * @module
 */
import { basename, dirname, join } from "node:path";

let counter = 0;

/** One fault rule of `GEO_R1_FAULT`. */
interface FaultRule {
  kind: string;
  match: string;
  nth: number;
  seen: number;
}

let rules: FaultRule[] | null = null;

function faultRules(): FaultRule[] {
  if (rules) return rules;
  let spec: string | undefined;
  try {
    spec = Deno.env.get("GEO_R1_FAULT");
  } catch {
    spec = undefined; // no env permission: fault injection off
  }
  rules = (spec ?? "").split(",").filter((s) => s.trim() !== "").map((s) => {
    const [kind, match = "", nth = "1"] = s.trim().split(":");
    return { kind, match, nth: Math.max(1, Number(nth) || 1), seen: 0 };
  });
  return rules;
}

/**
 * The fault (if any) that fires for this write of `path` among `kinds`; counts the write. Internal: used by
 * atomic writes and JSONL appends.
 */
export function faultAt(path: string, kinds: string[]): string | null {
  const rs = faultRules();
  if (rs.length === 0) return null;
  for (const r of rs) {
    if (!kinds.includes(r.kind) || !path.includes(r.match)) continue;
    r.seen++;
    if (r.seen === r.nth) return r.kind;
  }
  return null;
}

/** Die like a SIGKILL (no unwinding, no finally blocks); used by the fault hooks. */
export function crashNow(what: string): never {
  try {
    Deno.stderr.writeSync(new TextEncoder().encode(`GEO_R1_FAULT: simulated crash ${what}\n`));
  } catch { /* ignore */ }
  Deno.exit(137);
}

/** The error a full disk gives (ENOSPC), for the `enospc` fault. */
export function enospc(path: string): Error {
  const e = namePath(new Error("No space left on device (os error 28)"), path) as Error;
  e.name = "StorageFull";
  return e;
}

/** Atomically replace `path` with `data` (string or bytes). Creates parent directories. */
export async function atomicWrite(path: string, data: string | Uint8Array): Promise<void> {
  const dir = dirname(path);
  await Deno.mkdir(dir, { recursive: true });
  const tmp = `${path}.${Deno.pid}.${counter++}.tmp`;
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const fault = faultAt(path, ["crash", "enospc"]);
  const f = await Deno.open(tmp, { write: true, create: true, truncate: true });
  try {
    let off = 0;
    if (fault === "enospc") {
      // A full disk typically accepts part of the data first.
      await f.write(bytes.subarray(0, bytes.length >> 1));
      throw enospc(path);
    }
    while (off < bytes.length) off += await f.write(bytes.subarray(off));
    await f.sync();
  } catch (e) {
    f.close();
    await Deno.remove(tmp).catch(() => {});
    throw namePath(e, path);
  }
  f.close();
  if (fault === "crash") crashNow(`before renaming ${tmp} -> ${basename(path)}`);
  try {
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
  await syncDir(dir);
}

/** Make an I/O error name the file (Deno's write errors do not): "writing <path>: <message>". */
export function namePath(e: unknown, path: string): unknown {
  if (e instanceof Error && !e.message.includes(path)) {
    try {
      e.message = `writing ${path}: ${e.message}`;
    } catch { /* read-only message */ }
  }
  return e;
}

/** Atomically write JSON (2-space indented, trailing newline). */
export function atomicWriteJson(path: string, value: unknown): Promise<void> {
  return atomicWrite(path, JSON.stringify(value, null, 2) + "\n");
}

const TEMP_RE = /\.\d+\.\d+\.tmp$/;

/**
 * Remove temp files orphaned by a crashed atomic write (`<name>.<pid>.<n>.tmp`) directly inside `dir`.
 * Call it only on a directory this process owns (a resumed run, a checkpoint being rewritten): a temp of a
 * concurrent writer would be removed too. Returns the names removed; a missing directory is fine.
 */
export async function removeStaleTemps(dir: string): Promise<string[]> {
  const removed: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) {
      if (!e.isFile || !TEMP_RE.test(e.name)) continue;
      if (e.name.includes(`.${Deno.pid}.`)) continue;
      await Deno.remove(join(dir, e.name)).catch(() => {});
      removed.push(e.name);
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return removed;
}

/**
 * Run `fn` holding an exclusive advisory lock (flock) on directory `dir` itself (created if missing), so
 * the lock adds no file to it. The OS releases it when the holder exits, SIGKILL included, so a crash never
 * leaves it held. When every writer of a target in `dir` takes the lock, a temp file of that target found
 * under the lock is a crash's orphan.
 */
export async function withDirLock<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  await Deno.mkdir(dir, { recursive: true });
  const f = await Deno.open(dir, { read: true });
  try {
    await f.lock(true);
    return await fn();
  } finally {
    f.close();
  }
}

/**
 * Remove the temps of target `name` directly inside `dir` (`<name>.<pid>.<n>.tmp` files of atomic writes,
 * `<name>.<pid>.tmp` directories), whatever their pid. Only for a caller holding the target's lock
 * ({@link withDirLock}). Returns the names removed.
 */
export async function removeTempsOf(dir: string, name: string): Promise<string[]> {
  const re = new RegExp(`^${name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}\\.\\d+(\\.\\d+)?\\.tmp$`);
  const removed: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) {
      if (!re.test(e.name)) continue;
      await Deno.remove(join(dir, e.name), { recursive: true }).catch(() => {});
      removed.push(e.name);
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return removed;
}

async function syncDir(dir: string): Promise<void> {
  try {
    const d = await Deno.open(dir, { read: true });
    try {
      await d.sync();
    } finally {
      d.close();
    }
  } catch {
    // Directory fsync is not supported everywhere (e.g. some CI filesystems); rename is still atomic.
  }
}
