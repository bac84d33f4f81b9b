/**
 * Reusable report pieces: tables, chart.js charts (config embedded as JSON, built by the page bootstrap),
 * CI tables/charts over rows of `{label, mean, ci}` (run comparison and sweep reports), number formats.
 * Every function returns trusted HTML; every value it is given is escaped unless wrapped with `raw()`.
 * @module
 */
import { escapeHtml, jsonForScript } from "./escape.ts";

/** Trusted HTML, passed through a table cell unescaped. Only for markup built from escaped pieces. */
export interface RawHtml {
  readonly __html: string;
}
export function raw(html: string): RawHtml {
  return { __html: html };
}

export type Cell = string | number | null | undefined | RawHtml;

export interface Column {
  label: string;
  /** Right-aligned, tabular numbers. */
  num?: boolean;
  /** Tooltip on the header. */
  title?: string;
}

export interface TableOptions {
  caption?: string;
  className?: string;
  /** Extra attributes of the table element (trusted, e.g. ` data-sortable`). */
  attrs?: string;
  /** Attributes of each body row (trusted), e.g. `data-task` for filtering. */
  rowAttrs?: (i: number) => string;
}

function cellHtml(c: Cell): string {
  if (c === null || c === undefined) return "&ndash;";
  if (typeof c === "object") return c.__html;
  if (typeof c === "number") return Number.isFinite(c) ? escapeHtml(String(c)) : "&ndash;";
  return escapeHtml(c);
}

/** An HTML table; columns are strings or `Column`s; cells are escaped text, numbers or `raw()` HTML. */
export function renderTable(columns: (string | Column)[], rows: Cell[][], opts: TableOptions = {}): string {
  const cols = columns.map((c) => typeof c === "string" ? { label: c } : c);
  const cls = (c: Column | undefined) => c?.num ? ' class="num"' : "";
  const head = cols.map((c) =>
    `<th${cls(c)}${c.title ? ` title="${escapeHtml(c.title)}"` : ""}>${escapeHtml(c.label)}</th>`
  )
    .join("");
  const body = rows.map((r, j) =>
    `<tr${opts.rowAttrs?.(j) ?? ""}>${
      r.map((c, i) => `<td${cls(cols[i])}>${cellHtml(c)}</td>`).join("")
    }</tr>`
  )
    .join("\n");
  // Wide tables scroll inside their own box instead of widening the page.
  return `<div class="tablewrap"><table${opts.className ? ` class="${escapeHtml(opts.className)}"` : ""}${
    opts.attrs ?? ""
  }>${
    opts.caption ? `<caption>${escapeHtml(opts.caption)}</caption>` : ""
  }<thead><tr>${head}</tr></thead><tbody>
${body}
</tbody></table></div>`;
}

/** A two-column key/value table. */
export function renderKv(pairs: [string, Cell][], caption?: string): string {
  return renderTable(["Field", "Value"], pairs.map(([k, v]) => [k, v]), { caption, className: "kv" });
}

/** A chart.js configuration (plain JSON: no functions). Data points may carry xMin/xMax/yMin/yMax (CI
 * bars drawn by the page's `ciBars` plugin) and `label` (drawn beside the point when the dataset sets
 * `pointLabels: true`). */
export type ChartConfig = { type: string; data: unknown; options?: unknown };

export interface ChartOptions {
  title?: string;
  /** Canvas box height in CSS pixels (default 220). */
  height?: number;
  /** Span the whole grid row. */
  wide?: boolean;
}

/** A chart: a `<figure class="chart">` with a canvas and its config as JSON; wrap several in `.charts`. */
export function renderChart(config: ChartConfig, opts: ChartOptions = {}): string {
  const h = Math.round(opts.height ?? 220);
  return `<figure class="chart${opts.wide ? " wide" : ""}">${
    opts.title ? `<figcaption>${escapeHtml(opts.title)}</figcaption>` : ""
  }<div class="box" style="height:${h}px"><canvas role="img" aria-label="${
    escapeHtml(opts.title ?? "chart")
  }"></canvas></div><script type="application/json">${jsonForScript(config)}</script></figure>`;
}

/** A grid of charts. */
export function chartGrid(charts: string[]): string {
  return charts.length ? `<div class="charts">${charts.join("\n")}</div>` : "";
}

export const PALETTE = [
  "#4e79a7",
  "#f28e2b",
  "#e15759",
  "#76b7b2",
  "#59a14f",
  "#edc948",
  "#b07aa1",
  "#ff9da7",
  "#9c755f",
  "#bab0ac",
];
export function color(i: number): string {
  return PALETTE[((i % PALETTE.length) + PALETTE.length) % PALETTE.length];
}

