/**
 * The paper's published numbers, shown beside ours in the paper-tables report (lib/report/paper.ts).
 * Source: Geo-R1, arXiv 2510.00072, Table 1 (geolocation accuracy within 1/25/200/750/2500 km on
 * IM2GPS3K) and Table 2 (cross-view pairing accuracy and mean completion length, Qwen2.5-VL-7B based).
 * Values are percentages and tokens as printed in the paper.
 * @module
 */

/** Distance thresholds of Table 1, in km. */
export const PAPER_THRESHOLDS_KM = [1, 25, 200, 750, 2500] as const;

/** A row of the paper's Table 2: pairing accuracy (%) and mean completion length (tokens). */
export interface PaperPairingRow {
  /** The paper's name of the model. */
  model: string;
  accuracyPct: number;
  completionTokens: number;
}

/** Table 2 by our row label. Task-SFT's analogues (GLOBE-7B, GeoReasoner) have no Table 2 row. */
export const PAPER_TABLE2: Record<string, PaperPairingRow> = {
  "Base": { model: "Qwen2.5-VL-7B", accuracyPct: 19.0, completionTokens: 204.6 },
  "Geo-SFT": { model: "Geo-SFT", accuracyPct: 23.1, completionTokens: 1127.6 },
  "Geo-R1-Zero": { model: "Geo-R1-Zero", accuracyPct: 78.1, completionTokens: 587.4 },
  "Geo-R1": { model: "Geo-R1", accuracyPct: 82.4, completionTokens: 378.8 },
};

/** A row of the paper's Table 1: accuracy (%) within each threshold of PAPER_THRESHOLDS_KM. */
export interface PaperGeolocateRow {
  model: string;
  /** Our row label it corresponds to, or null for a model we have no row for (GeoCLIP). */
  ours: string | null;
  withinPct: [number, number, number, number, number];
}

/** Table 1 rows the report shows. */
export const PAPER_TABLE1: PaperGeolocateRow[] = [
  { model: "Qwen2.5-VL-7B", ours: "Base", withinPct: [15.42, 52.72, 62.86, 75.11, 83.47] },
  { model: "Geo-R1", ours: "Geo-R1", withinPct: [17.98, 61.02, 73.91, 86.78, 93.56] },
  { model: "GeoCLIP", ours: null, withinPct: [29.28, 52.52, 66.85, 84.07, 93.33] },
];

/** What the paper compares Task-SFT with: task-supervised reasoning rows. */
export const PAPER_TASK_SFT_NOTE =
  "the paper's analogue of Task-SFT is its task-supervised rows (GLOBE-7B, GeoReasoner), which have no " +
  "Table 2 pairing numbers";
