/** Helpers of CLI tests: run main.ts as a user does, and snapshot a directory to prove nothing was written. */
import { join } from "node:path";

/** The project root: the CLI runs there, as `deno task` does. */
export const ROOT: string = new URL("../", import.meta.url).pathname;

/** Run `main.ts ARGS` with every permission from the project root. */
export function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  return denoRun(["run", "--allow-all", "main.ts", ...args]);
}

/** Run `deno ARGS` from the project root without colour: exit code, stdout, stderr. */
export async function denoRun(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const r = await new Deno.Command(Deno.execPath(), {
    args,
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  // Deno itself says so on stderr when another process holds node_modules: not the program's output.
  const err = new TextDecoder().decode(r.stderr).split("\n")
    .filter((l) => !l.startsWith("Blocking waiting for file lock")).join("\n");
  return { code: r.code, out: new TextDecoder().decode(r.stdout), err };
}

/** Every file under `dir` with its size and mtime: what "nothing was written" compares. */
export async function snapshot(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string) => {
    for await (const e of Deno.readDir(d)) {
      const p = join(d, e.name);
      if (e.isDirectory) await walk(p);
      else {
        const st = await Deno.stat(p);
        out.push(`${p} ${st.size} ${st.mtime?.getTime()}`);
      }
    }
  };
  await walk(dir);
  return out.sort();
}

/**
 * Run `exp EXPERIMENT --preset tiny --backend wasm` with `--set`s into a temporary runs and cache directory,
 * hand the run's directory to `check`, then remove everything.
 */
export async function withTinyRun(
  experiment: string,
  sets: string[],
  check: (run: string) => Promise<void>,
): Promise<void> {
  const tmp = await Deno.makeTempDir({ prefix: `geo-r1-${experiment}-` });
  try {
    const r = await cli([
      "exp",
      experiment,
      "--preset",
      "tiny",
      "--backend",
      "wasm",
      ...sets.flatMap((s) => ["--set", s]),
      "--runs-dir",
      join(tmp, "runs"),
      "--cache-dir",
      join(tmp, "cache"),
    ]);
    if (r.code !== 0) throw new Error(`exp ${experiment} exited with ${r.code}: ${r.err}`);
    const [run] = [...Deno.readDirSync(join(tmp, "runs"))].map((e) => join(tmp, "runs", e.name));
    await check(run);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
}
