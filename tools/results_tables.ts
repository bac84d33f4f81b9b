/**
 * Markdown tables for docs/RESULTS.md from finished runs: the Table 2 analogue (pairing accuracy, completion
 * length, format rate) and the Table 1 analogue (geolocation within 1 / 25 / 200 / 750 / 2,500 km, median
 * error, answer parse rate, share of answers with a repeated n-gram, geo-qa), one row per table label, seeds as columns, mean and a 95% t-interval over seeds, and each
 * row's difference from Base paired by seed (t-interval over the per-seed differences).
 *
 * A third table reads the runs' predictions.jsonl for the answers' form on the two tasks that offer no
 * choices: the share of geo-qa and geolocation answers that are a bare option letter (the pairing answer's
 * form), and geo-qa accuracy among the answers that are not, which tells a policy that forgot the task from one
 * that only writes the wrong kind of answer. A last table gives each run's own 95% intervals (the eval's
 * bootstrap) on pairing and within 2,500 km, one line per row and seed.
 *
 * Usage: deno run --allow-read tools/results_tables.ts runs/geo-r1-* runs/geo-r1-zero-* runs/task-sft-*
 * Rows come from every run's eval.json (a run also holds its cached upstream rows); a (label, seed) seen twice
 * must agree, else the script stops naming both runs, except that a run's own row replaces another run's
 * cached sibling row (a row of another experiment found in the cache, perhaps of another configuration).
 * The folders `deno task eval RUN` writes are read like runs (the run's seed and row label); all folders must
 * come from one split (an eval folder's manifest names it; a run's is the test split), which the titles name
 * with the examples' counts. An evaluation of a bare checkpoint has neither seed nor row label: the script
 * stops and says to evaluate the run directory instead. Rows whose label is not in the paper's order follow
 * in the order they came.
 * @module
 */
import { join } from "node:path";
import type { EvalFile, PredictionRecord, StageEval } from "../lib/run/records.ts";

const ORDER = [
  "Base",
  "Geo-SFT",
  "Geo-R1-Zero",
  "Geo-R1",
  "Geo-R1-Zero + anchor",
  "Geo-R1 + anchor",
  "Geo-R1 (pairing+geolocate RL)",
  "Geo-R1 (geolocate RL)",
  "Task-SFT",
  "Task-SFT+GRPO",
];
/** Two-sided 95% t quantiles by degrees of freedom. */
const T95: Record<number, number> = { 1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571 };

interface Cell {
  seed: number;
  run: string;
  row: StageEval;
  /** The row is a cached sibling's (another experiment's stage found in the cache), not the run's own. */
  sibling: boolean;
  forms?: AnswerForms;
}

/** How a row's geo-qa and geolocation answers are written (percentages; undefined where the task is absent). */
interface AnswerForms {
  qaLetter?: number;
  qaAccOther?: number;
  geoLetter?: number;
}

/** A bare option letter, the form of a pairing answer. */
const isChoiceLetter = (s: string | null) => s !== null && /^\s*[A-Z]\s*$/.test(s);

function answerForms(recs: PredictionRecord[]): AnswerForms {
  const pct = (n: number, d: number) => (d ? (100 * n) / d : undefined);
  const qa = recs.filter((r) => r.task === "geoqa");
  const geo = recs.filter((r) => r.task === "geolocate");
  const qaOther = qa.filter((r) => !isChoiceLetter(r.parsed));
  return {
    qaLetter: pct(qa.length - qaOther.length, qa.length),
    qaAccOther: pct(qaOther.filter((r) => r.correct).length, qaOther.length),
    geoLetter: pct(geo.filter((r) => isChoiceLetter(r.parsed)).length, geo.length),
  };
}

/** The run's prediction records by row label (empty when the run has no predictions.jsonl). */
async function predictionsByLabel(dir: string): Promise<Map<string, PredictionRecord[]>> {
  const out = new Map<string, PredictionRecord[]>();
  let text: string;
  try {
    text = await Deno.readTextFile(join(dir, "predictions.jsonl"));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return out;
    throw e;
  }
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    const r = JSON.parse(line) as PredictionRecord;
    const l = r.label ?? r.stage;
    out.set(l, [...(out.get(l) ?? []), r]);
  }
  return out;
}

function meanCi(xs: number[]): string {
  const n = xs.length;
  const m = xs.reduce((a, b) => a + b, 0) / n;
  if (n < 2) return `${m.toFixed(1)}`;
  const sd = Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / (n - 1));
  const h = (T95[n - 1] ?? 1.96) * sd / Math.sqrt(n);
  return `${m.toFixed(1)} [${(m - h).toFixed(1)}, ${(m + h).toFixed(1)}]`;
}

/** Stop with one line naming what is wrong (no stack: the input is at fault, not the script). */
function fail(message: string): never {
  console.error(`results_tables: ${message}`);
  Deno.exit(1);
}

