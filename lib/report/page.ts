/**
 * The page shell every report uses: one self-contained HTML document with a restrictive Content-Security-
 * Policy (no network at all: `default-src 'none'`, images only as data: URIs, scripts only by SHA-256 hash),
 * inline CSS, chart.js inlined when the body holds charts, and a small bootstrap script that builds every
 * chart from the JSON embedded next to its canvas (see `renderChart`). A machine-readable summary of the
 * report sits in `<script type="application/json" id="report-meta">` for `reports/index.html`.
 * @module
 */
import { createHash } from "node:crypto";
import { escapeHtml, jsonForScript } from "./escape.ts";
import { loadChartJs } from "./chartjs.ts";

/** What `reports/index.html` shows about a report. */
export interface ReportMeta {
  kind: "run" | "comparison" | "sweep" | string;
  title: string;
  /** ISO date (a run's end, or its start when unfinished). */
  date: string | null;
  experiment: string | null;
  runId?: string | null;
  /** The model preset(s) of the run(s) ("tiny", "small", ...). */
  preset?: string | null;
  /** The master seed(s), e.g. "0" or "0, 1". */
  seed?: string | null;
  /** The overrides that distinguish the run(s): `--set` values, or the fields that differ across runs. */
  overrides?: string[];
  /** A few headline numbers, label -> already formatted text. */
  keyMetrics: Record<string, string>;
}

/** The `--set` overrides in a run's command line (manifest argv), as `key=value`. */
export function overridesOf(argv: readonly string[] | undefined): string[] {
  const out: string[] = [];
  const a = argv ?? [];
  for (let i = 0; i < a.length; i++) {
    if (a[i] === "--set" && i + 1 < a.length) out.push(a[++i]);
    else if (a[i].startsWith("--set=")) out.push(a[i].slice("--set=".length));
  }
  return out;
}

/** "preset tiny · seed 0 · overrides: a=1, b=2" for report headers and the index. */
export function setupLine(meta: Pick<ReportMeta, "preset" | "seed" | "overrides">): string {
  const parts: string[] = [];
  if (meta.preset) parts.push(`preset ${meta.preset}`);
  if (meta.seed) parts.push(`seed ${meta.seed}`);
  parts.push(meta.overrides?.length ? `overrides: ${meta.overrides.join(", ")}` : "no overrides");
  return parts.join(" · ");
}

export interface PageOptions {
  title: string;
  /** Trusted HTML of the body (built from escaped pieces). */
  body: string;
  meta: ReportMeta;
  /** Inline chart.js and the chart bootstrap. Default: when the body holds a chart. */
  charts?: boolean;
}

