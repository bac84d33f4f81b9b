/**
 * runDirStatus: a run is complete only with a done manifest, a readable eval.json and its report.html. `exp`
 * marks the manifest done before writing the report, so a run killed in between must be resumed (which only
 * rewrites the report), not skipped (seen once in the sweep e2e test: a skipped run had no report.html).
 */
import { assertEquals } from "./assert.ts";
import { join } from "node:path";
import { runDirStatus } from "../lib/sweep/state.ts";

Deno.test("runDirStatus: done manifest + eval.json without report.html is not complete", async () => {
  const dir = await Deno.makeTempDir({ prefix: "geo_r1_state_" });
  try {
    assertEquals((await runDirStatus(join(dir, "missing"))).complete, false);
    const manifest = { status: "done", startedAt: "2026-12-01T00:00:00Z", endedAt: "2026-12-01T00:01:00Z" };
    await Deno.writeTextFile(join(dir, "manifest.json"), JSON.stringify(manifest));
    await Deno.writeTextFile(join(dir, "eval.json"), JSON.stringify({ rows: [] }));
    const noReport = await runDirStatus(dir);
    assertEquals([noReport.exists, noReport.hasEval, noReport.complete], [true, true, false]);
    await Deno.writeTextFile(join(dir, "report.html"), "<!DOCTYPE html><title>r</title>");
    assertEquals((await runDirStatus(dir)).complete, true);
    await Deno.writeTextFile(join(dir, "manifest.json"), JSON.stringify({ ...manifest, status: "running" }));
    assertEquals((await runDirStatus(dir)).complete, false);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
