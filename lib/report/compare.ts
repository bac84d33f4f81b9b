/**
 * The comparison report across runs (e.g. the four experiments x 3 seeds): eval rows grouped by label
 * ("Base", "Geo-SFT", "Geo-R1-Zero", "Geo-R1"), mean over runs and a percentile bootstrap CI over runs when
 * several runs share a label, regenerated from run records alone. The aggregation (`aggregateRuns`,
 * `ciRows`) and rendering pieces are shared with the sweep report.
 * @module
 */
import { createHash } from "node:crypto";
import { dirname, join, relative, resolve } from "node:path";
import { atomicWrite } from "../run/atomic.ts";
import type { StageEval } from "../run/records.ts";
import { hashString32 } from "../rng.ts";
import { escapeHtml } from "./escape.ts";
import { canonicalJson } from "../spec/hash.ts";
import { configOf, differingPaths, rowConfig, showPath, variantLabels } from "./groups.ts";
import { renderExampleDiff } from "./predictions.ts";
import {
  type ConfigGroup,
  configGroups,
  gainRows,
  renderRowCurves,
  renderSpecDiff,
} from "./compare_sections.ts";
import {
  chartGrid,
  type CiRow,
  fmtCi,
  fmtPct,
  raw,
  renderCiChart,
  renderCiMultiTable,
  renderLineChart,
  renderScatter,
  renderTable,
} from "./components.ts";
import { renderPage, type ReportMeta, setupLine } from "./page.ts";
import { presetOf } from "./run_report.ts";
import { readRunRecords, type RunRecords } from "./read.ts";
import { bootstrapCi, mean } from "./stats.ts";
import { DEFAULT_REPORTS_DIR, writeReportsIndex } from "./index_page.ts";
import { nearestTrainingFigures, pairedGeoDiffs } from "./paired.ts";
import { exists } from "../run/fs.ts";

/** Row labels in the paper's order; other labels follow in order of first appearance. */
export const CANONICAL_LABELS = ["Base", "Geo-SFT", "Geo-R1-Zero", "Geo-R1", "Task-SFT", "Task-SFT+GRPO"];

/**
 * Eval rows of one model under one configuration across runs (seeds), deduplicated by stage hash (a cached
 * stage shared by runs counts once). `label` is what tables show: the model ("Geo-R1"), followed by the
 * spec fields that tell it from other rows of the same model when there are several (lib/report/groups.ts).
 */
export interface LabelGroup {
  label: string;
  /** The model: "Base", "Geo-SFT", "Geo-R1-Zero", "Geo-R1", or another eval.json label. */
  model: string;
  /** `k=v, ...` over the spec fields that differ among this model's rows ("" when it has one row). */
  variant: string;
  /** Identity of the row: the model and the part of the config its model depends on. */
  key: string;
  rows: { runId: string; row: StageEval }[];
}

/** The group key of one eval row of a run. */
export function rowKey(r: RunRecords, row: StageEval): string {
  return `${row.label}\u0000${canonicalJson(rowConfig(configOf(r.spec), row.stage, row.label))}`;
}

/**
 * Group the eval rows of several runs by model and configuration minus the seed: runs that differ in
 * anything but their seeds give separate rows, so a mean and CI are only ever over seeds.
 */
export function aggregateRuns(runs: RunRecords[]): LabelGroup[] {
  const groups = new Map<string, LabelGroup & { config: Record<string, unknown> }>();
  const seen = new Set<string>();
  for (const r of runs) {
    for (const row of r.eval.rows) {
      const key = rowKey(r, row);
      const dedupe = `${key}\u0000${row.stageHash || `${r.manifest.runId}/${row.stage}`}`;
      if (seen.has(dedupe)) continue;
      seen.add(dedupe);
      let g = groups.get(key);
      if (!g) {
        const config = rowConfig(configOf(r.spec), row.stage, row.label);
        groups.set(key, g = { label: row.label, model: row.label, variant: "", key, rows: [], config });
      }
      g.rows.push({ runId: r.manifest.runId, row });
    }
  }
  const all = [...groups.values()];
  for (const model of new Set(all.map((g) => g.model))) {
    const same = all.filter((g) => g.model === model);
    if (same.length < 2) continue;
    const { labels } = variantLabels(same.map((g) => g.config));
    same.forEach((g, i) => {
      g.variant = labels[i];
      g.label = `${model} · ${labels[i]}`;
    });
  }
  const rank = (l: string) => {
    const i = CANONICAL_LABELS.indexOf(l);
    return i < 0 ? CANONICAL_LABELS.length : i;
  };
  return all.map((g, i) => ({ g, i })).sort((a, b) => rank(a.g.model) - rank(b.g.model) || a.i - b.i)
    .map(({ g }) => ({ label: g.label, model: g.model, variant: g.variant, key: g.key, rows: g.rows }));
}

