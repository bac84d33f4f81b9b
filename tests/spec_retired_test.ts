/**
 * Retired spec values (lib/spec/retired.ts): a spec asking for a CoT form the data engine no longer writes is
 * refused when it is resolved, naming the origin, the field and the form that remains; the one remaining
 * value, and leaving the field out, are accepted and give the same exemplars.
 */
import { join } from "node:path";
import { assert, assertEquals, assertRejects } from "./assert.ts";
import { EXPERIMENTS_DIR, loadSpec } from "../lib/spec/mod.ts";
import { UserError } from "../lib/errors.ts";
import { createTaskSampler } from "../lib/data/tasks.ts";
import { cli, snapshot } from "./helpers_cli.ts";
import { dataSpec, testWorld, WORLD_SPEC } from "./data_helpers.ts";

const GEO_R1 = join(EXPERIMENTS_DIR, "geo-r1.json");

async function message(sets: string[]): Promise<string> {
  let msg = "";
  await assertRejects(loadSpec(GEO_R1, { preset: "tiny", sets }), (e: unknown) => {
    assert(e instanceof UserError, `expected UserError, got ${e}`);
    assertEquals(e.exitCode, 2);
    msg = e.message;
    return true;
  });
  return msg;
}

Deno.test("a retired CoT order, verdict or marks is refused with the field and the remaining form", async () => {
  assertEquals(
    await message(["data.cot.order=ground-first"]),
    `--set data.cot.order=ground-first: /data/cot/order: "ground-first" is no longer supported ` +
      `(use "candidates-first", or leave it out): pairing exemplars always describe every candidate from ` +
      `its own tile before the ground (docs/RESULTS.md, third and fifth builds)`,
  );
  assertEquals(
    await message(["data.cot.verdict=count"]),
    `--set data.cot.verdict=count: /data/cot/verdict: "count" is no longer supported ` +
      `(use "first-fit", or leave it out): pairing exemplars always give verdicts in letter order up to the ` +
      `match, 'A no, B fits.' (docs/RESULTS.md, fifth and eighth builds)`,
  );
  const fits = await message(["data.cot.verdict=fits"]);
  assert(
    fits.startsWith(`--set data.cot.verdict=fits: /data/cot/verdict: "fits" is no longer supported`),
    fits,
  );
  assertEquals(
    await message(["data.cot.marks=false"]),
    `--set data.cot.marks=false: /data/cot/marks: this field is no longer supported, got false; remove it: ` +
      `candidate lines carry no agreement marks (docs/RESULTS.md, fifth build)`,
  );
  // Two retired values: one line each.
  const both = await message(["data.cot.order=ground-first", "data.cot.marks=true"]);
  assert(both.startsWith("2 problems in the experiment spec:\n"), both);
});

Deno.test("the remaining CoT form, named or left out, resolves and writes the same exemplars", async () => {
  const named = (await loadSpec(GEO_R1, { preset: "tiny" })).spec;
  assertEquals(named.data.cot.order, "candidates-first");
  assertEquals(named.data.cot.verdict, "first-fit");
  const world = await testWorld();
  const cot = { verbosity: 0, noise: 0.05 };
  const a = createTaskSampler(world, dataSpec({ cot: { ...cot, ...named.data.cot } }), WORLD_SPEC, {
    noImages: true,
  });
  const b = createTaskSampler(world, dataSpec({ cot }), WORLD_SPEC, { noImages: true });
  const targets = (s: typeof a) => s.examples("pairing", "test", 0, 20).map((e) => e.target);
  const ta = targets(a);
  assertEquals(targets(b), ta);
  assert(ta.every((t) => /^<think>A: .* [A-D] fits\.<\/think><answer>[A-D]<\/answer>$/.test(t!)), ta[0]);
});

Deno.test("exp with a retired value exits 2 with one line and writes nothing", async () => {
  const dir = await Deno.makeTempDir({ prefix: "geo-r1-retired-" });
  try {
    const before = await snapshot(dir);
    const r = await cli([
      "exp",
      "geo-r1",
      "--preset",
      "tiny",
      "--set",
      "data.cot.order=ground-first",
      "--runs-dir",
      join(dir, "runs"),
      "--cache-dir",
      join(dir, "cache"),
      "--reports-dir",
      join(dir, "reports"),
    ]);
    assertEquals(r.code, 2, r.err);
    const lines = r.err.trim().split("\n");
    assertEquals(lines.length, 1, r.err);
    assert(lines[0].includes('/data/cot/order: "ground-first" is no longer supported'), r.err);
    assertEquals(await snapshot(dir), before);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