export interface Series {
  label: string;
  points: [number, number][];
}

/**
 * y-axis bounds for a series that is flat: chart.js draws a constant v on v-1..v+1, which puts a rate of 0
 * on a -1..1 axis. A flat series gets v +- 10% (non-negative values stay above 0; 0 gets 0..1).
 */
export function flatAxis(values: number[]): { min: number; max: number } | null {
  const v = values.filter(Number.isFinite);
  if (!v.length) return null;
  const lo = Math.min(...v), hi = Math.max(...v);
  if (hi - lo > 1e-9 * Math.max(1, Math.abs(hi))) return null;
  const pad = lo === 0 ? 1 : Math.abs(lo) * 0.1;
  return { min: lo >= 0 ? Math.max(0, lo - pad) : lo - pad, max: hi + pad };
}

/** Line chart of series over a numeric x axis (e.g. metric vs step). */
export function renderLineChart(
  series: Series[],
  opts: ChartOptions & { xLabel?: string; yLabel?: string; logY?: boolean } = {},
): string {
  const config: ChartConfig = {
    type: "line",
    data: {
      datasets: series.map((s, i) => ({
        label: s.label,
        data: s.points.map(([x, y]) => ({ x, y })),
        borderColor: color(i),
        backgroundColor: color(i),
        borderWidth: 1.5,
        pointRadius: s.points.length > 60 ? 0 : 2,
        tension: 0,
      })),
    },
    options: {
      parsing: false,
      normalized: true,
      interaction: { mode: "nearest", intersect: false },
      plugins: { legend: { display: series.length > 1, labels: { boxWidth: 12 } } },
      scales: {
        x: { type: "linear", title: { display: !!opts.xLabel, text: opts.xLabel ?? "" } },
        y: {
          type: opts.logY ? "logarithmic" : "linear",
          title: { display: !!opts.yLabel, text: opts.yLabel ?? "" },
          ...(opts.logY ? {} : flatAxis(series.flatMap((x) => x.points.map((p) => p[1]))) ?? {}),
        },
      },
    },
  };
  return renderChart(config, opts);
}

export interface ScatterPoint {
  label: string;
  x: number;
  y: number;
  xCi?: [number, number] | null;
  yCi?: [number, number] | null;
}

/** Scatter with one labelled point per row and optional CI bars on both axes (the paper's table 2 view). */
export function renderScatter(
  points: ScatterPoint[],
  /** yMin/yMax fix the y range (e.g. 0..100 for percentages). */
  opts: ChartOptions & { xLabel?: string; yLabel?: string; yMin?: number; yMax?: number } = {},
): string {
  const config: ChartConfig = {
    type: "scatter",
    data: {
      datasets: points.map((p, i) => ({
        label: p.label,
        pointLabels: true,
        data: [{
          x: p.x,
          y: p.y,
          label: p.label,
          ...(p.xCi ? { xMin: p.xCi[0], xMax: p.xCi[1] } : {}),
          ...(p.yCi ? { yMin: p.yCi[0], yMax: p.yCi[1] } : {}),
        }],
        borderColor: color(i),
        backgroundColor: color(i),
        pointRadius: 6,
        pointHoverRadius: 8,
      })),
    },
    options: {
      layout: { padding: { right: 60, top: 16 } },
      plugins: { legend: { position: "bottom", labels: { boxWidth: 12 } } },
      scales: {
        x: { type: "linear", grace: "10%", title: { display: !!opts.xLabel, text: opts.xLabel ?? "" } },
        y: {
          type: "linear",
          ...(opts.yMin !== undefined ? { min: opts.yMin } : { grace: "10%" }),
          ...(opts.yMax !== undefined ? { max: opts.yMax } : {}),
          title: { display: !!opts.yLabel, text: opts.yLabel ?? "" },
        },
      },
    },
  };
  return renderChart(config, opts);
}

/** One row of a comparison: a label, the mean, its CI (null when unknown) and how many values made it. */
export interface CiRow {
  label: string;
  mean: number;
  ci: [number, number] | null;
  n?: number;
  /** Optional link (relative href) for the label, e.g. to a run's report. */
  href?: string;
}

export interface CiFormat {
  /** Multiply values for display (100 for percentages). */
  scale?: number;
  digits?: number;
  /** Appended to numbers, e.g. "%". */
  unit?: string;
}