/** Builds each `figure.chart` from its JSON config; sets `window.__reportReady` for tests. */
export const CHART_BOOTSTRAP = `(function () {
  "use strict";
  var errors = [];
  function num(v) { return typeof v === "number" && isFinite(v); }
  // Point labels are placed below earlier ones they would overlap (e.g. two models at one accuracy).
  function overlaps(a, b) { return a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h; }
  var ciBars = {
    id: "ciBars",
    afterDatasetsDraw: function (chart) {
      var ctx = chart.ctx, placed = [];
      chart.data.datasets.forEach(function (ds, i) {
        var meta = chart.getDatasetMeta(i);
        if (meta.hidden || chart.config.type === "line") return;
        var xs = chart.scales[meta.xAxisID], ys = chart.scales[meta.yAxisID];
        meta.data.forEach(function (el, j) {
          var p = ds.data[j];
          if (!p || typeof p !== "object") return;
          ctx.save();
          ctx.strokeStyle = "#222";
          ctx.fillStyle = "#222";
          ctx.lineWidth = 1.5;
          if (num(p.yMin) && num(p.yMax)) {
            var a = ys.getPixelForValue(p.yMin), b = ys.getPixelForValue(p.yMax);
            ctx.beginPath(); ctx.moveTo(el.x, a); ctx.lineTo(el.x, b);
            ctx.moveTo(el.x - 5, a); ctx.lineTo(el.x + 5, a); ctx.moveTo(el.x - 5, b); ctx.lineTo(el.x + 5, b);
            ctx.stroke();
          }
          if (num(p.xMin) && num(p.xMax)) {
            var c = xs.getPixelForValue(p.xMin), d = xs.getPixelForValue(p.xMax);
            ctx.beginPath(); ctx.moveTo(c, el.y); ctx.lineTo(d, el.y);
            ctx.moveTo(c, el.y - 5); ctx.lineTo(c, el.y + 5); ctx.moveTo(d, el.y - 5); ctx.lineTo(d, el.y + 5);
            ctx.stroke();
          }
          if (ds.pointLabels && typeof p.label === "string") {
            ctx.font = "12px sans-serif";
            // Stack away from the nearer horizontal edge of the plot, so labels stay off the axis ticks.
            var area = chart.chartArea, up = el.y > (area.top + area.bottom) / 2;
            var box = { x: el.x + 8, y: el.y - 20, w: ctx.measureText(p.label).width, h: 14 };
            for (var k = 0; k < 40 && placed.some(function (q) { return overlaps(box, q); }); k++) {
              box.y += up ? -14 : 14;
            }
            placed.push(box);
            ctx.fillText(p.label, box.x, box.y + 12);
          }
          ctx.restore();
        });
      });
    }
  };
  // Legend filters by name: chart configs are JSON, so they cannot carry functions.
  var legendFilters = {
    hideSeeds: function (item, data) { return !data.datasets[item.datasetIndex].seedLine; }
  };
  function resolveFilters(cfg) {
    var labels = cfg.options && cfg.options.plugins && cfg.options.plugins.legend &&
      cfg.options.plugins.legend.labels;
    if (labels && typeof labels.filter === "string") labels.filter = legendFilters[labels.filter];
    return cfg;
  }
  var made = 0, figures = document.querySelectorAll("figure.chart");
  if (typeof Chart === "undefined") {
    errors.push("chart.js did not load");
  } else {
    Chart.register(ciBars);
    Chart.defaults.animation = false;
    Chart.defaults.maintainAspectRatio = false;
    Chart.defaults.font.family = "system-ui, sans-serif";
    figures.forEach(function (fig) {
      try {
        var cfg = resolveFilters(JSON.parse(fig.querySelector("script[type='application/json']").textContent));
        new Chart(fig.querySelector("canvas"), cfg);
        made++;
      } catch (e) {
        errors.push(String(e));
        console.error("chart failed: " + e);
      }
    });
  }
  window.__reportReady = { charts: made, expected: figures.length, errors: errors };
})();
`;

/** Sortable (click a header) and filterable (`input[data-filter=<table id>]`) tables; sets
 * `window.__tablesReady` for tests. */
export const TABLE_SCRIPT = `(function () {
  "use strict";
  function key(td) {
    var v = td.textContent.trim(), n = parseFloat(v);
    return isNaN(n) ? [1, v.toLowerCase()] : [0, n];
  }
  function cmp(a, b) { return a[0] - b[0] || (a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0); }
  var tables = document.querySelectorAll("table[data-sortable]");
  tables.forEach(function (t) {
    Array.prototype.forEach.call(t.tHead.rows[0].cells, function (th, i) {
      th.style.cursor = "pointer";
      th.title = "sort by this column";
      th.addEventListener("click", function () {
        var asc = th.getAttribute("aria-sort") !== "ascending";
        Array.prototype.forEach.call(t.tHead.rows[0].cells, function (h) { h.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", asc ? "ascending" : "descending");
        var body = t.tBodies[0], rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) { return cmp(key(a.cells[i]), key(b.cells[i])) * (asc ? 1 : -1); });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  });
  var filters = document.querySelectorAll("input[data-filter]");
  filters.forEach(function (input) {
    var t = document.getElementById(input.getAttribute("data-filter"));
    if (!t) return;
    input.addEventListener("input", function () {
      var q = input.value.toLowerCase();
      Array.prototype.forEach.call(t.tBodies[0].rows, function (r) {
        r.style.display = r.textContent.toLowerCase().indexOf(q) >= 0 ? "" : "none";
      });
    });
  });
  window.__tablesReady = { sortable: tables.length, filters: filters.length };
})();
`;

