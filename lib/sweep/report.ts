/**
 * The sweep report (`runs/sweeps/<name>/report.html`, copied to `reports/sweep-<name>.html` with the reports
 * index rebuilt): a table of every cell with the mean and a percentile-bootstrap CI over seeds of pairing
 * accuracy, completion length, format rate and the geo metrics; one chart per swept parameter (metric vs
 * parameter value with CI error bars); a table of every run with its status, error and a relative link to
 * its report.html. Built from run records (eval.json, manifest.json) and the sweep state only, with the page
 * shell, CSP and escaping of lib/report.
 * @module
 */
import { dirname, join, relative, resolve } from "node:path";
import { atomicWrite } from "../run/atomic.ts";
import type { EvalFile, Manifest, StageEval } from "../run/records.ts";
import { bootstrapCi, mean } from "../eval/stats.ts";
import { escapeHtml } from "../report/escape.ts";
import {
  type Cell as TableCell,
  type ChartConfig,
  chartGrid,
  color,
  fmtCi,
  raw,
  renderChart,
  renderKv,
  renderTable,
} from "../report/components.ts";
import { renderPage, type ReportMeta, setupLine } from "../report/page.ts";
import { readRunRecords, type RunRecords } from "../report/read.ts";
import type { LabelGroup } from "../report/compare.ts";
import { configGroups, gainRows, renderRowCurves, renderSpecDiff } from "../report/compare_sections.ts";
import { renderCiMultiTable } from "../report/components.ts";
import { writeReportsIndex } from "../report/index_page.ts";
import { validateEvalFile } from "../report/read.ts";
import { displayValue, expandCells, type PlannedRun, shortNames, sweptParams } from "./expand.ts";
import type { LoadedSweep } from "./spec.ts";
import type { RunState, SweepState } from "./state.ts";
import { exists } from "../run/fs.ts";

/** The numbers the sweep report aggregates, per run. */
export interface RunMetrics {
  accuracy?: number;
  length?: number;
  formatRate?: number;
  geoMedianKm?: number;
  geoAcc25?: number;
  geoAcc750?: number;
  geoqa?: number;
}

/** A metric column of the report. */
interface MetricDef {
  key: keyof RunMetrics;
  name: string;
  scale?: number;
  unit?: string;
  digits?: number;
  /** Charted per swept parameter. */
  chart?: boolean;
}

const METRICS: MetricDef[] = [
  { key: "accuracy", name: "Pairing accuracy", scale: 100, unit: "%", chart: true },
  { key: "length", name: "Completion length (tokens)", digits: 1, chart: true },
  { key: "formatRate", name: "Format rate", scale: 100, unit: "%" },
  { key: "geoMedianKm", name: "Geolocate median km", digits: 0 },
  { key: "geoAcc25", name: "Geolocate acc@25 km", scale: 100, unit: "%" },
  { key: "geoAcc750", name: "Geolocate acc@750 km", scale: 100, unit: "%" },
  { key: "geoqa", name: "Geo-QA accuracy", scale: 100, unit: "%" },
];

/**
 * The eval row of a run's own final model: the row whose stage hash is the last pipeline stage's (manifest),
 * else the last row of the last pipeline stage's name, else the last row (eval.json may also hold rows of
 * cached sibling experiments).
 */
export function finalRow(
  ev: EvalFile,
  manifest: Manifest | null,
  pipeline: string[] | null,
): StageEval | null {
  const lastStage = manifest?.stages?.[manifest.stages.length - 1];
  if (lastStage) {
    const byHash = ev.rows.find((r) => r.stageHash && r.stageHash === lastStage.hash);
    if (byHash) return byHash;
  }
  const lastName = lastStage?.name ?? pipeline?.[pipeline.length - 1];
  if (lastName) {
    const byName = ev.rows.filter((r) => r.stage === lastName);
    if (byName.length) return byName[byName.length - 1];
  }
  return ev.rows[ev.rows.length - 1] ?? null;
}

