/**
 * `report RUN... [--out FILE]`: one run directory -> its run report (regenerated from the run records) at
 * `<run>/report.html`, copied to `reports/<runId>.html`; several -> a comparison report (the four-row table
 * with means and bootstrap CIs over runs) at --out (default `reports/compare-<hash>.html`). Either way
 * `reports/index.html` is rebuilt. Everything is read and checked before anything is written.
 * @module
 */
import { UserError } from "../errors.ts";
import { atomicWrite } from "../run/atomic.ts";
import type { Command } from "./command.ts";
import { DEFAULT_REPORTS_DIR } from "../report/index_page.ts";
import { writeRunReport } from "../report/run_report.ts";
import { writeComparisonReport } from "../report/compare.ts";
import { writePaperReport } from "../report/paper.ts";

/** The `report` command. */
export const command: Command = {
  name: "report",
  summary: "write the HTML report of a run, or a comparison report across runs",
  help: `usage: deno task report RUN_DIR... [options]

With one run directory: regenerate its report from the run records (spec.resolved.json, manifest.json,
metrics.jsonl, rollouts.jsonl, eval.json, samples/) to RUN_DIR/report.html and copy it to
<reports-dir>/<runId>.html. With several: write a comparison report to --out. Its rows are models (Base,
Geo-SFT, Geo-R1-Zero, Geo-R1) under one configuration: runs are grouped by their resolved spec minus the
seed, so means and 95% bootstrap CIs are over seeds only, and a model two configurations change gets one row
each, labelled by the spec fields that differ. It shows a spec-diff table, warns when runs differ in test set
or preset, and adds the gain over the starting stage, training curves per row (seeds thin, mean bold), the
geolocation thresholds, geo-qa and an example-by-example diff from predictions.jsonl. Both rebuild <reports-dir>/index.html. Reports are single
self-contained HTML files (chart.js inlined, images as data: URIs, strict CSP): they open offline.

With --paper (one run or several): the paper-tables report: our Table 1 (geolocation) and Table 2 (pairing
accuracy vs completion length) analogues for the rows Base, Geo-SFT, Geo-R1-Zero, Geo-R1 and Task-SFT (the
last stage of a task-sft run), with the paper's published numbers (arXiv 2510.00072) in their own columns,
each headed "Paper's"; rows without a run show a dash. Default --out <reports-dir>/paper-<hash>.html.

options:
  --paper             write the paper-tables report of the given runs
  --out FILE          where to write the report (several runs: default <reports-dir>/compare-<hash>.html;
                      one run: an extra copy of its report)
  --reports-dir DIR   the reports directory (default: ${DEFAULT_REPORTS_DIR})
  --gallery N         gallery items shown per eval row (default 12)
  --verbose           print stack traces of internal errors
  -h, --help          show this help

examples:
  deno task report runs/geo-r1-1a2b3c4d
  deno task report runs/geo-r1-* runs/geo-r1-zero-* --out reports/table2.html
    (three seeds of each: four rows of n=3; runs of other configurations get rows of their own)
  deno task report --paper runs/geo-r1-* runs/geo-r1-zero-* runs/task-sft-*`,
  options: {
    paper: { type: "boolean" },
    out: { type: "string" },
    "reports-dir": { type: "string" },
    gallery: { type: "string" },
    verbose: { type: "boolean" },
  },
  allowPositionals: true,
  async run(values, positionals) {
    if (!positionals.length) throw new UserError("report: give at least one run directory (see --help)", 2);
    const reportsDir = typeof values["reports-dir"] === "string"
      ? values["reports-dir"]
      : DEFAULT_REPORTS_DIR;
    const out = typeof values.out === "string" ? values.out : undefined;
    let perRow: number | undefined;
    if (values.gallery !== undefined) {
      perRow = Number(values.gallery);
      if (!Number.isInteger(perRow) || perRow < 0) {
        throw new UserError(`report: --gallery must be a non-negative integer, got '${values.gallery}'`, 2);
      }
    }
    const dirs = [...new Set(positionals)];
    if (values.paper === true) {
      const path = await writePaperReport(dirs, out, { reportsDir });
      console.log(`paper-tables report of ${dirs.length} run${dirs.length === 1 ? "" : "s"}: ${path}`);
    } else if (dirs.length === 1) {
      const path = await writeRunReport(dirs[0], { reportsDir, perRow });
      if (out) await atomicWrite(out, await Deno.readFile(path));
      console.log(`report: ${path}${out ? ` (copy: ${out})` : ""}`);
    } else {
      const path = await writeComparisonReport(dirs, out, { reportsDir });
      console.log(`comparison report of ${dirs.length} runs: ${path}`);
    }
    console.log(`index: ${reportsDir}/index.html`);
    return 0;
  },
};
