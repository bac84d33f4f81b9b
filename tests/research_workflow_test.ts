/**
 * The research workflow as a user meets it, on the tiny preset through the CLI (main.ts in a subprocess with
 * the permissions of `deno task exp`): change a knob, compare, find the failures, re-run.
 *   - default vs `groupSize=8, lr=3e-4`, two seeds each: the comparison report has two Geo-R1 rows of n=2
 *     and shows how their specs differ; a run on another test set is split off and warned about;
 *   - predictions.jsonl holds every test example of every row; rollouts carry their prompt and answer;
 *   - repeating a finished exp (with or without --resume) prints its results and touches nothing; a resumed
 *     run keeps the interrupted attempt in manifest.history;
 *   - the reports open in headless Chromium: every chart drew and has two or more points, wide tables
 *     scroll inside their box, the worst-cases table sorts and filters (skipped without Chromium).
 * Screenshots go to $REPORT_SCREENSHOT_DIR when it is set.
 */
import { join } from "node:path";
import { assert, assertEquals } from "./assert.ts";
import { checkHtmlInBrowser, findChromium } from "../lib/report/mod.ts";
import type { Manifest, PredictionRecord, RolloutRecord } from "../lib/run/records.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const MAIN = join(ROOT, "main.ts");
const PERMS = ["--allow-read", "--allow-write", "--allow-env", "--allow-ffi", "--allow-sys"];
const ABLATION = ["--set", "stages.grpo.grpo.groupSize=8", "--set", "stages.grpo.optim.lr=3e-4"];

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-prompt", ...PERMS, MAIN, ...args],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

async function lines<T>(path: string): Promise<T[]> {
  return (await Deno.readTextFile(path)).split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l) as T);
}

/** Every file under `dir` with its size, mtime and bytes (to prove a command touched nothing). */
async function snapshot(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (d: string) => {
    for await (const e of Deno.readDir(d)) {
      const p = join(d, e.name);
      if (e.isDirectory) await walk(p);
      else {
        const st = await Deno.stat(p);
        const bytes = await Deno.readFile(p);
        const sum = await crypto.subtle.digest("SHA-256", bytes);
        out.set(
          p,
          `${st.mtime?.getTime()}/${bytes.length}/${btoa(String.fromCharCode(...new Uint8Array(sum)))}`,
        );
      }
    }
  };
  await walk(dir);
  return out;
}

/** Text of the table cells of the first table after `heading` in a report. */
function tableAfter(html: string, heading: string): string[][] {
  const at = html.indexOf(heading);
  assert(at >= 0, `report has "${heading}"`);
  const table = html.slice(at, html.indexOf("</table>", at));
  return [...table.matchAll(/<tr[^>]*>(.*?)<\/tr>/gs)].map((m) =>
    [...m[1].matchAll(/<t[dh][^>]*>(.*?)<\/t[dh]>/gs)].map((c) => c[1].replace(/<[^>]+>/g, "").trim())
  );
}

/** The chart.js configs embedded in a report. */
function chartConfigs(html: string): { type: string; data: { datasets: { data: unknown[] }[] } }[] {
  return [
    ...html.matchAll(/<figure class="chart[^"]*">.*?<script type="application\/json">(.*?)<\/script>/gs),
  ]
    .map((m) => JSON.parse(m[1]));
}

const chromium = findChromium();