/** The eval-folder part of a manifest (lib/cli/eval.ts); absent in a run's. */
interface EvalOf {
  kind: "run" | "checkpoint";
  split?: "test" | "val";
}

/** The split a folder's rows were evaluated on: an eval folder's manifest says; a run's rows are the test's. */
async function splitOf(dir: string): Promise<"test" | "val"> {
  let manifest: { evalOf?: EvalOf };
  try {
    manifest = JSON.parse(await Deno.readTextFile(join(dir, "manifest.json")));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return "test";
    throw e;
  }
  if (!manifest.evalOf) return "test";
  if (manifest.evalOf.kind === "checkpoint") {
    fail(
      `${dir}: an evaluation of a checkpoint has no seed and no row label; evaluate the run directory ` +
        `(deno task eval runs/<run> --stage <stage>) instead`,
    );
  }
  return manifest.evalOf.split ?? "test";
}

// One split for all folders, checked before any row is read.
const splits = new Map<string, string>();
for (const dir of Deno.args) splits.set(dir, await splitOf(dir));
if (new Set(splits.values()).size > 1) {
  fail(
    `the folders come from different splits: ${[...splits].map(([d, sp]) => `${d} (${sp})`).join(", ")}`,
  );
}
const split = [...splits.values()][0] === "val" ? "validation" : "test";

/** A folder's JSON file, or one line saying which file is missing or unreadable. */
async function readJson<T>(dir: string, name: string, missing: string): Promise<T> {
  const path = join(dir, name);
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) fail(`${path}: not found (${missing})`);
    throw e;
  }
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    fail(`${path}: not valid JSON (${(e as Error).message})`);
  }
}

const cells = new Map<string, Map<number, Cell>>();
for (const dir of Deno.args) {
  const ev = await readJson<EvalFile>(dir, "eval.json", "a run writes it when its test evaluation ends");
  const spec = await readJson<{ seed: number }>(dir, "spec.resolved.json", "not a run or eval folder?");
  const preds = await predictionsByLabel(dir);
  for (const row of ev.rows) {
    const bySeed = cells.get(row.label) ?? new Map<number, Cell>();
    const prev = bySeed.get(spec.seed);
    const sibling = row.stage.endsWith("(cached sibling)");
    const recs = preds.get(row.label);
    const cell = { seed: spec.seed, run: dir, row, sibling, forms: recs ? answerForms(recs) : prev?.forms };
    if (prev && JSON.stringify(prev.row.pairing) !== JSON.stringify(row.pairing)) {
      // A cached sibling row is a copy of another configuration's row: the run that owns the row wins.
      if (prev.sibling === sibling) {
        fail(`${row.label} seed ${spec.seed}: ${prev.run} and ${dir} disagree`);
      }
      if (sibling) continue;
      console.error(
        `${row.label} seed ${spec.seed}: ${dir}'s own row replaces ${prev.run}'s cached sibling row`,
      );
    } else if (prev && sibling) continue;
    bySeed.set(spec.seed, cell);
    cells.set(row.label, bySeed);
  }
}
// The paper's order, then other labels (variants, baselines) in the order they came.
const labels = [...ORDER.filter((l) => cells.has(l)), ...[...cells.keys()].filter((l) => !ORDER.includes(l))];
const seeds = [...new Set([...cells.values()].flatMap((m) => [...m.keys()]))].sort((a, b) => a - b);
const base = cells.get("Base");

/** A Markdown table's header row and separator. */
function printHead(head: string[]): void {
  console.log(`| ${head.join(" | ")} |`);
  console.log(`| ${head.map(() => "---").join(" | ")} |`);
}

function table(
  title: string,
  metrics: [string, (r: StageEval, c: Cell) => number | undefined][],
  delta: number[],
): void {
  console.log(`\n${title}\n`);
  printHead(["row", ...metrics.map(([n]) => n), ...delta.map((i) => `Δ ${metrics[i][0]} vs Base`)]);
  for (const l of labels) {
    const bySeed = cells.get(l)!;
    const vals = metrics.map(([, f]) =>
      seeds.map((s) => bySeed.get(s) && f(bySeed.get(s)!.row, bySeed.get(s)!))
    );
    const parts = vals.map((v) => {
      const xs = v.filter((x): x is number => typeof x === "number");
      return xs.length ? `${xs.map((x) => x.toFixed(1)).join(" / ")}; ${meanCi(xs)}` : "-";
    });
    const deltas = delta.map((i) => {
      if (!base || l === "Base") return "";
      const d = seeds.flatMap((s) => {
        const a = bySeed.get(s), b = base.get(s);
        const x = a && metrics[i][1](a.row, a), y = b && metrics[i][1](b.row, b);
        return typeof x === "number" && typeof y === "number" ? [x - y] : [];
      });
      return d.length ? meanCi(d) : "-";
    });
    console.log(`| ${[l, ...parts, ...deltas].join(" | ")} |`);
  }
}

