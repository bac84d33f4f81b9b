/**
 * lib/report: escaping, CSP, self-containment, size budget, error handling (nothing partial written), the
 * comparison aggregation and the `report` command. Browser checks are in browser_test.ts.
 */
import { createHash } from "node:crypto";
import { join } from "node:path";
import { assert, assertEquals, assertRejects } from "./assert.ts";
import { writeFixtureRun } from "./helpers_report.ts";
import {
  aggregateRuns,
  bootstrapCi,
  ciRows,
  escapeHtml,
  extractReportMeta,
  jsonForScript,
  readRunRecords,
  renderCiTable,
  renderTable,
  writeComparisonReport,
  writeRunReport,
} from "../lib/report/mod.ts";
import { command as reportCommand } from "../lib/cli/report.ts";
import { renderCurves } from "../lib/report/sections.ts";
import { rowConfig } from "../lib/report/groups.ts";
import { UserError } from "../lib/errors.ts";

const INJECTION = `<script>alert(1)</script><img src=x onerror=alert(2)></pre></details>"'&`;

async function exists(p: string): Promise<boolean> {
  try {
    await Deno.stat(p);
    return true;
  } catch {
    return false;
  }
}

/** The executable (non-JSON) inline scripts of a page, in order. */
function execScripts(html: string): string[] {
  return [...html.matchAll(/<script>([\s\S]*?)<\/script>/g)].map((m) => m[1]);
}