Deno.test("research workflow on the tiny preset: compare configs, predictions, re-runs, reports", async (t) => {
  const tmp = await Deno.makeTempDir({ prefix: "geo-research-" });
  const dirs = ["--runs-dir", join(tmp, "runs"), "--cache-dir", join(tmp, "cache"), "--reports-dir"];
  const reports = join(tmp, "reports");
  const exp = (
    extra: string[],
  ) => ["exp", "geo-r1", "--preset", "tiny", "--backend", "wasm", ...extra, ...dirs, reports];
  const runDir = async (extra: string[]) => {
    const r = await cli([...exp(extra), "--dry-run"]);
    assertEquals(r.code, 0, r.stderr);
    return join(tmp, "runs", JSON.parse(r.stdout).runId);
  };
  try {
    const configs = [[], ABLATION];
    const runs: string[] = [];
    for (const seed of ["0", "1"]) {
      for (const c of configs) {
        const args = [...c, "--seed", seed];
        const r = await cli(exp(args));
        assertEquals(r.code, 0, `exp ${args.join(" ")}:\n${r.stderr}`);
        runs.push(await runDir(args));
      }
    }

    await t.step(
      "predictions.jsonl: every test example of every row; rollouts carry prompt and answer",
      async () => {
        const spec = JSON.parse(await Deno.readTextFile(join(runs[0], "spec.resolved.json")));
        const evalFile = JSON.parse(await Deno.readTextFile(join(runs[0], "eval.json")));
        const preds = await lines<PredictionRecord>(join(runs[0], "predictions.jsonl"));
        const tasks = spec.eval.tasks.filter((x: string) => x !== "caption");
        assertEquals(preds.length, evalFile.rows.length * tasks.length * spec.eval.n);
        for (const row of evalFile.rows) {
          for (const task of tasks) {
            const mine = preds.filter((p) => p.label === row.label && p.task === task);
            assertEquals(mine.length, spec.eval.n, `${row.label} ${task}`);
            assertEquals(new Set(mine.map((p) => p.exampleId)).size, spec.eval.n);
            if (task === "pairing") {
              // the row's accuracy is the share of its predictions marked correct
              const acc = mine.filter((p) => p.correct).length / mine.length;
              assert(
                Math.abs(acc - row.pairing.accuracy) < 1e-12,
                `${row.label}: ${acc} vs ${row.pairing.accuracy}`,
              );
            }
          }
        }
        for (const p of preds) {
          assert(p.prompt.length > 0 && p.answer.length > 0 && typeof p.completion === "string");
          assertEquals(typeof p.correct, "boolean");
          assert(p.tokens > 0);
          if (p.task === "geolocate") assert(p.km === null || typeof p.km === "number");
          if (p.correct && p.task !== "geolocate") assertEquals(p.parsed, p.answer);
        }
        // the worst cases of each task have their images saved
        const withImages = preds.filter((p) => p.groundPng || p.aerialPngs?.length);
        assert(withImages.length > 0);
        for (const p of withImages) {
          for (const rel of [p.groundPng, ...(p.aerialPngs ?? [])].filter(Boolean)) {
            assert((await Deno.stat(join(runs[0], rel!))).size > 0, rel!);
          }
        }
        const rollouts = await lines<RolloutRecord>(join(runs[0], "rollouts.jsonl"));
        assert(rollouts.length > 0);
        for (const r of rollouts) assert(r.prompt && r.answer, JSON.stringify(r).slice(0, 200));
      },
    );

    await t.step(
      "repeating a finished exp prints its results and touches nothing, --resume too",
      async () => {
        const before = await snapshot(tmp);
        for (const extra of [[], ["--resume"]]) {
          const r = await cli(exp(["--seed", "0", ...extra]));
          assertEquals(r.code, 0, r.stderr);
          assert(r.stderr.includes("is finished") && r.stderr.includes("nothing to do"), r.stderr);
          assert(/^Geo-R1\s+\d/m.test(r.stdout), `prints the results table:\n${r.stdout}`);
        }
        const after = await snapshot(tmp);
        assertEquals([...after.entries()].sort(), [...before.entries()].sort(), "no file changed");
      },
    );

    await t.step("a resumed run appends the interrupted attempt to manifest.history", async () => {
      const mPath = join(runs[2], "manifest.json");
      const m0 = JSON.parse(await Deno.readTextFile(mPath)) as Manifest;
      // what a crash leaves: status running, no end time
      await Deno.writeTextFile(mPath, JSON.stringify({ ...m0, status: "running", endedAt: null }));
      const r = await cli(exp(["--seed", "1", "--resume"]));
      assertEquals(r.code, 0, r.stderr);
      const m1 = JSON.parse(await Deno.readTextFile(mPath)) as Manifest;
      assertEquals(m1.status, "done");
      assertEquals(m1.startedAt, m0.startedAt, "the run's first start is kept");
      assertEquals(m1.history?.length, 1);
      assertEquals(m1.history![0].status, "running");
      assertEquals(m1.history![0].argv, m0.argv, "the first attempt's command is kept");
      assertEquals(m1.history![0].stages, m0.stages);
      assert(m1.argv.includes("--resume"));
      assert(
        (await Deno.readTextFile(join(runs[2], "report.html"))).includes("Earlier attempts of this run"),
      );
    });

    let cmpPath = "";
    await t.step(
      "default vs groupSize=8, lr=3e-4 over two seeds: two Geo-R1 rows of n=2 and their diff",
      async () => {
        cmpPath = join(reports, "ablation.html");
        const r = await cli(["report", ...runs, "--out", cmpPath, "--reports-dir", reports]);
        assertEquals(r.code, 0, r.stderr);
        const html = await Deno.readTextFile(cmpPath);
        const main = tableAfter(html, "Cross-view pairing on the test split");
        const byLabel = new Map(main.slice(1).map((row) => [row[0], row]));
        assertEquals([...byLabel.keys()], [
          "Base",
          "Geo-SFT",
          "Geo-R1 · grpo.grpo.groupSize=4, grpo.optim.lr=0.0001",
          "Geo-R1 · grpo.grpo.groupSize=8, grpo.optim.lr=0.0003",
        ]);
        for (const row of byLabel.values()) assertEquals(row[1], "2", `${row[0]}: n`);
        assert(main[0].includes("Gain over starting stage, pp [95% CI]"));
        const diff = tableAfter(html, "How the 2 configurations differ");
        assertEquals(diff.slice(0, 3).map((row) => row.slice(0, 3)), [
          ["Spec field", "config 1", "config 2"],
          ["grpo.grpo.groupSize", "4", "8"],
          ["grpo.optim.lr", "0.0001", "0.0003"],
        ]);
        assert(!html.includes('class="warn"'), "runs of one test set and preset: no warning");
        // per-run columns name the run, not just the experiment
        const perRun = tableAfter(html, "Pairing accuracy in each run");
        for (const d of runs) {
          assert(perRun[0].some((h) => h.startsWith(d.split("/").pop()!)), perRun[0].join("|"));
        }
        assert(html.includes("Training curves") && html.includes("seeds thin, mean bold"));
        assert(html.includes("Example by example") && html.includes("Only Geo-SFT right"));
        const index = await Deno.readTextFile(join(reports, "index.html"));
        assert(
          index.includes("<th>Preset</th>") && index.includes("stages.grpo.grpo.groupSize=8"),
          "index setup",
        );
      },
    );

    await t.step("a run on another test set becomes its own row, with a warning", async () => {
      // Reports read run records only: a copy of a run whose resolved spec names another test size (as
      // `--set eval.n=6` would) stands for a run on another test set without training one more model.
      const other = join(tmp, "runs", "geo-r1-othertest");
      await Deno.mkdir(join(other, "samples"), { recursive: true });
      for (const f of ["eval.json", "metrics.jsonl", "rollouts.jsonl", "predictions.jsonl"]) {
        await Deno.copyFile(join(runs[0], f), join(other, f));
      }
      const spec = JSON.parse(await Deno.readTextFile(join(runs[0], "spec.resolved.json")));
      spec.eval.n = 6;
      await Deno.writeTextFile(join(other, "spec.resolved.json"), JSON.stringify(spec));
      const m = JSON.parse(await Deno.readTextFile(join(runs[0], "manifest.json")));
      await Deno.writeTextFile(
        join(other, "manifest.json"),
        JSON.stringify({ ...m, runId: "geo-r1-othertest" }),
      );
      const evalFile = JSON.parse(await Deno.readTextFile(join(other, "eval.json")));
      for (const row of evalFile.rows) row.stageHash = `${row.stageHash}-n6`;
      await Deno.writeTextFile(join(other, "eval.json"), JSON.stringify(evalFile));
      const out = join(reports, "mixed.html");
      const rep = await cli(["report", runs[0], runs[2], other, "--out", out, "--reports-dir", reports]);
      assertEquals(rep.code, 0, rep.stderr);
      const html = await Deno.readTextFile(out);
      assert(html.includes("runs differ in their test set or world (eval.n)"), "warns about the test set");
      const main = tableAfter(html, "Cross-view pairing on the test split");
      const labels = main.slice(1).map((row) => row[0]);
      assert(labels.includes("Geo-R1 · eval.n=8") && labels.includes("Geo-R1 · eval.n=6"), labels.join("|"));
      assertEquals(main.slice(1).find((row) => row[0] === "Geo-R1 · eval.n=6")![1], "1");
      assertEquals(main.slice(1).find((row) => row[0] === "Geo-R1 · eval.n=8")![1], "2");
    });

    await t.step({
      name:
        "the reports in Chromium: charts drew with two or more points, tables scroll, worst cases sort and filter",
      ignore: !chromium,
      fn: async () => {
        const shots = Deno.env.get("REPORT_SCREENSHOT_DIR");
        const probe = `(() => {
          const page = document.documentElement.clientWidth;
          const wide = [...document.querySelectorAll(".tablewrap")].filter((w) => w.getBoundingClientRect().right > page + 1).length;
          const out = { wide, scrollWidth: document.documentElement.scrollWidth, page };
          const t = document.getElementById("worst-cases");
          if (t) {
            const input = document.querySelector('input[data-filter="worst-cases"]');
            input.value = "geolocate";
            input.dispatchEvent(new Event("input"));
            const visible = [...t.tBodies[0].rows].filter((r) => r.style.display !== "none");
            out.filtered = visible.length;
            out.filteredAllMatch = visible.every((r) => r.textContent.includes("geolocate"));
            out.rows = t.tBodies[0].rows.length;
            const th = [...t.tHead.rows[0].cells].find((c) => c.textContent === "Example");
            th.click();
            const ids = [...t.tBodies[0].rows].map((r) => r.cells[2].textContent);
            out.sorted = ids.every((v, i) => i === 0 || ids[i - 1] <= v);
            out.tablesReady = window.__tablesReady;
          }
          return out;
        })()`;
        for (
          const [name, path] of [["comparison", cmpPath], ["run", join(runs[0], "report.html")]] as const
        ) {
          const html = await Deno.readTextFile(path);
          const configs = chartConfigs(html);
          for (const c of configs) {
            if (c.type !== "line") continue;
            assert(c.data.datasets.some((d) => d.data.length >= 2), "no line chart of single points");
          }
          const shot = shots ? join(shots, `research-${name}.png`) : undefined;
          const r = await checkHtmlInBrowser(path, { chromium: chromium!, screenshotPath: shot, probe });
          assertEquals(r.consoleErrors, []);
          assertEquals(r.networkRequests, []);
          assertEquals(r.ready?.errors, []);
          assertEquals(r.ready?.charts, configs.length);
          for (const c of r.canvases) {
            assert(c.painted > 1000 && c.colors >= 3, `${name}: ${c.title} painted`);
          }
          const p = r.probe as Record<string, unknown>;
          assertEquals(p.wide, 0, `${name}: every table fits its box (scrolls inside it)`);
          assertEquals(p.scrollWidth, p.page, `${name}: the page does not scroll sideways`);
          if (name === "run") {
            assertEquals(p.tablesReady, { sortable: 1, filters: 1 });
            assert(
              (p.filtered as number) > 0 && (p.filtered as number) < (p.rows as number),
              JSON.stringify(p),
            );
            assertEquals(p.filteredAllMatch, true);
            assertEquals(p.sorted, true);
          }
        }
      },
    });
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
