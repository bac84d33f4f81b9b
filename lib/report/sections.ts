/**
 * Sections of a run report, each a pure function from run records to trusted HTML.
 * @module
 */
import type { GalleryItem, Manifest, MetricRecord, StageEval } from "../run/records.ts";
import { escapeHtml } from "./escape.ts";
import {
  type Cell,
  chartGrid,
  fmtCi,
  fmtNum,
  fmtPct,
  raw,
  renderKv,
  renderLineChart,
  renderScatter,
  renderTable,
  type Series,
} from "./components.ts";
import { pngDataUri, type RolloutStageSummary } from "./read.ts";

/** The paper's geolocalization thresholds (km), used when eval.json names none. */
export const DEFAULT_THRESHOLDS_KM = [1, 25, 200, 750, 2500];

/**
 * Table 2 analogue: pairing accuracy and completion length per row, plus the scatter. `split`: the split the
 * rows were evaluated on (`eval --split val` writes validation rows).
 */
export function renderAccuracyLength(rows: StageEval[], split: "test" | "validation" = "test"): string {
  const withP = rows.filter((r) => r.pairing);
  if (!withP.length) return `<p class="note">No pairing evaluation in eval.json.</p>`;
  const table = renderTable(
    [
      "Model",
      { label: "Pairing accuracy [95% CI]", num: true },
      { label: "Completion length, tokens [95% CI]", num: true },
      { label: "Format rate", num: true },
      { label: "Names one match", num: true },
      { label: "Answer follows it", num: true },
      { label: "n", num: true },
    ],
    withP.map((r) => {
      const p = r.pairing!;
      return [
        r.label,
        fmtCi(p.accuracy, p.ci, { scale: 100, unit: "%" }),
        fmtCi(p.meanLength, p.lengthCi),
        fmtPct(p.formatRate),
        p.namedMatchRate === undefined ? null : fmtPct(p.namedMatchRate),
        p.namedMatchRate ? fmtPct(p.answerFollowsMatch ?? 0) : null,
        p.n,
      ];
    }),
    { caption: `Cross-view pairing on the ${split} split (chance = 1/K)` },
  );
  const tiers = [...new Set(withP.flatMap((r) => Object.keys(r.pairing!.byTier ?? {})))];
  const tierTable = tiers.length
    ? renderTable(
      ["Model", ...tiers.map((t) => ({ label: `${t} negatives`, num: true }))],
      withP.map((r) => [
        r.label,
        ...tiers.map((t) => {
          const b = r.pairing!.byTier?.[t];
          return b ? `${fmtPct(b.accuracy)} (n=${b.n})` : null;
        }),
      ]),
      { caption: "Pairing accuracy by negative difficulty tier" },
    )
    : "";
  const scatter = renderScatter(
    withP.map((r) => ({
      label: r.label,
      x: r.pairing!.meanLength,
      y: r.pairing!.accuracy * 100,
      xCi: r.pairing!.lengthCi ?? null,
      yCi: r.pairing!.ci ? [r.pairing!.ci[0] * 100, r.pairing!.ci[1] * 100] : null,
    })),
    {
      title: "Accuracy vs completion length",
      xLabel: "mean completion length (tokens)",
      yLabel: "pairing accuracy (%)",
      yMin: 0,
      yMax: 100,
      height: 320,
      wide: true,
    },
  );
  return `${table}\n${tierTable}\n${chartGrid([scatter])}`;
}

