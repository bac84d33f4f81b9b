/**
 * Per-example sections built from predictions.jsonl: the worst cases of a run (a sortable, filterable table
 * with the images evaluation saved for them) and, in comparison reports, the examples on which two models
 * disagree (one right, the other wrong).
 * @module
 */
import type { PredictionRecord } from "../run/records.ts";
import { escapeHtml } from "./escape.ts";
import { type Cell, fmtNum, raw, renderTable } from "./components.ts";
import { pngDataUri, type RunRecords } from "./read.ts";
import type { LabelGroup } from "./compare.ts";
import { startOf } from "./compare_sections.ts";

/** How bad a prediction is: wrong before right, then the larger geolocation error. */
function badness(p: PredictionRecord): number {
  return (p.correct ? 0 : 1e9) + (p.km === undefined ? 0 : p.km === null ? 1e8 : Math.min(p.km, 1e8 - 1));
}

function short(text: string, max = 1200): string {
  return text.length > max ? `${text.slice(0, max)}… (${text.length - max} more characters)` : text;
}

export interface WorstCaseOptions {
  /** Rows shown (default 300). */
  max?: number;
  /** Bytes of embedded images allowed (default 1,500,000). */
  imageBudget?: number;
}

/** Embeds a saved PNG as an `<img>` while the byte budget lasts; "" when it is missing or over budget. */
type ImageEmbedder = (rel: string | null | undefined, cls: string, alt: string) => Promise<string>;

function imageEmbedder(runDir: string, warnings: string[], budget: number): ImageEmbedder {
  return async (rel, cls, alt) => {
    if (!rel) return "";
    const uri = await pngDataUri(runDir, rel, warnings);
    if (!uri || uri.length > budget) return "";
    budget -= uri.length;
    return `<img class="${cls}" src="${uri}" alt="${escapeHtml(alt)}">`;
  };
}

/** The views evaluation saved for one case: the ground panorama, then each aerial candidate with its letter. */
async function caseViews(p: PredictionRecord, img: ImageEmbedder): Promise<string[]> {
  const views: string[] = [];
  const ground = await img(p.groundPng, "thumb-ground", "ground panorama");
  if (ground) views.push(ground);
  const aerials = p.aerialPngs ?? [];
  for (let k = 0; k < aerials.length; k++) {
    const name = aerials.length > 1 ? String.fromCharCode(65 + k) : "aerial";
    const a = await img(aerials[k], "thumb-aerial", `candidate ${name}`);
    if (a) views.push(`<figure>${a}<figcaption>${escapeHtml(name)}</figcaption></figure>`);
  }
  return views;
}

/** One row of the worst-case table. */
function worstCaseRow(p: PredictionRecord, views: string[]): Cell[] {
  return [
    p.label ?? p.stage,
    p.task,
    raw(`<code>${escapeHtml(p.exampleId)}</code>`),
    p.answer,
    p.parsed ?? "(no answer)",
    p.correct ? raw('<span class="ok">right</span>') : raw('<span class="bad">wrong</span>'),
    p.km === undefined ? null : p.km === null ? "unparsed" : fmtNum(p.km, 0),
    p.tokens,
    views.length ? raw(`<div class="cands">${views.join("")}</div>`) : null,
    raw(
      `<details><summary>completion</summary><pre>${escapeHtml(short(p.completion))}</pre>` +
        `<pre>${escapeHtml(short(p.prompt, 600))}</pre></details>`,
    ),
  ];
}

/** Examples and wrong answers per model and task. */
function renderPredictionCounts(predictions: PredictionRecord[]): string {
  const byTask = new Map<string, { n: number; wrong: number }>();
  for (const p of predictions) {
    const k = `${p.label ?? p.stage} · ${p.task}`;
    const s = byTask.get(k) ?? { n: 0, wrong: 0 };
    s.n++;
    if (!p.correct) s.wrong++;
    byTask.set(k, s);
  }
  return renderTable(
    ["Model · task", { label: "Examples", num: true }, { label: "Wrong", num: true }],
    [...byTask.entries()].map(([k, s]) => [k, s.n, s.wrong]),
    { caption: "Per-example predictions (predictions.jsonl)" },
  );
}

/**
 * The worst cases of a run: wrong predictions of every row and task (geolocation by error, largest first),
 * in a table sortable by any column (click its header) and filtered by the text box. Images are embedded
 * for the cases evaluation saved them for.
 */
export async function renderWorstCases(
  r: RunRecords,
  warnings: string[],
  opts: WorstCaseOptions = {},
): Promise<string> {
  if (!r.predictions.length) {
    return `<p class="note">No predictions.jsonl in this run (runs evaluated before per-example predictions ` +
      `were kept have none; <code>deno task exp NAME --no-cache</code> re-evaluates).</p>`;
  }
  const bad = r.predictions.filter((p) => badness(p) > 0).sort((a, b) => badness(b) - badness(a));
  const shown = bad.slice(0, opts.max ?? 300);
  const img = imageEmbedder(r.dir, warnings, opts.imageBudget ?? 1_500_000);
  const rows: Cell[][] = [];
  for (const p of shown) rows.push(worstCaseRow(p, await caseViews(p, img)));
  const table = renderTable(
    [
      "Model",
      "Task",
      "Example",
      "Expected",
      "Answered",
      "Verdict",
      { label: "Error km", num: true },
      { label: "Tokens", num: true },
      "Views",
      "Completion and prompt",
    ],
    rows,
    {
      attrs: ' id="worst-cases" data-sortable',
      caption:
        `The ${shown.length} worst of ${bad.length} wrong or off-target predictions (wrong first, then ` +
        `by geolocation error); click a header to sort, type to filter`,
    },
  );
  return `${renderPredictionCounts(r.predictions)}<p><input type="search" data-filter="worst-cases" ` +
    `placeholder="filter: model, task, answer, text…" aria-label="filter the worst cases"></p>${table}`;
}

