/**
 * The results table an experiment prints: the paper's table 2 shape (pairing accuracy with CI, completion
 * length) plus geolocation and geo-qa columns. No tfjs here, so a finished run's table prints without
 * loading the model code.
 * @module
 */
import type { StageEval } from "../run/records.ts";

/** The four-row table as text (paper's table 2 shape, plus geolocation columns). */
export function formatTable(rows: StageEval[]): string {
  const head = [
    "model",
    "pairing acc % [95% CI]",
    "completion len (tok)",
    "geo@25km %",
    "geo@2500km %",
    "geo-qa %",
  ];
  const body = rows.map((r) => [
    r.label,
    r.pairing
      ? `${(100 * r.pairing.accuracy).toFixed(1)} [${(100 * r.pairing.ci[0]).toFixed(1)}, ${
        (100 * r.pairing.ci[1]).toFixed(1)
      }]`
      : "-",
    r.pairing ? r.pairing.meanLength.toFixed(1) : "-",
    r.geolocate ? (100 * (r.geolocate.thresholds["25"] ?? 0)).toFixed(1) : "-",
    r.geolocate ? (100 * (r.geolocate.thresholds["2500"] ?? 0)).toFixed(1) : "-",
    r.geoqa ? (100 * r.geoqa.accuracy).toFixed(1) : "-",
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join("  ");
  return [line(head), widths.map((w) => "-".repeat(w)).join("  "), ...body.map(line)].join("\n");
}
