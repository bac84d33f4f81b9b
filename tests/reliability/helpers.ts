/**
 * Helpers of the reliability suite: run the CLI as a subprocess with the permissions of its deno.json task
 * (plus a temp directory), kill it, and check what it left on disk.
 * @module
 */
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT: string = fileURLToPath(new URL("../../", import.meta.url));
export const MAIN: string = join(ROOT, "main.ts");

/**
 * The `--allow-*` flags of a deno.json task, with `dirs` appended to its read and write allow-lists (the
 * tests keep runs, cache and reports in a temp directory). `--no-prompt` so a missing grant fails.
 */
export function taskFlags(task: string, dirs: string[] = [], snapshot = false): string[] {
  const tasks = JSON.parse(Deno.readTextFileSync(join(ROOT, "deno.json"))).tasks as Record<string, string>;
  const flags = tasks[task].split(/\s+/).filter((a) => a.startsWith("--allow-"));
  return [
    "--no-prompt",
    ...flags.map((f) => {
      const m = /^--allow-(read|write|ffi)=(.*)$/.exec(f);
      if (!m) return f;
      // A snapshot's node_modules is a symlink to the project's: reading and loading go through it.
      if (m[1] === "ffi") return snapshot ? `${f},${join(ROOT, "node_modules")}` : f;
      const extra = [...dirs, ...(snapshot && m[1] === "read" ? [ROOT] : [])];
      return extra.length ? `${f},${extra.join(",")}` : f;
    }),
  ];
}

/**
 * Copy the sources (main.ts, deno.json, deno.lock, lib/, experiments/; node_modules as a symlink) to
 * `<dir>/src`, so a long test is immune to concurrent edits and commits in a shared work tree (code version
 * and git commit stay fixed: the copy has no .git). Returns the copy's root.
 */
export async function snapshotProject(dir: string): Promise<string> {
  const src = join(dir, "src");
  await Deno.mkdir(src, { recursive: true });
  const copy = async (from: string, to: string) => {
    const st = await Deno.stat(from);
    if (st.isDirectory) {
      await Deno.mkdir(to, { recursive: true });
      for await (const e of Deno.readDir(from)) await copy(join(from, e.name), join(to, e.name));
    } else await Deno.copyFile(from, to);
  };
  for (const f of ["main.ts", "deno.json", "deno.lock", "lib", "experiments"]) {
    await copy(join(ROOT, f), join(src, f));
  }
  await Deno.symlink(join(ROOT, "node_modules"), join(src, "node_modules"));
  return src + "/";
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run `main.ts ARGS` with the task's permissions (+ dirs), cwd = project root. */
export async function cli(
  task: string,
  args: string[],
  o: { dirs?: string[]; env?: Record<string, string>; flags?: string[]; root?: string } = {},
): Promise<CliResult> {
  const root = o.root ?? ROOT;
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      ...(o.flags ?? taskFlags(task, o.dirs ?? [], root !== ROOT)),
      join(root, "main.ts"),
      task,
      ...args,
    ],
    cwd: root,
    env: { NO_COLOR: "1", ...(o.env ?? {}) },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** A scratch area for one exp: runs/, cache/, reports/ under `base`. */
export interface Scratch {
  /** Project root the CLI runs from (ROOT, or a snapshotProject copy). */
  root: string;
  base: string;
  runs: string;
  cache: string;
  reports: string;
}

export function scratch(base: string, root: string = ROOT): Scratch {
  return { root, base, runs: join(base, "runs"), cache: join(base, "cache"), reports: join(base, "reports") };
}

/** `exp NAME --preset tiny` into a scratch area, plus extra args. */
export function expArgs(s: Scratch, name: string, extra: string[] = []): string[] {
  return [
    name,
    "--preset",
    "tiny",
    "--backend",
    "wasm",
    "--runs-dir",
    s.runs,
    "--cache-dir",
    s.cache,
    "--reports-dir",
    s.reports,
    ...extra,
  ];
}

export function exp(s: Scratch, name: string, extra: string[] = [], env: Record<string, string> = {}) {
  return cli("exp", expArgs(s, name, extra), { dirs: [s.base], env, root: s.root });
}

/**
 * Start `exp` and SIGKILL it once `killAfterLines` stderr lines have appeared, `delayMs` later (or when it
 * exits by itself first). Returns whether the kill happened before the process ended.
 */
export async function expKilled(
  s: Scratch,
  name: string,
  killAfterLines: number,
  delayMs: number,
): Promise<{ killed: boolean; code: number; lines: string[] }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      ...taskFlags("exp", [s.base], s.root !== ROOT),
      join(s.root, "main.ts"),
      "exp",
      ...expArgs(s, name),
    ],
    cwd: s.root,
    env: { NO_COLOR: "1" },
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const lines: string[] = [];
  let exited = false;
  let killed = false;
  const status = child.status.then((st) => {
    exited = true;
    return st;
  });
  const kill = () => {
    if (exited || killed) return;
    try {
      child.kill("SIGKILL");
      killed = true;
    } catch { /* already gone */ }
  };
  const reader = (async () => {
    const dec = new TextDecoderStream();
    let buf = "";
    for await (const chunk of child.stderr.pipeThrough(dec)) {
      buf += chunk;
      let i;
      while ((i = buf.indexOf("\n")) >= 0) {
        lines.push(buf.slice(0, i));
        buf = buf.slice(i + 1);
        if (lines.length === killAfterLines) setTimeout(kill, delayMs);
      }
    }
  })();
  const st = await status;
  await reader.catch(() => {});
  return { killed, code: st.code, lines };
}

