/**
 * Control ceiling: how much of the control task (issue 23, item 5: "which climate zone is this ground view:
 * A tropical, B arid, C temperate or D continental?") can be answered from what a ground view shows, and how
 * much from what a checkpoint's cue heads read of it. On the control's test examples (the eval's set):
 * - `trueVegetation`: the best answer from the scene's true vegetation cue alone (the climate most frequent
 *   with that vegetation on `--train` training examples); the world draws vegetation from climate, moisture
 *   and latitude, and forest and grassland grow in both temperate and continental zones;
 * - `trueCues`: the same from every true ground cue (vegetation, trees, buildings, roof, road line, water
 *   side) as one key, backing off to vegetation for keys unseen in training;
 * - `headVegetation` (with a checkpoint whose model has cue heads, model.cueHead): the climate that maximises
 *   sum_v p_head(v) P(climate | v), i.e. an ideal reader of what the ground head saw;
 * - the heads' own vegetation accuracy on these views.
 * Per true climate, the hits of each, so the rows compare with the control's per-climate test counts.
 * `--n` takes the first n test examples (default: the spec's eval.n, the eval's set).
 *
 *   deno run -A bench/control_ceiling.ts [cache/stages/<hash>/final] [--train 4000] [--n 400]
 *
 * Prints one JSON object; docs/RESULTS.md quotes it.
 * @module
 */
import { parseArgs } from "node:util";
import { initBackend } from "../lib/backend.ts";
import { loadSpec } from "../lib/spec/mod.ts";
import { createWorld } from "../lib/world/mod.ts";
import { createTaskSampler } from "../lib/data/tasks.ts";
import { createTokenizer } from "../lib/data/tokenizer.ts";
import { loadCheckpoint } from "../lib/model/checkpoint.ts";
import { collateTrain } from "../lib/model/collate.ts";
import { CUE_GROUP_OFFSETS, CUE_GROUPS } from "../lib/data/cue_labels.ts";
import { CONTROL_CLIMATES } from "../lib/data/prompts.ts";
import type { Example } from "../lib/data/types.ts";

const { values, positionals } = parseArgs({
  args: Deno.args,
  options: { train: { type: "string", default: "4000" }, n: { type: "string" } },
  allowPositionals: true,
});
if (positionals.length > 1) {
  console.error("usage: deno run -A bench/control_ceiling.ts [<checkpoint dir>] [--train 4000] [--n 400]");
  Deno.exit(2);
}
await initBackend("wasm");
const { spec } = await loadSpec("experiments/control.json", {});
const world = await createWorld({ seed: spec.world.seed, tileHalfExtent: spec.world.tileHalfExtent });
const sampler = createTaskSampler(world, spec.data, spec.world, { evalSeed: spec.eval.seed });
const train = sampler.examples("control", "train", 0, Number(values.train));
const test = sampler.examples("control", "test", 0, Number(values.n ?? spec.eval.n));

const C = CONTROL_CLIMATES.length;
const climateOf = (e: Example) => (CONTROL_CLIMATES as readonly string[]).indexOf(e.scene.climate);
const cuesOf = (e: Example) => {
  const g = e.cues?.ground;
  if (!g) throw new Error(`${e.id}: no ground cues`);
  return g;
};
const vegetation = (e: Example) => cuesOf(e).vegetation ?? "none";
const allCues = (e: Example) => {
  const g = cuesOf(e);
  return CUE_GROUPS.map((grp) => g[grp.key] ?? "none").join("|");
};
const argmax = (xs: number[]) => xs.indexOf(Math.max(...xs));

/** Counts of each climate per key on the training examples. */
function table(key: (e: Example) => string): Map<string, number[]> {
  const m = new Map<string, number[]>();
  for (const e of train) {
    const row = m.get(key(e)) ?? new Array(C).fill(0);
    row[climateOf(e)]++;
    m.set(key(e), row);
  }
  return m;
}
const byVeg = table(vegetation);
const byCues = table(allCues);
const vegClimate = (v: string) => byVeg.get(v) ?? new Array(C).fill(0);

type Hits = { hits: number[]; n: number[] };
const newHits = (): Hits => ({ hits: new Array(C).fill(0), n: new Array(C).fill(0) });
const rows: Record<string, Hits> = { trueVegetation: newHits(), trueCues: newHits() };
const score = (name: string, truth: number, guess: number) => {
  const h = rows[name] ??= newHits();
  h.n[truth]++;
  if (guess === truth) h.hits[truth]++;
};
for (const e of test) {
  const y = climateOf(e);
  score("trueVegetation", y, argmax(vegClimate(vegetation(e))));
  const c = byCues.get(allCues(e));
  score("trueCues", y, argmax(c && c.reduce((a, b) => a + b, 0) >= 3 ? c : vegClimate(vegetation(e))));
}

let headVegPct: number | null = null;
if (positionals.length === 1) {
  const tok = createTokenizer();
  const { model } = await loadCheckpoint(positionals[0]);
  if (!model.tokenLogProbsAndCues || !model.config.cueHead) {
    console.error(`${positionals[0]}: the model has no cue heads (model.cueHead)`);
    Deno.exit(2);
  }
  const j = CUE_GROUPS.findIndex((g) => g.key === "vegetation");
  const classes = CUE_GROUPS[j].classes;
  let vegRight = 0;
  for (let i = 0; i < test.length; i += 16) {
    const part = test.slice(i, i + 16);
    const b = collateTrain(part, tok, model.config);
    const r = model.tokenLogProbsAndCues(b.input);
    const ground = r.ground!.arraySync() as number[][];
    part.forEach((e, bi) => {
      const z = ground[bi].slice(CUE_GROUP_OFFSETS[j], CUE_GROUP_OFFSETS[j] + classes.length);
      const m = Math.max(...z);
      const ez = z.map((x) => Math.exp(x - m));
      const s = ez.reduce((a, x) => a + x, 0);
      const p = ez.map((x) => x / s);
      if (classes[argmax(p)] === vegetation(e)) vegRight++;
      const post = new Array(C).fill(0);
      classes.forEach((v, k) => {
        const counts = vegClimate(v);
        const tot = counts.reduce((a, x) => a + x, 0);
        if (tot > 0) counts.forEach((cnt, c) => (post[c] += (p[k] * cnt) / tot));
      });
      score("headVegetation", climateOf(e), argmax(post));
    });
    for (const x of [r.logp, r.ground, r.aerial]) x?.dispose();
    b.dispose();
  }
  headVegPct = Math.round((1000 * vegRight) / test.length) / 10;
}

const pct = (a: number, n: number) => Math.round((1000 * a) / Math.max(1, n)) / 10;
console.log(JSON.stringify({
  checkpoint: positionals[0] ?? null,
  trainExamples: train.length,
  testExamples: test.length,
  vegetationByClimateOnTrain: Object.fromEntries([...byVeg].map(([v, c]) => [v, c])),
  headVegetationAccuracyPct: headVegPct,
  ceilings: Object.fromEntries(
    Object.entries(rows).map(([k, h]) => [k, {
      accuracyPct: pct(h.hits.reduce((a, b) => a + b, 0), h.n.reduce((a, b) => a + b, 0)),
      perClimate: Object.fromEntries(CONTROL_CLIMATES.map((c, i) => [c, `${h.hits[i]} of ${h.n[i]}`])),
    }]),
  ),
}));
