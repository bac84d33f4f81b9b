/**
 * The paper-tables report (`deno task report --paper RUN...`): our Table 1 and Table 2 analogues built from
 * run records, with the paper's published numbers (lib/report/paper_numbers.ts) in their own columns,
 * every one labelled as the paper's. Rows: Base, Geo-SFT, Geo-R1-Zero, Geo-R1 and Task-SFT; a row without
 * a run shows a dash in our columns and keeps the paper's.
 * @module
 */
import { createHash } from "node:crypto";
import { join } from "node:path";
import { atomicWrite } from "../run/atomic.ts";
import type { StageEval } from "../run/records.ts";
import { escapeHtml } from "./escape.ts";
import { chartGrid, type CiRow, type Column, fmtCi, renderScatter, renderTable } from "./components.ts";
import { renderPage, type ReportMeta } from "./page.ts";
import { readRunRecords, type RunRecords } from "./read.ts";
import { aggregateRuns, ciRows, type LabelGroup } from "./compare.ts";
import { DEFAULT_REPORTS_DIR, writeReportsIndex } from "./index_page.ts";
import { PAPER_TABLE1, PAPER_TABLE2, PAPER_TASK_SFT_NOTE, PAPER_THRESHOLDS_KM } from "./paper_numbers.ts";

/** The rows of the paper tables, in order. */
export const PAPER_ROWS = ["Base", "Geo-SFT", "Geo-R1-Zero", "Geo-R1", "Task-SFT"] as const;

/**
 * The paper row of an eval row: its label, except that the own last stage of a `task-sft` run (an SFT stage,
 * labelled Geo-SFT by pipeline shape) is the Task-SFT row.
 */
export function paperLabel(run: RunRecords, row: StageEval): string {
  const stages = run.manifest.stages ?? [];
  const last = stages[stages.length - 1]?.name;
  if (run.manifest.name === "task-sft" && row.stage === last && row.label === "Geo-SFT") return "Task-SFT";
  return row.label;
}

/** Eval rows of all runs grouped by paper row (PAPER_ROWS order, then any other label). */
export function paperGroups(runs: RunRecords[]): LabelGroup[] {
  const relabelled = runs.map((r) => ({
    ...r,
    eval: { ...r.eval, rows: r.eval.rows.map((row) => ({ ...row, label: paperLabel(r, row) })) },
  }));
  const groups = aggregateRuns(relabelled);
  const rank = (l: string) => {
    const i = (PAPER_ROWS as readonly string[]).indexOf(l);
    return i < 0 ? PAPER_ROWS.length : i;
  };
  return [...groups].sort((a, b) => rank(a.label) - rank(b.label));
}

const num = (label: string, title?: string): Column => ({ label, num: true, title });

const find = <T extends { label: string }>(xs: T[], l: string) => xs.find((x) => x.label === l);

/** The Table 2 analogue: our pairing accuracy and completion length beside the paper's, one row per label. */
function renderTable2(labels: string[], acc: CiRow[], len: CiRow[]): string {
  return renderTable(
    [
      "Row",
      num("Runs"),
      num("Ours: pairing accuracy [95% CI]"),
      num("Ours: completion length, tokens [95% CI]"),
      "Paper's model (Table 2)",
      num("Paper's accuracy", "arXiv 2510.00072, Table 2"),
      num("Paper's completion length", "arXiv 2510.00072, Table 2, tokens"),
    ],
    labels.map((l) => {
      const a = find(acc, l);
      const n = find(len, l);
      const p = PAPER_TABLE2[l];
      return [
        l,
        a?.n ?? 0,
        a ? fmtCi(a.mean, a.ci, { scale: 100, unit: "%" }) : null,
        n ? fmtCi(n.mean, n.ci, { digits: 1 }) : null,
        p ? p.model : l === "Task-SFT" ? "GLOBE-7B / GeoReasoner (no Table 2 row)" : null,
        p ? `${p.accuracyPct.toFixed(1)}%` : null,
        p ? p.completionTokens.toFixed(1) : null,
      ];
    }),
    {
      caption: "Table 2 analogue: cross-view pairing on the test split. Columns marked Paper's are the " +
        "published numbers (Qwen2.5-VL-7B based), not ours.",
    },
  );
}

