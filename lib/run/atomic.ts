/**
 * Crash-safe file writes: write a temp file in the same directory, fsync it, rename over the target, fsync
 * the directory. A reader never sees a half-written file; a crash leaves the old file or the new one.
 * @module
 */
import { dirname } from "node:path";

let counter = 0;

/** Atomically replace `path` with `data` (string or bytes). Creates parent directories. */
export async function atomicWrite(path: string, data: string | Uint8Array): Promise<void> {
  const dir = dirname(path);
  await Deno.mkdir(dir, { recursive: true });
  const tmp = `${path}.${Deno.pid}.${counter++}.tmp`;
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const f = await Deno.open(tmp, { write: true, create: true, truncate: true });
  try {
    let off = 0;
    while (off < bytes.length) off += await f.write(bytes.subarray(off));
    await f.sync();
  } finally {
    f.close();
  }
  try {
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
  await syncDir(dir);
}

/** Atomically write JSON (2-space indented, trailing newline). */
export function atomicWriteJson(path: string, value: unknown): Promise<void> {
  return atomicWrite(path, JSON.stringify(value, null, 2) + "\n");
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
