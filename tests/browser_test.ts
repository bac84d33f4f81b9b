/**
 * Reports in a real browser: headless Chromium (Debian `chromium`, installed by .ci/install-chromium.sh)
 * driven over the DevTools protocol by lib/report/browser.ts. Asserts every chart drew (non-blank canvas
 * pixels), no console errors, no network request attempted, and takes a full-page screenshot (kept at
 * $REPORT_SCREENSHOT when set). Negative controls prove the checks can fail. Skips, with the reason printed,
 * where Chromium is not installed.
 */
import { join } from "node:path";
import { assert, assertEquals } from "./assert.ts";
import { writeFixtureRun } from "./helpers_report.ts";
import {
  checkHtmlInBrowser,
  findChromium,
  writeComparisonReport,
  writeRunReport,
} from "../lib/report/mod.ts";
import type { BrowserCheckResult } from "../lib/report/mod.ts";

const chromium = findChromium();
if (!chromium) {
  console.log(
    "browser_test: SKIPPED: chromium not found (/usr/bin/chromium or $CHROMIUM_PATH); run .ci/install-chromium.sh",
  );
}

function assertChartsDrew(r: BrowserCheckResult, expected: number) {
  assertEquals(r.consoleErrors, [], "no console errors");
  assertEquals(r.networkRequests, [], "no network requests");
  assert(r.ready, "chart bootstrap ran");
  assertEquals(r.ready!.errors, []);
  assertEquals(r.ready!.charts, expected);
  assertEquals(r.canvases.length, expected);
  for (const c of r.canvases) {
    assert(c.width > 100 && c.height > 100, `${c.title}: canvas ${c.width}x${c.height}`);
    // axes, grid, tick labels and data: thousands of painted pixels in several colours
    assert(c.painted > 1000 && c.colors >= 3, `${c.title}: ${c.painted} painted pixels, ${c.colors} colours`);
  }
}

async function isPng(path: string): Promise<boolean> {
  const b = await Deno.readFile(path);
  return b.length > 1000 && b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47;
}

Deno.test({
  name: "browser: run and comparison reports draw every chart offline, with no errors or requests",
  ignore: !chromium,
  async fn() {
    const tmp = await Deno.makeTempDir({ prefix: "geo-browser-" });
    try {
      const dirs: string[] = [];
      for (const seed of [1, 2]) {
        const d = join(tmp, `run${seed}`);
        await writeFixtureRun(d, { seed, gallery: 12, completion: "<script>alert(1)</script>" });
        dirs.push(d);
      }
      const reports = join(tmp, "reports");
      const path = await writeRunReport(dirs[0], { reportsDir: reports });
      const html = await Deno.readTextFile(path);
      const nCharts = [...html.matchAll(/<figure class="chart/g)].length;
      assert(nCharts >= 20, `${nCharts} charts`);
      const shot = join(tmp, "report.png");
      const r = await checkHtmlInBrowser(path, { chromium: chromium!, screenshotPath: shot });
      assertChartsDrew(r, nCharts);
      assert(await isPng(shot), "screenshot is a PNG");
      const keep = Deno.env.get("REPORT_SCREENSHOT");
      if (keep) await Deno.copyFile(shot, keep);
      console.log(`browser_test: ${r.chromiumVersion}, ${r.canvases.length} charts, page ${r.pageHeight}px`);

      const cmp = await writeComparisonReport(dirs, undefined, { reportsDir: reports });
      const rc = await checkHtmlInBrowser(cmp, { chromium: chromium! });
      assertChartsDrew(rc, [...(await Deno.readTextFile(cmp)).matchAll(/<figure class="chart/g)].length);

      const ri = await checkHtmlInBrowser(join(reports, "index.html"), { chromium: chromium! });
      assertEquals(ri.consoleErrors, []);
      assertEquals(ri.networkRequests, []);
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  },
});

Deno.test({
  name: "browser: the checks catch a network request, a console error and a CSP violation",
  ignore: !chromium,
  async fn() {
    const tmp = await Deno.makeTempDir({ prefix: "geo-browser-" });
    try {
      const leaky = join(tmp, "leaky.html");
      await Deno.writeTextFile(
        leaky,
        `<!DOCTYPE html><html><body><img src="http://example.invalid/x.png"><canvas></canvas>` +
          `<script>console.error("boom")</script></body></html>`,
      );
      const r = await checkHtmlInBrowser(leaky, { chromium: chromium! });
      assert(r.networkRequests.some((u) => u.includes("example.invalid")), JSON.stringify(r.networkRequests));
      assert(r.consoleErrors.some((e) => e.includes("boom")), JSON.stringify(r.consoleErrors));
      assertEquals(r.canvases.length, 1);
      assertEquals(r.canvases[0].painted, 0, "an empty canvas reads as blank");

      const csp = join(tmp, "csp.html");
      await Deno.writeTextFile(
        csp,
        `<!DOCTYPE html><html><head><meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:">` +
          `</head><body><img src="https://example.invalid/y.png"><script>document.title = "ran"</script></body></html>`,
      );
      const rc = await checkHtmlInBrowser(csp, { chromium: chromium! });
      // a CSP-blocked load still counts as an attempted request, and each violation as a console error
      assert(
        rc.networkRequests.some((u) => u.includes("example.invalid")),
        JSON.stringify(rc.networkRequests),
      );
      assertEquals(rc.consoleErrors.filter((e) => e.includes("Content Security Policy")).length, 2);
      assert(rc.title !== "ran", "inline script without a hash is blocked");
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  },
});
