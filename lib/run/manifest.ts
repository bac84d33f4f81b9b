/**
 * The run manifest (records.ts `Manifest`): what ran, on which code, lockfile, runtime, backend and machine,
 * with which permissions. Everything is gathered without prompting: a value whose permission was not
 * granted is recorded as unknown (null / "unknown" / 0) instead.
 * @module
 */
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { ExperimentSpec } from "../spec/types.ts";
import { sha256Hex } from "../spec/hash.ts";
import type { Manifest } from "./records.ts";

/** Version of the geo-r1 harness recorded in manifests. */
export const GEO_R1_VERSION = "0.1.0";

/** The project root (the directory holding deno.json and deno.lock). */
export const PROJECT_ROOT: string = fileURLToPath(new URL("../../", import.meta.url));

/** The backend description a manifest records (what `initBackend` returns). */
export interface BackendRecord {
  name: string;
  adapter: string | null;
  isFallbackAdapter: boolean | null;
  /** The native BLAS behind the wasm backend's matmuls, or null (absent in older manifests). */
  blas?: string | null;
}

function granted(desc: Deno.PermissionDescriptor): boolean {
  try {
    return Deno.permissions.querySync(desc).state === "granted";
  } catch {
    return false;
  }
}

async function readText(path: string): Promise<string | null> {
  try {
    return await Deno.readTextFile(path);
  } catch {
    return null;
  }
}

/** Locate the git directory for `root` (a `.git` folder, or a `.git` file pointing elsewhere). */
async function findGitDir(root: string): Promise<string | null> {
  let dir = resolve(root);
  for (;;) {
    const dotgit = join(dir, ".git");
    try {
      const st = await Deno.stat(dotgit);
      if (st.isDirectory) return dotgit;
      const text = await readText(dotgit);
      const m = text && /^gitdir:\s*(.+)$/m.exec(text);
      if (m) return resolve(dir, m[1].trim());
    } catch {
      // not here; go up
    }
    const parent = dirname(dir);
    if (parent === dir) return null;
    dir = parent;
  }
}

async function resolveRef(gitDir: string, ref: string): Promise<string | null> {
  const common = (await readText(join(gitDir, "commondir")))?.trim();
  const dirs = [gitDir, ...(common ? [resolve(gitDir, common)] : [])];
  for (const d of dirs) {
    const loose = (await readText(join(d, ref)))?.trim();
    if (loose && /^[0-9a-f]{40,64}$/.test(loose)) return loose;
  }
  for (const d of dirs) {
    const packed = await readText(join(d, "packed-refs"));
    if (!packed) continue;
    for (const line of packed.split("\n")) {
      const [sha, name] = line.trim().split(" ");
      if (name === ref && /^[0-9a-f]{40,64}$/.test(sha)) return sha;
    }
  }
  return null;
}

/**
 * The checked-out commit, read from .git files (no subprocess, so no --allow-run needed), and whether the
 * work tree has uncommitted changes to tracked files (`git status`; only when running `git` is permitted,
 * else null).
 */
export async function gitInfo(root: string = PROJECT_ROOT): Promise<Manifest["git"]> {
  const gitDir = await findGitDir(root);
  if (!gitDir) return { commit: null, dirty: null };
  const head = (await readText(join(gitDir, "HEAD")))?.trim() ?? "";
  let commit: string | null = null;
  if (head.startsWith("ref:")) commit = await resolveRef(gitDir, head.slice(4).trim());
  else if (/^[0-9a-f]{40,64}$/.test(head)) commit = head;
  let dirty: boolean | null = null;
  if (commit && granted({ name: "run", command: "git" })) {
    try {
      const out = await new Deno.Command("git", {
        args: ["status", "--porcelain", "--untracked-files=no"],
        cwd: root,
        stdout: "piped",
        stderr: "null",
      }).output();
      if (out.success) dirty = new TextDecoder().decode(out.stdout).trim().length > 0;
    } catch {
      dirty = null;
    }
  }
  return { commit, dirty };
}

/** sha256 (hex) of the project's deno.lock, or null when there is none. */
export async function lockHash(root: string = PROJECT_ROOT): Promise<string | null> {
  try {
    return sha256Hex(await Deno.readFile(join(root, "deno.lock")));
  } catch {
    return null;
  }
}

