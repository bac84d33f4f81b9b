/**
 * Offline bundle for air-gapped machines (GPU nodes without network): everything `deno task exp` needs, in
 * one tar file (or directory):
 *
 * ```
 * geo-r1-bundle/
 *   run.sh               unpacks on first use, then runs `deno run --cached-only <perms> main.ts "$@"`
 *   deno.xz              the Deno binary that built the bundle (xz)
 *   node_modules.tar.xz  the project's node_modules without source maps (*.map)
 *   app/                 the project files: git's tracked + untracked-not-ignored files (or a walk that skips
 *                        runs/ cache/ reports/ .bundle/ node_modules/), incl. deno.json and deno.lock
 *   lib/                 optional extra shared libraries (--include-lib, e.g. a Vulkan loader)
 *   BUNDLE.json          what is inside: versions, git commit, sizes, sha256 of the payloads
 * ```
 *
 * `run.sh` sets DENO_DIR inside the bundle, so nothing outside it is read or written except the runs the
 * commands make (under `app/`, where the CLI's relative paths point). `./run.sh bench [...]` runs
 * bench/run.ts; `./run.sh deno <args>` runs the bundled Deno itself (e.g. `deno test`).
 * Requires `tar` and `xz` on both machines (Linux), and `git` for the file list (optional).
 * @module
 */
import { basename, dirname, join, relative, resolve } from "node:path";

/** Directories never bundled (outputs and caches). */
export const EXCLUDED_DIRS = [
  "runs",
  "cache",
  "reports",
  "evals",
  ".bundle",
  "node_modules",
  ".git",
  "coverage",
];

/** Deno permissions run.sh grants (the union of the deno.json tasks). */
export const BUNDLE_PERMISSIONS = [
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "--allow-ffi",
  "--allow-sys",
  "--allow-run",
];

export interface BundleOptions {
  /** Project root (holds deno.json, deno.lock, main.ts, node_modules). Default: the working directory. */
  root?: string;
  /** Output: a path ending in `.tar` writes one tar file, anything else a directory. */
  out?: string;
  /** The Deno binary to ship. Default: the running one (Deno.execPath()). */
  denoBinary?: string;
  /** xz preset 0..9 (default 6; 0 or 1 for quick test bundles). */
  xzLevel?: number;
  /** Extra files copied into `lib/` and put on LD_LIBRARY_PATH by run.sh (after the host's). */
  includeLibs?: string[];
  log?: (line: string) => void;
}

export interface BundleResult {
  /** The tar file or directory written. */
  path: string;
  /** Project files in app/. */
  files: number;
  /** Size in bytes of the tar (or the sum of the directory's payloads). */
  bytes: number;
  manifest: BundleManifest;
}

export interface BundleManifest {
  format: "geo-r1/bundle";
  version: 1;
  created: string;
  deno: string;
  os: string;
  arch: string;
  git: { commit: string | null; dirty: boolean | null };
  permissions: string[];
  files: number;
  payloads: Record<string, { bytes: number; sha256: string }>;
  libs: string[];
}

async function exec(
  cmd: string,
  args: string[],
  opts: { cwd?: string; okCodes?: number[] } = {},
): Promise<string> {
  const out = await new Deno.Command(cmd, { args, cwd: opts.cwd, stdout: "piped", stderr: "piped" }).output();
  if (!out.success && !(opts.okCodes ?? []).includes(out.code)) {
    throw new Error(
      `${cmd} ${args.join(" ")} failed (${out.code}): ${new TextDecoder().decode(out.stderr).trim()}`,
    );
  }
  return new TextDecoder().decode(out.stdout);
}

async function tryExec(cmd: string, args: string[], cwd?: string): Promise<string | null> {
  try {
    return await exec(cmd, args, { cwd });
  } catch {
    return null;
  }
}

async function isFile(p: string): Promise<boolean> {
  try {
    return (await Deno.lstat(p)).isFile;
  } catch {
    return false;
  }
}

function excluded(rel: string): boolean {
  const top = rel.split("/")[0];
  return EXCLUDED_DIRS.includes(top);
}

/**
 * The project files to ship, relative to `root`, sorted: git's tracked and untracked-but-not-ignored files
 * that exist (so work in progress travels too), else a directory walk; the excluded directories are
 * skipped either way.
 */
