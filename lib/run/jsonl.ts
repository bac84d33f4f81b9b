/**
 * JSON Lines records (metrics.jsonl, rollouts.jsonl): append-only, one JSON value a line, fsynced. A crash
 * mid-append can leave a torn last line; it is cut off (truncated after the last newline) the next time the
 * file is opened for appending, and skipped by readers.
 * @module
 */
import { dirname } from "node:path";
import { UserError } from "../errors.ts";
import { atomicWrite, crashNow, enospc, faultAt, namePath } from "./atomic.ts";

const NL = 0x0a;

/**
 * Cut a torn (unterminated) last line off `path`. Returns the number of bytes removed (0 when the file is
 * missing, empty or ends with a newline).
 */
export async function repairJsonl(path: string): Promise<number> {
  let f: Deno.FsFile;
  try {
    f = await Deno.open(path, { read: true, write: true });
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return 0;
    throw e;
  }
  try {
    return await repairOpen(f);
  } finally {
    f.close();
  }
}

async function repairOpen(f: Deno.FsFile): Promise<number> {
  const size = (await f.stat()).size;
  if (size === 0) return 0;
  const one = new Uint8Array(1);
  await f.seek(size - 1, Deno.SeekMode.Start);
  await readFull(f, one);
  if (one[0] === NL) return 0;
  // Scan backwards for the last newline.
  const chunk = new Uint8Array(64 * 1024);
  let end = size;
  let keep = 0;
  while (end > 0) {
    const start = Math.max(0, end - chunk.length);
    const buf = chunk.subarray(0, end - start);
    await f.seek(start, Deno.SeekMode.Start);
    await readFull(f, buf);
    const i = buf.lastIndexOf(NL);
    if (i >= 0) {
      keep = start + i + 1;
      break;
    }
    end = start;
  }
  await f.truncate(keep);
  await f.sync();
  return size - keep;
}

async function readFull(f: Deno.FsFile, buf: Uint8Array): Promise<void> {
  let off = 0;
  while (off < buf.length) {
    const n = await f.read(buf.subarray(off));
    if (n === null) throw new Error("unexpected end of file");
    off += n;
  }
}

function encodeLine(value: unknown): Uint8Array {
  const s = JSON.stringify(value);
  if (s === undefined) throw new TypeError("appendJsonl: value is not JSON-serialisable");
  return new TextEncoder().encode(s + "\n");
}

async function writeAll(f: Deno.FsFile, bytes: Uint8Array, path?: string): Promise<void> {
  let off = 0;
  const fault = path === undefined ? null : faultAt(path, ["torn", "enospc"]);
  if (fault) {
    await f.write(bytes.subarray(0, bytes.length >> 1));
    if (fault === "torn") crashNow(`after half a line of ${path}`);
    throw enospc(path!);
  }
  while (off < bytes.length) off += await f.write(bytes.subarray(off));
}

/**
 * Append one record to a JSONL file (created with its parent directories if missing), after repairing a
 * torn last line, and fsync. The line is written with a single write in append mode.
 */
export async function appendJsonl(path: string, value: unknown): Promise<void> {
  const bytes = encodeLine(value);
  await Deno.mkdir(dirname(path), { recursive: true });
  const f = await Deno.open(path, { read: true, write: true, create: true });
  try {
    await repairOpen(f);
    await f.seek(0, Deno.SeekMode.End);
    await writeAll(f, bytes, path);
    await f.sync();
  } catch (e) {
    throw namePath(e, path);
  } finally {
    f.close();
  }
}

/** An open JSONL file for many appends (one open, a repair on open, an fsync per append or on `sync`). */
export class JsonlWriter {
  #f: Deno.FsFile;
  #syncEach: boolean;
  #path: string;
  private constructor(f: Deno.FsFile, syncEach: boolean, path: string) {
    this.#f = f;
    this.#syncEach = syncEach;
    this.#path = path;
  }

  /** Open (creating) `path`, repairing a torn last line. `syncEach: false` defers fsync to `sync()`. */
  static async open(path: string, opts: { syncEach?: boolean } = {}): Promise<JsonlWriter> {
    await Deno.mkdir(dirname(path), { recursive: true });
    const f = await Deno.open(path, { read: true, write: true, create: true });
    try {
      await repairOpen(f);
      await f.seek(0, Deno.SeekMode.End);
    } catch (e) {
      f.close();
      throw e;
    }
    return new JsonlWriter(f, opts.syncEach ?? true, path);
  }

  /** Append one record. */
  async append(value: unknown): Promise<void> {
    await writeAll(this.#f, encodeLine(value), this.#path);
    if (this.#syncEach) await this.#f.sync();
  }

  /** fsync what was appended. */
  async sync(): Promise<void> {
    await this.#f.sync();
  }

  /** fsync and close. */
  async close(): Promise<void> {
    try {
      await this.#f.sync();
    } finally {
      this.#f.close();
    }
  }
}

/**
 * Read every record of a JSONL file ([] when it is missing). A torn last line (no trailing newline) is
 * skipped; a corrupt complete line throws a UserError naming the file and line.
 */
export async function readJsonl<T = unknown>(path: string): Promise<T[]> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
  const lines = text.split("\n");
  lines.pop(); // "" after the final newline, or a torn last line
  const out: T[] = [];
  lines.forEach((line, i) => {
    if (line.trim() === "") return;
    try {
      out.push(JSON.parse(line) as T);
    } catch (e) {
      throw new UserError(`${path}:${i + 1}: corrupt JSONL record: ${(e as Error).message}`, 1);
    }
  });
  return out;
}

/** Atomically rewrite a JSONL file keeping only the records `keep` accepts (e.g. steps before a resume
 * point). Returns the number of records dropped; a missing file is left missing. */
export async function filterJsonl<T = unknown>(path: string, keep: (rec: T) => boolean): Promise<number> {
  const recs = await readJsonl<T>(path);
  const kept = recs.filter(keep);
  try {
    await Deno.stat(path);
  } catch {
    return 0;
  }
  await atomicWrite(path, kept.map((r) => JSON.stringify(r) + "\n").join(""));
  return recs.length - kept.length;
}