/** OS, architecture, logical CPUs, memory and hostname (each only where permitted). */
export function deviceInfo(): Manifest["device"] {
  let os: string = Deno.build.os;
  if (granted({ name: "sys", kind: "osRelease" })) os += ` ${Deno.osRelease()}`;
  const memGiB = granted({ name: "sys", kind: "systemMemoryInfo" })
    ? Math.round((Deno.systemMemoryInfo().total / 2 ** 30) * 10) / 10
    : 0;
  const hostname = granted({ name: "sys", kind: "hostname" }) ? Deno.hostname() : "unknown";
  return { os, arch: Deno.build.arch, cpus: navigator.hardwareConcurrency ?? 0, memGiB, hostname };
}

/**
 * The permission state of this process, by name: "granted" (for everything), "prompt" (not granted as a
 * whole; a scoped grant such as --allow-write=runs,cache,reports shows as "prompt" here, Deno does not
 * report partial grants) or "denied"; then the scoped probes that matter: read and write for the project
 * root and for each of `paths` (the run and cache directories), ffi for node_modules, run for git.
 */
export function permissionStates(root: string = PROJECT_ROOT, paths: string[] = []): Record<string, string> {
  const q = (d: Deno.PermissionDescriptor) => {
    try {
      return Deno.permissions.querySync(d).state;
    } catch {
      return "unknown";
    }
  };
  const out: Record<string, string> = {
    read: q({ name: "read" }),
    [`read:${root}`]: q({ name: "read", path: root }),
    write: q({ name: "write" }),
    [`write:${root}`]: q({ name: "write", path: root }),
  };
  for (const p of paths) {
    const abs = resolve(p);
    out[`read:${abs}`] = q({ name: "read", path: abs });
    out[`write:${abs}`] = q({ name: "write", path: abs });
  }
  return {
    ...out,
    net: q({ name: "net" }),
    env: q({ name: "env" }),
    run: q({ name: "run" }),
    "run:git": q({ name: "run", command: "git" }),
    ffi: q({ name: "ffi" }),
    [`ffi:${join(root, "node_modules")}`]: q({ name: "ffi", path: join(root, "node_modules") }),
    sys: q({ name: "sys" }),
    import: q({ name: "import" }),
  };
}

/** Inputs of {@link buildManifest} that only the caller knows. */
export interface ManifestInputs {
  spec: ExperimentSpec;
  specHash: string;
  runId: string;
  backend: BackendRecord;
  /** tfjs version string (tf.version.tfjs), or "unknown" when tfjs is not loaded. */
  tfjsVersion: string;
  /** CLI arguments (default Deno.args). */
  argv?: string[];
  /** Directories whose read/write permission the manifest records (run dir, stage cache). */
  paths?: string[];
}

/** A fresh manifest with status "running", gathered from this process. */
export async function buildManifest(i: ManifestInputs): Promise<Manifest> {
  return {
    name: i.spec.name,
    runId: i.runId,
    specHash: i.specHash,
    seed: i.spec.seed,
    git: await gitInfo(),
    lockHash: await lockHash(),
    versions: {
      deno: Deno.version.deno,
      v8: Deno.version.v8,
      typescript: Deno.version.typescript,
      tfjs: i.tfjsVersion,
      geoR1: GEO_R1_VERSION,
    },
    backend: { ...i.backend },
    device: deviceInfo(),
    permissions: permissionStates(PROJECT_ROOT, i.paths ?? []),
    argv: i.argv ?? [...Deno.args],
    startedAt: new Date().toISOString(),
    endedAt: null,
    status: "running",
    stages: [],
  };
}

/**
 * What differs between a stored manifest and the current state in the fields resume must agree on: spec
 * hash, git commit, deno.lock hash. One human-readable line per mismatch; empty when resume is safe.
 */
export function manifestMismatches(
  stored: Pick<Manifest, "specHash" | "git" | "lockHash">,
  current: Pick<Manifest, "specHash" | "git" | "lockHash">,
): string[] {
  const out: string[] = [];
  const short = (s: string | null) => (s === null ? "none" : s.slice(0, 12));
  if (stored.specHash !== current.specHash) {
    out.push(`spec hash: run has ${short(stored.specHash)}, now ${short(current.specHash)}`);
  }
  if (stored.git.commit !== current.git.commit) {
    out.push(`git commit: run has ${short(stored.git.commit)}, now ${short(current.git.commit)}`);
  }
  if (stored.lockHash !== current.lockHash) {
    out.push(`deno.lock hash: run has ${short(stored.lockHash)}, now ${short(current.lockHash)}`);
  }
  return out;
}