export async function projectFiles(root: string): Promise<string[]> {
  const listed = await tryExec("git", ["ls-files", "-z", "--cached", "--others", "--exclude-standard"], root);
  let files: string[] = [];
  if (listed !== null) {
    for (const rel of new Set(listed.split("\0").filter((s) => s))) {
      if (!excluded(rel) && await isFile(join(root, rel))) files.push(rel);
    }
  } else {
    const walk = async (dir: string) => {
      for await (const e of Deno.readDir(join(root, dir))) {
        const rel = dir ? `${dir}/${e.name}` : e.name;
        if (excluded(rel)) continue;
        if (e.isDirectory) await walk(rel);
        else if (e.isFile) files.push(rel);
      }
    };
    await walk("");
  }
  for (const must of ["deno.json", "deno.lock", "main.ts"]) {
    if (!files.includes(must) && await isFile(join(root, must))) files.push(must);
  }
  files = files.sort();
  return files;
}

async function sha256File(path: string): Promise<string> {
  const bytes = await Deno.readFile(path);
  const h = await crypto.subtle.digest("SHA-256", bytes);
  return Array.from(new Uint8Array(h), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The run.sh of a bundle (POSIX sh). */
export function runScript(): string {
  const perms = BUNDLE_PERMISSIONS.join(" ");
  return `#!/bin/sh
# geo-r1 offline bundle launcher (generated by \`deno task bundle\`).
#   ./run.sh <command> [args]   e.g. ./run.sh exp geo-r1 --backend webgpu   (main.ts commands)
#   ./run.sh bench [args]       bench/run.ts: the JSON benchmark summary
#   ./run.sh deno <args>        the bundled Deno, e.g. ./run.sh deno test ${perms} tests/
# Unpacks the Deno binary and node_modules on first use; runs with --cached-only and DENO_DIR inside the
# bundle, so no network is needed. Working directory: <bundle>/app (runs/ and cache/ land there).
set -eu
HERE="$(cd "$(dirname "$0")" && pwd)"
DENO="$HERE/bin/deno"
if [ ! -x "$DENO" ]; then
  mkdir -p "$HERE/bin"
  xz -dc "$HERE/deno.xz" > "$DENO.tmp.$$"
  chmod +x "$DENO.tmp.$$"
  mv "$DENO.tmp.$$" "$DENO"
fi
if [ ! -d "$HERE/app/node_modules" ]; then
  rm -rf "$HERE/app/.node_modules.tmp"
  mkdir -p "$HERE/app/.node_modules.tmp"
  tar -xJf "$HERE/node_modules.tar.xz" -C "$HERE/app/.node_modules.tmp"
  mv "$HERE/app/.node_modules.tmp/node_modules" "$HERE/app/node_modules"
  rmdir "$HERE/app/.node_modules.tmp"
fi
export DENO_DIR="$HERE/deno_dir"
export DENO_NO_UPDATE_CHECK=1
export DENO_NO_PROMPT=1
# GPUs: WebGPU goes through Vulkan. Use the NVIDIA ICD of a container runtime when one is mounted, and the
# bundled lib/ (e.g. a Vulkan loader given with --include-lib) after the host's libraries.
if [ -z "\${VK_DRIVER_FILES:-}" ] && [ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ]; then
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
fi
if [ -d "$HERE/lib" ]; then
  export LD_LIBRARY_PATH="\${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$HERE/lib"
fi
cd "$HERE/app"
PERMS="${perms}"
case "\${1:-}" in
  deno) shift; exec "$DENO" "$@" ;;
  bench) shift; exec "$DENO" run --cached-only $PERMS bench/run.ts "$@" ;;
  *) exec "$DENO" run --cached-only $PERMS main.ts "$@" ;;
esac
`;
}

/** Build the bundle (see the module doc). Writes atomically: a temporary sibling, then a rename. */
export async function createBundle(o: BundleOptions = {}): Promise<BundleResult> {
  const log = o.log ?? ((s: string) => console.error(s));
  const root = resolve(o.root ?? Deno.cwd());
  const out = resolve(root, o.out ?? ".bundle/geo-r1-bundle.tar");
  const asTar = out.endsWith(".tar");
  const level = Math.max(0, Math.min(9, Math.round(o.xzLevel ?? 6)));
  const xz = `xz -T0 -${level}`;
  await checkBundleInputs(root);
  await Deno.mkdir(dirname(out), { recursive: true });
  const stage = await Deno.makeTempDir({ dir: dirname(out), prefix: ".bundle-stage-" });
  try {
    const dir = join(stage, "geo-r1-bundle");
    await Deno.mkdir(join(dir, "app"), { recursive: true });
    const files = await copyProjectFiles(root, join(dir, "app"));
    log(`bundle: ${files.length} project files`);
    const denoBin = o.denoBinary ?? Deno.execPath();
    log(`bundle: compressing ${denoBin} (xz -${level})`);
    await exec("sh", ["-c", `${xz} -c "$1" > "$2"`, "sh", denoBin, join(dir, "deno.xz")]);
    log(`bundle: compressing node_modules without *.map (xz -${level})`);
    await packNodeModules(root, join(dir, "node_modules.tar.xz"), xz);
    const libs = await copyLibs(o.includeLibs ?? [], join(dir, "lib"));
    await Deno.writeTextFile(join(dir, "run.sh"), runScript(), { mode: 0o755 });
    await Deno.chmod(join(dir, "run.sh"), 0o755);
    const manifest = await bundleManifest(root, dir, files.length, libs);
    await Deno.writeTextFile(join(dir, "BUNDLE.json"), JSON.stringify(manifest, null, 2) + "\n");
    await publish(stage, dir, out, asTar);
    const bytes = asTar
      ? (await Deno.stat(out)).size
      : Object.values(manifest.payloads).reduce((s, p) => s + p.bytes, 0);
    log(`bundle: wrote ${relative(Deno.cwd(), out) || out} (${(bytes / 1048576).toFixed(1)} MiB)`);
    return { path: out, files: files.length, bytes, manifest };
  } finally {
    await Deno.remove(stage, { recursive: true }).catch(() => {});
  }
}

/** `root` must be the project root with its node_modules installed, and `tar` and `xz` on PATH. */
async function checkBundleInputs(root: string): Promise<void> {
  for (const f of ["deno.json", "main.ts"]) {
    if (!(await isFile(join(root, f)))) throw new Error(`${root} is not the project root (no ${f})`);
  }
  try {
    await Deno.lstat(join(root, "node_modules"));
  } catch {
    throw new Error(
      `${join(root, "node_modules")} is missing: run a task once (e.g. deno task exp --help) to install it`,
    );
  }
  for (const tool of ["tar", "xz"]) {
    if ((await tryExec(tool, ["--version"])) === null) throw new Error(`bundle needs '${tool}' on PATH`);
  }
}

/** Copy the {@link projectFiles} of `root` into `app`; returns their paths. */
async function copyProjectFiles(root: string, app: string): Promise<string[]> {
  const files = await projectFiles(root);
  for (const rel of files) {
    const dst = join(app, rel);
    await Deno.mkdir(dirname(dst), { recursive: true });
    await Deno.copyFile(join(root, rel), dst);
  }
  return files;
}

/**
 * Pack `root`'s node_modules without source maps (symlinks kept as links) into `dst`, compressed by `xz`.
 * Exit code 1 of GNU tar only means a file changed while being read: other deno processes touch
 * node_modules/.deno's lock and setup cache.
 */
async function packNodeModules(root: string, dst: string, xz: string): Promise<void> {
  await exec("tar", [
    "--exclude=*.map",
    "--warning=no-file-changed",
    "-I",
    xz,
    "-cf",
    dst,
    "-C",
    root,
    "node_modules",
  ], { okCodes: [1] });
}

/** Copy the extra libraries into `libDir` (created when there is one); returns their file names. */
async function copyLibs(includeLibs: string[], libDir: string): Promise<string[]> {
  const libs: string[] = [];
  for (const lib of includeLibs) {
    await Deno.mkdir(libDir, { recursive: true });
    await Deno.copyFile(lib, join(libDir, basename(lib)));
    libs.push(basename(lib));
  }
  return libs;
}

/** BUNDLE.json of the bundle assembled in `dir`: versions, git commit and state, payload sizes and hashes. */
async function bundleManifest(
  root: string,
  dir: string,
  files: number,
  libs: string[],
): Promise<BundleManifest> {
  const commit = (await tryExec("git", ["rev-parse", "HEAD"], root))?.trim() || null;
  const status = await tryExec("git", ["status", "--porcelain"], root);
  const payloads: BundleManifest["payloads"] = {};
  for (const p of ["deno.xz", "node_modules.tar.xz"]) {
    payloads[p] = { bytes: (await Deno.stat(join(dir, p))).size, sha256: await sha256File(join(dir, p)) };
  }
  return {
    format: "geo-r1/bundle",
    version: 1,
    created: new Date().toISOString(),
    deno: Deno.version.deno,
    os: Deno.build.os,
    arch: Deno.build.arch,
    git: { commit, dirty: status === null ? null : status.trim().length > 0 },
    permissions: BUNDLE_PERMISSIONS,
    files,
    payloads,
    libs,
  };
}

/** Put the assembled bundle `dir` (inside `stage`) at `out`: a tar file or the directory, replacing `out`. */
async function publish(stage: string, dir: string, out: string, asTar: boolean): Promise<void> {
  const tmp = `${out}.tmp-${Deno.pid}`;
  if (asTar) {
    await exec("tar", ["-cf", tmp, "-C", stage, basename(dir)]);
  } else {
    await Deno.rename(dir, tmp);
  }
  await Deno.remove(out, { recursive: true }).catch(() => {});
  await Deno.rename(tmp, out);
}
