/**
 * A crash while the run directory is being assembled, or while reports/index.html is being written, leaves
 * temp files behind; the next `exp` (fresh or `--resume`) removes them, so no `.tmp` outlives a crash.
 */
import { join } from "node:path";
import { assert, assertEquals } from "../assert.ts";
import { exp, scratch } from "./helpers.ts";

async function temps(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string) => {
    for await (const e of Deno.readDir(d)) {
      if (/\.tmp$/.test(e.name)) out.push(join(d, e.name));
      if (e.isDirectory) await walk(join(d, e.name));
    }
  };
  await walk(dir);
  return out;
}

Deno.test("reliability: temp files of a crash in run-dir creation or reports/index.html are cleaned", async (t) => {
  const tmp = await Deno.makeTempDir({ prefix: "geo-r1-rel-left-" });
  try {
    await t.step("crash while the run directory is assembled", async () => {
      const s = scratch(join(tmp, "rundir"));
      const a = await exp(s, "base", ["--dry-run"]);
      const runId = JSON.parse(a.stdout).runId as string;
      const b = await exp(s, "base", [], { GEO_R1_FAULT: `crash:.tmp/manifest.json` });
      assertEquals(b.code, 137, b.stderr);
      assert((await temps(s.runs)).some((p) => p.includes(`.${runId}.`)), "the crash left the temp dir");
      const c = await exp(s, "base", ["--resume"]);
      assertEquals(c.code, 0, c.stderr);
      assertEquals(await temps(s.base), []);
    });
    await t.step("crash while reports/index.html is written", async () => {
      const s = scratch(join(tmp, "index"));
      const b = await exp(s, "base", [], { GEO_R1_FAULT: "crash:index.html" });
      assertEquals(b.code, 137, b.stderr);
      assert(
        (await temps(s.reports)).some((p) => p.includes("index.html.")),
        "the crash left index.html.*.tmp",
      );
      const c = await exp(s, "base", ["--resume"]);
      assertEquals(c.code, 0, c.stderr);
      assertEquals(await temps(s.base), []);
      assert((await Deno.readTextFile(join(s.reports, "index.html"))).trimEnd().endsWith("</html>"));
    });
  } finally {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
});