export interface CiOptions {
  resamples?: number;
  alpha?: number;
}

/**
 * One CiRow per group for the value `pick(row)` (rows without it are skipped): the mean over runs; the CI is
 * a seeded percentile bootstrap over runs when n >= 2, else the single row's own CI from `ownCi`.
 */
export function ciRows(
  groups: LabelGroup[],
  pick: (row: StageEval) => number | undefined,
  ownCi: (row: StageEval) => [number, number] | undefined = () => undefined,
  opts: CiOptions & { metric?: string } = {},
): CiRow[] {
  const out: CiRow[] = [];
  for (const g of groups) {
    const rows = g.rows.filter((x) => typeof pick(x.row) === "number" && Number.isFinite(pick(x.row)));
    if (!rows.length) continue;
    const values = rows.map((x) => pick(x.row)!);
    const ci = values.length >= 2
      ? bootstrapCi(values, {
        resamples: opts.resamples ?? 2000,
        alpha: opts.alpha ?? 0.05,
        seed: hashString32(`${opts.metric ?? ""}/${g.model}`),
      })
      : ownCi(rows[0].row) ?? null;
    out.push({ label: g.label, mean: mean(values), ci, n: values.length });
  }
  return out;
}

/** Accuracy against distance (log10 km), one line per row: the Table 1 analogue at a glance. */
function geoChart(groups: LabelGroup[], thKeys: string[]): string {
  const series = groups.map((g) => {
    const points: [number, number][] = [];
    for (const k of thKeys) {
      const vals = g.rows.map((x) => x.row.geolocate?.thresholds[k]).filter((v): v is number =>
        Number.isFinite(v)
      );
      if (vals.length) points.push([Math.log10(Number(k)), 100 * mean(vals)]);
    }
    return { label: g.label, points };
  }).filter((s) => s.points.length);
  return renderLineChart(series, {
    title: "Geolocation accuracy vs distance (mean over runs)",
    xLabel: "threshold, log10 km (0 = 1 km, 3.4 = 2,500 km)",
    yLabel: "within threshold (%)",
    height: 320,
    wide: true,
  });
}

/** Which bootstraps the runs' own geolocation CIs used, in words. */
function bootstrapNote(groups: LabelGroup[]): string {
  const kinds = new Set(groups.flatMap((g) => g.rows.map((x) => x.row.geolocate?.bootstrap ?? "example")));
  const cells = Math.max(0, ...groups.flatMap((g) => g.rows.map((x) => x.row.geolocate?.clusters ?? 0)));
  if (kinds.size === 1 && kinds.has("cluster")) {
    return `A single run's CI is a cluster bootstrap that resamples whole held-out region cells (${cells} ` +
      `cells among the test views), not single views.`;
  }
  if (kinds.has("cluster")) {
    return "Single-run CIs mix cluster bootstraps (whole region cells) and example bootstraps (older runs).";
  }
  return "A single run's CI is an example bootstrap over test views (these runs predate the cluster bootstrap).";
}