/** Metric fields that measure time (differ between any two runs); everything else must match exactly. */
export const VOLATILE = /(^time$|_time$|per_s$)/;

export function stripVolatile(rec: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(rec).filter(([k]) => !VOLATILE.test(k)));
}

async function* walk(dir: string): AsyncGenerator<string> {
  let entries: Deno.DirEntry[];
  try {
    entries = await Array.fromAsync(Deno.readDir(dir));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return;
    throw e;
  }
  for (const e of entries) {
    const p = join(dir, e.name);
    if (e.isDirectory) yield* walk(p);
    else if (e.isFile) yield p;
  }
}

async function sha256(bytes: Uint8Array): Promise<string> {
  const h = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
  return Array.from(h, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Everything wrong on disk under `dir`: a JSONL file with a torn last line (unless `allowTorn`) or a corrupt
 * line, a JSON file that does not parse, a checkpoint whose files do not match model.json, a latest.json
 * pointing at a missing/broken checkpoint, a report.html without its end, a leftover temp file (unless
 * `allowTmp`). Empty when the tree is consistent.
 */
export async function treeProblems(
  dir: string,
  o: { allowTorn?: boolean; allowTmp?: boolean } = {},
): Promise<string[]> {
  const bad: string[] = [];
  const rel = (p: string) => relative(dir, p);
  for await (const p of walk(dir)) {
    const name = p.split("/").pop()!;
    if (/\.\d+\.\d+\.tmp$/.test(name)) {
      if (!o.allowTmp) bad.push(`${rel(p)}: leftover temp file`);
      continue;
    }
    if (name.endsWith(".jsonl")) {
      const text = await Deno.readTextFile(p);
      if (text.length && !text.endsWith("\n") && !o.allowTorn) bad.push(`${rel(p)}: torn last line`);
      const lines = text.split("\n").slice(0, -1);
      lines.forEach((l, i) => {
        try {
          JSON.parse(l);
        } catch {
          bad.push(`${rel(p)}:${i + 1}: corrupt line`);
        }
      });
    } else if (name.endsWith(".json")) {
      let v: Record<string, unknown>;
      try {
        v = JSON.parse(await Deno.readTextFile(p));
      } catch {
        bad.push(`${rel(p)}: corrupt JSON`);
        continue;
      }
      const here = p.slice(0, p.length - name.length);
      if (name === "model.json") {
        for (
          const [f, want] of Object.entries(v.files as Record<string, { sha256: string; bytes: number }>)
        ) {
          let bytes: Uint8Array;
          try {
            bytes = await Deno.readFile(join(here, f));
          } catch {
            bad.push(`${rel(p)}: ${f} missing`);
            continue;
          }
          if (bytes.length !== want.bytes || (await sha256(bytes)) !== want.sha256) {
            bad.push(`${rel(join(here, f))}: does not match model.json`);
          }
        }
      } else if (name === "latest.json") {
        try {
          await Deno.stat(join(here, String(v.dir), "model.json"));
        } catch {
          bad.push(`${rel(p)}: points to ${v.dir}, which has no model.json`);
        }
      }
    } else if (name.endsWith(".html")) {
      const text = await Deno.readTextFile(p);
      if (!text.trimEnd().endsWith("</html>")) bad.push(`${rel(p)}: truncated HTML`);
    }
  }
  return bad;
}

/** The parsed records of a JSONL file, volatile fields removed. */
export async function records(path: string): Promise<Record<string, unknown>[]> {
  const text = await Deno.readTextFile(path);
  return text.split("\n").filter((l) => l.trim()).map((l) => stripVolatile(JSON.parse(l)));
}

/** The only run directory under `runs`. */
export async function onlyRun(runs: string): Promise<string> {
  const dirs = (await Array.fromAsync(Deno.readDir(runs))).filter((e) =>
    e.isDirectory && !e.name.startsWith(".")
  );
  if (dirs.length !== 1) throw new Error(`expected one run dir in ${runs}, got ${dirs.map((d) => d.name)}`);
  return join(runs, dirs[0].name);
}

/** sha256 of every final model (`<cache>/<hash>/final/model.safetensors`), by stage hash. */
export async function finalWeights(cache: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for await (const e of Deno.readDir(cache)) {
    try {
      out[e.name] = await sha256(await Deno.readFile(join(cache, e.name, "final", "model.safetensors")));
    } catch { /* not finished */ }
  }
  return out;
}
