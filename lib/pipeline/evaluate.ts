/**
 * Evaluation of one model on the fixed test split: pairing accuracy vs completion length, geolocation at
 * 1/25/200/750/2500 km, geo-qa per kind; a gallery of rollouts with their images saved as PNGs.
 * Decoding is greedy by default (eval.temperature 0) so an evaluation is a deterministic function of the
 * weights, the test set and the backend.
 * @module
 */
import type { Example, TaskName, Tokenizer } from "../data/types.ts";
import type { GenerateOptions, VLM } from "../model/types.ts";
import { hostWeights, type ReplicaPool } from "../train/replicas.ts";
import type { EvalSpec } from "../spec/types.ts";
import type { GalleryItem, PredictionRecord, StageEval } from "../run/records.ts";
import { collatePrompts, disposeInput } from "../model/collate.ts";
import { parseCompletion, type ParsedCompletion } from "../reward/parse.ts";
import { accuracyReward, completionDistanceKm, completionPoint, pointErrorKm } from "../reward/rewards.ts";
import { geolocateMetrics, geoqaMetrics, hasRepeatedNgram, pairingMetrics } from "../eval/metrics.ts";
import { deriveSeed } from "../rng.ts";
import { encodePng } from "../data/images.ts";
import { statedMatch } from "../data/cot.ts";
import { atomicWrite } from "../run/atomic.ts";

export interface EvalContext {
  model: VLM;
  tokenizer: Tokenizer;
  /** The fixed test examples of a task (same for every replicate seed). */
  testExamples(task: TaskName, n: number): Example[];
  spec: EvalSpec;
  /** Where gallery PNGs go (absolute) and the prefix recorded in the gallery (relative to the run dir). */
  samplesDir: string;
  samplesRel: string;
  stage: string;
  label: string;
  stageHash: string;
  batchSize?: number;
  progress?(done: number, total: number): void;
  /** Replicas sharing the decoding batches (`eval.replicas`); absent: this thread only. */
  replicas?: ReplicaPool;
  /**
   * Region cell of an example's test view (pairing: its ground view): CIs then resample whole cells
   * (lib/eval/stats.ts clusterBootstrapCi). Absent: example bootstrap.
   */
  clusterOf?(ex: Example): string;
  /**
   * Receives one record per test example (predictions.jsonl). With it, the images of each task's
   * `spec.gallery` worst cases are saved too (wrong answers; geolocation: the largest errors).
   */
  predictions?: PredictionRecord[];
}

interface Scored {
  ex: Example;
  text: string;
  tokens: number;
  /** The generated token ids (for the repetition metric). */
  ids: number[];
}

/**
 * Generate greedy (or sampled, per spec) completions for examples, in batches of `batchSize`. With `pool`,
 * the batches are dealt out in waves: batch k of a wave runs on replica k (0 = this thread). Each batch's
 * input, weights and seed are the same wherever it runs, so the completions are the same as without.
 */
export async function complete(
  model: VLM,
  tok: Tokenizer,
  examples: Example[],
  spec: Pick<EvalSpec, "temperature" | "maxNewTokens" | "seed">,
  batchSize = 64,
  onBatch?: (done: number) => void,
  pool?: ReplicaPool,
): Promise<Scored[]> {
  const out: Scored[] = [];
  const R = pool?.size ?? 1;
  const weights = pool ? hostWeights(model) : null;
  const opts = (i: number): GenerateOptions => ({
    groupSize: 1,
    maxNewTokens: spec.maxNewTokens,
    temperature: spec.temperature,
    topP: 1,
    seed: deriveSeed(spec.seed, `eval/${i}`),
    stopIds: [tok.special.answerClose],
  });
  const starts: number[] = [];
  for (let i = 0; i < examples.length; i += batchSize) starts.push(i);
  for (let w = 0; w < starts.length; w += R) {
    const wave = starts.slice(w, w + R);
    const inputs = wave.map((i) => collatePrompts(examples.slice(i, i + batchSize), tok, model.config));
    try {
      const remote = wave.slice(1).map((i, j) => pool!.generate(j + 1, weights!, inputs[j + 1], opts(i)));
      remote.forEach((p) => p.catch(() => {}));
      const results = [await model.generate(inputs[0], opts(wave[0])), ...(await Promise.all(remote))];
      results.forEach((res, k) => {
        const chunk = examples.slice(wave[k], wave[k] + batchSize);
        res.completions.forEach((ids, j) =>
          out.push({ ex: chunk[j], text: tok.decode(ids), tokens: ids.length, ids: Array.from(ids) })
        );
      });
    } finally {
      inputs.forEach(disposeInput);
    }
    onBatch?.(out.length);
  }
  return out;
}