/** The notes under the geolocation table: bootstrap kind and what picking a known place can reach. */
function geoNotes(runs: RunRecords[], groups: LabelGroup[]): string {
  const near = nearestTrainingFigures(runs);
  const fig = near
    ? ` Measured here: the nearest of ${near.n} training locations lies within 1 / 25 / 200 km of ` +
      `${["1", "25", "200"].map((k) => fmtPct(near.thresholds[k] ?? 0)).join(" / ")} of the test views, so ` +
      "an answer that picks a known place (retrieval, a cell's mean) is capped there."
    : "";
  return `<p class="note">${
    escapeHtml(bootstrapNote(groups))
  } Test views come from held-out 5-degree region ` +
    `cells, so the 1 km and 25 km thresholds cannot be reached by picking a known (training) place; the views ` +
    `carry region-level cues only (roofs, road lines, vegetation, sun, driving side).${
      escapeHtml(fig)
    } A model ` +
    `that writes continuous coordinates may still beat that cap.</p>`;
}

/** Each row's paired difference from Base on the same test views (cluster bootstrap over region cells). */
function renderPairedDiffs(runs: RunRecords[], groups: LabelGroup[], opts: CiOptions): string {
  const diffs = pairedGeoDiffs(runs, groups.map((g) => g.label), "Base", opts);
  if (!diffs.length) return "";
  const keys = Object.keys(diffs[0].thresholds);
  const pts = (x: number) => `${x >= 0 ? "+" : ""}${(100 * x).toFixed(1)}`;
  return renderTable(
    ["Row", ...keys.map((k) => ({ label: `${k} km (pts)`, num: true })), "Seeds paired", {
      label: "Cells",
      num: true,
    }],
    diffs.map((d) => [
      d.label,
      ...keys.map((k) => {
        const t = d.thresholds[k];
        return t ? `${pts(t.mean)} [${pts(t.ci[0])}, ${pts(t.ci[1])}]` : null;
      }),
      d.seeds.join(", "),
      d.clusters,
    ]),
    {
      caption:
        "Difference from Base in percentage points, paired over the same test views (same seed; mean " +
        "over the seeds paired) [95% CI: cluster bootstrap over the held-out region cells]",
    },
  );
}

/** Default path of a comparison report: `<reportsDir>/compare-<hash of the sorted run ids>.html`. */
export function comparisonReportPath(runIds: string[], reportsDir = DEFAULT_REPORTS_DIR): string {
  const h = createHash("sha256").update([...runIds].sort().join("\n")).digest("hex").slice(0, 10);
  return join(reportsDir, `compare-${h}.html`);
}

export interface ComparisonOptions extends CiOptions {
  /** The reports directory; its index is rebuilt when `out` lies in it (default "reports"). */
  reportsDir?: string;
  title?: string;
}

function relHref(fromDir: string, target: string): string {
  return relative(fromDir, target).split(/[\\/]/).map(encodeURIComponent).join("/");
}

/** One metric column of a CI table (renderCiMultiTable). */
type CiColumn = Parameters<typeof renderCiMultiTable>[0][number];

/** The pairing rows of a comparison: accuracy, completion length and format rate per group. */
interface PairingCiRows {
  acc: CiRow[];
  len: CiRow[];
  fmt: CiRow[];
}

function pairingCiRows(groups: LabelGroup[], opts: CiOptions): PairingCiRows {
  return {
    acc: ciRows(groups, (r) => r.pairing?.accuracy, (r) => r.pairing?.ci, { ...opts, metric: "acc" }),
    len: ciRows(groups, (r) => r.pairing?.meanLength, (r) => r.pairing?.lengthCi, { ...opts, metric: "len" }),
    fmt: ciRows(groups, (r) => r.pairing?.formatRate, undefined, { ...opts, metric: "fmt" }),
  };
}

/** Warnings about the runs' records: their own, mixed commits or lock files, dirty trees, unfinished runs. */
function recordWarnings(runs: RunRecords[]): string[] {
  const warnings: string[] = runs.flatMap((r) => r.warnings.map((w) => `${r.manifest.runId}: ${w}`));
  const commits = new Set(runs.map((r) => r.manifest.git?.commit ?? "unknown"));
  if (commits.size > 1) warnings.push(`runs come from ${commits.size} different git commits`);
  if (runs.some((r) => r.manifest.git?.dirty)) warnings.push("some runs were made from a dirty working tree");
  const locks = new Set(runs.map((r) => r.manifest.lockHash ?? "none"));
  if (locks.size > 1) warnings.push(`runs used ${locks.size} different deno.lock files`);
  const unfinished = runs.filter((r) => r.manifest.status !== "done").map((r) => r.manifest.runId);
  if (unfinished.length) warnings.push(`not finished: ${unfinished.join(", ")}`);
  return warnings;
}

