/**
 * Small file-system queries shared by the pipeline's stage runners.
 * @module
 */

/** Whether `p` exists (any kind of entry). */
export async function exists(p: string): Promise<boolean> {
  try {
    await Deno.stat(p);
    return true;
  } catch {
    return false;
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