/** Table 1 analogue: geolocation accuracy at distance thresholds. */
export function renderGeolocate(rows: StageEval[]): string {
  const withG = rows.filter((r) => r.geolocate);
  if (!withG.length) return `<p class="note">No geolocation evaluation in eval.json.</p>`;
  const keys = [...new Set(withG.flatMap((r) => Object.keys(r.geolocate!.thresholds)))]
    .sort((a, b) => Number(a) - Number(b));
  const ths = keys.length ? keys : DEFAULT_THRESHOLDS_KM.map(String);
  return renderTable(
    [
      "Model",
      ...ths.map((k) => ({ label: `${k} km`, num: true })),
      { label: "Median error (km)", num: true },
      { label: "Parse rate", num: true },
      { label: "Repeated 6-gram", num: true },
      { label: "Distinct answers", num: true },
      { label: "Top answer", num: true },
      { label: "Length (tokens)", num: true },
      { label: "n", num: true },
    ],
    withG.map((r) => {
      const g = r.geolocate!;
      return [
        r.label,
        ...ths.map((k) =>
          g.thresholds[k] === undefined
            ? null
            : fmtCi(g.thresholds[k], g.thresholdCi?.[k], { scale: 100, unit: "%" })
        ),
        fmtNum(g.medianKm, 0),
        g.parseRate === undefined ? null : fmtPct(g.parseRate),
        g.repetitionRate === undefined ? null : fmtPct(g.repetitionRate),
        g.distinctAnswers ?? null,
        g.topAnswerShare === undefined ? null : fmtPct(g.topAnswerShare),
        fmtNum(g.meanLength, 1),
        g.n,
      ];
    }),
    { caption: "Geolocation: share of predictions within each great-circle distance [95% CI]" },
  ) + geolocateNote(withG);
}

/** Which bootstrap the geolocation CIs used, and the nearest-training-location cap when a row recorded it. */
function geolocateNote(rows: StageEval[]): string {
  const parts: string[] = [];
  const cluster = rows.filter((r) => r.geolocate!.bootstrap === "cluster");
  if (cluster.length === rows.length) {
    parts.push(
      `CIs: cluster bootstrap resampling whole held-out region cells (${
        Math.max(...cluster.map((r) => r.geolocate!.clusters ?? 0))
      } cells among the test views).`,
    );
  } else {parts.push(
      `CIs: ${cluster.length ? "cluster bootstrap for some rows, " : ""}example bootstrap over test views.`,
    );}
  const oracle = rows.map((r) => r.geolocate!.galleryOracle).find((o) => o);
  if (oracle) {
    parts.push(
      `Test views lie in held-out cells: the nearest of ${oracle.n} training locations is within 1 / 25 / 200 km ` +
        `of ${["1", "25", "200"].map((k) => fmtPct(oracle.thresholds[k] ?? 0)).join(" / ")} of them.`,
    );
  }
  return `<p class="note">${escapeHtml(parts.join(" "))}</p>`;
}

/** Geo-QA accuracy per question kind. */
export function renderGeoQa(rows: StageEval[]): string {
  const withQ = rows.filter((r) => r.geoqa);
  if (!withQ.length) return `<p class="note">No geo-qa evaluation in eval.json.</p>`;
  const kinds = [...new Set(withQ.flatMap((r) => Object.keys(r.geoqa!.byKind)))];
  return renderTable(
    ["Model", { label: "All", num: true }, ...kinds.map((k) => ({ label: k, num: true })), {
      label: "n",
      num: true,
    }],
    withQ.map((r) => {
      const q = r.geoqa!;
      return [
        r.label,
        fmtPct(q.accuracy),
        ...kinds.map((k) => q.byKind[k] ? fmtPct(q.byKind[k].accuracy) : null),
        q.n,
      ];
    }),
    { caption: "Geo-QA accuracy by question kind" },
  );
}

interface CurveGroup {
  title: string;
  match: (k: string) => boolean;
  yLabel?: string;
  logY?: boolean;
}

