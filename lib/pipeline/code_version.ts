/**
 * The code version that stage-cache keys include: a hash of the TypeScript sources that decide what a stage
 * computes (world, render, data, model, train, reward, eval, pipeline, rng, backend) plus deno.lock. A change
 * to any of them invalidates cached stages; editing the CLI, reports, docs or tests does not.
 * @module
 */
import { join } from "node:path";
import { sha256Hex } from "../spec/hash.ts";
import { PROJECT_ROOT } from "../run/manifest.ts";

const ROOT = PROJECT_ROOT;
let cached: string | null = null;
const COMPUTE_DIRS = ["world", "render", "data", "model", "train", "reward", "eval", "pipeline"];
const COMPUTE_FILES = ["rng.ts", "backend.ts"];

/** 16 hex digits identifying the lib/ sources and the lockfile. */
export async function codeVersion(): Promise<string> {
  if (cached) return cached;
  const files: string[] = [];
  const walk = async (dir: string) => {
    for await (const e of Deno.readDir(dir)) {
      const p = join(dir, e.name);
      if (e.isDirectory) await walk(p);
      else if (e.isFile && e.name.endsWith(".ts")) files.push(p);
    }
  };
  for (const d of COMPUTE_DIRS) await walk(join(ROOT, "lib", d));
  for (const f of COMPUTE_FILES) files.push(join(ROOT, "lib", f));
  files.sort();
  const parts: string[] = [];
  for (const f of files) parts.push(f.slice(ROOT.length), await Deno.readTextFile(f));
  parts.push("deno.lock", await Deno.readTextFile(join(ROOT, "deno.lock")).catch(() => ""));
  cached = sha256Hex(parts.join("\u0000")).slice(0, 16);
  return cached;
}