/** The examples' counts of a task over all rows ("400", or "200-400" when they differ). */
function countOf(pick: (r: StageEval) => number | undefined): string {
  const ns = [...cells.values()].flatMap((m) => [...m.values()]).map((c) => pick(c.row))
    .filter((n): n is number => typeof n === "number");
  if (!ns.length) return "no";
  const lo = Math.min(...ns), hi = Math.max(...ns);
  return lo === hi ? `${lo}` : `${lo}-${hi}`;
}

console.log(`Seeds ${seeds.join(", ")}; each cell: per-seed values; mean [95% t-interval over seeds].`);
const nearNote = split === "test" ? ", >= 1/3 near negatives" : "";
table(
  `Table 2 analogue: pairing on the ${split} split (${
    countOf((r) => r.pairing?.n)
  } pairings${nearNote}, greedy)`,
  [
    ["pairing acc %", (r) => r.pairing && 100 * r.pairing.accuracy],
    ["length (tokens)", (r) => r.pairing?.meanLength],
    ["format %", (r) => r.pairing && 100 * r.pairing.formatRate],
  ],
  [0],
);
const geo = (km: number) => (r: StageEval) =>
  r.geolocate && 100 * (r.geolocate.thresholds[String(km)] ?? NaN);
const heldOut = split === "test" ? ", held-out cells" : "";
table(
  `Table 1 analogue: geolocation on the ${split} split (${
    countOf((r) => r.geolocate?.n)
  } ground views${heldOut}; geo-qa: ${countOf((r) => r.geoqa?.n)} questions, greedy)`,
  [
    ["1 km", geo(1)],
    ["25 km", geo(25)],
    ["200 km", geo(200)],
    ["750 km", geo(750)],
    ["2,500 km", geo(2500)],
    ["median km", (r) => r.geolocate?.medianKm],
    ["parse %", (r) => r.geolocate?.parseRate === undefined ? undefined : 100 * r.geolocate.parseRate],
    [
      "repeated 6-gram %",
      (r) => r.geolocate?.repetitionRate === undefined ? undefined : 100 * r.geolocate.repetitionRate,
    ],
    ["geo-qa %", (r) => r.geoqa && 100 * r.geoqa.accuracy],
  ],
  [3, 4, 8],
);
if ([...cells.values()].some((m) => [...m.values()].some((c) => c.forms))) {
  table(`Answer forms on the tasks without choices (${split} split, from predictions.jsonl)`, [
    ["geo-qa letter answers %", (_, c) => c.forms?.qaLetter],
    ["geo-qa acc. among other answers %", (_, c) => c.forms?.qaAccOther],
    ["geolocation letter answers %", (_, c) => c.forms?.geoLetter],
  ], [0, 1]);
}

// One line per run and row: the run's own 95% interval over the split's examples (the eval's bootstrap,
// cluster-resampled over region cells where it says so), beside the per-seed values of the tables above.
const pctCi = (x: number | undefined, ci: number[] | undefined) =>
  x === undefined
    ? "-"
    : `${(100 * x).toFixed(1)}${ci ? ` [${(100 * ci[0]).toFixed(1)}, ${(100 * ci[1]).toFixed(1)}]` : ""}`;
const pct = (x: number | undefined) => (x === undefined ? "-" : (100 * x).toFixed(1));
console.log(
  `\nPer-run 95% CIs over the ${split} split (the eval's bootstrap over examples or region cells)\n`,
);
printHead([
  "row, seed",
  "pairing % [CI]",
  "format %",
  "length",
  "2,500 km % [CI]",
  "750 km %",
  "median km",
  "parse %",
  "geo-qa %",
]);
for (const l of labels) {
  for (const s of seeds) {
    const r = cells.get(l)!.get(s)?.row;
    if (!r) continue;
    const g = r.geolocate;
    console.log(`| ${
      [
        `${l}, ${s}`,
        pctCi(r.pairing?.accuracy, r.pairing?.ci),
        pct(r.pairing?.formatRate),
        r.pairing ? r.pairing.meanLength.toFixed(1) : "-",
        pctCi(g?.thresholds["2500"], g?.thresholdCi["2500"]),
        pct(g?.thresholds["750"]),
        g ? Math.round(g.medianKm).toLocaleString("en-US") : "-",
        pct(g?.parseRate),
        pct(r.geoqa?.accuracy),
      ].join(" | ")
    } |`);
  }
}

const ctl = [...cells.values()].flatMap((m) => [...m.values()]).filter((c) => c.row.control);
if (ctl.length) {
  console.log(`\nControl task (${split} split):\n`);
  for (const c of ctl) {
    const r = c.row.control!;
    console.log(
      `- ${c.run} (${c.row.label}, seed ${c.seed}): ${(100 * r.accuracy).toFixed(1)}% ` +
        `[${(100 * r.ci[0]).toFixed(1)}, ${(100 * r.ci[1]).toFixed(1)}], format ${
          (100 * r.formatRate).toFixed(1)
        }%`,
    );
  }
}