/** The metrics of one eval row. */
export function rowMetrics(row: StageEval | null): RunMetrics {
  if (!row) return {};
  const t = row.geolocate?.thresholds ?? {};
  return {
    accuracy: row.pairing?.accuracy,
    length: row.pairing?.meanLength,
    formatRate: row.pairing?.formatRate,
    geoMedianKm: row.geolocate?.medianKm,
    geoAcc25: t["25"],
    geoAcc750: t["750"],
    geoqa: row.geoqa?.accuracy,
  };
}

/** A run's metrics and final row label from its run directory (null when it has no readable eval.json). */
export async function readRunMetrics(runDir: string): Promise<{ label: string; metrics: RunMetrics } | null> {
  let ev: EvalFile;
  try {
    const path = join(runDir, "eval.json");
    ev = validateEvalFile(JSON.parse(await Deno.readTextFile(path)), path);
  } catch {
    return null;
  }
  let manifest: Manifest | null = null;
  let pipeline: string[] | null = null;
  try {
    manifest = JSON.parse(await Deno.readTextFile(join(runDir, "manifest.json")));
  } catch { /* optional */ }
  try {
    pipeline = JSON.parse(await Deno.readTextFile(join(runDir, "spec.resolved.json"))).pipeline ?? null;
  } catch { /* optional */ }
  const row = finalRow(ev, manifest, pipeline);
  return row ? { label: row.label, metrics: rowMetrics(row) } : null;
}

/** Mean and CI of one metric over the seeds of a cell. */
export interface CellStat {
  n: number;
  mean: number;
  ci: [number, number] | null;
}

/** Aggregate values over seeds: mean and a seeded percentile bootstrap CI (null for fewer than 2 values). */
export function cellStat(values: number[], resamples = 2000): CellStat {
  const v = values.filter((x) => Number.isFinite(x));
  if (!v.length) return { n: 0, mean: NaN, ci: null };
  return {
    n: v.length,
    mean: mean(v),
    ci: v.length >= 2 ? bootstrapCi(v, { resamples, alpha: 0.05, seed: 0 }) : null,
  };
}

/** Options of {@link writeSweepReport}. */
export interface SweepReportOptions {
  sweep: LoadedSweep;
  state: SweepState;
  runs: PlannedRun[];
  /** Output path (runs/sweeps/<name>/report.html). */
  out: string;
  /** Also write `<reportsDir>/sweep-<name>.html` and rebuild its index (null: don't). */
  reportsDir?: string | null;
  resamples?: number;
}

interface CellData {
  index: number;
  label: string;
  params: Record<string, unknown>;
  runs: {
    plan: PlannedRun;
    state: RunState | undefined;
    metrics: RunMetrics | null;
    rowLabel: string | null;
  }[];
  stats: Partial<Record<keyof RunMetrics, CellStat>>;
}

async function collect(o: SweepReportOptions): Promise<CellData[]> {
  const cells = expandCells(o.sweep.sweep);
  const byRun = new Map(o.state.runs.map((r) => [r.runId, r]));
  const metricsCache = new Map<string, Awaited<ReturnType<typeof readRunMetrics>>>();
  const out: CellData[] = [];
  for (const c of cells) {
    const runs: CellData["runs"] = [];
    for (const p of o.runs.filter((r) => r.cell === c.index)) {
      const st = byRun.get(p.runId);
      if (!metricsCache.has(p.runId)) {
        metricsCache.set(p.runId, st?.status === "done" || !st ? await readRunMetrics(p.runDir) : null);
      }
      const m = metricsCache.get(p.runId) ?? null;
      runs.push({ plan: p, state: st, metrics: m?.metrics ?? null, rowLabel: m?.label ?? null });
    }
    const stats: CellData["stats"] = {};
    for (const def of METRICS) {
      const values = runs.map((r) => r.metrics?.[def.key]).filter((x): x is number => typeof x === "number");
      if (values.length) stats[def.key] = cellStat(values, o.resamples);
    }
    out.push({ index: c.index, label: c.label, params: c.params, runs, stats });
  }
  return out;
}