const CURVE_GROUPS: CurveGroup[] = [
  {
    title: "Loss",
    yLabel: "cross-entropy (nats/token)",
    match: (k) => k === "loss" || k.startsWith("loss/"),
  },
  { title: "Reward", yLabel: "reward", match: (k) => k === "reward" || /^rewards\/[^/]+\/mean$/.test(k) },
  {
    title: "Reward std",
    yLabel: "reward",
    match: (k) => k === "reward_std" || /^rewards\/[^/]+\/std$/.test(k),
  },
  { title: "Accuracy", yLabel: "share correct (0-1)", match: (k) => k === "accuracy" },
  {
    title: "Completion length (tokens)",
    yLabel: "tokens",
    match: (k) => /^completions\/(mean|min|max)_length$/.test(k),
  },
  { title: "KL to reference", yLabel: "nats", match: (k) => k === "kl" },
  { title: "Entropy", yLabel: "nats/token", match: (k) => k === "entropy" },
  {
    title: "Truncated / zero-std groups",
    yLabel: "share (0-1)",
    match: (k) => k === "completions/clipped_ratio" || k === "frac_reward_zero_std",
  },
  { title: "Clip ratios", yLabel: "share (0-1)", match: (k) => k.startsWith("clip_ratio/") },
  { title: "Learning rate", yLabel: "learning rate", match: (k) => k === "lr" },
  { title: "Gradient norm", yLabel: "L2 norm", match: (k) => k === "grad_norm" },
  { title: "Throughput (tokens/s)", yLabel: "tokens/s", match: (k) => k === "tokens_per_s" },
  { title: "Step time (s)", yLabel: "seconds", match: (k) => k === "step_time" },
];

/** At most `max` points: bucket means of x and y over equal-size buckets. */
export function downsample(points: [number, number][], max = 300): [number, number][] {
  if (points.length <= max) return points;
  const out: [number, number][] = [];
  const per = points.length / max;
  for (let b = 0; b < max; b++) {
    const lo = Math.floor(b * per);
    const hi = Math.max(lo + 1, Math.floor((b + 1) * per));
    let sx = 0, sy = 0;
    for (let i = lo; i < hi; i++) {
      sx += points[i][0];
      sy += points[i][1];
    }
    out.push([sx / (hi - lo), sy / (hi - lo)]);
  }
  return out;
}

const NON_METRIC = new Set(["stage", "kind", "step", "time"]);
/** Record kinds that are evaluations, not the stage's own training kind (for the stage badge). */
const EVAL_KINDS = new Set(["eval", "test"]);

/** Training curves per stage from metrics.jsonl: one chart per metric group present. */
export function renderCurves(metrics: MetricRecord[], stageOrder: string[] = []): string {
  if (!metrics.length) return `<p class="note">No metrics.jsonl records.</p>`;
  // stage -> key -> points
  const stages = new Map<string, { kind: string; series: Map<string, [number, number][]> }>();
  for (const m of metrics) {
    const stage = String(m.stage ?? "?");
    let s = stages.get(stage);
    if (!s) {
      s = { kind: String(m.kind ?? ""), series: new Map() };
      stages.set(stage, s);
    }
    if (!EVAL_KINDS.has(String(m.kind)) && EVAL_KINDS.has(s.kind)) s.kind = String(m.kind);
    const step = Number(m.step);
    if (!Number.isFinite(step)) continue;
    for (const [k, v] of Object.entries(m)) {
      if (NON_METRIC.has(k) || typeof v !== "number" || !Number.isFinite(v)) continue;
      let pts = s.series.get(k);
      if (!pts) s.series.set(k, pts = []);
      pts.push([step, v]);
    }
  }
  const order = [...new Set([...stageOrder.filter((s) => stages.has(s)), ...stages.keys()])];
  const parts: string[] = [];
  for (const name of order) {
    const s = stages.get(name)!;
    const keys = [...s.series.keys()];
    const used = new Set<string>();
    const charts: string[] = [];
    // A series of one point is a number, not a curve: it goes into the table under the charts.
    const singles: [string, number, number][] = [];
    const chartFor = (title: string, ks: string[], logY = false, yLabel?: string) => {
      const series: Series[] = [];
      for (const k of ks) {
        const pts = s.series.get(k)!.sort((a, b) => a[0] - b[0]);
        if (pts.length >= 2) series.push({ label: k, points: downsample(pts) });
        else singles.push([k, pts[0][0], pts[0][1]]);
      }
      if (series.length) charts.push(renderLineChart(series, { title, xLabel: "step", yLabel, logY }));
      ks.forEach((k) => used.add(k));
    };
    for (const g of CURVE_GROUPS) {
      const ks = keys.filter((k) => !used.has(k) && g.match(k));
      if (ks.length) chartFor(g.title, ks, g.logY, g.yLabel);
    }
    // evaluation during training: eval/<task>/<metric>, one chart per task
    const evalTasks = [
      ...new Set(keys.filter((k) => !used.has(k) && k.startsWith("eval/")).map((k) => k.split("/")[1])),
    ];
    // Lengths (tokens) get their own chart: on the rates' 0-1 axis they would flatten every other line.
    for (const t of evalTasks) {
      const ks = keys.filter((k) => !used.has(k) && k.startsWith(`eval/${t}/`));
      const lengths = ks.filter((k) => k.endsWith("_length"));
      const rates = ks.filter((k) => !k.endsWith("_length"));
      if (rates.length) chartFor(`Eval: ${t}`, rates, false, "rate (0-1)");
      if (lengths.length) chartFor(`Eval: ${t} (tokens)`, lengths, false, "tokens");
    }
    const rest = keys.filter((k) => !used.has(k));
    for (const k of rest.slice(0, 8)) chartFor(k, [k]);
    const skipped = rest.slice(8);
    const n = Math.max(0, ...[...s.series.values()].map((p) => p.length));
    parts.push(
      `<h3>Stage ${escapeHtml(name)} <span class="badge">${escapeHtml(s.kind)}</span></h3>` +
        `<p class="note">${n} logged steps; ${keys.length} metrics${
          skipped.length ? `; not charted: ${escapeHtml(skipped.join(", "))}` : ""
        }</p>` + chartGrid(charts) +
        (singles.length
          ? renderTable(
            ["Metric", { label: "Step", num: true }, { label: "Value", num: true }],
            singles.map(([k, step, v]) => [k, step, fmtNum(v, Math.abs(v) >= 100 ? 1 : 4)]),
            { caption: "Logged once in this stage (no curve to draw)" },
          )
          : ""),
    );
  }
  return parts.join("\n");
}