/** Evaluate one model on every task of `spec.tasks`. */
export async function evaluateModel(c: EvalContext): Promise<StageEval> {
  const result: StageEval = { stage: c.stage, label: c.label, stageHash: c.stageHash, gallery: [] };
  const tasks = c.spec.tasks.filter((t) => t !== "caption");
  const total = tasks.length * c.spec.n;
  let doneBefore = 0;
  for (const task of tasks) {
    const examples = c.testExamples(task, c.spec.n);
    const scored = await complete(
      c.model,
      c.tokenizer,
      examples,
      c.spec,
      c.batchSize ?? 64,
      (d) => c.progress?.(doneBefore + d, total),
      c.replicas,
    );
    doneBefore += examples.length;
    scoreTask(result, task, scored, c);
    const keep = task === "pairing" ? c.spec.gallery : Math.min(2, c.spec.gallery);
    for (const s of scored.slice(0, keep)) result.gallery.push(await galleryItem(c, s));
    if (c.predictions) c.predictions.push(...(await predictionRecords(c, scored)));
  }
  return result;
}

/** Put the metrics of one task's completions into `result` (caption has none). */
function scoreTask(result: StageEval, task: TaskName, scored: Scored[], c: EvalContext): void {
  const bootstrap = (name: string) => ({
    resamples: c.spec.bootstrap,
    seed: deriveSeed(c.spec.seed, `bootstrap/${name}`),
  });
  if (task === "pairing") {
    result.pairing = pairingMetrics(
      scored.map((s) => {
        const parsed = parseCompletion(s.text);
        return {
          correct: accuracyReward(s.text, s.ex) === 1,
          tokens: s.tokens,
          formatOk: parsed.ok,
          tier: tierOf(s.ex),
          followsMatch: followsMatch(parsed),
          cluster: c.clusterOf?.(s.ex),
        };
      }),
      bootstrap("pairing"),
    );
  } else if (task === "geolocate") {
    result.geolocate = geolocateMetrics(
      scored.map((s) => {
        // One parse gives both the point (answer diversity) and its error.
        const point = completionPoint(s.text);
        const km = pointErrorKm(point, s.ex);
        return {
          km,
          tokens: s.tokens,
          parsed: Number.isFinite(km),
          repeated: hasRepeatedNgram(s.ids),
          cluster: c.clusterOf?.(s.ex),
          point: Number.isFinite(km) ? point : null,
        };
      }),
      bootstrap("geolocate"),
    );
  } else if (task === "control") {
    const m = pairingMetrics(
      scored.map((s) => ({
        correct: accuracyReward(s.text, s.ex) === 1,
        tokens: s.tokens,
        formatOk: parseCompletion(s.text).ok,
        tier: "none",
        followsMatch: null,
      })),
      bootstrap("control"),
    );
    result.control = {
      n: m.n,
      accuracy: m.accuracy,
      ci: m.ci,
      meanLength: m.meanLength,
      formatRate: m.formatRate,
    };
  } else if (task === "geoqa") {
    result.geoqa = geoqaMetrics(
      scored.map((s) => ({ kind: s.ex.qaKind ?? "unknown", correct: accuracyReward(s.text, s.ex) === 1 })),
    );
  }
}

