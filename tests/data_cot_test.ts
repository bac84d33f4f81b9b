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

Deno.test("cot: completion lengths in tokens grow with verbosity", async () => {
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
  // Verbosity 0 verifies every candidate (its cues up to the first mismatch), so it is not much shorter than 1.
  assert(m0 >= 50 && m0 <= 100, `verbosity 0: ${m0}`);
  assert(m1 >= 55 && m1 <= 110, `verbosity 1: ${m1}`);
  assert(m2 >= 130 && m2 <= 300, `verbosity 2: ${m2}`);
});

Deno.test("cot: verbosity 0 checks every candidate in letter order; only the match fits", async () => {
  const inputs = await pairingInputs(60);
  for (const [k, input] of inputs.entries()) {
    for (const noise of [0, 1]) {
      const r = pairingCotDetailed(input, { verbosity: 0, noise }, cotRng(k, `v0/${noise}`));
      const lines = input.candidates.map((_, i) => {
        const m = new RegExp(`(?:^|\\. )${letter(i)}: ([^.]*)\\.`).exec(r.think);
        assert(m, `no line for ${letter(i)} in: ${r.think}`);
        return m[1];
      });
      lines.forEach((line, i) => {
        const verdict = line.split(", ").at(-1);
        if (i === input.correct) assertEquals(verdict, "fits", r.think);
        else assert(verdict === "no" || verdict === "alike", r.think);
      });
      // Candidates come in letter order.
      const at = input.candidates.map((_, i) => r.think.indexOf(`${letter(i)}: `));
      assertEquals([...at].sort((a, b) => a - b), at);
    }
  }
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

Deno.test("cot: candidates-first describes each candidate from its own cues before the ground line", async () => {
  const inputs = await pairingInputs(60);
  let noisyLines = 0;
  for (const [k, input] of inputs.entries()) {
    for (const noise of [0, 1]) {
      const opts = { verbosity: 0, noise, order: "candidates-first" as const };
      const r = pairingCotDetailed(input, opts, cotRng(k, `cf/${noise}`));
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
      // One verdict per candidate, in letter order; only the match fits.
      const verdicts = /((?:[A-H] (?:fits|no|alike)(?:, )?)+)\.$/.exec(r.think);
      assert(verdicts, r.think);
      const vs = verdicts[1].split(", ");
      assertEquals(vs.map((v) => v[0]), input.candidates.map((_, i) => letter(i)));
      vs.forEach((v, i) => assertEquals(v.endsWith("fits"), i === input.correct, r.think));
      if (r.noisyCue) noisyLines++;
    }
  }
  assert(noisyLines > 20, `noise 1 should alter a negative's line in most exemplars (${noisyLines})`);
});

Deno.test("cot: candidates-first ground line resets the candidate slot segment", () => {
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

Deno.test("cot: count verdicts give each candidate's number of agreeing cues; the match has the most", async () => {
  const inputs = await pairingInputs(80);
  const keys = ["vegetation", "waterSide", "roadAxes", "buildings", "trees", "roadLine"] as const;
  let below = 0;
  for (const [k, input] of inputs.entries()) {
    for (const noise of [0, 1]) {
      const opts = { verbosity: 0, noise, order: "candidates-first" as const, verdict: "count" as const };
      const r = pairingCotDetailed(input, opts, cotRng(k, `count/${noise}`));
      assertEquals(extractAnswer(r.target), letter(input.correct));
      const line = /((?:[A-H] \d(?:, )?)+)\.$/.exec(r.think);
      assert(line, `no count line: ${r.think}`);
      const counts = line[1].split(", ").map((v) => [v[0], Number(v.slice(2))] as const);
      assertEquals(counts.map(([L]) => L), input.candidates.map((_, i) => letter(i)));
      counts.forEach(([, n], i) => {
        // Counted here independently: "buildings" is stated with its roof colour, so a roof that differs
        // makes the buildings cue differ.
        const c = input.candidates[i];
        const agree = keys.filter((key) =>
          !cueDiffers(input.ground, c, key) && !(key === "buildings" && cueDiffers(input.ground, c, "roof"))
        ).length;
        assertEquals(n, agree, r.think);
        if (i !== input.correct && n < keys.length) {
          below++;
        }
      });
      assertEquals(counts[input.correct][1], keys.length, "the match agrees on every cue");
      assert(!/fits|, [A-H] no/.test(r.think), r.think);
    }
  }
  assert(below > 100, `negatives should mostly disagree somewhere (${below})`);
});

Deno.test("cot: agreement marks follow each candidate cue; the match's are all '+'", async () => {
  const inputs = await pairingInputs(60);
  let minus = 0, marked = 0;
  for (const [k, input] of inputs.entries()) {
    for (const noise of [0, 1]) {
      const opts = { verbosity: 0, noise, order: "candidates-first" as const, marks: true };
      const r = pairingCotDetailed(input, opts, cotRng(k, `marks/${noise}`));
      assertEquals(extractAnswer(r.target), letter(input.correct));
      input.candidates.forEach((c, i) => {
        const m = new RegExp(`(?:^|\\. )${letter(i)}: ([^.]*)\\.`).exec(r.think);
        assert(m, r.think);
        // "vegetation+, no water+, roads a, b-, ..." : a mark ends every cue (road axes may hold commas).
        const marks = [...m[1].matchAll(/([+-])(?:,|$)/g)].map((x) => x[1]);
        const expected: string[] = [c.vegetation === input.ground.vegetation ? "+" : "-"];
        expected.push(cueDiffers(input.ground, c, "waterSide") ? "-" : "+");
        assertEquals(marks.slice(0, 2), expected, m[1]);
        assertEquals(m[1].split(/[+-](?:, |$)/).filter(Boolean).length, marks.length, m[1]);
        if (i === input.correct) {
          assert(marks.every((x) => x === "+"), `the match agrees on every cue: ${m[1]}`);
        } else if (firstDiffers(input.ground, c)) assert(marks.includes("-"), `a negative differs: ${m[1]}`);
        minus += marks.filter((x) => x === "-").length;
        marked += marks.length;
      });
      const groundLine = /(?:ground|ground view|panorama): ([^.]*)\./.exec(r.think)!;
      assert(!/[+-](,|$)/.test(groundLine[1]), "the ground line has no marks");
    }
  }
  assert(minus > marked / 5 && minus < marked * 0.8, `${minus} of ${marked} marks are '-'`);
});

/** Whether a candidate differs from the ground on any cue a candidates-first line states. */
function firstDiffers(g: Parameters<typeof cueDiffers>[0], c: Parameters<typeof cueDiffers>[0]): boolean {
  return (["vegetation", "waterSide", "roadAxes", "buildings", "trees", "roof"] as const).some((k) =>
    cueDiffers(g, c, k)
  ) || (c.roadLine !== null && cueDiffers(g, c, "roadLine"));
}

Deno.test("cot: first-fit verdicts stop at the match, so the answer continues the match's slot segment", async () => {
  const inputs = await pairingInputs(60);
  const tok = createTokenizer();
  const slots = slotSegmentsFor(tok, 4);
  for (const [k, input] of inputs.entries()) {
    const opts = {
      verbosity: 0,
      noise: 0.5,
      order: "candidates-first" as const,
      verdict: "first-fit" as const,
    };
    const r = pairingCotDetailed(input, opts, cotRng(k, "first-fit"));
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

Deno.test("cot: statedMatch reads the match from every verbosity-0 form, null where none is named", async () => {
  const inputs = await pairingInputs(40);
  const forms = [
    { order: "ground-first" as const },
    { order: "candidates-first" as const },
    { order: "candidates-first" as const, verdict: "first-fit" as const },
    { order: "candidates-first" as const, marks: true },
  ];
  for (const [k, input] of inputs.entries()) {
    for (const [j, f] of forms.entries()) {
      const r = pairingCotDetailed(input, { verbosity: 0, noise: 0.5, ...f }, cotRng(k, `named/${j}`));
      assertEquals(statedMatch(r.think), letter(input.correct), r.think);
    }
    // The count form and the prose of verbosity 1 and 2 write no verdict word.
    const count = { verbosity: 0, noise: 0, order: "candidates-first" as const, verdict: "count" as const };
    assertEquals(statedMatch(pairingCotDetailed(input, count, cotRng(k, "named/count")).think), null);
  }
  // Two matches, or none: null. "fits a dry climate" (vegetation prose) is not a verdict.
  assertEquals(statedMatch("A: water left. A fits, B fits."), null);
  assertEquals(statedMatch("A no, B no, C no, D no."), null);
  assertEquals(statedMatch("dense trees fits a wet climate. C fits."), "C");
  assertEquals(statedMatch("ground view: roads ns. B: roads ns, fits. so B."), "B");
});
