/**
 * The offline bundle: the file list and run.sh (fast), and one end-to-end check: pack the real project
 * (xz level 0), unpack it in a temp dir, and run `./run.sh exp --help` and a tiny benchmark with an empty
 * HOME and no network (`unshare -n` where allowed, else proxies pointing at a dead port).
 * @module
 */
import { join } from "node:path";
import { assert, assertEquals, assertOk } from "./assert.ts";
import {
  BUNDLE_PERMISSIONS,
  createBundle,
  EXCLUDED_DIRS,
  projectFiles,
  runScript,
} from "../lib/bundle/mod.ts";
import { command } from "../lib/cli/bundle.ts";

const ROOT = new URL("..", import.meta.url).pathname;

Deno.test("bundle: project files include the entry points and leave outputs out", async () => {
  const files = await projectFiles(ROOT);
  for (const f of ["deno.json", "deno.lock", "main.ts", "lib/bundle/mod.ts"]) assertOk(files.includes(f), f);
  for (const f of files) assertOk(!EXCLUDED_DIRS.includes(f.split("/")[0]), f);
  assertEquals([...files].sort(), files);
});

Deno.test("bundle: run.sh runs main.ts cached-only with the task permissions and DENO_DIR inside", () => {
  const sh = runScript();
  assertOk(sh.startsWith("#!/bin/sh"));
  assertOk(sh.includes('export DENO_DIR="$HERE/deno_dir"'));
  assertOk(sh.includes('run --cached-only $PERMS main.ts "$@"'));
  assertOk(sh.includes("bench/run.ts"));
  for (const p of BUNDLE_PERMISSIONS) assertOk(sh.includes(p), p);
  assertOk(sh.includes("VK_DRIVER_FILES"));
});

Deno.test("bundle: the command rejects a bad --xz-level", async () => {
  await assert.rejects(() => command.run({ "xz-level": "12" }, []), /xz-level/);
});

async function canUnshareNet(): Promise<boolean> {
  try {
    return (await new Deno.Command("unshare", { args: ["-n", "true"], stdout: "null", stderr: "null" })
      .output())
      .success;
  } catch {
    return false;
  }
}

async function runOffline(dir: string, home: string, args: string[], unshare: boolean) {
  const env: Record<string, string> = { PATH: "/usr/bin:/bin", HOME: home };
  if (!unshare) {
    // No network namespace: any HTTP(S) attempt goes to a closed port and fails fast.
    for (const k of ["HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"]) {
      env[k] = "http://127.0.0.1:9";
    }
    env.NPM_CONFIG_REGISTRY = "http://127.0.0.1:9/";
  }
  const cmd = unshare ? "unshare" : join(dir, "run.sh");
  const argv = unshare ? ["-n", join(dir, "run.sh"), ...args] : args;
  const out = await new Deno.Command(cmd, {
    args: argv,
    env,
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  return {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
}

Deno.test({
  name: "bundle: packs, unpacks and runs offline (exp --help, tiny bench)",
  // Packing compresses ~95 MB of Deno and ~180 MB of node_modules: about a minute on 2 cores.
  ignore: Deno.build.os !== "linux" || Deno.env.get("GEO_R1_SKIP_BUNDLE_TEST") === "1",
  async fn() {
    const tmp = await Deno.makeTempDir({ prefix: "geo-r1-bundle-test-" });
    try {
      const tar = join(tmp, "b.tar");
      const r = await createBundle({ root: ROOT, out: tar, xzLevel: 0, log: () => {} });
      assertEquals(r.path, tar);
      assertOk(r.files > 10);
      const x = await new Deno.Command("tar", { args: ["-xf", tar, "-C", tmp] }).output();
      assertOk(x.success);
      const dir = join(tmp, "geo-r1-bundle");
      const manifest = JSON.parse(await Deno.readTextFile(join(dir, "BUNDLE.json")));
      assertEquals(manifest.format, "geo-r1/bundle");
      assertOk(manifest.payloads["deno.xz"].bytes > 1e6);
      const home = join(tmp, "home");
      await Deno.mkdir(home);
      const unshare = await canUnshareNet();
      const help = await runOffline(dir, home, ["exp", "--help"], unshare);
      assertEquals(help.code, 0, help.stderr);
      assertOk(help.stdout.includes("usage: deno task exp"), help.stdout);
      const bench = await runOffline(
        dir,
        home,
        ["bench", "--backend", "wasm", "--preset", "tiny", "--quick", "--skip-train"],
        unshare,
      );
      assertEquals(bench.code, 0, bench.stderr);
      const summary = JSON.parse(bench.stdout);
      assertEquals(summary.backend, "wasm");
      assertEquals(summary.preset, "tiny");
      assertOk(summary.rollout.length > 0);
      // Nothing was written to HOME (DENO_DIR lives in the bundle).
      assertEquals([...Deno.readDirSync(home)].length, 0);
    } finally {
      await Deno.remove(tmp, { recursive: true }).catch(() => {});
    }
  },
});