/** The page metadata (title, setup, headline accuracies) of a comparison. */
function comparisonMeta(
  runs: RunRecords[],
  configs: ConfigGroup[],
  acc: CiRow[],
  title: string | undefined,
): ReportMeta {
  const names = [...new Set(runs.map((r) => r.manifest.name))];
  const dates = runs.map((r) => r.manifest.endedAt ?? r.manifest.startedAt).filter(Boolean).sort();
  return {
    kind: "comparison",
    title: title ?? `Comparison: ${names.join(", ")} (${runs.length} runs)`,
    date: dates.at(-1) ?? null,
    experiment: names.join(", "),
    preset: [...new Set(runs.map((r) => presetOf(r.spec) ?? "?"))].join(", "),
    seed: [...new Set(runs.map((r) => String(r.manifest.seed)))].join(", "),
    overrides: differingPaths(configs.map((c) => c.config)).map(showPath),
    keyMetrics: Object.fromEntries(acc.map((a) => [a.label, fmtCi(a.mean, null, { scale: 100, unit: "%" })])),
  };
}

/** The setup line and the paragraph that says what a row, its mean and its CI are. */
function renderIntro(
  runs: RunRecords[],
  configs: ConfigGroup[],
  meta: ReportMeta,
  resamples: number,
): string {
  return `<p class="setup">${escapeHtml(setupLine({ ...meta, overrides: [] }).replace("no overrides", ""))}${
    configs.length > 1
      ? `${configs.length} configurations differing in ${escapeHtml(meta.overrides!.join(", "))}`
      : "one configuration"
  }</p>
<p class="sub">Regenerated from the run records of ${runs.length} runs in ${configs.length} configuration${
    configs.length === 1 ? "" : "s"
  }. A row is one model under one configuration (resolved spec minus seed): its mean is over the runs
(seeds) of that configuration, and its 95% CI a percentile bootstrap over them (${resamples} resamples) when there are several, else that run's own bootstrap CI over the test split (cluster bootstrap over region cells where the run
recorded them). No mean or CI
pools runs of different configurations.</p>`;
}

/** Accuracy against completion length (the Table 2 analogue): CI table, charts and per-run accuracies. */
function renderPairingSection(
  groups: LabelGroup[],
  runs: RunRecords[],
  { acc, len, fmt }: PairingCiRows,
  opts: CiOptions,
): string {
  const gain = gainRows(groups, runs, (r) => r.pairing?.accuracy, { ...opts, metric: "acc" });
  const table = renderCiMultiTable([
    { name: "Pairing accuracy [95% CI]", rows: acc, format: { scale: 100, unit: "%" } },
    { name: "Gain over starting stage, pp [95% CI]", rows: gain, format: { scale: 100, unit: " pp" } },
    { name: "Completion length, tokens [95% CI]", rows: len, format: { digits: 1 } },
    { name: "Format rate", rows: fmt, format: { scale: 100, unit: "%" } },
  ], {
    caption: "Cross-view pairing on the test split; gain: minus the model it starts from in the same run",
  });
  const charts = acc.length
    ? chartGrid(pairingCharts(acc, len))
    : `<p class="note">No pairing evaluation in these runs (baseline rows answer geolocation only).</p>`;
  return `${table}\n${charts}\n${renderPerRunAccuracy(groups, runs)}`;
}

/** The scatter of accuracy against length and the bar charts of each, with their CIs. */
function pairingCharts(acc: CiRow[], len: CiRow[]): string[] {
  const scatter = renderScatter(
    acc.map((a) => {
      const l = len.find((x) => x.label === a.label);
      return {
        label: a.label,
        x: l?.mean ?? NaN,
        y: a.mean * 100,
        xCi: l?.ci ?? null,
        yCi: a.ci ? [a.ci[0] * 100, a.ci[1] * 100] as [number, number] : null,
      };
    }).filter((p) => Number.isFinite(p.x)),
    {
      title: "Accuracy vs completion length (mean over runs, 95% CI)",
      xLabel: "mean completion length (tokens)",
      yLabel: "pairing accuracy (%)",
      yMin: 0,
      yMax: 100,
      height: 340,
      wide: true,
    },
  );
  const bars = renderCiChart(acc, {
    title: "Pairing accuracy (%)",
    scale: 100,
    unit: "%",
    yLabel: "accuracy (%)",
    height: 300,
  });
  const lenBars = renderCiChart(len, { title: "Completion length (tokens)", yLabel: "tokens", height: 300 });
  return [scatter, bars, lenBars];
}

