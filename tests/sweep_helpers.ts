import type { SweepState } from "../lib/sweep/mod.ts";
/**
 * Shared helpers of the sweep tests (not a test file): temp sweep files, the fake per-run command, and
 * checks of run directories (metrics.jsonl without torn lines or duplicate steps).
 * @module
 */
import { liveProcesses } from "../lib/sweep/state.ts";
import { BUNDLE_PERMISSIONS } from "../lib/bundle/mod.ts";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT: string = fileURLToPath(new URL("../", import.meta.url));
export const FAKE_EXP: string = fileURLToPath(new URL("./sweep_fake_exp.ts", import.meta.url));

/** The fake per-run command prefix. */
export function fakeCommand(): string[] {
  return [Deno.execPath(), "run", "--allow-read", "--allow-write", "--allow-env", "--allow-sys", FAKE_EXP];
}

/** Write a sweep file into `dir` and return its path. */
export async function writeSweep(
  dir: string,
  sweep: Record<string, unknown>,
  file = "sweep.json",
): Promise<string> {
  const path = join(dir, file);
  await Deno.writeTextFile(path, JSON.stringify(sweep, null, 2));
  return path;
}

/** A 2 x 3 = 6-run sweep of geo-r1 on the tiny preset. */
export function smallSweep(name: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name,
    experiment: "geo-r1",
    preset: "tiny",
    grid: { "stages.grpo.grpo.groupSize": [2, 4] },
    seeds: [0, 1, 2],
    workers: 2,
    ...extra,
  };
}

/** Parse metrics.jsonl strictly: every line complete JSON; returns the steps in file order. */
export async function metricSteps(
  runDir: string,
): Promise<{ steps: number[]; torn: number; keys: string[] }> {
  const text = await Deno.readTextFile(join(runDir, "metrics.jsonl"));
  const steps: number[] = [];
  const keys: string[] = [];
  let torn = 0;
  const lines = text.split("\n");
  if (lines[lines.length - 1] !== "") torn++; // no trailing newline: a torn last line
  for (const line of lines) {
    if (!line) continue;
    try {
      const r = JSON.parse(line);
      steps.push(r.step);
      keys.push(`${r.stage}/${r.kind}/${r.step}`);
    } catch {
      torn++;
    }
  }
  return { steps, torn, keys };
}

/**
 * `lib/cli/sweep.ts` arguments of a sweep file run with the fake per-run command: 2 workers, no report.
 */
export function fakeSweepArgs(path: string, runsDir: string): string[] {
  return [
    path,
    "--runs-dir",
    runsDir,
    "--workers",
    "2",
    "--no-report",
    "--run-command",
    JSON.stringify(fakeCommand()),
  ];
}

/**
 * A sweep as a user starts it, as a subprocess: `deno run <flags> <script> ...args` in the project root, with
 * the union of the deno.json tasks' permissions but not their path narrowing (the tests write to temp
 * dirs), stdout and stderr piped (or discarded with `quiet`), in its own process group with `detached`.
 */
export function sweepSubprocess(
  script: string,
  args: string[],
  opts: { env?: Record<string, string>; detached?: boolean; quiet?: boolean } = {},
): Deno.ChildProcess {
  const stdio = opts.quiet ? "null" : "piped";
  return new Deno.Command(Deno.execPath(), {
    args: ["run", ...BUNDLE_PERMISSIONS, join(ROOT, script), ...args],
    cwd: ROOT,
    env: opts.env,
    detached: opts.detached,
    stdout: stdio,
    stderr: stdio,
  }).spawn();
}

/**
 * Wait up to 2 s for every process whose command line contains `mark` to exit (a killed sweep's runs exit
 * once they see it gone); returns the pids still alive.
 */
export async function survivorsAfterKill(mark: string): Promise<number[]> {
  let alive: number[] = [];
  for (let i = 0; i < 40; i++) {
    alive = processesWith(mark);
    if (!alive.length) break;
    await sleep(50);
  }
  return alive;
}

/** Live processes whose command line contains `mark` (via ps, like the sweep's own lock check). */
export function processesWith(mark: string): number[] {
  return liveProcesses().filter((p) => p.pid !== Deno.pid && p.cmd.includes(mark)).map((p) => p.pid);
}

export async function readJson<T = Record<string, unknown>>(path: string): Promise<T> {
  return JSON.parse(await Deno.readTextFile(path));
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** The sweep's state.json, or null while it does not exist yet (or is being replaced). */
export async function readState(path: string): Promise<SweepState | null> {
  try {
    return await readJson<SweepState>(path);
  } catch {
    return null;
  }
}
