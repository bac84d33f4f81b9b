/**
 * Resume refuses a run started with a different spec, git commit or deno.lock (exit 2, a message naming
 * each mismatch) unless --force-resume, which is recorded in the manifest. Least privilege: the deno tasks
 * grant scoped permissions and no network, and neither a spec nor an option can make the harness read or
 * write outside the project and the granted run/cache directories.
 */
import { join } from "node:path";
import { assert, assertEquals } from "../assert.ts";
import { cli, expArgs, ROOT, scratch } from "./helpers.ts";
import { loadSpec, resolveExperimentPath } from "../../lib/spec/load.ts";
import { RunDir } from "../../lib/run/rundir.ts";
import type { Manifest } from "../../lib/run/records.ts";

const backend = { name: "wasm", adapter: null, isFallbackAdapter: null };

async function prepared(runs: string, opts: { resume?: boolean; forceResume?: boolean } = {}) {
  const { spec, hash } = await loadSpec(resolveExperimentPath("geo-r1"), {
    preset: "tiny",
    sets: ["backend=wasm"],
  });
  return RunDir.prepare({ runsDir: runs, spec, hash, backend, tfjsVersion: "test", ...opts });
}

Deno.test("reliability: resume refuses a changed spec / git commit / deno.lock; --force-resume is recorded", async (t) => {
  const tmp = await Deno.makeTempDir({ prefix: "geo-r1-rel-resume-" });
  try {
    const s = scratch(tmp);
    const { run } = await prepared(s.runs);
    const orig = await run.readManifest();
    await t.step("an existing run dir without --resume is refused", async () => {
      const r = await cli("exp", expArgs(s, "geo-r1"), { dirs: [tmp] });
      assertEquals(r.code, 2, r.stderr);
      assert(/run directory .* already exists \(status: running\); pass --resume/.test(r.stderr), r.stderr);
    });
    const cases: [string, (m: Manifest) => void, RegExp][] = [
      [
        "spec",
        (m) => void (m.specHash = "0".repeat(64)),
        /spec hash: run has 000000000000, now [0-9a-f]{12}/,
      ],
      ["git commit", (m) => void (m.git.commit = "f".repeat(40)), /git commit: run has ffffffffffff, now /],
      ["deno.lock", (m) => void (m.lockHash = "e".repeat(64)), /deno\.lock hash: run has eeeeeeeeeeee, now /],
    ];
    for (const [what, tamper, re] of cases) {
      await t.step(`changed ${what}: exp --resume exits 2 naming the mismatch`, async () => {
        const m = structuredClone(orig);
        tamper(m);
        await run.writeManifest(m);
        const r = await cli("exp", expArgs(s, "geo-r1", ["--resume"]), { dirs: [tmp] });
        assertEquals(r.code, 2, r.stderr);
        assert(
          r.stderr.includes(`refusing to resume ${run.path}`) || r.stderr.includes("refusing to resume"),
        );
        assert(re.test(r.stderr), r.stderr);
        assert(r.stderr.includes("pass --force-resume"), r.stderr);
        assertEquals((await run.readManifest()).specHash, m.specHash, "manifest untouched");
      });
    }
    await t.step("--force-resume continues and records the overridden mismatches", async () => {
      const m = structuredClone(orig);
      m.git.commit = "f".repeat(40);
      m.lockHash = "e".repeat(64);
      await run.writeManifest(m);
      const p = await prepared(s.runs, { resume: true, forceResume: true });
      assertEquals(p.resumed, true);
      assertEquals(p.mismatches.length, 2);
      const stored = await run.readManifest();
      assertEquals(stored.forceResume?.length, 1);
      assert(/git commit: run has ffffffffffff/.test(stored.forceResume![0].mismatches[0]));
      assert(/deno\.lock hash/.test(stored.forceResume![0].mismatches[1]));
      assertEquals(stored.git.commit, orig.git.commit, "the manifest now names the current commit");
    });
  } finally {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
});

Deno.test("reliability: tasks have scoped permissions and no network", () => {
  const tasks = JSON.parse(Deno.readTextFileSync(join(ROOT, "deno.json"))).tasks as Record<string, string>;
  for (const name of ["exp", "report", "data"]) {
    const flags = tasks[name].split(/\s+/).filter((f) => f.startsWith("--allow-") || f === "-A");
    assert(!flags.some((f) => f.startsWith("--allow-net") || f === "-A" || f === "--allow-all"), name);
    for (const f of flags) assert(f.includes("="), `${name}: ${f} is not scoped`);
  }
  assert(/--allow-write=runs,cache,reports /.test(tasks.exp), tasks.exp);
});

Deno.test("reliability: a spec or option cannot make exp read or write outside its directories", async (t) => {
  const tmp = await Deno.makeTempDir({ prefix: "geo-r1-rel-perm-" });
  try {
    const specs = join(tmp, "specs");
    await Deno.mkdir(specs);
    await Deno.writeTextFile(join(tmp, "outside.json"), JSON.stringify({ name: "outside" }));
    const write = (n: string, v: unknown) => Deno.writeTextFile(join(specs, n), JSON.stringify(v));
    const base = join(ROOT, "experiments", "base.json");
    const rel = (p: string) => join(...specs.split("/").filter(Boolean).map(() => "..")) + p;
    await write("up.json", { extends: "../outside.json" });
    await write("abs.json", { extends: rel("/etc/passwd") });
    await write("name.json", { extends: rel(base), name: "../../escape" });
    const s = scratch(tmp);
    const cases: [string, string[], RegExp][] = [
      [
        "extends ../ outside the project and the spec's folder",
        [join(specs, "up.json")],
        /\/extends: \.\.\/outside\.json resolves outside the project/,
      ],
      [
        "extends /etc/passwd (via ../..)",
        [join(specs, "abs.json")],
        /\/extends: .*etc\/passwd resolves outside the project/,
      ],
      ["name with ../", [join(specs, "name.json")], /\/name: .*pattern/],
      ["--set name=../../x", ["geo-r1", "--set", "name=../../x"], /\/name: .*pattern/],
    ];
    for (const [what, args, re] of cases) {
      await t.step(what, async () => {
        const r = await cli("exp", [...args, "--preset", "tiny", "--runs-dir", s.runs, "--dry-run"], {
          dirs: [specs],
        });
        assertEquals(r.code, 2, r.stderr);
        assert(re.test(r.stderr), `${what}: ${r.stderr}`);
      });
    }
    await t.step(
      "--runs-dir outside the granted directories: permission error, nothing written",
      async () => {
        const elsewhere = join(tmp, "elsewhere");
        const r = await cli("exp", [
          "geo-r1",
          "--preset",
          "tiny",
          "--runs-dir",
          elsewhere,
          "--cache-dir",
          elsewhere,
        ]);
        assertEquals(r.code, 2, r.stderr);
        assert(
          /--runs-dir: .*elsewhere is outside the tree this command may (read|write)/.test(r.stderr),
          r.stderr,
        );
        assert(r.stderr.includes("--allow-write=runs,cache,reports,DIR"), r.stderr);
        assert(!(await Deno.stat(elsewhere).then(() => true, () => false)), "nothing created");
      },
    );
  } finally {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
});