/** Pairing accuracy per row and run (row x run), so that the spread over replicates is visible. */
function renderPerRunAccuracy(groups: LabelGroup[], runs: RunRecords[]): string {
  return renderTable(
    ["Model", ...runs.map((r) => `${r.manifest.runId} (seed ${r.manifest.seed})`)],
    groups.map((g) => [
      g.label,
      // The row of the run's own table (eval.json), also when it came from a sibling run through the stage
      // cache, so that each run's column holds that run's own models.
      ...runs.map((r) => {
        const row = r.eval.rows.find((y) => rowKey(r, y) === g.key);
        return row?.pairing ? fmtPct(row.pairing.accuracy) : null;
      }),
    ]),
    {
      caption:
        "Pairing accuracy in each run's own table (a row shared through the stage cache shows in every " +
        "run that lists it; the mean and CI count it once)",
    },
  );
}

/** The Table 1 analogue: accuracy within each distance, its notes, paired differences and chart. */
function renderGeoSection(runs: RunRecords[], groups: LabelGroup[], opts: CiOptions): string {
  const thKeys = [
    ...new Set(groups.flatMap((g) => g.rows.flatMap((x) => Object.keys(x.row.geolocate?.thresholds ?? {})))),
  ]
    .sort((a, b) => Number(a) - Number(b));
  if (!thKeys.length) return `<p class="note">No geolocation evaluation in these runs.</p>`;
  const table = renderCiMultiTable(geoColumns(groups, thKeys, opts), {
    caption: "Geolocation accuracy within each distance (Table 1 analogue: model rows and baselines on the " +
      "same test views), mean over runs [95% CI]",
  });
  return table + geoNotes(runs, groups) + renderPairedDiffs(runs, groups, opts) +
    chartGrid([geoChart(groups, thKeys)]);
}

/** The columns of the geolocation table: one per distance threshold, then median error, parse and repetition. */
function geoColumns(groups: LabelGroup[], thKeys: string[], opts: CiOptions): CiColumn[] {
  const pct = { scale: 100, unit: "%" };
  return [
    ...thKeys.map((k) => ({
      name: `${k} km`,
      rows: ciRows(groups, (r) => r.geolocate?.thresholds[k], (r) => r.geolocate?.thresholdCi?.[k], {
        ...opts,
        metric: `geo${k}`,
      }),
      format: pct,
    })),
    {
      name: "Median error (km)",
      rows: ciRows(groups, (r) => r.geolocate?.medianKm, undefined, { ...opts, metric: "med" }),
      format: { digits: 0 },
    },
    {
      name: "Parse rate",
      rows: ciRows(groups, (r) => r.geolocate?.parseRate, undefined, { ...opts, metric: "parse" }),
      format: pct,
    },
    {
      name: "Repeated 6-gram",
      rows: ciRows(groups, (r) => r.geolocate?.repetitionRate, undefined, { ...opts, metric: "rep" }),
      format: pct,
    },
  ];
}

/** Geo-QA accuracy overall and per question kind. */
function renderGeoQaSection(groups: LabelGroup[], opts: CiOptions): string {
  const kinds = [
    ...new Set(groups.flatMap((g) => g.rows.flatMap((x) => Object.keys(x.row.geoqa?.byKind ?? {})))),
  ];
  if (!kinds.length) return `<p class="note">No geo-qa evaluation in these runs.</p>`;
  const pct = { scale: 100, unit: "%" };
  return renderCiMultiTable(
    [
      {
        name: "All",
        rows: ciRows(groups, (r) => r.geoqa?.accuracy, undefined, { ...opts, metric: "qa" }),
        format: pct,
      },
      ...kinds.map((k) => ({
        name: k,
        rows: ciRows(groups, (r) => r.geoqa?.byKind[k]?.accuracy, undefined, { ...opts, metric: `qa/${k}` }),
        format: pct,
      })),
    ],
    { caption: "Geo-QA accuracy by kind, mean over runs [95% CI]" },
  );
}

