/**
 * Every output directory is checked against the command's permissions before any work: an `exp` whose
 * `--reports-dir` (or `--cache-dir`, `--runs-dir`) lies outside what `deno task exp` may write stops at
 * once with exit 2 and one line naming the option, and leaves no run directory and no trained stage.
 */
import { join } from "node:path";
import { assert, assertEquals } from "../assert.ts";
import { cli, expArgs, scratch, taskFlags } from "./helpers.ts";

Deno.test("reliability: an output dir outside the allowed tree is refused before any training", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "geo-r1-rel-early-" });
  const outside = await Deno.makeTempDir({ prefix: "geo-r1-rel-outside-" });
  try {
    const s = scratch(tmp);
    for (const opt of ["--reports-dir", "--cache-dir", "--runs-dir"]) {
      const args = expArgs(s, "base");
      args[args.indexOf(opt) + 1] = join(outside, "x");
      const r = await cli("exp", args, { flags: taskFlags("exp", [s.base]) });
      assertEquals(r.code, 2, `${opt}: ${r.stderr}`);
      assert(r.stderr.includes(opt) && r.stderr.includes(join(outside, "x")), `${opt}: ${r.stderr}`);
      assert(!/stage base/.test(r.stderr), `${opt}: refused before any stage:\n${r.stderr}`);
      assertEquals([...Deno.readDirSync(tmp)].map((e) => e.name), [], `${opt}: nothing written`);
      assertEquals([...Deno.readDirSync(outside)].map((e) => e.name), [], `${opt}: nothing written outside`);
    }
  } finally {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    await Deno.remove(outside, { recursive: true }).catch(() => {});
  }
});
