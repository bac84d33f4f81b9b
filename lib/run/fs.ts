/**
 * Small file-system queries and the write-then-rename of whole output folders, shared across lib/.
 *
 * ```ts
 * await writeDirAtomic("out/pairs", { force: false }, async (tmp) => {
 *   await Deno.writeTextFile(`${tmp}/rows.csv`, "lat,lon\n");
 * });
 * ```
 * @module
 */
import { basename, dirname, join } from "node:path";
import { UserError } from "../errors.ts";

/** Whether `p` exists, following symlinks (a dangling link or an unreadable path counts as missing). */
export async function exists(p: string): Promise<boolean> {
  try {
    await Deno.stat(p);
    return true;
  } catch {
    return false;
  }
}

/**
 * Whether an entry named `p` exists, without following symlinks (a dangling link exists), as Python's
 * `os.path.lexists`. Errors other than NotFound (e.g. a path the permissions do not cover) are thrown, so
 * an output folder is never taken for free when it cannot be checked.
 */
export async function lexists(p: string): Promise<boolean> {
  try {
    await Deno.lstat(p);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/** The text of `p`, or null when it does not exist; other errors (permissions, a folder) are thrown. */
export async function readTextIf(p: string): Promise<string | null> {
  try {
    return await Deno.readTextFile(p);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

/** `p` parsed as JSON, or null when it is missing or does not parse. */
export async function readJsonIf<T>(p: string): Promise<T | null> {
  try {
    return JSON.parse(await Deno.readTextFile(p)) as T;
  } catch {
    return null;
  }
}

/**
 * Rename the finished folder `tmp` to `outDir`. An existing `outDir` is first moved aside and removed only
 * once the new one is in place, so a crash leaves the old folder or the new one under that name.
 */
export async function renameIntoPlace(tmp: string, outDir: string): Promise<void> {
  if (await lexists(outDir)) {
    const old = `${tmp}.old`;
    await Deno.rename(outDir, old);
    await Deno.rename(tmp, outDir);
    await Deno.remove(old, { recursive: true });
  } else {
    await Deno.rename(tmp, outDir);
  }
}

/**
 * Write the folder `outDir` completely or not at all: `fill` writes into a temporary sibling folder, which
 * is then renamed into place. With `force` an existing `outDir` is replaced, and removed only after the new
 * one is in place; without it an existing `outDir` is a UserError. When `fill` throws, the temporary folder
 * is removed and `outDir` is left as it was.
 */
export async function writeDirAtomic<T>(
  outDir: string,
  opts: { force?: boolean },
  fill: (tmp: string) => Promise<T>,
): Promise<T> {
  if ((await lexists(outDir)) && !opts.force) {
    throw new UserError(`${outDir} already exists (use --force to replace it)`);
  }
  const parent = dirname(outDir);
  await Deno.mkdir(parent, { recursive: true });
  const tmp = join(parent, `.${basename(outDir)}.partial-${Deno.pid}-${Date.now().toString(36)}`);
  try {
    await Deno.mkdir(tmp);
    const result = await fill(tmp);
    await renameIntoPlace(tmp, outDir);
    return result;
  } catch (e) {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    throw e;
  }
}
