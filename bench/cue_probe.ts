/**
 * Cue-head probe: what a checkpoint's cue heads (model.cueHead, docs/MODEL.md) read from the views, and
 * how well an ideal matcher on their probabilities would pair. On test pairing examples (ground + K tiles):
 * - per-cue accuracy of the heads for ground and aerial views (road axes: the exact set; groups: argmax);
 * - pairing accuracy of picking the tile whose cue distribution agrees most with the ground's: the sum over
 *   groups of log sum_c p_tile(c) p_ground(c), plus per road axis log P(both say the same). No language model
 *   is involved, so this is the pairing a decoder could reach by comparing what the heads saw; the gap to
 *   the model's own pairing accuracy is what its reasoning loses.
 *
 *   deno run -A bench/cue_probe.ts cache/stages/<hash>/final [--n 400]
 *
 * Prints one JSON object. docs/RESULTS.md (fourth build) quotes it.
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
import { CUE_GROUP_OFFSETS, CUE_GROUPS, CUE_ROAD_OUTPUTS, cueBatchTargets } from "../lib/data/cue_labels.ts";

const { values, positionals } = parseArgs({
  args: Deno.args,
  options: { n: { type: "string", default: "400" } },
  allowPositionals: true,
});
if (positionals.length !== 1) {
  console.error("usage: deno run -A bench/cue_probe.ts <checkpoint dir> [--n 400]");
  Deno.exit(2);
}
await initBackend("wasm");
const { spec } = await loadSpec("experiments/geo-r1.json", {});
const world = await createWorld({ seed: spec.world.seed, tileHalfExtent: spec.world.tileHalfExtent });
const sampler = createTaskSampler(world, spec.data, spec.world, { evalSeed: spec.eval.seed });
const tok = createTokenizer();
const { model } = await loadCheckpoint(positionals[0]);
if (!model.tokenLogProbsAndCues || !model.config.cueHead) {
  console.error(`${positionals[0]}: the model has no cue heads (model.cueHead)`);
  Deno.exit(2);
}
const exs = sampler.examples("pairing", "test", 0, Number(values.n));
const G = CUE_GROUPS.length;

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));
function softmax(r: number[]): number[] {
  const m = Math.max(...r);
  const e = r.map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}
function probs(row: number[]): { roads: number[]; groups: number[][] } {
  return {
    roads: row.slice(0, CUE_ROAD_OUTPUTS).map(sigmoid),
    groups: CUE_GROUPS.map((g, j) =>
      softmax(row.slice(CUE_GROUP_OFFSETS[j], CUE_GROUP_OFFSETS[j] + g.classes.length))
    ),
  };
}
const argmax = (xs: number[]) => xs.indexOf(Math.max(...xs));

const hits: Record<string, [number, number]> = {};
const count = (key: string, ok: boolean) => {
  const h = hits[key] ??= [0, 0];
  h[0] += ok ? 1 : 0;
  h[1]++;
};
let paired = 0;
for (let i = 0; i < exs.length; i += 16) {
  const part = exs.slice(i, i + 16);
  const b = collateTrain(part, tok, model.config);
  const r = model.tokenLogProbsAndCues(b.input);
  const t = cueBatchTargets(part);
  const rows = { ground: r.ground!.arraySync() as number[][], aerial: r.aerial!.arraySync() as number[][] };
  for (const view of ["ground", "aerial"] as const) {
    const tt = t[view]!;
    rows[view].forEach((row, v) => {
      const roads = row.slice(0, CUE_ROAD_OUTPUTS).every((z, j) =>
        (z > 0 ? 1 : 0) === tt.roads[v * CUE_ROAD_OUTPUTS + j]
      );
      count(`${view}/roadAxes`, roads);
      CUE_GROUPS.forEach((g, j) => {
        const sl = row.slice(CUE_GROUP_OFFSETS[j], CUE_GROUP_OFFSETS[j] + g.classes.length);
        count(`${view}/${g.key}`, argmax(sl) === tt.classes[v * G + j]);
      });
    });
  }
  const K = part[0].aerial.length;
  part.forEach((e, bi) => {
    const g = probs(rows.ground[bi]);
    const score = Array.from({ length: K }, (_, k) => {
      const a = probs(rows.aerial[bi * K + k]);
      let s = 0;
      a.roads.forEach((p, j) => (s += Math.log(p * g.roads[j] + (1 - p) * (1 - g.roads[j]) + 1e-9)));
      a.groups.forEach((
        pa,
        j,
      ) => (s += Math.log(pa.reduce((acc, p, c) => acc + p * g.groups[j][c], 0) + 1e-9)));
      return s;
    });
    if (argmax(score) === e.pairing!.correct) paired++;
  });
  for (const x of [r.logp, r.ground, r.aerial]) x?.dispose();
  b.dispose();
}
const pct = (a: number, n: number) => Math.round((1000 * a) / n) / 10;
console.log(JSON.stringify({
  checkpoint: positionals[0],
  n: exs.length,
  idealMatcherPairingPct: pct(paired, exs.length),
  headAccuracyPct: Object.fromEntries(Object.entries(hits).map(([k, [a, n]]) => [k, pct(a, n)])),
}));