function completionBlock(text: string, max = 4000): string {
  const t = text.length > max ? text.slice(0, max) + `\n… (${text.length - max} more characters)` : text;
  return `<pre>${escapeHtml(t)}</pre>`;
}

/** Summary of the training rollout ledger, with a few rollouts (first step, best and worst of the last). */
export function renderRolloutSummary(rollouts: RolloutStageSummary[] | null): string {
  if (!rollouts || !rollouts.length) return `<p class="note">No rollouts.jsonl in this run.</p>`;
  const table = renderTable(
    [
      "Stage",
      { label: "Rollouts", num: true },
      { label: "Steps", num: true },
      { label: "Mean reward", num: true },
      { label: "Mean tokens", num: true },
      { label: "Truncated", num: true },
    ],
    rollouts.map((r) => [
      r.stage,
      r.count,
      `${r.firstStep}–${r.lastStep}`,
      fmtNum(r.meanReward, 3),
      fmtNum(r.meanTokens, 1),
      fmtPct(r.truncatedFrac),
    ]),
    { caption: "Training rollouts (rollouts.jsonl)" },
  );
  const samples = rollouts.flatMap((r) => r.samples);
  const items = samples.map((s) =>
    `<div class="item"><div><b>${escapeHtml(s.stage)}</b> step ${escapeHtml(s.step)} · prompt ${
      escapeHtml(s.promptId)
    } · sample ${escapeHtml(s.sample)} · reward ${fmtNum(s.reward, 3)} · advantage ${
      fmtNum(s.advantage, 3)
    } · ${escapeHtml(s.tokens)} tokens${s.truncated ? ' · <span class="bad">truncated</span>' : ""}</div>` +
    `<div class="note">${
      escapeHtml(Object.entries(s.rewards ?? {}).map(([k, v]) => `${k}=${fmtNum(v, 2)}`).join(" "))
    }</div>` +
    completionBlock(String(s.completion ?? "")) + `</div>`
  );
  return `${table}${
    items.length
      ? `<details><summary>${items.length} sample training rollouts</summary><div class="gallery">${
        items.join("\n")
      }</div></details>`
      : ""
  }`;
}

