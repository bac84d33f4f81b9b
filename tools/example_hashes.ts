/**
 * Fingerprints of the generated data, for refactors of lib/data that must not change a byte: the sha256 of
 * examples 0..n-1 of every task and split (images hashed in place), at the tiny preset, for the geo-r1 and
 * task-sft specs and for CoT verbosity 1 and 2 and noise 0.5. Prints one JSON object, variant/task -> the
 * first 16 hex digits; equal output before and after a change means equal examples (targets, prompts,
 * answers, cues, metadata and pixels).
 *
 *   deno run -A tools/example_hashes.ts [--n 100] [--root DIR] > after.json
 *
 * `--root` imports lib/ and experiments/ of another checkout (e.g. a `git worktree` of the commit before the
 * change, with node_modules linked), so both sides run with this script.
 * @module
 */
import { createHash } from "node:crypto";
import { parseArgs } from "node:util";

const { values: v } = parseArgs({
  args: Deno.args,
  options: { n: { type: "string" }, root: { type: "string" } },
});
const n = Number(v.n ?? 100);
if (!Number.isInteger(n) || n < 1) throw new Error(`--n: expected a positive integer, got ${v.n}`);
const root = v.root ? new URL(`file://${Deno.realPathSync(v.root)}/`) : new URL("../", import.meta.url);
const spec: typeof import("../lib/spec/mod.ts") = await import(new URL("lib/spec/mod.ts", root).href);
const worldMod: typeof import("../lib/world/mod.ts") = await import(new URL("lib/world/mod.ts", root).href);
const tasks: typeof import("../lib/data/tasks.ts") = await import(new URL("lib/data/tasks.ts", root).href);
const types: typeof import("../lib/data/types.ts") = await import(new URL("lib/data/types.ts", root).href);

const VARIANTS: [string, string[]][] = [
  ["geo-r1", []],
  ["task-sft", []],
  ["geo-r1", ["data.cot.verbosity=1"]],
  ["geo-r1", ["data.cot.verbosity=2"]],
  ["geo-r1", ["data.cot.noise=0.5"]],
];
const SPLITS = ["train", "val", "test"] as const;

const sha = (x: Uint8Array | string) => createHash("sha256").update(x).digest("hex");
const out: Record<string, string> = {};
for (const [name, sets] of VARIANTS) {
  const path = new URL(`experiments/${name}.json`, root).pathname;
  const { spec: s } = await spec.loadSpec(path, { preset: "tiny", sets });
  const world = await worldMod.createWorld({ seed: s.world.seed, tileHalfExtent: s.world.tileHalfExtent });
  const sampler = tasks.createTaskSampler(world, s.data, s.world, { evalSeed: s.eval.seed });
  for (const task of types.TASKS) {
    const h = createHash("sha256");
    for (const split of SPLITS) {
      for (const e of sampler.examples(task, split, 0, n)) {
        h.update(JSON.stringify(e, (_k, x) => (x instanceof Uint8Array ? sha(x) : x)));
      }
    }
    out[`${name}${sets.length ? `[${sets.join(",")}]` : ""}/${task}`] = h.digest("hex").slice(0, 16);
  }
}
console.log(JSON.stringify(out, null, 1));
