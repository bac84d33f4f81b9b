/**
 * Sections of the comparison report that look across configurations: the spec-diff table of the runs'
 * configurations (spec minus seed), the warnings about runs that are not comparable (test set, preset),
 * the gain of each model over the stage it starts from, and the training curves of every row.
 * @module
 */
import type { MetricRecord, StageEval } from "../run/records.ts";
import { hashString32 } from "../rng.ts";
import { escapeHtml } from "./escape.ts";
import { type CiRow, raw, renderTable } from "./components.ts";
import { configKey, configOf, differingPaths, flatten, showPath, showValue } from "./groups.ts";
import type { RunRecords } from "./read.ts";
import { bootstrapCi, mean } from "./stats.ts";
import type { LabelGroup } from "./compare.ts";
import { type CurveRow, renderCurvesAcrossRuns } from "./curves.ts";

/** The runs of one configuration (spec minus seed). */
export interface ConfigGroup {
  /** "config 1", "config 2", ... in order of first appearance. */
  name: string;
  config: Record<string, unknown>;
  runs: RunRecords[];
}

/** Group whole runs by configuration. */
export function configGroups(runs: RunRecords[]): ConfigGroup[] {
  const by = new Map<string, ConfigGroup>();
  for (const r of runs) {
    const k = configKey(r.spec);
    let g = by.get(k);
    if (!g) by.set(k, g = { name: `config ${by.size + 1}`, config: configOf(r.spec), runs: [] });
    g.runs.push(r);
  }
  return [...by.values()];
}

/**
 * The spec-diff table (one column per configuration, one row per differing field, then the runs and
 * seeds of each) and the warnings about runs that are not comparable.
 */
export function renderSpecDiff(groups: ConfigGroup[]): { html: string; warnings: string[] } {
  const warnings: string[] = [];
  const missing = groups.flatMap((g) => g.runs.filter((r) => !r.spec).map((r) => r.manifest.runId));
  if (missing.length) {
    warnings.push(`no spec.resolved.json in ${missing.join(", ")}: those runs cannot be told apart by spec`);
  }
  const runsCell = (g: ConfigGroup) =>
    raw(
      g.runs.map((r) => `${escapeHtml(r.manifest.runId)} (seed ${escapeHtml(r.manifest.seed)})`).join("<br>"),
    );
  if (groups.length < 2) {
    const g = groups[0];
    const html = g
      ? `<p class="note">All ${g.runs.length} runs share one configuration (their resolved specs differ only ` +
        `in seeds): ${
          g.runs.map((r) => `${escapeHtml(r.manifest.runId)} (seed ${escapeHtml(r.manifest.seed)})`)
            .join(", ")
        }.</p>`
      : "";
    return { html, warnings };
  }
  const paths = differingPaths(groups.map((g) => g.config));
  const flats = groups.map((g) => flatten(g.config));
  const testSet = paths.filter((p) => p.startsWith("eval.") || p.startsWith("world."));
  if (testSet.length) {
    warnings.push(
      `runs differ in their test set or world (${testSet.map(showPath).join(", ")}): their rows are not ` +
        `evaluated on the same examples`,
    );
  }
  if (paths.includes("model.preset")) {
    const presets = [...new Set(flats.map((f) => showValue(f.get("model.preset"))))];
    warnings.push(`runs use different presets (${presets.join(", ")})`);
  }
  const rows = paths.map((p) => [
    raw(`<code>${escapeHtml(showPath(p))}</code>`),
    ...flats.map((f) => showValue(f.get(p))),
  ]);
  rows.push(["runs (seed)", ...groups.map(runsCell)]);
  const html = renderTable(["Spec field", ...groups.map((g) => g.name)], rows, {
    caption:
      `How the ${groups.length} configurations differ (resolved specs minus seeds; every other field ` +
      `is equal)`,
  });
  return { html, warnings };
}

/** The stage a model starts from, for the "gain over the starting stage" column. */
const STARTS_FROM: Record<string, string> = {
  "Geo-SFT": "Base",
  "Geo-R1-Zero": "Base",
  "Geo-R1": "Geo-SFT",
  "Task-SFT": "Base",
  "Task-SFT+GRPO": "Task-SFT",
};

/**
 * The model a row's model started from (undefined when unknown). An anchor against forgetting (the
 * " + anchor" of lib/pipeline/plan.ts rowLabel) changes the loss, not where the stage starts.
 */
export function startOf(model: string): string | undefined {
  return STARTS_FROM[model.replace(/ \+ anchor$/, "")];
}

/**
 * Per row: the mean over its runs of (this model's value - its starting model's value in the same run),
 * with a seeded percentile bootstrap CI over runs when there are two or more.
 */
export function gainRows(
  groups: LabelGroup[],
  runs: RunRecords[],
  pick: (row: StageEval) => number | undefined,
  opts: { resamples?: number; alpha?: number; metric?: string } = {},
): CiRow[] {
  const out: CiRow[] = [];
  for (const g of groups) {
    const start = startOf(g.model);
    if (!start) continue;
    const values: number[] = [];
    for (const { runId, row } of g.rows) {
      const run = runs.find((r) => r.manifest.runId === runId);
      const from = run?.eval.rows.find((x) => x.label === start);
      const a = pick(row), b = from ? pick(from) : undefined;
      if (typeof a === "number" && typeof b === "number" && Number.isFinite(a - b)) values.push(a - b);
    }
    if (!values.length) continue;
    const ci = values.length >= 2
      ? bootstrapCi(values, {
        resamples: opts.resamples ?? 2000,
        alpha: opts.alpha ?? 0.05,
        seed: hashString32(`gain/${opts.metric ?? ""}/${g.model}`),
      })
      : null;
    out.push({ label: g.label, mean: mean(values), ci, n: values.length });
  }
  return out;
}

/**
 * The training curves of every row whose model was trained in one of the runs: the records of its stage
 * from each run's metrics.jsonl (rows a run only lists from the stage cache have no curves there).
 */
export function curveRows(groups: LabelGroup[], runs: RunRecords[]): CurveRow[] {
  const out: CurveRow[] = [];
  for (const g of groups) {
    const row: CurveRow = { label: g.label, kind: "", runs: [] };
    for (const { runId, row: ev } of g.rows) {
      const run = runs.find((r) => r.manifest.runId === runId);
      if (!run || ev.stage.endsWith("(cached sibling)")) continue;
      const stage = run.manifest.stages?.find((s) => s.name === ev.stage);
      const records = run.metrics.filter((m: MetricRecord) => m.stage === ev.stage);
      if (!records.length) continue;
      row.kind ||= stage?.kind ??
        String(records.find((m) => m.kind !== "eval" && m.kind !== "test")?.kind ?? "");
      row.runs.push({ seed: run.manifest.seed, records });
    }
    if (row.runs.length) out.push(row);
  }
  return out;
}

/** The curves section HTML (a note when no row has a curve of two or more points). */
export function renderRowCurves(groups: LabelGroup[], runs: RunRecords[]): string {
  const html = renderCurvesAcrossRuns(curveRows(groups, runs));
  return html ||
    `<p class="note">No training curves with two or more logged steps in these runs' metrics.jsonl.</p>`;
}
