import { assert, assertEquals } from "./assert.ts";
import { createTaskSampler } from "../lib/data/tasks.ts";
import {
  cotRng,
  extractAnswer,
  formatLatLon,
  geolocateCot,
  letter,
  pairingCotDetailed,
  statedMatch,
} from "../lib/data/cot.ts";
import { cueDiffers } from "../lib/data/cues.ts";
import { createTokenizer } from "../lib/data/tokenizer.ts";
import { slotSegmentsFor } from "../lib/model/config.ts";
import { slotSegments } from "../lib/model/vlm.ts";
import { dataSpec, testWorld, WORLD_SPEC } from "./data_helpers.ts";

async function pairingInputs(n: number) {
  const world = await testWorld();
  const s = createTaskSampler(world, dataSpec(), WORLD_SPEC, { noImages: true });
  return [...s.examples("pairing", "train", 0, n / 2), ...s.examples("pairing", "test", 0, n / 2)].map((
    e,
  ) => ({
    ground: e.cues!.ground,
    groundMeta: e.scene,
    candidates: e.cues!.candidates!,
    correct: e.pairing!.correct,
  }));
}

Deno.test("cot: the answer always equals the metadata answer (all verbosities, with noise)", async () => {
  const inputs = await pairingInputs(120);
  let noisy = 0, total = 0;
  for (const [k, input] of inputs.entries()) {
    for (const verbosity of [0, 1, 2]) {
      for (const noise of [0, 0.5, 1]) {
        const r = pairingCotDetailed(input, { verbosity, noise }, cotRng(k, `${verbosity}/${noise}`));
        assertEquals(r.answer, letter(input.correct));
        assertEquals(extractAnswer(r.target), letter(input.correct));
        assertEquals(r.target, `<think>${r.think}</think><answer>${r.answer}</answer>`);
        assertEquals((r.target.match(/<answer>/g) ?? []).length, 1);
        // Every cited cue really differs between the ground and that candidate; the noisy cue is never cited.
        r.cited.forEach((keys, i) => {
          if (i === input.correct) assertEquals(keys, null);
          for (const key of keys ?? []) {
            assert(cueDiffers(input.ground, input.candidates[i], key), `cited ${key} does not differ`);
            // Verbosity 0 describes one eliminating cue with another wrong value (it still differs).
            if (verbosity > 0) assert(key !== r.noisyCue, "the noisy cue must not be cited");
          }
        });
        if (noise === 0) assertEquals(r.noisyCue, null);
        if (noise === 1) {
          total++;
          if (r.noisyCue) noisy++;
        }
      }
    }
  }
  assert(noisy / total > 0.5, `noise=1 flipped a cue in only ${noisy}/${total} exemplars`);
});

Deno.test("cot: deterministic in its seed; wording varies across seeds", async () => {
  const [input] = await pairingInputs(2);
  const a = pairingCotDetailed(input, { verbosity: 1, noise: 0.2 }, cotRng(1, "x")).target;
  const b = pairingCotDetailed(input, { verbosity: 1, noise: 0.2 }, cotRng(1, "x")).target;
  assertEquals(a, b);
  const variants = new Set<string>();
  for (let s = 0; s < 20; s++) {
    variants.add(pairingCotDetailed(input, { verbosity: 1, noise: 0 }, cotRng(s, "x")).target);
  }
  assert(variants.size > 3, `only ${variants.size} variants`);
});

Deno.test("cot: pairing exemplar lengths in tokens: verbosity 0 lists every tile's cues, 2 is the longest prose", async () => {
  const inputs = await pairingInputs(40);
  const tok = createTokenizer();
  const mean = (v: number) =>
    inputs.reduce(
      (s, inp, k) =>
        s + tok.count(pairingCotDetailed(inp, { verbosity: v, noise: 0 }, cotRng(k, "l")).target),
      0,
    ) /
    inputs.length;
  const [m0, m1, m2] = [mean(0), mean(1), mean(2)];
  // Verbosity 0 states every compared cue of every candidate and of the ground (five lines of about 20
  // tokens), so it is longer than the one-sentence-per-candidate prose of verbosity 1.
  assert(m0 >= 90 && m0 <= 150, `verbosity 0: ${m0}`);
  assert(m1 >= 55 && m1 <= 110, `verbosity 1: ${m1}`);
  assert(m2 >= 130 && m2 <= 300 && m2 > m1, `verbosity 2: ${m2}`);
});

Deno.test("cot: a negative that no cue tells apart still yields the metadata answer", async () => {
  const [input] = await pairingInputs(2);
  const clone = { ...input, candidates: input.candidates.map(() => input.ground) };
  for (const verbosity of [0, 1, 2]) {
    const r = pairingCotDetailed(clone, { verbosity, noise: 1 }, cotRng(3, "alike"));
    assertEquals(extractAnswer(r.target), letter(input.correct));
  }
});

Deno.test("cot: geolocation exemplar answers the coordinates", async () => {
  const world = await testWorld();
  const s = createTaskSampler(world, dataSpec(), WORLD_SPEC, { noImages: true });
  for (const e of s.examples("geolocate", "test", 0, 20)) {
    for (const verbosity of [0, 1, 2]) {
      const t = geolocateCot(e.scene, e.cues!.ground, { verbosity, noise: 0.5 }, cotRng(0, e.id));
      assertEquals(extractAnswer(t), formatLatLon(e.scene.lat, e.scene.lon));
    }
  }
  assertEquals(formatLatLon(-0.001, 2.349), "0.00, 2.35");
});

