/**
 * Reports: self-contained HTML (chart.js inlined, images as data: URIs, strict CSP) built from run records.
 * - `writeRunReport(runDir)`: `<runDir>/report.html`, copied to `reports/<runId>.html`, index rebuilt.
 * - `writeComparisonReport(runDirs, out?)`: the four-row table across runs with bootstrap CIs over seeds.
 * - Building blocks for other reports (sweeps): `renderPage`, `renderTable`, `renderChart`, `renderCiTable`,
 *   `renderCiMultiTable`, `renderCiChart`, `renderScatter`, `renderLineChart`, `aggregateRuns`, `ciRows`.
 * - `checkHtmlInBrowser(path)`: open a report in headless Chromium and check it (tests, CI).
 * @module
 */
export * from "./escape.ts";
export * from "./components.ts";
export * from "./page.ts";
export { CHART_JS_VERSION, loadChartJs } from "./chartjs.ts";
export { bootstrapCi, mean } from "./stats.ts";
export {
  evalRows,
  pngDataUri,
  readRunRecords,
  type RolloutStageSummary,
  type RunRecords,
  validateEvalFile,
} from "./read.ts";
export * from "./sections.ts";
export { keyMetrics, renderRunReport, type RunReportOptions, writeRunReport } from "./run_report.ts";
export * from "./compare.ts";
export * from "./paper.ts";
export * from "./paper_numbers.ts";
export { DEFAULT_REPORTS_DIR, writeReportsIndex } from "./index_page.ts";
export * from "./browser.ts";