/** Per example id: the share of a group's runs that got it right, and one prediction to show. */
function byExample(g: LabelGroup, runs: RunRecords[]): Map<string, { right: number; p: PredictionRecord }> {
  const acc = new Map<string, { right: number; n: number; p: PredictionRecord }>();
  for (const { runId, row } of g.rows) {
    const run = runs.find((r) => r.manifest.runId === runId);
    for (const p of run?.predictions ?? []) {
      if (p.label !== row.label || (row.stageHash && p.stageHash !== row.stageHash)) continue;
      const k = `${p.task}\u0000${p.exampleId}`;
      const s = acc.get(k) ?? { right: 0, n: 0, p };
      s.n++;
      if (p.correct) s.right++;
      acc.set(k, s);
    }
  }
  return new Map([...acc.entries()].map(([k, s]) => [k, { right: s.right / s.n, p: s.p }]));
}

/**
 * The examples on which two models disagree, for each model and the model it starts from (e.g. Geo-SFT ->
 * Geo-R1) and for each pair of configurations of one model: counts of "only A right" and "only B right"
 * (right in more than half of a row's runs) and up to `max` examples of each with both completions.
 */
export function renderExampleDiff(groups: LabelGroup[], runs: RunRecords[], max = 10): string {
  if (!runs.some((r) => r.predictions.length)) {
    return `<p class="note">No predictions.jsonl in these runs: no per-example comparison.</p>`;
  }
  const pairs: [LabelGroup, LabelGroup][] = [];
  for (const b of groups) {
    const start = startOf(b.model);
    const a = groups.find((g) =>
      g.model === start && (g.variant === "" || g.rows.some((x) => b.rows.some((y) => y.runId === x.runId)))
    );
    if (a) pairs.push([a, b]);
  }
  for (const model of new Set(groups.map((g) => g.model))) {
    const same = groups.filter((g) => g.model === model);
    for (let i = 1; i < same.length; i++) pairs.push([same[0], same[i]]);
  }
  const parts: string[] = [];
  for (const [a, b] of pairs) {
    const ea = byExample(a, runs), eb = byExample(b, runs);
    const onlyA: [PredictionRecord, PredictionRecord][] = [];
    const onlyB: [PredictionRecord, PredictionRecord][] = [];
    let both = 0;
    for (const [k, x] of ea) {
      const y = eb.get(k);
      if (!y) continue;
      both++;
      if (x.right > 0.5 && y.right <= 0.5) onlyA.push([x.p, y.p]);
      if (y.right > 0.5 && x.right <= 0.5) onlyB.push([x.p, y.p]);
    }
    if (!both) continue;
    const list = (items: [PredictionRecord, PredictionRecord][]) =>
      items.slice(0, max).map(([x, y]) =>
        `<div class="item"><div><b>${escapeHtml(x.task)}</b> · <code>${escapeHtml(x.exampleId)}</code> · ` +
        `expected <code>${escapeHtml(x.answer)}</code></div><div class="note">${escapeHtml(a.label)}: ` +
        `${escapeHtml(x.parsed ?? "(no answer)")}</div><pre>${escapeHtml(short(x.completion, 600))}</pre>` +
        `<div class="note">${escapeHtml(b.label)}: ${escapeHtml(y.parsed ?? "(no answer)")}</div><pre>${
          escapeHtml(short(y.completion, 600))
        }</pre></div>`
      ).join("");
    parts.push(
      `<h3>${escapeHtml(a.label)} vs ${escapeHtml(b.label)}</h3>` +
        renderTable(
          [
            { label: "Examples in both", num: true },
            { label: `Only ${a.label} right`, num: true },
            { label: `Only ${b.label} right`, num: true },
          ],
          [[both, onlyA.length, onlyB.length]],
        ) +
        (onlyA.length
          ? `<details><summary>${Math.min(max, onlyA.length)} of ${onlyA.length} where only ${
            escapeHtml(a.label)
          } is right</summary><div class="gallery">${list(onlyA)}</div></details>`
          : "") +
        (onlyB.length
          ? `<details><summary>${Math.min(max, onlyB.length)} of ${onlyB.length} where only ${
            escapeHtml(b.label)
          } is right</summary><div class="gallery">${list(onlyB)}</div></details>`
          : ""),
    );
  }
  return parts.length
    ? parts.join("\n")
    : `<p class="note">No two rows share evaluated examples in predictions.jsonl.</p>`;
}