/** One prediction record per completion; the `spec.gallery` worst of them get their images saved. */
async function predictionRecords(c: EvalContext, scored: Scored[]): Promise<PredictionRecord[]> {
  const recs = scored.map((s) => predictionRecord(c, s));
  for (const i of worstIndices(recs, c.spec.gallery)) {
    const imgs = await saveImages(c, scored[i]);
    recs[i].groundPng = imgs.groundPng;
    recs[i].aerialPngs = imgs.aerialPngs;
  }
  return recs;
}

/** One test example as the model answered it. */
function predictionRecord(c: EvalContext, s: Scored): PredictionRecord {
  const parsed = parseCompletion(s.text);
  const rec: PredictionRecord = {
    stage: c.stage,
    stageHash: c.stageHash,
    task: s.ex.task,
    exampleId: s.ex.id,
    prompt: s.ex.prompt,
    completion: s.text,
    parsed: parsed.answer,
    answer: s.ex.answer,
    correct: accuracyReward(s.text, s.ex) === 1,
    formatOk: parsed.ok,
    tokens: s.tokens,
  };
  if (s.ex.task === "pairing") rec.tier = tierOf(s.ex);
  if (s.ex.task === "geolocate") {
    const km = completionDistanceKm(s.text, s.ex);
    rec.km = Number.isFinite(km) ? km : null;
  }
  if (s.ex.qaKind) rec.qaKind = s.ex.qaKind;
  return rec;
}

/** Indices of the `n` worst predictions of one task: wrong ones first, then by distance (geolocation). */
export function worstIndices(recs: PredictionRecord[], n: number): number[] {
  const badness = (r: PredictionRecord) =>
    (r.correct ? 0 : 1e9) + (r.km === undefined ? 0 : r.km === null ? 1e8 : Math.min(r.km, 1e8 - 1));
  return recs.map((r, i) => ({ i, b: badness(r) })).filter((x) => x.b > 0)
    .sort((a, b) => b.b - a.b || a.i - b.i).slice(0, n).map((x) => x.i);
}

/** Whether the answer is the match the think block names (null: it names none, or the format is broken). */
function followsMatch(p: ParsedCompletion): boolean | null {
  const named = p.ok ? statedMatch(p.think!) : null;
  return named === null ? null : p.answer === named;
}

/** The hardest negative tier of a pairing example ("near" beats "climate" beats "far"). */
function tierOf(ex: Example): string {
  const tiers = ex.pairing?.tiers ?? [];
  for (const t of ["near", "climate", "far"] as const) if (tiers.includes(t)) return t;
  return "none";
}

/** Save the ground and aerial views of an example as PNGs (one file name per stage and example). */
async function saveImages(
  c: EvalContext,
  s: Scored,
): Promise<{ groundPng: string | null; aerialPngs: string[] }> {
  const base = `${c.stage}_${s.ex.id}`.replace(/[^A-Za-z0-9_.-]/g, "_");
  let groundPng: string | null = null;
  if (s.ex.ground) {
    await atomicWrite(`${c.samplesDir}/${base}_ground.png`, await encodePng(s.ex.ground));
    groundPng = `${c.samplesRel}/${base}_ground.png`;
  }
  const aerialPngs: string[] = [];
  for (let k = 0; k < s.ex.aerial.length; k++) {
    await atomicWrite(`${c.samplesDir}/${base}_aerial${k}.png`, await encodePng(s.ex.aerial[k]));
    aerialPngs.push(`${c.samplesRel}/${base}_aerial${k}.png`);
  }
  return { groundPng, aerialPngs };
}

async function galleryItem(c: EvalContext, s: Scored): Promise<GalleryItem> {
  const { groundPng, aerialPngs } = await saveImages(c, s);
  return {
    task: s.ex.task,
    exampleId: s.ex.id,
    prompt: s.ex.prompt,
    completion: s.text,
    answer: s.ex.answer,
    correct: accuracyReward(s.text, s.ex) === 1,
    groundPng,
    aerialPngs,
  };
}