function fmtStat(s: CellStat | undefined, def: MetricDef): string | null {
  if (!s || !s.n) return null;
  return fmtCi(s.mean, s.ci, { scale: def.scale ?? 1, unit: def.unit ?? "", digits: def.digits ?? 1 });
}

/**
 * One chart per swept parameter and charted metric: x = the parameter's values (in sweep order), one
 * dataset per combination of the other swept parameters, bars with CI error bars. A list sweep whose cells
 * set several paths gets one chart per metric over its cells.
 */
function paramCharts(cells: CellData[], params: string[], isList: boolean): string[] {
  const charts: string[] = [];
  const names = shortNames(params);
  const groups: {
    title: string;
    xLabel: string;
    xs: string[];
    series: { label: string; cellOf: (x: string) => CellData | undefined }[];
  }[] = [];
  if (isList || params.length === 0) {
    groups.push({
      title: "cell",
      xLabel: params.length ? params.map((p) => names.get(p)).join(" + ") : "cell",
      xs: cells.map((c) => c.label),
      series: [{ label: "mean over seeds", cellOf: (x) => cells.find((c) => c.label === x) }],
    });
  } else {
    for (const p of params) {
      const xs: string[] = [];
      for (const c of cells) {
        const v = displayValue(c.params[p]);
        if (!xs.includes(v)) xs.push(v);
      }
      const others = params.filter((q) => q !== p);
      const keyOf = (c: CellData) =>
        others.map((q) => `${names.get(q)}=${displayValue(c.params[q])}`).join(", ");
      const keys: string[] = [];
      for (const c of cells) if (!keys.includes(keyOf(c))) keys.push(keyOf(c));
      groups.push({
        title: names.get(p) ?? p,
        xLabel: p,
        xs,
        series: keys.map((k) => ({
          label: k || "mean over seeds",
          cellOf: (x: string) => cells.find((c) => keyOf(c) === k && displayValue(c.params[p]) === x),
        })),
      });
    }
  }
  for (const g of groups) {
    for (const def of METRICS.filter((m) => m.chart)) {
      const s = def.scale ?? 1;
      const datasets = g.series.map((ser, i) => ({
        label: ser.label,
        data: g.xs.map((x) => {
          const st = ser.cellOf(x)?.stats[def.key];
          if (!st || !st.n) return null;
          return { x, y: st.mean * s, ...(st.ci ? { yMin: st.ci[0] * s, yMax: st.ci[1] * s } : {}) };
        }),
        backgroundColor: color(i),
        borderColor: color(i),
      }));
      if (!datasets.some((d) => d.data.some((v) => v !== null))) continue;
      const config: ChartConfig = {
        type: "bar",
        data: { labels: g.xs, datasets },
        options: {
          plugins: { legend: { display: g.series.length > 1, labels: { boxWidth: 12 } } },
          scales: {
            x: { title: { display: true, text: g.xLabel } },
            y: {
              beginAtZero: true,
              title: { display: true, text: `${def.name}${def.unit ? ` (${def.unit})` : ""}` },
              ...(def.unit === "%" ? { suggestedMax: 100 } : {}),
            },
          },
        },
      };
      charts.push(
        renderChart(config, { title: `${def.name} vs ${g.title} (mean, 95% CI over seeds)`, height: 240 }),
      );
    }
  }
  return charts;
}

function link(fromDir: string, target: string, text: string): TableCell {
  let rel = relative(fromDir, target).split("\\").join("/");
  if (!rel.startsWith(".")) rel = `./${rel}`;
  return raw(`<a href="${escapeHtml(encodeURI(rel))}">${escapeHtml(text)}</a>`);
}

/** A table cell for a run: a link to its report.html when it has one, else `text`. */
type RunLink = (r: PlannedRun, text: string) => TableCell;

