/**
 * Perception probe: how well a checkpoint describes single views. Greedy captions on the test split (ground
 * panoramas and "describe aerial view X" with K tiles), scored per cue clause (roads, water, buildings, road
 * lines, trees, sun, vegetation) by exact clause match against the caption the data engine wrote from metadata.
 *
 *   deno run -A bench/caption_probe.ts cache/stages/<hash>/final
 *
 * Prints {exact, clauseHit} counts and the per-cue accuracy, then a few examples. Used to find that perception
 * (road axes above all) limits pairing accuracy (docs/RESULTS.md, first build).
 */
import { initBackend } from "../lib/backend.ts";
import { loadSpec } from "../lib/spec/mod.ts";
import { createWorld } from "../lib/world/mod.ts";
import { createTaskSampler } from "../lib/data/tasks.ts";
import { createTokenizer } from "../lib/data/tokenizer.ts";
import { loadCheckpoint } from "../lib/model/checkpoint.ts";
import { complete } from "../lib/pipeline/evaluate.ts";
await initBackend("wasm");
const { spec } = await loadSpec("experiments/geo-r1.json", { sets: ["data.cot.verbosity=0"] });
const world = await createWorld({ seed: spec.world.seed, tileHalfExtent: spec.world.tileHalfExtent });
const sampler = createTaskSampler(world, spec.data, spec.world, { evalSeed: spec.eval.seed });
const tok = createTokenizer();
const { model } = await loadCheckpoint(Deno.args[0]);
const exs = sampler.examples("caption", "test", 0, 128);
const g = exs.filter((e) => e.ground), a = exs.filter((e) => !e.ground);
const res = [
  ...await complete(model, tok, g, { temperature: 0, maxNewTokens: 64, seed: 1 }),
  ...await complete(model, tok, a, { temperature: 0, maxNewTokens: 64, seed: 1 }),
];
const clauses = (s: string) =>
  (s.match(/<answer>(.*)<\/answer>/)?.[1] ?? "").split(",").map((x) => x.trim()).filter(Boolean);
const exact = { ground: [0, 0], aerial: [0, 0] };
const clauseHit = { ground: [0, 0], aerial: [0, 0] };
for (const r of res) {
  const v = r.ex.ground ? "ground" : "aerial";
  const want = clauses(r.ex.target), got = clauses(r.text);
  exact[v][1]++;
  if (want.join("|") === got.join("|")) exact[v][0]++;
  for (const w of want) {
    clauseHit[v][1]++;
    if (got.includes(w)) clauseHit[v][0]++;
  }
}
const cat = (c: string) =>
  /roads? run|no roads/.test(c)
    ? "roads"
    : /water/.test(c)
    ? "water"
    : /buildings/.test(c)
    ? "buildings"
    : /road lines/.test(c)
    ? "roadline"
    : /trees/.test(c)
    ? "trees"
    : /sun/.test(c)
    ? "sun"
    : "vegetation";
const per: Record<string, [number, number]> = {};
for (const r of res) {
  const v = r.ex.ground ? "g" : "a";
  const got = clauses(r.text);
  for (const w of clauses(r.ex.target)) {
    const k = `${v}:${cat(w)}`;
    per[k] ??= [0, 0];
    per[k][1]++;
    if (got.includes(w)) per[k][0]++;
  }
}
console.log(JSON.stringify({ exact, clauseHit }));
console.log(Object.entries(per).sort().map(([k, [a, n]]) => `${k} ${(100 * a / n).toFixed(0)}%`).join("  "));
for (const r of [...res.slice(0, 3), ...res.slice(-3)]) {
  console.log(r.ex.prompt, "|", r.ex.answer, "||", r.text);
}
