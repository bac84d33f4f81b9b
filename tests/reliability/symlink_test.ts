/**
 * Symlinks do not lead out of the allowed tree. Deno checks a permission against the path as written, not
 * where a link leads, so the harness resolves each path it reads or writes to its real path first: a runs,
 * cache or reports directory that links elsewhere, a run file (spec.resolved.json) that links to a file
 * elsewhere, and a spec file or `extends` target that links elsewhere are refused with exit 2 and one line
 * naming the path, and nothing of the linked file reaches the output (stderr, report.html, reports/).
 */
import { join } from "node:path";
import { assert, assertEquals } from "../assert.ts";
import { cli, exp, expArgs, onlyRun, scratch, taskFlags } from "./helpers.ts";

const SECRET = "TOPSECRET-geo-r1-symlink-test";

Deno.test("reliability: symlinks out of the allowed tree are refused, naming the link", async (t) => {
  const tmp = await Deno.makeTempDir({ prefix: "geo-r1-rel-link-" });
  const outside = await Deno.makeTempDir({ prefix: "geo-r1-rel-elsewhere-" });
  const secretFile = join(outside, "secret.json");
  const nothingOutside = () =>
    assertEquals(
      [...Deno.readDirSync(outside)].map((e) => e.name),
      ["secret.json"],
      "nothing written outside",
    );
  try {
    await Deno.writeTextFile(secretFile, `${SECRET} first line\n{"name": "x"}\n`);
    const flags = (task: string) => taskFlags(task, [tmp]);
    let n = 0;
    const fresh = async () => {
      const s = scratch(join(tmp, `work${n++}`));
      await Deno.mkdir(s.base, { recursive: true });
      return s;
    };

    for (const opt of ["--runs-dir", "--cache-dir", "--reports-dir"]) {
      await t.step(`${opt} links out of the tree`, async () => {
        const s = await fresh();
        const link = join(s.base, "escape");
        await Deno.symlink(outside, link);
        const args = expArgs(s, "base");
        args[args.indexOf(opt) + 1] = link;
        const r = await cli("exp", args, { flags: flags("exp") });
        assertEquals(r.code, 2, r.stderr);
        assert(r.stderr.includes(link) && r.stderr.includes(outside), r.stderr);
        assert(!/stage base/.test(r.stderr), r.stderr);
        nothingOutside();
      });
    }

    await t.step("a spec file that links elsewhere", async () => {
      const s = await fresh();
      const link = join(s.base, "linked-spec.json");
      await Deno.symlink(secretFile, link);
      const r = await cli("exp", [link, "--dry-run"], { flags: flags("exp") });
      assertEquals(r.code, 2, r.stderr);
      assert(r.stderr.includes(link) && !r.stderr.includes("TOPSECRET"), r.stderr);
    });

    await t.step("an extends target that links elsewhere", async () => {
      const s = await fresh();
      const link = join(s.base, "parent.json");
      await Deno.symlink(secretFile, link);
      const child = join(s.base, "child.json");
      await Deno.writeTextFile(child, JSON.stringify({ extends: "./parent.json", name: "child" }));
      const r = await cli("exp", [child, "--dry-run"], { flags: flags("exp") });
      assertEquals(r.code, 2, r.stderr);
      assert(r.stderr.includes(link) && !r.stderr.includes("TOPSECRET"), r.stderr);
    });

    await t.step("a run's spec.resolved.json that links elsewhere, reported", async () => {
      const s = await fresh();
      const a = await exp(s, "base");
      assertEquals(a.code, 0, a.stderr);
      const run = await onlyRun(s.runs);
      await Deno.remove(join(run, "spec.resolved.json"));
      await Deno.symlink(secretFile, join(run, "spec.resolved.json"));
      const r = await cli("report", [run, "--reports-dir", s.reports], { flags: flags("report") });
      assertEquals(r.code, 2, r.stderr);
      assert(r.stderr.includes(join(run, "spec.resolved.json")) && !r.stderr.includes("TOPSECRET"), r.stderr);
      for (
        const f of [
          join(run, "report.html"),
          ...[...Deno.readDirSync(s.reports)].map((e) => join(s.reports, e.name)),
        ]
      ) {
        assert(!(await Deno.readTextFile(f)).includes("TOPSECRET"), `${f} holds the linked file's contents`);
      }
    });
    nothingOutside();
  } finally {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    await Deno.remove(outside, { recursive: true }).catch(() => {});
  }
});