export interface GalleryOptions {
  /** Items shown per eval row (default 12). */
  perRow?: number;
  /** Total bytes of embedded image data allowed (default 2,000,000); images beyond it are left out. */
  imageBudget?: number;
}

/** The gallery of evaluation rollouts with their ground and aerial images (as data: URIs). */
export async function renderGallery(
  runDir: string,
  rows: StageEval[],
  warnings: string[],
  opts: GalleryOptions = {},
): Promise<string> {
  const perRow = opts.perRow ?? 12;
  let budget = opts.imageBudget ?? 2_000_000;
  let dropped = 0;
  const img = async (rel: string | null, cls: string, alt: string): Promise<string> => {
    if (!rel) return "";
    const uri = await pngDataUri(runDir, rel, warnings);
    if (!uri) return `<span class="note">[${escapeHtml(alt)}: unavailable]</span>`;
    if (uri.length > budget) {
      dropped++;
      return `<span class="note">[${escapeHtml(alt)}: left out, size budget]</span>`;
    }
    budget -= uri.length;
    return `<img class="${cls}" src="${uri}" alt="${escapeHtml(alt)}" title="${escapeHtml(rel)}">`;
  };
  const out: string[] = [];
  for (const row of rows) {
    const items = (row.gallery ?? []).slice(0, perRow);
    if (!items.length) continue;
    const html: string[] = [];
    for (const it of items as GalleryItem[]) {
      const ground = await img(it.groundPng, "ground", "ground panorama");
      const cands: string[] = [];
      for (let i = 0; i < it.aerialPngs.length; i++) {
        const name = it.aerialPngs.length > 1 ? String.fromCharCode(65 + i) : "aerial";
        cands.push(
          `<figure>${await img(it.aerialPngs[i], "aerial", `candidate ${name}`)}<br>${
            escapeHtml(name)
          }</figure>`,
        );
      }
      html.push(
        `<div class="item"><div><b>${escapeHtml(it.task)}</b> · ${escapeHtml(it.exampleId)} · ${
          it.correct ? '<span class="ok">correct</span>' : '<span class="bad">wrong</span>'
        } · expected <code>${escapeHtml(it.answer)}</code></div>` +
          (ground ? `<div>${ground}</div>` : "") +
          (cands.length ? `<div class="cands">${cands.join("")}</div>` : "") +
          `<details><summary>prompt</summary>${completionBlock(String(it.prompt ?? ""), 2000)}</details>` +
          completionBlock(it.completion) + `</div>`,
      );
    }
    out.push(
      `<h3>${
        escapeHtml(row.label)
      } <span class="note">(${items.length} of ${row.gallery.length})</span></h3><div class="gallery">${
        html.join("\n")
      }</div>`,
    );
  }
  if (dropped) warnings.push(`${dropped} gallery images left out to keep the report under its size budget`);
  return out.length ? out.join("\n") : `<p class="note">No gallery items in eval.json.</p>`;
}

function seedsOf(spec: Record<string, unknown> | null, manifest: Manifest): [string, Cell][] {
  const out: [string, Cell][] = [["seed", manifest.seed]];
  if (!spec) return out;
  const get = (
    o: unknown,
    k: string,
  ) => (o && typeof o === "object" ? (o as Record<string, unknown>)[k] : undefined);
  for (const part of ["world", "data", "model", "eval"]) {
    const s = get(get(spec, part), "seed");
    if (s !== undefined) out.push([`${part}.seed`, String(s)]);
  }
  const stages = get(spec, "stages");
  if (stages && typeof stages === "object") {
    for (const [name, st] of Object.entries(stages)) {
      const s = get(st, "seed");
      if (s !== undefined) out.push([`stages.${name}.seed`, String(s)]);
    }
  }
  return out;
}

function duration(a: string, b: string | null): string {
  if (!b) return "–";
  const ms = Date.parse(b) - Date.parse(a);
  if (!Number.isFinite(ms)) return "–";
  const s = Math.round(ms / 1000);
  return s >= 60 ? `${Math.floor(s / 60)} min ${s % 60} s` : `${s} s`;
}