/** The RunLink of a page in `baseDir`, for the runs of `runs` (report.html presence is read once). */
async function runLinks(runs: PlannedRun[], baseDir: string): Promise<RunLink> {
  const reports = new Map<string, boolean>();
  for (const r of runs) reports.set(r.runId, await exists(join(r.runDir, "report.html")));
  return (r, text) => reports.get(r.runId) ? link(baseDir, join(r.runDir, "report.html"), text) : text;
}

function statusText(st: RunState | undefined): string {
  return st?.status ?? "unknown";
}

/** Every cell: runs done, final model, each metric's mean [CI] over seeds, and links to its runs. */
function renderCellTable(cells: CellData[], runLink: RunLink): string {
  // Metric columns that some cell has (the geo metrics only when the experiment evaluates those tasks).
  const shown = METRICS.filter((m, i) => i < 2 || cells.some((c) => c.stats[m.key]?.n));
  return renderTable(
    [
      "Cell",
      { label: "Runs done", num: true },
      "Final model",
      ...shown.map((m) => ({ label: `${m.name} [95% CI]`, num: true })),
      "Runs (seed: report)",
    ],
    cells.map((c) => {
      const done = c.runs.filter((r) => r.state?.status === "done").length;
      const labels = [...new Set(c.runs.map((r) => r.rowLabel).filter((x): x is string => !!x))];
      const links = c.runs.map((r) => {
        const cell = runLink(r.plan, `seed ${r.plan.seed}`);
        const html = typeof cell === "object" && cell ? cell.__html : escapeHtml(String(cell));
        const st = statusText(r.state);
        return st === "done" ? html : `${html} <span class="bad">(${escapeHtml(st)})</span>`;
      });
      return [
        c.label,
        `${done}/${c.runs.length}`,
        labels.join(", ") || null,
        ...shown.map((m) => fmtStat(c.stats[m.key], m)),
        raw(links.join(" · ")),
      ];
    }),
    {
      caption:
        "Every cell: mean over seeds with a 95% percentile-bootstrap CI over seeds (final model of each run)",
    },
  );
}

/** Every run: status, attempts, timing, exit code, headline metrics and the tail of a failed attempt's log. */
function renderRunTable(cells: CellData[], runLink: RunLink): string {
  return renderTable(
    [
      "Run",
      "Cell",
      { label: "Seed", num: true },
      "Status",
      { label: "Attempts", num: true },
      { label: "Elapsed s", num: true },
      { label: "Exit", num: true },
      { label: "Pairing acc.", num: true },
      { label: "Length", num: true },
      "Error",
    ],
    cells.flatMap((c) =>
      c.runs.map((r) => {
        const st = r.state;
        const err = st?.status === "done" ? null : st?.error ?? null;
        return [
          runLink(r.plan, r.plan.runId),
          c.label,
          r.plan.seed,
          st?.skipped && st.status === "done" ? "done (earlier)" : statusText(st),
          st?.attempts ?? null,
          st?.elapsedS ?? null,
          st?.exitCode ?? null,
          r.metrics?.accuracy !== undefined ? `${(r.metrics.accuracy * 100).toFixed(1)}%` : null,
          r.metrics?.length !== undefined ? r.metrics.length.toFixed(1) : null,
          err
            ? raw(
              `<details><summary>${escapeHtml(err.split("\n")[0])}</summary><pre>${
                escapeHtml(err)
              }</pre></details>`,
            )
            : null,
        ];
      })
    ),
    { caption: "Every run (links go to each run's report.html; run ids are hashes of the resolved specs)" },
  );
}

/** How many distinct runs the sweep plans and how many of them are done. */
interface Progress {
  nRuns: number;
  nDone: number;
}