Deno.test("escapeHtml and jsonForScript neutralise markup", () => {
  assertEquals(escapeHtml(`<a href="x">'&'</a>`), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
  const j = jsonForScript({ s: "</script><!-- \u2028" });
  assert(!j.includes("<") && !j.includes(">"));
  assertEquals(JSON.parse(j), { s: "</script><!-- \u2028" });
  assert(renderTable(["<b>"], [["<i>x</i>"]]).includes("&lt;i&gt;x&lt;/i&gt;"));
  assert(
    renderCiTable([{ label: "<x>", mean: 0.5, ci: [0.4, 0.6], n: 2 }], { metric: "acc", scale: 100 })
      .includes("50.0 [40.0, 60.0]"),
  );
});

Deno.test("run report: completions render as text, CSP by hash, self-contained, < 3 MB", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "geo-report-" });
  try {
    const run = join(tmp, "run");
    const runId = await writeFixtureRun(run, { gallery: 12, completion: INJECTION });
    const reports = join(tmp, "reports");
    const path = await writeRunReport(run, { reportsDir: reports });
    assertEquals(path, join(run, "report.html"));
    const html = await Deno.readTextFile(path);
    // copied to reports/<runId>.html, index rebuilt
    assertEquals(await Deno.readTextFile(join(reports, `${runId}.html`)), html);
    const index = await Deno.readTextFile(join(reports, "index.html"));
    assert(index.includes(`href="${runId}.html"`));

    // escaping: the injected completion appears as text, and adds no element
    assert(!html.includes("<script>alert(1)"), "raw <script> from a completion must not appear");
    assert(!html.includes("<img src=x"), "raw <img> from a completion must not appear");
    assert(html.includes("&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;"));
    const scripts = execScripts(html);
    assertEquals(scripts.length, 2, "exactly chart.js and the chart bootstrap execute");
    const allScriptTags = [...html.matchAll(/<script\b[^>]*>/g)].map((m) => m[0]);
    for (const t of allScriptTags) assert(t === "<script>" || /type="application\/json"/.test(t), t);

    // CSP: restrictive, scripts allowed only by the hashes of the two inline scripts
    const csp = /<meta http-equiv="Content-Security-Policy" content="([^"]+)">/.exec(html)?.[1]?.replaceAll(
      "&#39;",
      "'",
    );
    assert(csp, "CSP meta tag present");
    for (const d of ["default-src 'none'", "img-src data:", "base-uri 'none'", "form-action 'none'"]) {
      assert(csp!.includes(d), `CSP has ${d}`);
    }
    assert(!/script-src[^;]*unsafe/.test(csp!), "no unsafe-inline/unsafe-eval for scripts");
    for (const s of scripts) {
      const h = createHash("sha256").update(s, "utf8").digest("base64");
      assert(csp!.includes(`'sha256-${h}'`), "CSP allows each inline script by its hash");
    }
    assert(scripts[0].includes("Chart.js v4.6.1"), "chart.js 4.6.1 inlined");
    assert(!scripts[0].includes("sourceMappingURL"), "no source map reference");

    // self-contained: every src is a data: URI, every href an in-page or relative link, no url() loads
    // (attributes of real tags only: scripts removed, escaped text holds no "<")
    const markup = scripts.reduce((h, s) => h.replace(s, ""), html);
    const tags = [...markup.matchAll(/<[a-z][^>]*>/gi)].map((m) => m[0]);
    assert(tags.length > 500);
    for (const tag of tags) {
      for (const m of tag.matchAll(/\s(src|href|action|poster|srcset|formaction)\s*=\s*["']?([^"'\s>]*)/gi)) {
        const [, attr, val] = m;
        if (attr.toLowerCase() === "src") {
          assert(val.startsWith("data:image/png;base64,"), `src=${val.slice(0, 40)}`);
        } else assert(!/^[a-z][a-z0-9+.-]*:/i.test(val), `${attr}=${val}`);
      }
      assert(!/\son[a-z]+\s*=/i.test(tag), `no event handler attributes: ${tag.slice(0, 80)}`);
    }
    assert(!/url\(\s*['"]?(https?:|\/\/)/i.test(html), "no CSS url() to the network");
    const outsideChartJs = html.replace(scripts[0], "");
    assert(!/https?:\/\//.test(outsideChartJs), "no http(s) URL outside the inlined chart.js");

    // content: the four rows, thresholds, geo-qa kinds, curves of every stage, gallery images
    for (
      const s of [
        "Base",
        "Geo-SFT",
        "Geo-R1-Zero",
        "Geo-R1",
        "2500 km",
        "drivingSide",
        "Stage grpo",
        "Stage sft",
      ]
    ) {
      assert(html.includes(s), s);
    }
    for (const k of ["KL to reference", "Entropy", "Completion length (tokens)", "Reward", "Accuracy"]) {
      assert(html.includes(`<figcaption>${k}</figcaption>`), `curve ${k}`);
    }
    assertEquals([...html.matchAll(/<img class="ground"/g)].length, 48);
    assertEquals([...html.matchAll(/<img class="aerial"/g)].length, 48 * 4);
    const meta = extractReportMeta(html)!;
    assertEquals(meta.kind, "run");
    assertEquals(Object.keys(meta.keyMetrics), ["Base", "Geo-SFT", "Geo-R1-Zero", "Geo-R1"]);

    // size budget of a default run (12 gallery items per row)
    const size = (await Deno.stat(path)).size;
    assert(size < 3 * 1024 * 1024, `report is ${size} bytes`);

    // regenerating gives the same bytes (the report is a pure function of the run records)
    await writeRunReport(run, { reportsDir: reports });
    assertEquals(await Deno.readTextFile(path), html);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("run report errors name the file and write nothing", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "geo-report-" });
  try {
    const reports = join(tmp, "reports");
    await assertRejects(
      () => writeRunReport(join(tmp, "nope"), { reportsDir: reports }),
      (e: Error) =>
        e instanceof UserError && e.exitCode === 2 && /run directory not found: .*nope/.test(e.message),
    );
    const run = join(tmp, "run");
    await writeFixtureRun(run, { gallery: 1 });
    await Deno.writeTextFile(join(run, "eval.json"), '{"rows": [ {"label": "Base",');
    await assertRejects(
      () => writeRunReport(run, { reportsDir: reports }),
      (e: Error) =>
        e instanceof UserError && e.message.includes(join(run, "eval.json")) &&
        /corrupt JSON/.test(e.message),
    );
    await Deno.writeTextFile(join(run, "eval.json"), '{"rows": [{"stage": "base"}]}');
    await assertRejects(
      () => writeRunReport(run, { reportsDir: reports }),
      (e: Error) =>
        e instanceof UserError && /eval\.json: field rows\[0\]\.label must be a string/.test(e.message),
    );
    await Deno.remove(join(run, "eval.json"));
    await assertRejects(
      () => writeRunReport(run, { reportsDir: reports }),
      (e: Error) => e instanceof UserError && /eval\.json not found/.test(e.message),
    );
    assert(!(await exists(join(run, "report.html"))), "no report.html after errors");
    assert(!(await exists(reports)), "reports dir untouched after errors");

    // a run id that would escape the reports directory is refused
    const run2 = join(tmp, "run2");
    await writeFixtureRun(run2, { gallery: 1 });
    const man = JSON.parse(await Deno.readTextFile(join(run2, "manifest.json")));
    man.runId = "../../evil";
    await Deno.writeTextFile(join(run2, "manifest.json"), JSON.stringify(man));
    await assertRejects(() => writeRunReport(run2, { reportsDir: reports }), /manifest\.json: field runId/);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("JSONL: a torn last line is skipped with a warning, a corrupt middle line is an error", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "geo-report-" });
  try {
    const run = join(tmp, "run");
    await writeFixtureRun(run, { gallery: 1, steps: { base: 5, sft: 5, grpo: 5 } });
    const mpath = join(run, "metrics.jsonl");
    const good = await Deno.readTextFile(mpath);
    await Deno.writeTextFile(mpath, good + '{"stage":"grpo","kind":"grpo","st');
    const r = await readRunRecords(run);
    assert(r.warnings.some((w) => w.includes("torn last line")));
    assertEquals(r.metrics.length, good.trim().split("\n").length);
    await Deno.writeTextFile(mpath, "{oops\n" + good);
    await assertRejects(() => readRunRecords(run), /corrupt JSON at .*metrics\.jsonl:1/);
    // gallery paths outside the run dir are ignored, not read
    await Deno.writeTextFile(mpath, good);
    const ev = JSON.parse(await Deno.readTextFile(join(run, "eval.json")));
    ev.rows[0].gallery[0].groundPng = "../../../../etc/passwd";
    await Deno.writeTextFile(join(run, "eval.json"), JSON.stringify(ev));
    const html = await Deno.readTextFile(await writeRunReport(run, { publish: false }));
    assert(html.includes("image path outside the run directory ignored"));
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("bootstrapCi is seeded and brackets the mean", () => {
  const v = [0.70, 0.74, 0.72, 0.69, 0.75];
  const a = bootstrapCi(v, { resamples: 1000, alpha: 0.05, seed: 3 });
  assertEquals(a, bootstrapCi(v, { resamples: 1000, alpha: 0.05, seed: 3 }));
  assert(a[0] <= 0.72 && 0.72 <= a[1] && a[0] >= 0.69 && a[1] <= 0.75, String(a));
  assertEquals(bootstrapCi([0.5]), [0.5, 0.5]);
});

Deno.test("comparison report: four rows, mean and bootstrap CI over seeds, shared stages counted once", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "geo-report-" });
  try {
    const dirs: string[] = [];
    for (const seed of [1, 2, 3]) {
      const d = join(tmp, `run${seed}`);
      await writeFixtureRun(d, { seed, gallery: 1, steps: { base: 10, sft: 10, grpo: 10 } });
      dirs.push(d);
    }
    const runs = await Promise.all(dirs.map(readRunRecords));
    const groups = aggregateRuns(runs);
    assertEquals(groups.map((g) => g.label), ["Base", "Geo-SFT", "Geo-R1-Zero", "Geo-R1"]);
    const acc = ciRows(groups, (r) => r.pairing?.accuracy, (r) => r.pairing?.ci);
    assert(acc.every((r) => r.n === 3 && r.ci && r.ci[0] <= r.mean && r.mean <= r.ci[1]));
    const exp = runs.map((r) => r.eval.rows[3].pairing!.accuracy).reduce((a, b) => a + b) / 3;
    assert(Math.abs(acc[3].mean - exp) < 1e-12);
    // the same run twice: its stages (same stage hashes) count once
    assert(aggregateRuns([runs[0], runs[0]]).every((g) => g.rows.length === 1));

    const reports = join(tmp, "reports");
    await writeRunReport(dirs[0], { reportsDir: reports });
    const out = await writeComparisonReport(dirs, undefined, { reportsDir: reports });
    assert(/compare-[0-9a-f]{10}\.html$/.test(out));
    const html = await Deno.readTextFile(out);
    assert(html.includes("Content-Security-Policy"));
    assert(html.includes(`href="${runs[0].manifest.runId}.html"`), "links to the run's published report");
    assert(html.includes(`>${((acc[3].mean) * 100).toFixed(1)}% [`), "mean with CI in the table");
    const index = await Deno.readTextFile(join(reports, "index.html"));
    assert(index.includes("Comparison: geo-r1 (3 runs)") && index.includes(runs[0].manifest.runId));
    // regenerated from records alone: identical bytes
    await writeComparisonReport(dirs, out, { reportsDir: reports });
    assertEquals(await Deno.readTextFile(out), html);
    // one bad run dir: nothing written
    const out2 = join(tmp, "elsewhere", "cmp.html");
    await assertRejects(
      () => writeComparisonReport([...dirs, join(tmp, "missing")], out2),
      /run directory not found/,
    );
    assert(!(await exists(out2)));
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("report command: one run, several runs, usage and data errors", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "geo-report-" });
  const log = console.log;
  const printed: string[] = [];
  console.log = (...a: unknown[]) => printed.push(a.join(" "));
  try {
    const a = join(tmp, "a"), b = join(tmp, "b");
    await writeFixtureRun(a, { seed: 1, gallery: 1, steps: { base: 5, sft: 5, grpo: 5 } });
    await writeFixtureRun(b, { seed: 2, gallery: 1, steps: { base: 5, sft: 5, grpo: 5 } });
    const reports = join(tmp, "reports");
    assertEquals(await reportCommand.run({ "reports-dir": reports, out: join(tmp, "one.html") }, [a]), 0);
    assert(await exists(join(a, "report.html")) && await exists(join(tmp, "one.html")));
    assertEquals(await reportCommand.run({ "reports-dir": reports, out: join(tmp, "cmp.html") }, [a, b]), 0);
    assert((await Deno.readTextFile(join(tmp, "cmp.html"))).includes("Comparison"));
    await assertRejects(
      () => reportCommand.run({}, []),
      (e: Error) => e instanceof UserError && e.exitCode === 2,
    );
    await assertRejects(
      () => reportCommand.run({ "reports-dir": reports }, [join(tmp, "missing")]),
      (e: Error) => e instanceof UserError && e.exitCode === 2 && e.message.includes("missing"),
    );
    await Deno.writeTextFile(join(b, "eval.json"), "not json");
    await assertRejects(
      () => reportCommand.run({ "reports-dir": reports, out: join(tmp, "cmp2.html") }, [a, b]),
      (e: Error) => e instanceof UserError && e.exitCode === 1 && e.message.includes(join(b, "eval.json")),
    );
    assert(!(await exists(join(tmp, "cmp2.html"))));
  } finally {
    console.log = log;
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("comparison report: a row shared through the stage cache shows in each run's own column", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "geo-report-shared-" });
  try {
    const r1 = join(tmp, "r1"), z1 = join(tmp, "z1");
    await writeFixtureRun(r1, { seed: 1, gallery: 0, steps: { base: 10, sft: 10, grpo: 10 } });
    await writeFixtureRun(z1, {
      seed: 1,
      gallery: 0,
      name: "geo-r1-zero",
      steps: { base: 10, sft: 10, grpo: 10 },
    });
    // The zero run's table: its own Base and Geo-R1-Zero rows, the same stages (hashes) as r1's sibling rows.
    const e1 = JSON.parse(await Deno.readTextFile(join(r1, "eval.json")));
    const ez = JSON.parse(await Deno.readTextFile(join(z1, "eval.json")));
    ez.rows = e1.rows.filter((r: { label: string }) => r.label === "Base" || r.label === "Geo-R1-Zero");
    await Deno.writeTextFile(join(z1, "eval.json"), JSON.stringify(ez));
    const zeroAcc = ez.rows[1].pairing.accuracy as number;
    const out = await writeComparisonReport([r1, z1], join(tmp, "cmp.html"));
    const html = await Deno.readTextFile(out);
    const perRun = html.slice(html.indexOf("Pairing accuracy in each run"));
    const row = (label: string) => new RegExp(`<tr><td>${label}</td>(.*?)</tr>`).exec(perRun)?.[1] ?? "";
    const cells = (label: string) => [...row(label).matchAll(/<td[^>]*>(.*?)<\/td>/g)].map((m) => m[1]);
    const pct = `${(zeroAcc * 100).toFixed(1)}%`;
    assertEquals(cells("Geo-R1-Zero"), [pct, pct], "both runs list the shared Zero row");
    assertEquals(cells("Geo-SFT")[1], "&ndash;", "the zero run has no Geo-SFT row");
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("comparison report: cached sibling rows group with the same model's own rows, both ways", () => {
  // As `exp geo-r1` then `exp geo-r1-zero` leave them in one cache: each run's eval.json also holds the
  // other's last row as a cached sibling. The experiments share their stage specs but for grpo.from.
  const stages = {
    base: { kind: "pretrain", from: null, steps: 10 },
    sft: { kind: "sft", from: "base", steps: 10 },
    grpo: { kind: "grpo", from: "sft", steps: 10 },
  };
  const r1 = { seed: 0, name: "geo-r1", pipeline: ["base", "sft", "grpo"], stages };
  const zero = {
    seed: 0,
    name: "geo-r1-zero",
    pipeline: ["base", "grpo"],
    stages: { ...stages, grpo: { ...stages.grpo, from: "base" } },
  };
  const sib = (stage: string) => `${stage} (cached sibling)`;
  assertEquals(rowConfig(zero, sib("grpo"), "Geo-R1"), rowConfig(r1, "grpo", "Geo-R1"));
  assertEquals(rowConfig(r1, sib("grpo"), "Geo-R1-Zero"), rowConfig(zero, "grpo", "Geo-R1-Zero"));
  assertEquals(rowConfig(zero, sib("sft"), "Geo-SFT"), rowConfig(r1, "sft", "Geo-SFT"));
  // A Geo-R1 variant keeps the rule; the two models stay apart.
  assertEquals(rowConfig(zero, sib("grpo"), "Geo-R1 + anchor"), rowConfig(r1, "grpo", "Geo-R1 + anchor"));
  assert(
    JSON.stringify(rowConfig(zero, "grpo", "Geo-R1-Zero")) !==
      JSON.stringify(rowConfig(r1, "grpo", "Geo-R1")),
  );
});

Deno.test("training curves: in-stage validation gets a rates chart and a separate tokens chart", () => {
  const recs = [0, 10, 20].map((step) => ({
    stage: "grpo",
    kind: "eval" as const,
    step,
    time: 0,
    "eval/val_pairing/accuracy": 0.7 + step / 1000,
    "eval/val_pairing/format_rate": 1,
    "eval/val_pairing/mean_length": 118,
  }));
  const html = renderCurves([{ stage: "grpo", kind: "grpo", step: 0, time: 0, reward: 0.9 }, ...recs]);
  const titles = [...html.matchAll(/<figcaption>([^<]*)<\/figcaption>/g)].map((m) => m[1]);
  assert(titles.includes("Eval: val_pairing"), titles.join(" | "));
  assert(titles.includes("Eval: val_pairing (tokens)"), titles.join(" | "));
});
