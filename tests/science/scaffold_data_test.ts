/**
 * The scaffold protocol's data: scaffold exemplars hold one positive pair and no pairing question, negative
 * or answer letter, and every fact they state is the scene's; control examples ask which of K tiles has a
 * climate, with K distinct climates; place priors are spherical means with coarser fallbacks.
 */
import { assert, assertEquals } from "../assert.ts";
import { createTaskSampler } from "../../lib/data/tasks.ts";
import { createTokenizer } from "../../lib/data/tokenizer.ts";
import { extractAnswer } from "../../lib/data/cot.ts";
import { buildPlacePrior, formatPrior, PRIOR_MIN_SAMPLES } from "../../lib/data/place_prior.ts";
import { parseLatLon } from "../../lib/eval/geo.ts";
import { dataSpec, testWorld, WORLD_SPEC } from "../data_helpers.ts";

Deno.test("scaffold: a ground view and its own tile, facts from the metadata, no letter or negative", async () => {
  const world = await testWorld();
  const s = createTaskSampler(world, dataSpec({ cot: { verbosity: 0, noise: 0 } }), WORLD_SPEC, {
    noImages: true,
  });
  const tok = createTokenizer();
  for (const e of s.examples("scaffold", "train", 0, 40)) {
    assertEquals(e.task, "scaffold");
    assertEquals(e.aerial.length, 1, "one aerial view: the ground view's own tile");
    assert(e.ground !== null);
    assertEquals(e.cues!.candidates, [e.cues!.ground], "the tile is the same place");
    assertEquals(e.pairing, undefined, "no candidates, no negatives");
    const think = /<think>([\s\S]*)<\/think>/.exec(e.target)![1];
    const answer = extractAnswer(e.target)!;
    // No multiple choice: no letter answer, no candidate letter, no verdict.
    assert(!/^[A-Z]$/.test(answer), answer);
    assert(!/\b(candidate|fits|matches the ground)\b/.test(e.target), e.target);
    assert(!/(^|[\s,.:])[A-H]([\s,.:]|$)/.test(think), `a candidate letter in ${think}`);
    assert(!/Which aerial view/.test(e.prompt), e.prompt);
    // Facts: country, climate, continent (when regional cues show) and settlement are the scene's.
    const m = e.scene;
    assert(think.includes(m.countryName), `${think} / ${m.countryName}`);
    assert(think.includes(`${m.climate} climate`), think);
    assert(think.includes(m.settlement), think);
    if (e.cues!.ground.roof || e.cues!.ground.roadLine) assert(think.includes(m.continent), think);
    // The answer is a parsable coordinate of the place prior (whole degrees).
    const p = parseLatLon(answer);
    assert(p !== null && Number.isInteger(p.lat) && Number.isInteger(p.lon), answer);
    // Every word is one vocabulary token (no byte fallback) apart from the digits of the coordinate.
    const bytes = tok.encode(e.target.replace(answer, "")).filter((id) => id >= 8 && id < 264);
    const stray = bytes.map((id) => String.fromCharCode(id - 8)).join("");
    assert(/^[\s.,:-]*$/.test(stray), `bytes outside the vocabulary: ${JSON.stringify(stray)}`);
  }
});

Deno.test("control: one ground view, its climate zone as the letter of a fixed list", async () => {
  const world = await testWorld();
  const s = createTaskSampler(world, dataSpec(), WORLD_SPEC, { noImages: true });
  const climates = ["tropical", "arid", "temperate", "continental"];
  const letters = new Set<string>();
  for (const e of s.examples("control", "val", 0, 40)) {
    assertEquals(e.task, "control");
    assert(e.ground !== null && e.aerial.length === 0, `${e.id}: one ground view, no tiles`);
    assertEquals(
      e.prompt,
      "Which climate zone is this place: A tropical, B arid, C temperate or D continental? Answer with the letter.",
    );
    // Polar scenes are never drawn: the four options fit the letters the base writes.
    assert(climates.includes(e.scene.climate), e.scene.climate);
    assertEquals(e.answer, "ABCD"[climates.indexOf(e.scene.climate)]);
    assertEquals(extractAnswer(e.target), e.answer);
    letters.add(e.answer);
  }
  assert(letters.size >= 3, `the right letter varies: ${[...letters]}`);
  // Deterministic in (seed, split, index).
  assertEquals(s.example("control", "val", 3).scene, s.example("control", "val", 3).scene);
});

Deno.test("place prior: spherical mean across the dateline, rounded; coarser levels below the minimum", () => {
  const key = { country: "FJI", climate: "tropical", continent: "Oceania" };
  const across = [179, -179, 179, -179].map((lon) => ({ lat: -17, lon, ...key }));
  const p = buildPlacePrior(across);
  const at = p.at(key);
  assertEquals(at.lat, -17);
  assertEquals(Math.abs(at.lon), 180, "the mean of 179 and -179 is the dateline, not 0");
  assertEquals(formatPrior({ lat: 48, lon: 2 }), "48, 2");
  // A climate cell below PRIOR_MIN_SAMPLES falls back to its country's mean.
  const country = [
    ...Array.from(
      { length: PRIOR_MIN_SAMPLES },
      () => ({ lat: 10, lon: 20, country: "AAA", climate: "arid", continent: "Africa" }),
    ),
    { lat: 30, lon: 20, country: "AAA", climate: "temperate", continent: "Africa" },
  ];
  const q = buildPlacePrior(country);
  assertEquals(q.at({ country: "AAA", climate: "arid", continent: "Africa" }), { lat: 10, lon: 20 });
  const t = q.at({ country: "AAA", climate: "temperate", continent: "Africa" });
  assertEquals(t.lon, 20);
  assert(t.lat > 10 && t.lat < 30, `country mean ${t.lat}`);
  // An unknown country falls back to its continent.
  assertEquals(q.at({ country: "ZZZ", climate: "polar", continent: "Africa" }).lon, 20);
  assertEquals(q.cells, 1);
});

Deno.test("protocol: geo-sft and geo-r1 never train SFT on pairing; task-sft does; GRPO uses the authors' rewards", async () => {
  const { loadSpec } = await import("../../lib/spec/mod.ts");
  for (const name of ["geo-sft", "geo-r1"]) {
    const { spec } = await loadSpec(`experiments/${name}.json`);
    const sft = spec.stages.sft as { tasks: Record<string, number> };
    assertEquals(sft.tasks.pairing ?? 0, 0, `${name}: pairing in SFT`);
    assert((sft.tasks.scaffold ?? 0) > 0, `${name}: no scaffold in SFT`);
  }
  const task = (await loadSpec("experiments/task-sft.json")).spec.stages.sft as {
    tasks: Record<string, number>;
  };
  assert((task.tasks.pairing ?? 0) > 0);
  for (const name of ["geo-r1", "geo-r1-zero"]) {
    const { spec } = await loadSpec(`experiments/${name}.json`);
    const g = spec.stages.grpo as { grpo: { rewards: Record<string, number> } };
    const w = g.grpo.rewards;
    assertEquals([w.accuracy, w.format, w.length, w.repetition], [1, 1, 1, 1], name);
  }
});
