/**
 * The paper-tables report (`report --paper`): our Table 1 and Table 2 analogues beside the paper's published
 * numbers, the Task-SFT row taken from a task-sft run's own last stage, missing rows tolerated, and the page
 * drawn in headless Chromium (skips, saying why, where Chromium is not installed).
 */
import { join } from "node:path";
import { assert, assertEquals } from "./assert.ts";
import { writeFixtureRun } from "./helpers_report.ts";
import { cli } from "./helpers_cli.ts";
import { checkHtmlInBrowser, findChromium, fmtCi, PAPER_TABLE1, PAPER_TABLE2 } from "../lib/report/mod.ts";
import type { EvalFile, Manifest } from "../lib/run/records.ts";

/** The cells of the table row whose first cell is `label` (text, tags stripped). */
function rowCells(html: string, table: number, label: string): string[] | null {
  const t = html.split("<table")[table + 1] ?? "";
  for (const tr of t.split("<tr>").slice(1)) {
    const cells = [...tr.matchAll(/<td[^>]*>(.*?)<\/td>/g)].map((m) =>
      m[1].replace(/<[^>]+>/g, "").replaceAll("&ndash;", "–").replaceAll("&#39;", "'")
    );
    if (cells[0] === label) return cells;
  }
  return null;
}

/** Turn a geo-r1 fixture run into a task-sft run: stages base and sft, rows Base and Geo-SFT. */
async function makeTaskSft(dir: string): Promise<EvalFile> {
  const mPath = join(dir, "manifest.json");
  const m = JSON.parse(await Deno.readTextFile(mPath)) as Manifest;
  m.stages = m.stages.filter((s) => s.name === "base" || s.name === "sft");
  await Deno.writeTextFile(mPath, JSON.stringify(m));
  const ePath = join(dir, "eval.json");
  const ev = JSON.parse(await Deno.readTextFile(ePath)) as EvalFile;
  ev.rows = ev.rows.filter((r) => r.stage === "base" || r.stage === "sft");
  await Deno.writeTextFile(ePath, JSON.stringify(ev));
  return ev;
}

Deno.test("paper report: our rows beside the paper's numbers, Task-SFT from a task-sft run, drawn in Chromium", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "geo-r1-paper-" });
  try {
    const r1 = join(tmp, "geo-r1-s1");
    const r2 = join(tmp, "geo-r1-s2");
    const ts = join(tmp, "task-sft-s3");
    await writeFixtureRun(r1, { seed: 1 });
    await writeFixtureRun(r2, { seed: 2 });
    await writeFixtureRun(ts, { seed: 3, name: "task-sft" });
    const taskEval = await makeTaskSft(ts);
    const out = join(tmp, "paper.html");
    const r = await cli([
      "report",
      "--paper",
      r1,
      r2,
      ts,
      "--out",
      out,
      "--reports-dir",
      join(tmp, "reports"),
    ]);
    assertEquals(r.code, 0, r.err);
    const html = await Deno.readTextFile(out);

    // Table 2: every paper column is headed as the paper's; values from lib/report/paper_numbers.ts.
    assert(
      html.includes("Paper&#39;s accuracy") || html.includes("Paper's accuracy"),
      "paper columns labelled",
    );
    const base = rowCells(html, 0, "Base")!;
    assertEquals(base.slice(4), ["Qwen2.5-VL-7B", "19.0%", "204.6"]);
    const r1row = rowCells(html, 0, "Geo-R1")!;
    assertEquals(r1row[1], "2");
    assertEquals(r1row.slice(4), ["Geo-R1", `${PAPER_TABLE2["Geo-R1"].accuracyPct.toFixed(1)}%`, "378.8"]);
    // Task-SFT: the task-sft run's own sft row (one run: its own CI), not pooled with Geo-SFT.
    const sftRow = taskEval.rows.find((x) => x.stage === "sft")!;
    const task = rowCells(html, 0, "Task-SFT")!;
    assertEquals(task[1], "1");
    assertEquals(task[2], fmtCi(sftRow.pairing!.accuracy, sftRow.pairing!.ci, { scale: 100, unit: "%" }));
    assert(task[4].includes("GLOBE-7B"), task[4]);
    assertEquals(rowCells(html, 0, "Geo-SFT")![1], "2");

    // Table 1: our thresholds, then the paper's; GeoCLIP as a paper-only row.
    const t1 = rowCells(html, 1, "Geo-R1")!;
    assertEquals(t1.slice(6), ["Geo-R1", ...PAPER_TABLE1[1].withinPct.map((v) => `${v.toFixed(2)}%`)]);
    const clip = rowCells(html, 1, "(paper only) GeoCLIP")!;
    assertEquals(clip.slice(1, 6), ["–", "–", "–", "–", "–"]);
    assertEquals(clip.slice(7), ["29.28%", "52.52%", "66.85%", "84.07%", "93.33%"]);

    // Missing rows: one run without Geo-R1-Zero and Task-SFT keeps the paper's columns and says so.
    const solo = join(tmp, "solo.html");
    const s = await cli(["report", "--paper", ts, "--out", solo]);
    assertEquals(s.code, 0, s.err);
    const soloHtml = await Deno.readTextFile(solo);
    assert(soloHtml.includes("No run for: Geo-SFT, Geo-R1-Zero, Geo-R1"), "missing rows named");
    assertEquals(rowCells(soloHtml, 0, "Geo-R1-Zero")!.slice(2, 4), ["–", "–"]);
    assertEquals(rowCells(soloHtml, 0, "Geo-R1-Zero")!.slice(5), ["78.1%", "587.4"]);

    // Bad input: a missing run directory writes nothing.
    const bad = await cli(["report", "--paper", r1, join(tmp, "nope"), "--out", join(tmp, "bad.html")]);
    assertEquals(bad.code, 2);
    assert(bad.err.includes("run directory not found"), bad.err);
    assertEquals([...Deno.readDirSync(tmp)].some((e) => e.name === "bad.html"), false);

    const chromium = findChromium();
    if (!chromium) {
      console.log(
        "paper_report_test: browser check SKIPPED: chromium not found; run .ci/install-chromium.sh",
      );
      return;
    }
    const b = await checkHtmlInBrowser(out, { chromium });
    assertEquals(b.consoleErrors, []);
    assertEquals(b.networkRequests, []);
    assertEquals(b.canvases.length, 2);
    for (const c of b.canvases) assert(c.painted > 1000 && c.colors >= 3, `${c.title}: ${c.painted} px`);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