/**
 * The runs table; each run id links to its published report (`<reportsDir>/<runId>.html`), else to its own
 * `report.html`, relative to `outDir`.
 */
async function renderRunsTable(runs: RunRecords[], outDir: string, reportsDir: string): Promise<string> {
  const rows = [];
  for (const r of runs) {
    const published = join(reportsDir, `${r.manifest.runId}.html`);
    const own = join(r.dir, "report.html");
    const target = (await exists(published)) ? published : (await exists(own)) ? own : null;
    const m = r.manifest;
    rows.push([
      target
        ? raw(`<a href="${escapeHtml(relHref(outDir, resolve(target)))}">${escapeHtml(m.runId)}</a>`)
        : m.runId,
      m.name,
      m.seed,
      m.status,
      raw(`<code>${escapeHtml(m.specHash.slice(0, 12))}</code>`),
      raw(
        `<code>${escapeHtml((m.git?.commit ?? "unknown").slice(0, 12))}</code>${
          m.git?.dirty ? " dirty" : ""
        }`,
      ),
      m.endedAt ?? null,
    ]);
  }
  return renderTable(["Run", "Experiment", "Seed", "Status", "Spec hash", "Commit", "Ended"], rows);
}

/** Render the comparison report HTML for already-read runs; `outDir` is where links are relative to. */
export async function renderComparisonReport(
  runs: RunRecords[],
  outDir: string,
  opts: ComparisonOptions = {},
): Promise<string> {
  const groups = aggregateRuns(runs);
  const pairing = pairingCiRows(groups, opts);
  const configs = configGroups(runs);
  const diff = renderSpecDiff(configs);
  const warnings = [...recordWarnings(runs), ...diff.warnings];
  const meta = comparisonMeta(runs, configs, pairing.acc, opts.title);
  const runsTable = await renderRunsTable(runs, outDir, opts.reportsDir ?? DEFAULT_REPORTS_DIR);
  const body = `
<h1>${escapeHtml(meta.title)}</h1>
${renderIntro(runs, configs, meta, opts.resamples ?? 2000)}
${warnings.length ? `<p class="warn">${warnings.map(escapeHtml).join("<br>")}</p>` : ""}
<h2>Configurations</h2>
${diff.html}
<h2>Accuracy vs completion length</h2>
${renderPairingSection(groups, runs, pairing, opts)}
<h2>Training curves</h2>
${renderRowCurves(groups, runs)}
<h2>Example by example</h2>
${renderExampleDiff(groups, runs)}
<h2 id="geolocate">Geolocation (out of task)</h2>
${renderGeoSection(runs, groups, opts)}
<h2>Geo-QA (out of task)</h2>
${renderGeoQaSection(groups, opts)}
<h2>Runs</h2>
${runsTable}
`;
  return await renderPage({ title: meta.title, body, meta });
}

/**
 * Write a comparison report of `runDirs` to `out` (default `<reportsDir>/compare-<hash>.html`); rebuilds the
 * reports index when `out` lies in the reports directory. All runs are read and checked before anything is
 * written. Returns the path written.
 */
export async function writeComparisonReport(
  runDirs: string[],
  out?: string,
  opts: ComparisonOptions = {},
): Promise<string> {
  const runs: RunRecords[] = [];
  for (const d of runDirs) runs.push(await readRunRecords(d));
  const reportsDir = opts.reportsDir ?? DEFAULT_REPORTS_DIR;
  const path = out ?? comparisonReportPath(runs.map((r) => r.manifest.runId), reportsDir);
  const html = await renderComparisonReport(runs, resolve(dirname(path)), opts);
  await atomicWrite(path, html);
  if (resolve(dirname(path)) === resolve(reportsDir)) await writeReportsIndex(reportsDir);
  return path;
}