/**
 * The Table 1 analogue: our geolocation accuracy within each of the paper's distances beside the paper's
 * rows, then the paper's rows that have no counterpart here.
 */
function renderTable1(groups: LabelGroup[], labels: string[]): string {
  const geo = PAPER_THRESHOLDS_KM.map((k) =>
    ciRows(groups, (r) => r.geolocate?.thresholds[String(k)], (r) => r.geolocate?.thresholdCi?.[String(k)], {
      metric: `geo${k}`,
    })
  );
  const rows = labels.map((l) => {
    const p = PAPER_TABLE1.find((x) => x.ours === l);
    return [
      l,
      ...geo.map((geoRows) => {
        const r = find(geoRows, l);
        return r ? fmtCi(r.mean, r.ci, { scale: 100, unit: "%" }) : null;
      }),
      p ? p.model : null,
      ...PAPER_THRESHOLDS_KM.map((_, i) => (p ? `${p.withinPct[i].toFixed(2)}%` : null)),
    ];
  });
  for (const p of PAPER_TABLE1.filter((x) => x.ours === null)) {
    rows.push([
      `(paper only) ${p.model}`,
      ...PAPER_THRESHOLDS_KM.map(() => null),
      p.model,
      ...p.withinPct.map((v) => `${v.toFixed(2)}%`),
    ]);
  }
  return renderTable(
    [
      "Row",
      ...PAPER_THRESHOLDS_KM.map((k) => num(`Ours: ≤ ${k} km`)),
      "Paper's model (Table 1)",
      ...PAPER_THRESHOLDS_KM.map((k) => num(`Paper's ≤ ${k} km`, "arXiv 2510.00072, Table 1 (IM2GPS3K)")),
    ],
    rows,
    {
      caption:
        "Table 1 analogue: geolocation accuracy within each distance on our test split, mean over runs " +
        "[95% CI]. Columns marked Paper's are the published numbers on IM2GPS3K, not ours.",
    },
  );
}

/** Accuracy against completion length: ours (with CIs) and the paper's Table 2, side by side. */
function tableTwoCharts(acc: CiRow[], len: CiRow[]): string[] {
  const axes = {
    xLabel: "mean completion length (tokens)",
    yLabel: "pairing accuracy (%)",
    yMin: 0,
    yMax: 100,
    height: 320,
  };
  const ours = renderScatter(
    acc.map((a) => ({
      label: a.label,
      x: find(len, a.label)?.mean ?? NaN,
      y: a.mean * 100,
      xCi: find(len, a.label)?.ci ?? null,
      yCi: a.ci ? [a.ci[0] * 100, a.ci[1] * 100] as [number, number] : null,
    })).filter((p) => Number.isFinite(p.x)),
    { title: "Ours: accuracy vs completion length", ...axes },
  );
  const paper = renderScatter(
    Object.entries(PAPER_TABLE2).map(([l, p]) => ({
      label: `${l} (paper)`,
      x: p.completionTokens,
      y: p.accuracyPct,
    })),
    { title: "Paper's Table 2: accuracy vs completion length", ...axes },
  );
  return [ours, paper];
}

/** The runs read, with the paper rows each contributes. */
function renderRunList(runs: RunRecords[]): string {
  return renderTable(
    ["Run", "Experiment", "Seed", "Status", "Rows"],
    runs.map((r) => [
      r.manifest.runId,
      r.manifest.name,
      r.manifest.seed,
      r.manifest.status,
      r.eval.rows.map((row) => paperLabel(r, row)).join(", "),
    ]),
  );
}