/** The page metadata of a sweep: setup, runs done and the cell with the best pairing accuracy. */
function sweepMeta(o: SweepReportOptions, cells: CellData[], params: string[], p: Progress): ReportMeta {
  const { sweep } = o.sweep;
  const best =
    cells.filter((c) => c.stats.accuracy?.n).sort((a, b) =>
      b.stats.accuracy!.mean - a.stats.accuracy!.mean
    )[0];
  const keyMetrics: Record<string, string> = { runs: `${p.nDone}/${p.nRuns} done` };
  if (best) keyMetrics[`best: ${best.label}`] = fmtStat(best.stats.accuracy, METRICS[0]) ?? "–";
  return {
    kind: "sweep",
    title: `Sweep ${sweep.name}`,
    date: o.state.updatedAt,
    experiment: sweep.experiment,
    runId: null,
    preset: sweep.preset ?? null,
    seed: sweep.seeds.join(", "),
    overrides: [
      ...Object.entries(sweep.sets ?? {}).map(([k, v]) => `${k}=${JSON.stringify(v)}`),
      ...params.map((p) => `${p} swept`),
    ],
    keyMetrics,
  };
}

/** The sweep's setup as key-value pairs: file, experiment, what is swept, seeds, progress. */
function renderSweepSetup(
  o: SweepReportOptions,
  baseDir: string,
  cells: CellData[],
  params: string[],
  p: Progress,
): string {
  const { sweep } = o.sweep;
  return renderKv([
    ["Sweep file", relative(baseDir, o.sweep.path) || o.sweep.path],
    ["Experiment", sweep.experiment],
    ["Preset", sweep.preset ?? "(spec default)"],
    ["Swept", params.join(", ") || "–"],
    [
      "Common overrides",
      Object.entries(sweep.sets ?? {}).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(" ") || "–",
    ],
    ["Seeds", sweep.seeds.join(", ")],
    [
      "Cells x seeds",
      `${cells.length} x ${sweep.seeds.length} = ${o.runs.length} (${p.nRuns} distinct runs)`,
    ],
    ["Status", `${p.nDone}/${p.nRuns} done`],
    ["Updated", o.state.updatedAt],
  ], "Sweep");
}

/** Render the sweep report HTML for a page placed in `baseDir` (links are relative to it). */
export async function renderSweepReport(o: SweepReportOptions, baseDir: string): Promise<string> {
  const cells = await collect(o);
  const { sweep } = o.sweep;
  const params = sweptParams(sweep);
  const base = resolve(baseDir);
  const runLink = await runLinks(o.runs, base);
  const charts = paramCharts(cells, params, !!sweep.list);
  const across = await acrossRuns(cells, o.resamples);
  const progress = {
    nRuns: new Set(o.runs.map((r) => r.runId)).size,
    nDone: o.state.runs.filter((r) => r.status === "done").length,
  };
  const meta = sweepMeta(o, cells, params, progress);
  const { nRuns, nDone } = progress;
  const incomplete = nDone < nRuns
    ? `<p class="warn">${
      nRuns - nDone
    } of ${nRuns} runs are not done; cells aggregate the finished runs only (see n per cell and the run table).</p>`
    : "";
  const body = `
<h1>${escapeHtml(meta.title)}</h1>
<p class="setup">${escapeHtml(setupLine(meta))}</p>
<p class="sub">${escapeHtml(sweep.description ?? "")}</p>
${incomplete}
${renderSweepSetup(o, base, cells, params, progress)}
<h2 id="cells">Cells</h2>
${renderCellTable(cells, runLink)}
<p class="note">CIs are percentile bootstraps of the mean over seeds (resampling the per-seed values); with 3 seeds
they cannot reach beyond the observed range and are optimistic. A cell with one finished run shows its value alone.</p>
${across.warnings.length ? `<p class="warn">${across.warnings.map(escapeHtml).join("<br>")}</p>` : ""}
<h2 id="configs">How the cells' configurations differ</h2>
${across.diff}
<h2 id="gain">Gain over the starting stage</h2>
${across.gain}
<h2 id="charts">Per swept parameter</h2>
${charts.length ? chartGrid(charts) : `<p class="note">No finished runs with metrics yet.</p>`}
<h2 id="curves">Training curves per cell</h2>
${across.curves}
<h2 id="runs">Runs</h2>
${renderRunTable(cells, runLink)}
<p class="note">Generated by geo-r1 lib/sweep from the sweep state and the run records; opens offline.</p>
`;
  return await renderPage({ title: meta.title, body, meta });
}

