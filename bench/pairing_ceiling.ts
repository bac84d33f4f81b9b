/**
 * Pairing ceiling of categorical cue matching: how accurate a pairing model can be that reads each view's
 * cues (lib/data/cues.ts: road axes, water side, buildings, roof, trees, road lines, vegetation) and picks
 * the candidate whose cues agree with the ground's on the most keys (ties broken at random), when each cue
 * of each view is read correctly with probability p and otherwise replaced by a value drawn from that cue's
 * distribution on the test split. p = 1 is perfect perception. Pure data analysis: no model, a few seconds.
 *
 *   deno run -A bench/pairing_ceiling.ts [--n 1000] [--spec experiments/geo-r1.json]
 *
 * Prints one JSON object: the ceiling at several uniform p and at the per-cue accuracies given with
 * `--acc roadAxes=0.4,vegetation=0.6,...` (cues not named use p = 1). This is how we know that the
 * chain-of-thought's cues are enough for the 70% target once perception reads about 3 cues in 4 correctly
 * (docs/RESULTS.md, third and fourth builds).
 * @module
 */
import { parseArgs } from "node:util";
import { loadSpec } from "../lib/spec/mod.ts";
import { createWorld } from "../lib/world/mod.ts";
import { createTaskSampler } from "../lib/data/tasks.ts";
import { COMPARABLE_KEYS, type ViewCues } from "../lib/data/cues.ts";
import { Rng } from "../lib/rng.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    n: { type: "string", default: "1000" },
    spec: { type: "string", default: "experiments/geo-r1.json" },
    acc: { type: "string", default: "" },
    seed: { type: "string", default: "1" },
  },
});
const { spec } = await loadSpec(values.spec!, {});
const world = await createWorld({ seed: spec.world.seed, tileHalfExtent: spec.world.tileHalfExtent });
const sampler = createTaskSampler(world, spec.data, spec.world, { evalSeed: spec.eval.seed, noImages: true });
const exs = sampler.examples("pairing", "test", 0, Number(values.n));

type Key = typeof COMPARABLE_KEYS[number];
const value = (c: ViewCues, k: Key) => (k === "roadAxes" ? c.roadAxes.join("+") : String(c[k]));
const pool = new Map<Key, string[]>(COMPARABLE_KEYS.map((k) => [k, []]));
for (const e of exs) {
  for (const c of e.cues!.candidates!) for (const k of COMPARABLE_KEYS) pool.get(k)!.push(value(c, k));
}

/** Expected accuracy of cue voting when cue k of every view is read correctly with probability acc[k]. */
function ceiling(acc: Record<Key, number>, seed: number): number {
  const rng = new Rng(seed);
  const read = (c: ViewCues, k: Key) => {
    if (rng.next() < acc[k]) return value(c, k);
    const p = pool.get(k)!;
    return p[rng.int(p.length)];
  };
  let hit = 0;
  for (const e of exs) {
    const g = COMPARABLE_KEYS.map((k) => read(e.cues!.ground, k));
    const score = e.cues!.candidates!.map((c) =>
      COMPARABLE_KEYS.reduce((s, k, i) => s + (read(c, k) === g[i] ? 1 : 0), 0)
    );
    const best = Math.max(...score);
    const top = score.flatMap((s, i) => (s === best ? [i] : []));
    if (top[rng.int(top.length)] === e.pairing!.correct) hit++;
  }
  return hit / exs.length;
}

const uniform = (p: number) => Object.fromEntries(COMPARABLE_KEYS.map((k) => [k, p])) as Record<Key, number>;
const given = uniform(1);
for (const kv of values.acc!.split(",").filter(Boolean)) {
  const [k, v] = kv.split("=");
  if (!(COMPARABLE_KEYS as readonly string[]).includes(k) || !(Number(v) >= 0 && Number(v) <= 1)) {
    console.error(`--acc: "${kv}" must be <cue>=<0..1> with cue one of ${COMPARABLE_KEYS.join(", ")}`);
    Deno.exit(2);
  }
  given[k as Key] = Number(v);
}
const seed = Number(values.seed);
console.log(JSON.stringify({
  n: exs.length,
  uniform: Object.fromEntries([1, 0.95, 0.9, 0.8, 0.75, 0.7, 0.6].map((p) => [p, ceiling(uniform(p), seed)])),
  ...(values.acc ? { given: { acc: given, ceiling: ceiling(given, seed) } } : {}),
}));
