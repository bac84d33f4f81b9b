/**
 * The Table 1 analogue in the comparison report: baseline rows beside the model rows, each row's paired
 * difference from Base with a cluster-bootstrap CI (hand-worked), the nearest-training-location note, and
 * the page in headless Chromium (charts drawn, no errors, no requests).
 */
import { join } from "node:path";
import { assert, assertEquals } from "./assert.ts";
import { writeFixtureRun } from "./helpers_report.ts";
import { checkHtmlInBrowser, findChromium, writeComparisonReport } from "../lib/report/mod.ts";
import { readRunRecords } from "../lib/report/read.ts";
import { pairedGeoDiffs } from "../lib/report/paired.ts";
import type { EvalFile, StageEval } from "../lib/run/records.ts";

// Four test views in two region cells. At 25 km Base hits view 0, Geo-R1 views 0 and 2: per-view
// differences [0, 0 | 1, 0]. Resampling the two cells gives mean 0 (aa), 1/4 (ab, ba) or 1/2 (bb), so the
// 95% interval is [0, 0.5] around the mean 0.25.
const CELLS = ["r5:20:30", "r5:20:30", "r5:10:7", "r5:10:7"];
const ERRORS: Record<string, number[]> = {
  "Base": [10, 3000, 30, 800],
  "Geo-R1": [10, 100, 20, 900],
  "GeoCLIP-like": [400, 400, 400, 400],
};

function withViews(row: StageEval): StageEval {
  if (!row.geolocate) return row;
  const errorsKm = ERRORS[row.label];
  const views = errorsKm ? { errorsKm, cells: CELLS } : {};
  return {
    ...row,
    geolocate: { ...row.geolocate, ...views, bootstrap: "cluster", clusters: 2, parseRate: 1 },
  };
}

async function fixtures(tmp: string): Promise<string[]> {
  const dirs: string[] = [];
  for (const seed of [1, 2]) {
    const d = join(tmp, `run${seed}`);
    await writeFixtureRun(d, { seed, gallery: 2 });
    const path = join(d, "eval.json");
    const ev: EvalFile = JSON.parse(await Deno.readTextFile(path));
    ev.rows = ev.rows.map(withViews);
    await Deno.writeTextFile(path, JSON.stringify(ev));
    dirs.push(d);
  }
  // A baseline run of seed 1: one geolocation row with its nearest-training-location figures.
  const b = join(tmp, "geoclip1");
  await writeFixtureRun(b, { seed: 1, name: "geoclip", runId: "geoclip-0001", gallery: 0 });
  const ev: EvalFile = JSON.parse(await Deno.readTextFile(join(b, "eval.json")));
  const base = ev.rows.find((r) => r.label === "Base")!;
  ev.rows = [withViews({
    stage: "geoclip",
    label: "GeoCLIP-like",
    stageHash: "feedfacefeedface",
    baseline: "geoclip",
    gallery: [],
    geolocate: {
      ...base.geolocate!,
      galleryOracle: { n: 20000, thresholds: { "1": 0, "25": 0.072, "200": 0.715, "750": 1, "2500": 1 } },
    },
  })];
  await Deno.writeTextFile(join(b, "eval.json"), JSON.stringify(ev));
  dirs.push(b);
  return dirs;
}

Deno.test("pairedGeoDiffs() pairs rows with Base by seed and resamples whole cells (hand-worked)", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "geo-paired-" });
  try {
    const runs = await Promise.all((await fixtures(tmp)).map((d) => readRunRecords(d)));
    const diffs = pairedGeoDiffs(runs, ["Base", "Geo-SFT", "Geo-R1", "GeoCLIP-like"], "Base", {
      resamples: 4000,
    });
    // Geo-SFT rows have no per-view errors (as in older eval files): left out.
    assertEquals(diffs.map((d) => d.label), ["Geo-R1", "GeoCLIP-like"]);
    const r1 = diffs[0];
    assertEquals(r1.seeds, [1, 2]);
    assertEquals([r1.n, r1.clusters], [4, 2]);
    assertEquals(r1.thresholds["1"], { mean: 0, ci: [0, 0] });
    assertEquals(r1.thresholds["25"], { mean: 0.25, ci: [0, 0.5] });
    // 200 km: Base [1, 0, 1, 0], Geo-R1 [1, 1, 1, 0]: differences [0, 1 | 0, 0].
    assertEquals(r1.thresholds["200"], { mean: 0.25, ci: [0, 0.5] });
    // The baseline has seed 1 only; at 750 km it hits all four, Base views 0 and 2: [0, 1 | 0, 1].
    const g = diffs[1];
    assertEquals(g.seeds, [1]);
    assertEquals(g.thresholds["750"], { mean: 0.5, ci: [0.5, 0.5] });
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

const chromium = findChromium();

Deno.test("comparison report: Table 1 analogue with baselines, differences from Base, and the cap note", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "geo-table1-" });
  try {
    const dirs = await fixtures(tmp);
    const out = join(tmp, "cmp.html");
    await writeComparisonReport(dirs, out, { reportsDir: join(tmp, "reports") });
    const html = await Deno.readTextFile(out);
    assert(html.includes("Table 1 analogue"), "table caption");
    assert(html.includes("GeoCLIP-like"), "baseline row");
    assert(html.includes("Parse rate") && html.includes("Repeated 6-gram"), "new metric columns");
    assert(html.includes("Difference from Base in percentage points"), "paired table");
    assert(html.includes("+25.0 [+0.0, +50.0]"), "Geo-R1 at 25 km, hand-worked");
    assert(
      html.includes("cluster bootstrap that resamples whole held-out region cells (2 cells"),
      "bootstrap named",
    );
    assert(
      html.includes("nearest of 20000 training locations lies within 1 / 25 / 200 km of 0.0% / 7.2% / 71.5%"),
    );
    // Baselines alone: no pairing charts drawn empty, a note instead.
    const only = join(tmp, "only.html");
    await writeComparisonReport([dirs[2]], only, { reportsDir: join(tmp, "reports") });
    const onlyHtml = await Deno.readTextFile(only);
    assert(onlyHtml.includes("No pairing evaluation in these runs"));
    assert(!onlyHtml.includes("Accuracy vs completion length (mean over runs"));
    if (!chromium) {
      console.log("geo_table_report_test: browser part SKIPPED: chromium not found");
      return;
    }
    const r = await checkHtmlInBrowser(out, { chromium });
    assertEquals(r.consoleErrors, []);
    assertEquals(r.networkRequests, []);
    const charts = [...html.matchAll(/<figure class="chart/g)].length;
    assertEquals(r.ready?.charts, charts);
    const geo = r.canvases.find((c) => c.title.startsWith("Geolocation accuracy vs distance"));
    assert(geo && geo.painted > 1000 && geo.colors >= 3, JSON.stringify(geo));
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