Deno.test("cot: verbosity 0 describes each candidate from its own cues before the ground line", async () => {
  const inputs = await pairingInputs(60);
  let noisyLines = 0;
  for (const [k, input] of inputs.entries()) {
    for (const noise of [0, 1]) {
      const r = pairingCotDetailed(input, { verbosity: 0, noise }, cotRng(k, `cf/${noise}`));
      assertEquals(extractAnswer(r.target), letter(input.correct));
      const groundAt = r.think.search(/(?:ground|ground view|panorama): /);
      assert(groundAt > 0, r.think);
      input.candidates.forEach((c, i) => {
        const m = new RegExp(`(?:^|\\. )${letter(i)}: ([^.]*)\\.`).exec(r.think);
        assert(
          m && m.index < groundAt,
          `candidate ${letter(i)} must be described before the ground: ${r.think}`,
        );
        // The line is the candidate's own description: at noise 0 it names its own vegetation and roads.
        if (noise === 0) {
          assert(m[1].startsWith(`${c.vegetation}, `), `${m[1]} vs ${c.vegetation}`);
          const roads = c.roadAxes.length ? `roads ${c.roadAxes.join(", ")}` : "no roads";
          assert(m[1].includes(roads), `${m[1]} lacks "${roads}"`);
        }
      });
      // Verdicts in letter order up to the match; only the match fits.
      const verdicts = /((?:[A-H] (?:fits|no|alike)(?:, )?)+)\.$/.exec(r.think);
      assert(verdicts, r.think);
      const vs = verdicts[1].split(", ");
      assertEquals(
        vs.map((v) => v[0]),
        input.candidates.slice(0, input.correct + 1).map((_, i) => letter(i)),
      );
      vs.forEach((v, i) => assertEquals(v.endsWith("fits"), i === input.correct, r.think));
      if (r.noisyCue) noisyLines++;
    }
  }
  assert(noisyLines > 20, `noise 1 should alter a negative's line in most exemplars (${noisyLines})`);
});

Deno.test("cot: the ground line resets the candidate slot segment", () => {
  const tok = createTokenizer();
  const slots = slotSegmentsFor(tok, 4);
  const ids = tok.encode("<think>A: forest. D: desert. ground: forest. A fits");
  const { seg } = slotSegments(slots, tok.vocabSize, Int32Array.from(ids), 1, ids.length);
  const at = (w: string, from = 0) => ids.findIndex((id, i) => i >= from && tok.decode([id]).trim() === w);
  const g = at("ground");
  assertEquals(seg[g + 2], 0, "the ground line is about no candidate"); // "ground" ":" " forest"
  assertEquals(seg[at("desert")], 4, "D's line is in slot D");
  assertEquals(seg[at("fits")], 1, "the verdict after A is in slot A");
});

Deno.test("cot: verbosity-0 verdicts stop at the match, so the answer continues the match's slot segment", async () => {
  const inputs = await pairingInputs(60);
  const tok = createTokenizer();
  const slots = slotSegmentsFor(tok, 4);
  for (const [k, input] of inputs.entries()) {
    const r = pairingCotDetailed(input, { verbosity: 0, noise: 0.5 }, cotRng(k, "first-fit"));
    const L = letter(input.correct);
    assertEquals(extractAnswer(r.target), L);
    const line = /((?:[A-H] (?:fits|no|alike)(?:, )?)+)\.$/.exec(r.think);
    assert(line, r.think);
    const vs = line[1].split(", ");
    assertEquals(vs.map((v) => v[0]), input.candidates.slice(0, input.correct + 1).map((_, i) => letter(i)));
    assertEquals(vs[vs.length - 1], `${L} fits`);
    assert(vs.slice(0, -1).every((v) => !v.endsWith("fits")), r.think);
    // The token that predicts the answer letter (<answer>) is in the match's segment.
    const ids = tok.encode(r.target);
    const { seg } = slotSegments(slots, tok.vocabSize, Int32Array.from(ids), 1, ids.length);
    assertEquals(seg[ids.lastIndexOf(tok.special.answerOpen)], input.correct + 1, r.target);
  }
});

Deno.test("cot: statedMatch reads the match from the verbosity-0 verdicts, null where none is named", async () => {
  const inputs = await pairingInputs(40);
  for (const [k, input] of inputs.entries()) {
    const r = pairingCotDetailed(input, { verbosity: 0, noise: 0.5 }, cotRng(k, "named"));
    assertEquals(statedMatch(r.think), letter(input.correct), r.think);
    // The prose of verbosity 1 and 2 writes no verdict word.
    for (const verbosity of [1, 2]) {
      const prose = pairingCotDetailed(input, { verbosity, noise: 0 }, cotRng(k, `named/${verbosity}`));
      assertEquals(statedMatch(prose.think), null, prose.think);
    }
  }
  // Two matches, or none: null. "fits a dry climate" (vegetation prose) is not a verdict.
  assertEquals(statedMatch("A: water left. A fits, B fits."), null);
  assertEquals(statedMatch("A no, B no, C no, D no."), null);
  assertEquals(statedMatch("dense trees fits a wet climate. C fits."), "C");
  assertEquals(statedMatch("ground view: roads ns. B: roads ns, fits. so B."), "B");
});