/** Format `mean [lo, hi]`. */
export function fmtCi(mean: number, ci: [number, number] | null | undefined, f: CiFormat = {}): string {
  const s = f.scale ?? 1;
  const d = f.digits ?? 1;
  const u = f.unit ?? "";
  if (!Number.isFinite(mean)) return "–";
  const m = `${(mean * s).toFixed(d)}${u}`;
  if (!ci || !Number.isFinite(ci[0]) || !Number.isFinite(ci[1])) return m;
  return `${m} [${(ci[0] * s).toFixed(d)}, ${(ci[1] * s).toFixed(d)}]`;
}

/** Percent with one decimal, e.g. 0.723 -> "72.3%". */
export function fmtPct(x: number | null | undefined, digits = 1): string {
  return typeof x === "number" && Number.isFinite(x) ? `${(x * 100).toFixed(digits)}%` : "–";
}

/** A number with fixed digits, or a dash. */
export function fmtNum(x: number | null | undefined, digits = 1): string {
  return typeof x === "number" && Number.isFinite(x) ? x.toFixed(digits) : "–";
}

/**
 * A table of CI rows, one metric: Label | n | mean [CI]. For several metrics over the same labels use
 * `renderCiMultiTable`.
 */
export function renderCiTable(rows: CiRow[], opts: CiFormat & { metric: string; caption?: string }): string {
  return renderCiMultiTable([{ name: opts.metric, rows, format: opts }], { caption: opts.caption });
}

/** Several metrics side by side, rows matched by label (in order of first appearance). */
export function renderCiMultiTable(
  metrics: { name: string; rows: CiRow[]; format?: CiFormat }[],
  opts: { caption?: string; labelHeader?: string } = {},
): string {
  const labels: string[] = [];
  const hrefs = new Map<string, string>();
  const ns = new Map<string, number>();
  for (const m of metrics) {
    for (const r of m.rows) {
      if (!labels.includes(r.label)) labels.push(r.label);
      if (r.href) hrefs.set(r.label, r.href);
      if (r.n !== undefined) ns.set(r.label, Math.max(ns.get(r.label) ?? 0, r.n));
    }
  }
  const cols: Column[] = [{ label: opts.labelHeader ?? "Model" }, { label: "n", num: true }];
  for (const m of metrics) cols.push({ label: m.name, num: true });
  const body: Cell[][] = labels.map((l) => {
    const href = hrefs.get(l);
    const row: Cell[] = [
      href ? raw(`<a href="${escapeHtml(href)}">${escapeHtml(l)}</a>`) : l,
      ns.get(l) ?? null,
    ];
    for (const m of metrics) {
      const r = m.rows.find((x) => x.label === l);
      row.push(r ? fmtCi(r.mean, r.ci, m.format) : null);
    }
    return row;
  });
  return renderTable(cols, body, { caption: opts.caption });
}

/** The top of a percentage axis: the data's maximum rounded up to 10, at least 10, at most 100. */
export function pctAxisMax(values: number[]): number {
  const hi = Math.max(0, ...values.filter(Number.isFinite));
  return Math.min(100, Math.max(10, Math.ceil(hi / 10) * 10));
}

/** Bar chart of CI rows with error bars (e.g. accuracy per model or per swept value). */
export function renderCiChart(
  rows: CiRow[],
  opts: ChartOptions & CiFormat & { yLabel?: string } = {},
): string {
  const s = opts.scale ?? 1;
  const config: ChartConfig = {
    type: "bar",
    data: {
      // A configuration label ("Geo-R1 · a=1, b=2") is drawn one part a line instead of rotated and clipped.
      labels: rows.map((r) => r.label.split(/ · |, /)),
      datasets: [{
        label: opts.yLabel ?? opts.title ?? "mean",
        // x is the category index: the labels are arrays of lines, not strings to match.
        data: rows.map((r, i) => ({
          x: i,
          y: r.mean * s,
          ...(r.ci && Number.isFinite(r.ci[0]) ? { yMin: r.ci[0] * s, yMax: r.ci[1] * s } : {}),
        })),
        backgroundColor: rows.map((_, i) => color(i)),
      }],
    },
    options: {
      plugins: { legend: { display: false } },
      scales: {
        y: {
          beginAtZero: true,
          title: { display: !!opts.yLabel, text: opts.yLabel ?? "" },
          // A percentage axis runs in percent even when every bar is 0 (chart.js would draw 0..1).
          ...(opts.unit === "%"
            ? { suggestedMax: pctAxisMax(rows.map((r) => (r.ci?.[1] ?? r.mean) * s)) }
            : {}),
        },
      },
    },
  };
  return renderChart(config, opts);
}