/** The manifest: provenance, environment, seeds, permissions, times, and the stages with their hashes. */
export function renderManifest(manifest: Manifest, spec: Record<string, unknown> | null): string {
  const m = manifest;
  const pairs: [string, Cell][] = [
    ["experiment", m.name],
    ["run id", m.runId],
    ["status", m.status],
    ["spec hash", raw(`<code>${escapeHtml(m.specHash)}</code>`)],
    [
      "git commit",
      raw(
        `<code>${escapeHtml(m.git?.commit ?? "unknown")}</code>${
          m.git?.dirty ? ' <span class="bad">dirty</span>' : m.git?.dirty === false ? " clean" : ""
        }`,
      ),
    ],
    ["deno.lock hash", raw(`<code>${escapeHtml(m.lockHash ?? "none")}</code>`)],
    ...Object.entries(m.versions ?? {}).map(([k, v]): [string, Cell] => [`${k} version`, String(v)]),
    [
      "backend",
      `${m.backend?.name ?? "?"}${m.backend?.adapter ? ` (${m.backend.adapter})` : ""}${
        m.backend?.isFallbackAdapter ? " fallback adapter" : ""
      }`,
    ],
    [
      "device",
      `${m.device?.os ?? "?"}/${m.device?.arch ?? "?"}, ${m.device?.cpus ?? "?"} CPUs, ${
        m.device?.memGiB ?? "?"
      } GiB, host ${m.device?.hostname ?? "?"}`,
    ],
    ...seedsOf(spec, m),
    ["permissions", Object.entries(m.permissions ?? {}).map(([k, v]) => `${k}=${v}`).join(", ")],
    ["command", raw(`<code>${escapeHtml((m.argv ?? []).join(" "))}</code>`)],
    ["started", m.startedAt],
    ...(m.attemptStartedAt ? [["latest attempt started", m.attemptStartedAt] as [string, Cell]] : []),
    ["ended", m.endedAt ?? "–"],
    ["duration", duration(m.attemptStartedAt ?? m.startedAt, m.endedAt)],
  ];
  if (m.error) pairs.push(["error", raw(`<pre>${escapeHtml(m.error)}</pre>`)]);
  for (const f of m.forceResume ?? []) pairs.push(["forced resume", `${f.at}: ${f.mismatches.join("; ")}`]);
  const stages = (m.stages ?? []).length
    ? renderTable(
      ["Stage", "Kind", "Hash", "From cache", "Cache dir"],
      m.stages.map((
        s,
      ) => [s.name, s.kind, raw(`<code>${escapeHtml(s.hash)}</code>`), s.cached ? "yes" : "no", s.dir]),
      { caption: "Pipeline stages (content-addressed)" },
    )
    : "";
  const history = (m.history ?? []).length
    ? renderTable(
      ["Attempt", "Started", "Ended", "Status", "Commit", "Backend", "Stages from cache", "Command"],
      m.history!.map((h, i) => [
        i + 1,
        h.startedAt,
        h.endedAt ?? null,
        h.error ? `${h.status}: ${h.error.split("\n")[0]}` : h.status,
        raw(
          `<code>${escapeHtml((h.git?.commit ?? "unknown").slice(0, 12))}</code>${
            h.git?.dirty ? " dirty" : ""
          }`,
        ),
        h.backend?.name ?? null,
        (h.stages ?? []).filter((s) => s.cached).map((s) => s.name).join(", ") || "none",
        raw(`<code>${escapeHtml((h.argv ?? []).join(" "))}</code>`),
      ]),
      { caption: "Earlier attempts of this run (it was resumed); the fields above describe the latest" },
    )
    : "";
  const specBlock = spec
    ? `<details><summary>Resolved spec (spec.resolved.json)</summary><pre>${
      escapeHtml(JSON.stringify(spec, null, 2))
    }</pre></details>`
    : "";
  return renderKv(pairs) + stages + history + specBlock;
}