/** The page metadata (title, experiments, headline accuracies) of a paper-tables report. */
function paperMeta(
  runs: RunRecords[],
  acc: CiRow[],
  title: string | undefined,
): ReportMeta {
  const dates = runs.map((r) => r.manifest.endedAt ?? r.manifest.startedAt).filter(Boolean).sort();
  return {
    kind: "paper",
    title: title ?? `Paper tables (${runs.length} run${runs.length === 1 ? "" : "s"})`,
    date: dates.at(-1) ?? null,
    experiment: [...new Set(runs.map((r) => r.manifest.name))].join(", "),
    keyMetrics: Object.fromEntries(acc.map((a) => [a.label, fmtCi(a.mean, null, { scale: 100, unit: "%" })])),
  };
}

/** Render the paper-tables report of already-read runs. */
export async function renderPaperReport(runs: RunRecords[], opts: { title?: string } = {}): Promise<string> {
  const groups = paperGroups(runs);
  const labels = [
    ...PAPER_ROWS,
    ...groups.map((g) => g.label).filter((l) => !PAPER_ROWS.includes(l as never)),
  ];
  const acc = ciRows(groups, (r) => r.pairing?.accuracy, (r) => r.pairing?.ci, { metric: "acc" });
  const len = ciRows(groups, (r) => r.pairing?.meanLength, (r) => r.pairing?.lengthCi, { metric: "len" });
  const missing = PAPER_ROWS.filter((l) => !groups.some((g) => g.label === l));
  const meta = paperMeta(runs, acc, opts.title);
  const body = `
<h1>${escapeHtml(meta.title)}</h1>
<p class="sub">Our Table 1 and Table 2 analogues from the run records, with the numbers published in Geo-R1
(arXiv 2510.00072, Tables 1 and 2) in their own columns, each headed <b>Paper's</b>. Ours: a small VLM trained
from scratch on GeoWorld; theirs: Qwen2.5-VL-7B on real imagery. Compare orders and gaps, not values.
Means over runs; the 95% CI is a bootstrap over runs when several runs share a row, else the run's own.</p>
${
    missing.length
      ? `<p class="warn">${escapeHtml(`No run for: ${missing.join(", ")} (our columns show a dash)`)}</p>`
      : ""
  }
<h2 id="table2">Table 2: accuracy vs completion length</h2>
${renderTable2(labels, acc, len)}
<p class="note">${escapeHtml(`Task-SFT: ${PAPER_TASK_SFT_NOTE}.`)}</p>
${chartGrid(tableTwoCharts(acc, len))}
<h2 id="table1">Table 1: geolocation</h2>
${renderTable1(groups, labels)}
<h2 id="runs">Runs</h2>
${renderRunList(runs)}
`;
  return await renderPage({ title: meta.title, body, meta });
}

/** Default path: `<reportsDir>/paper-<hash of the sorted run ids>.html`. */
export function paperReportPath(runIds: string[], reportsDir = DEFAULT_REPORTS_DIR): string {
  const h = createHash("sha256").update([...runIds].sort().join("\n")).digest("hex").slice(0, 10);
  return join(reportsDir, `paper-${h}.html`);
}

/**
 * Write the paper-tables report of `runDirs` to `out` (default: paperReportPath in the reports directory,
 * whose index is then rebuilt). Every run is read and checked before anything is written.
 */
export async function writePaperReport(
  runDirs: string[],
  out?: string,
  opts: { reportsDir?: string } = {},
): Promise<string> {
  const runs: RunRecords[] = [];
  for (const d of runDirs) runs.push(await readRunRecords(d));
  const reportsDir = opts.reportsDir ?? DEFAULT_REPORTS_DIR;
  const path = out ?? paperReportPath(runs.map((r) => r.manifest.runId), reportsDir);
  await atomicWrite(path, await renderPaperReport(runs));
  if (out === undefined) await writeReportsIndex(reportsDir);
  return path;
}