/**
 * Write the sweep report to `o.out` (atomically); when `reportsDir` is set, also to
 * `<reportsDir>/sweep-<name>.html` (links re-based) and rebuild `<reportsDir>/index.html`. Returns `o.out`.
 */
export async function writeSweepReport(o: SweepReportOptions): Promise<string> {
  const html = await renderSweepReport(o, dirname(resolve(o.out)));
  await atomicWrite(o.out, html);
  if (o.reportsDir) {
    const copy = join(o.reportsDir, `sweep-${o.sweep.sweep.name}.html`);
    await atomicWrite(copy, await renderSweepReport(o, resolve(o.reportsDir)));
    await writeReportsIndex(o.reportsDir);
  }
  return o.out;
}

/**
 * The sections that read whole run records of the finished runs: how the cells' resolved specs (minus
 * seed) differ, with a warning when runs of one cell differ in more than their seed or two cells resolve
 * to one configuration; each cell's gain over its final model's starting stage (mean and CI over seeds);
 * the training curves of every cell (seeds thin, mean bold).
 */
async function acrossRuns(
  cells: CellData[],
  resamples = 2000,
): Promise<{ diff: string; gain: string; curves: string; warnings: string[] }> {
  const records: RunRecords[] = [];
  const groups: LabelGroup[] = [];
  const cellOf = new Map<string, string>();
  for (const c of cells) {
    const g: LabelGroup = { label: c.label, model: "", variant: "", key: `cell/${c.index}`, rows: [] };
    for (const run of c.runs) {
      if (run.state?.status !== "done" && run.state) continue;
      let r: RunRecords;
      try {
        r = await readRunRecords(run.plan.runDir);
      } catch {
        continue;
      }
      records.push(r);
      cellOf.set(r.manifest.runId, c.label);
      const row = finalRow(r.eval, r.manifest, null);
      if (!row) continue;
      g.model ||= row.label;
      g.rows.push({ runId: r.manifest.runId, row });
    }
    if (g.rows.length) groups.push(g);
  }
  if (!records.length) {
    const none = `<p class="note">No finished runs yet.</p>`;
    return { diff: none, gain: none, curves: none, warnings: [] };
  }
  const configs = configGroups(records);
  const warnings: string[] = [];
  for (const cfg of configs) {
    const names = [...new Set(cfg.runs.map((r) => cellOf.get(r.manifest.runId)!))];
    cfg.name = names.join(" = ");
    if (names.length > 1) warnings.push(`cells ${names.join(", ")} resolve to one configuration`);
  }
  for (const c of cells) {
    const n = configs.filter((cfg) => cfg.runs.some((r) => cellOf.get(r.manifest.runId) === c.label)).length;
    if (n > 1) {
      warnings.push(
        `the runs of cell ${c.label} differ in more than their seed: its CI mixes configurations`,
      );
    }
  }
  const diff = renderSpecDiff(configs);
  warnings.push(...diff.warnings);
  const gain = gainRows(groups, records, (r) => r.pairing?.accuracy, { resamples, metric: "acc" });
  return {
    diff: diff.html,
    gain: gain.length
      ? renderCiMultiTable([{
        name: "Pairing accuracy gain over the starting stage, pp [95% CI]",
        rows: gain,
        format: { scale: 100, unit: " pp" },
      }], {
        labelHeader: "Cell",
        caption: "Per cell: the final model's pairing accuracy minus that of the model it starts from " +
          "(Geo-R1: Geo-SFT; Geo-R1-Zero: Base), in the same run; mean and bootstrap CI over seeds",
      })
      : `<p class="note">No cell has both its final model and its starting model in eval.json.</p>`,
    curves: renderRowCurves(groups, records),
    warnings,
  };
}
