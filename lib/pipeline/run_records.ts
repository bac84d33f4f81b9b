/**
 * A run directory's records, rebuilt from the stage caches when a run ends: `metrics.jsonl` (every stage's
 * metrics; test records of this eval spec only), `rollouts.jsonl` (GRPO stages), `predictions.jsonl` (every
 * row's per-example predictions, labelled as in eval.json) and `eval.json`. Each file is written atomically:
 * a crash or a full disk leaves the previous files, never a partial one.
 * @module
 */
import { join } from "node:path";
import type { EvalFile, MetricRecord, PredictionRecord, RolloutRecord, StageEval } from "../run/records.ts";
import { atomicWrite, atomicWriteJson } from "../run/atomic.ts";
import { readJsonl } from "../run/jsonl.ts";
import type { StagePlan } from "./plan.ts";

/** Rows of the table and the stage directory whose predictions file belongs to each row. */
export interface TableRows {
  rows: StageEval[];
  rowDirs: Map<StageEval, string>;
}

/** Write the run's metrics, rollouts, predictions and eval.json; returns the eval file. */
export async function writeRunRecords(
  runDir: string,
  plans: StagePlan[],
  table: TableRows,
  evalHash: string,
  ids: { experiment: string; runId: string },
): Promise<EvalFile> {
  const metricsPath = join(runDir, "metrics.jsonl");
  const rolloutsPath = join(runDir, "rollouts.jsonl");
  const metricLines: string[] = [];
  const rolloutLines: string[] = [];
  for (const plan of plans) {
    for (const rec of await readJsonl<MetricRecord>(join(plan.dir, "metrics.jsonl"))) {
      // A stage shared by experiments with other eval specs holds their test records too.
      if (rec.kind === "test" && rec.evalHash !== evalHash) continue;
      metricLines.push(JSON.stringify(rec) + "\n");
    }
    if (plan.spec.kind === "grpo") {
      for (const rec of await readJsonl<RolloutRecord>(join(plan.dir, "rollouts.jsonl"))) {
        rolloutLines.push(JSON.stringify(rec) + "\n");
      }
    }
  }
  await atomicWrite(metricsPath, metricLines.join(""));
  if (rolloutLines.length) await atomicWrite(rolloutsPath, rolloutLines.join(""));
  else await Deno.remove(rolloutsPath).catch(() => {});
  // Rows evaluated before predictions were kept have none in their stage cache.
  const predictionLines: string[] = [];
  for (const row of table.rows) {
    const dir = table.rowDirs.get(row);
    if (!dir) continue;
    const file = join(dir, `predictions-${evalHash}.jsonl`);
    for (const rec of await readJsonl<PredictionRecord>(file)) {
      predictionLines.push(JSON.stringify({ label: row.label, ...rec, stage: row.stage }) + "\n");
    }
  }
  await atomicWrite(join(runDir, "predictions.jsonl"), predictionLines.join(""));
  const evalFile: EvalFile = { experiment: ids.experiment, runId: ids.runId, rows: table.rows };
  await atomicWriteJson(join(runDir, "eval.json"), evalFile);
  return evalFile;
}