const CSS = `
:root { color-scheme: light; --fg: #1b1f24; --muted: #5c6670; --line: #d8dee4; --bg2: #f6f8fa; --ok: #1a7f37; --bad: #cf222e; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); margin: 0 auto; padding: 16px 24px 48px; max-width: 1280px; }
h1 { font-size: 22px; margin: 8px 0 4px; } h2 { font-size: 18px; margin: 28px 0 8px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
h3 { font-size: 15px; margin: 18px 0 6px; }
.sub { color: var(--muted); margin: 0 0 12px; }
.setup { margin: 0 0 6px; font-weight: 600; }
.note { color: var(--muted); font-size: 13px; }
.warn { background: #fff8c5; border: 1px solid #d4a72c; padding: 6px 10px; border-radius: 6px; }
table { border-collapse: collapse; margin: 6px 0 12px; font-variant-numeric: tabular-nums; }
.tablewrap { max-width: 100%; overflow-x: auto; }
th, td { border: 1px solid var(--line); padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: var(--bg2); font-weight: 600; }
td.num, th.num { text-align: right; white-space: nowrap; }
caption { caption-side: top; text-align: left; color: var(--muted); padding: 2px 0; }
table.kv td:first-child { color: var(--muted); white-space: nowrap; }
code, pre { font: 12px/1.4 ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; }
pre { background: var(--bg2); border: 1px solid var(--line); border-radius: 6px; padding: 8px; white-space: pre-wrap; word-break: break-word; max-height: 260px; overflow: auto; margin: 4px 0; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(360px, 1fr)); gap: 12px; }
figure.chart { margin: 0; border: 1px solid var(--line); border-radius: 6px; padding: 8px; }
figure.chart.wide { grid-column: 1 / -1; }
figure.chart figcaption { font-weight: 600; font-size: 13px; margin-bottom: 4px; }
figure.chart .box { position: relative; width: 100%; }
.gallery { display: grid; grid-template-columns: repeat(auto-fill, minmax(380px, 1fr)); gap: 12px; }
.item { border: 1px solid var(--line); border-radius: 6px; padding: 8px; }
.item img { image-rendering: pixelated; border: 1px solid var(--line); margin: 2px 4px 2px 0; vertical-align: top; }
.item .ground { width: 100%; max-width: 368px; height: auto; }
.item .aerial { width: 72px; height: 72px; }
img.thumb-ground { height: 40px; image-rendering: pixelated; } img.thumb-aerial { width: 40px; height: 40px; image-rendering: pixelated; }
.cands figcaption { text-align: center; }
input[type=search] { font: inherit; padding: 3px 6px; width: 340px; max-width: 100%; }
.cands { display: flex; flex-wrap: wrap; gap: 4px; }
.cands figure { margin: 0; text-align: center; font-size: 12px; color: var(--muted); }
.ok { color: var(--ok); font-weight: 600; } .bad { color: var(--bad); font-weight: 600; }
.badge { display: inline-block; padding: 0 6px; border-radius: 10px; background: var(--bg2); border: 1px solid var(--line); font-size: 12px; }
details > summary { cursor: pointer; color: var(--muted); }
nav a { margin-right: 12px; }
`;

function sha256b64(text: string): string {
  return createHash("sha256").update(text, "utf8").digest("base64");
}

/** The CSP for a page whose only scripts are `scripts` (inline, allowed by hash). */
export function contentSecurityPolicy(scripts: readonly string[]): string {
  const scriptSrc = scripts.length ? scripts.map((s) => `'sha256-${sha256b64(s)}'`).join(" ") : "'none'";
  return [
    "default-src 'none'",
    "img-src data:",
    "style-src 'unsafe-inline'",
    `script-src ${scriptSrc}`,
    "base-uri 'none'",
    "form-action 'none'",
  ].join("; ");
}

/** Render a complete self-contained HTML document. */
export async function renderPage(opts: PageOptions): Promise<string> {
  const withCharts = opts.charts ?? opts.body.includes('<figure class="chart');
  const scripts: string[] = [];
  if (withCharts) {
    const chartjs = await loadChartJs();
    scripts.push(chartjs.code, CHART_BOOTSTRAP);
  }
  if (opts.body.includes("data-sortable")) scripts.push(TABLE_SCRIPT);
  const csp = contentSecurityPolicy(scripts);
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${escapeHtml(csp)}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<meta name="generator" content="geo-r1 lib/report">
<title>${escapeHtml(opts.title)}</title>
<script type="application/json" id="report-meta">${jsonForScript(opts.meta)}</script>
<style>${CSS}</style>
</head>
<body>
${opts.body}
${scripts.map((s) => `<script>${s}</script>`).join("\n")}
</body>
</html>
`;
}

/** Read the `report-meta` JSON back out of a report file's text (null when absent or unreadable). */
export function extractReportMeta(html: string): ReportMeta | null {
  const m = /<script type="application\/json" id="report-meta">([\s\S]*?)<\/script>/.exec(html);
  if (!m) return null;
  try {
    const v = JSON.parse(m[1]);
    return v && typeof v === "object" ? v as ReportMeta : null;
  } catch {
    return null;
  }
}
