/**
 * Training curves across runs (comparison and sweep reports): one chart per stage kind and metric, every
 * row (configuration) in its own colour, each seed a thin line and the mean over seeds bold.
 * @module
 */
import type { MetricRecord } from "../run/records.ts";
import { type ChartConfig, chartGrid, color, flatAxis, pctAxisMax, renderChart } from "./components.ts";
import { downsample } from "./sections.ts";

/** The curves one row contributes: a stage's metric records from each of its runs (one per seed). */
export interface CurveRow {
  label: string;
  /** Stage kind of the curves ("grpo", "sft", "pretrain"). */
  kind: string;
  runs: { seed: number | string; records: MetricRecord[] }[];
}

/** Metrics charted across runs, by stage kind, with the axis label in their unit. */
const CURVES: { kinds: string[]; key: string; title: string; unit: string; pct?: boolean }[] = [
  { kinds: ["grpo"], key: "reward", title: "Reward", unit: "mean reward" },
  { kinds: ["grpo"], key: "accuracy", title: "Sampled accuracy", unit: "accuracy (%)", pct: true },
  {
    kinds: ["grpo", "sft", "pretrain"],
    key: "eval/val_pairing/accuracy",
    title: "Validation pairing accuracy",
    unit: "accuracy (%)",
    pct: true,
  },
  { kinds: ["grpo"], key: "completions/mean_length", title: "Completion length", unit: "tokens" },
  { kinds: ["grpo"], key: "entropy", title: "Entropy", unit: "nats per token" },
  { kinds: ["sft", "pretrain"], key: "loss", title: "Loss", unit: "cross-entropy (nats per token)" },
];

function series(records: MetricRecord[], key: string, pct: boolean): [number, number][] {
  const pts: [number, number][] = [];
  for (const r of records) {
    const v = r[key];
    const step = Number(r.step);
    if (r.kind === "test" || typeof v !== "number" || !Number.isFinite(v) || !Number.isFinite(step)) continue;
    pts.push([step, pct ? v * 100 : v]);
  }
  return pts.sort((a, b) => a[0] - b[0]);
}

/** Mean over seeds at each step that every seed logged. */
function meanCurve(all: [number, number][][]): [number, number][] {
  const maps = all.map((pts) => new Map(pts.map(([x, y]) => [x, y])));
  const steps = [...maps[0].keys()].filter((s) => maps.every((m) => m.has(s))).sort((a, b) => a - b);
  return steps.map((s) => [s, maps.reduce((a, m) => a + m.get(s)!, 0) / maps.length]);
}

function alpha(hex: string, a: number): string {
  const n = Math.round(a * 255).toString(16).padStart(2, "0");
  return `${hex}${n}`;
}

/**
 * One chart per (stage kind, metric) that some row logs with at least two points. Returns chart HTML in a
 * grid, or "" when nothing has two points.
 */
export function renderCurvesAcrossRuns(rows: CurveRow[]): string {
  const charts: string[] = [];
  for (const def of CURVES) {
    for (const kind of def.kinds) {
      const datasets: unknown[] = [];
      rows.forEach((row, i) => {
        if (row.kind !== kind) return;
        const per = row.runs.map((r) => ({ seed: r.seed, pts: series(r.records, def.key, !!def.pct) }))
          .filter((s) => s.pts.length >= 2);
        if (!per.length) return;
        const c = color(i);
        for (const s of per) {
          datasets.push({
            label: `${row.label} · seed ${s.seed}`,
            data: downsample(s.pts).map(([x, y]) => ({ x, y })),
            borderColor: alpha(c, 0.45),
            backgroundColor: alpha(c, 0.45),
            borderWidth: 1,
            pointRadius: 0,
            seedLine: true,
          });
        }
        const m = meanCurve(per.map((s) => s.pts));
        if (m.length >= 2) {
          datasets.push({
            label: `${row.label} (mean of ${per.length})`,
            data: downsample(m).map(([x, y]) => ({ x, y })),
            borderColor: c,
            backgroundColor: c,
            borderWidth: 3,
            pointRadius: 0,
          });
        }
      });
      if (!datasets.length) continue;
      const ys = (datasets as { data: { y: number }[] }[]).flatMap((d) => d.data.map((p) => p.y));
      const config: ChartConfig = {
        type: "line",
        data: { datasets },
        options: {
          parsing: false,
          normalized: true,
          interaction: { mode: "nearest", intersect: false },
          plugins: { legend: { position: "bottom", labels: { boxWidth: 12, filter: "hideSeeds" } } },
          scales: {
            x: { type: "linear", title: { display: true, text: `${kind} step` } },
            y: {
              type: "linear",
              grace: "5%",
              title: { display: true, text: def.unit },
              // Percentages run from 0; a flat series gets a fitted axis instead of v-1..v+1.
              ...(def.pct ? { min: 0, suggestedMax: pctAxisMax(ys) } : flatAxis(ys) ?? {}),
            },
          },
        },
      };
      // Long row labels (configurations) need the legend's full width to stay readable.
      const long = rows.some((r) => r.kind === kind && r.label.length > 32);
      charts.push(
        renderChart(config, {
          title: `${def.title} (${kind}; seeds thin, mean bold)`,
          height: long ? 300 : 260,
          wide: long,
        }),
      );
    }
  }
  return chartGrid(charts);
}
