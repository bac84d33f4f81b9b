import { assert, assertEquals, assertNotEquals } from "./assert.ts";
import { createTaskSampler, FAR_MIN_KM, haversineKm, NEAR_MAX_KM, NEAR_MIN_KM } from "../lib/data/tasks.ts";
import {
  buildingsPhrase,
  COMPARABLE_KEYS,
  cuePhrase,
  cueSignature,
  type ViewCues,
} from "../lib/data/cues.ts";
import { extractAnswer } from "../lib/data/cot.ts";
import { createTokenizer } from "../lib/data/tokenizer.ts";
import { type Example, QA_KINDS, TASKS } from "../lib/data/types.ts";
import { Rng } from "../lib/rng.ts";
import { dataSpec, testWorld, WORLD_SPEC } from "./data_helpers.ts";

function sameBytes(a: Example, b: Example): boolean {
  const eq = (x: Uint8Array | undefined, y: Uint8Array | undefined) =>
    x === y || (!!x && !!y && x.length === y.length && x.every((v, i) => v === y[i]));
  return a.id === b.id && a.target === b.target && a.prompt === b.prompt && a.answer === b.answer &&
    eq(a.ground?.data, b.ground?.data) && a.aerial.length === b.aerial.length &&
    a.aerial.every((im, i) => eq(im.data, b.aerial[i].data));
}

Deno.test("tasks: same seeds give the same examples, byte for byte", async () => {
  const world = await testWorld();
  const s1 = createTaskSampler(world, dataSpec(), WORLD_SPEC, { evalSeed: 5 });
  const s2 = createTaskSampler(world, dataSpec(), WORLD_SPEC, { evalSeed: 5 });
  for (const task of TASKS) {
    for (const split of ["train", "test"] as const) {
      for (let i = 0; i < 3; i++) {
        const a = s1.example(task, split, i);
        const b = s2.example(task, split, i);
        assert(sameBytes(a, b), `${task}/${split}/${i}`);
        if (task === "pairing") {
          assertEquals(a.aerial.length, 4);
          assertEquals(a.ground!.width * a.ground!.height, 32 * 128);
          assertEquals(a.aerial[0].width, 32);
        }
      }
    }
  }
  // Another data seed (a replicate): train changes, the test set does not.
  const s3 = createTaskSampler(world, dataSpec({ seed: 12 }), WORLD_SPEC, { evalSeed: 5 });
  assertNotEquals(s3.example("pairing", "train", 0).scene.id, s1.example("pairing", "train", 0).scene.id);
  assert(sameBytes(s3.example("pairing", "test", 0), s1.example("pairing", "test", 0)));
});

Deno.test("tasks: splits are disjoint by region cell; every location of an example is in its split", async () => {
  const world = await testWorld();
  const s = createTaskSampler(world, dataSpec(), WORLD_SPEC, { noImages: true });
  const cells = { train: new Set<string>(), val: new Set<string>(), test: new Set<string>() };
  for (const split of ["train", "val", "test"] as const) {
    for (const e of s.examples("pairing", split, 0, 40)) {
      for (const c of [e.scene, ...e.pairing!.candidates]) {
        assertEquals(s.splitOf(c.lat, c.lon), split);
        cells[split].add(s.regionKey(c.lat, c.lon));
      }
    }
    for (const task of ["geolocate", "geoqa", "caption"] as const) {
      for (const e of s.examples(task, split, 0, 20)) {
        assertEquals(s.splitOf(e.scene.lat, e.scene.lon), split);
        cells[split].add(s.regionKey(e.scene.lat, e.scene.lon));
      }
    }
  }
  for (const k of cells.test) assert(!cells.train.has(k) && !cells.val.has(k), `cell ${k} shared`);
  for (const k of cells.val) assert(!cells.train.has(k), `cell ${k} shared`);
  // The split of a cell depends on the world seed only (not on the data seed).
  const other = createTaskSampler(world, dataSpec({ seed: 99 }), WORLD_SPEC, { noImages: true });
  for (const k of [...cells.train, ...cells.test]) assertEquals(other.splitOfKey(k), s.splitOfKey(k));
  // Fractions of cells roughly as specified (over all 5-degree cells).
  const n = { train: 0, val: 0, test: 0 };
  for (let r = 0; r < 36; r++) for (let c = 0; c < 72; c++) n[s.splitOfKey(`r5:${r}:${c}`)]++;
  const total = 36 * 72;
  assert(Math.abs(n.test / total - 0.2) < 0.04 && Math.abs(n.val / total - 0.1) < 0.03, JSON.stringify(n));
});

Deno.test("tasks: pairing negative tiers as specified; test near fraction >= testNearMin", async () => {
  const world = await testWorld();
  const spec = dataSpec();
  const s = createTaskSampler(world, spec, WORLD_SPEC, { noImages: true });
  for (const split of ["train", "test"] as const) {
    let near = 0, negs = 0;
    const pos = [0, 0, 0, 0];
    const N = split === "test" ? 60 : 40;
    for (const e of s.examples("pairing", split, 0, N)) {
      const p = e.pairing!;
      assertEquals(p.candidates.length, 4);
      assertEquals(p.tiers.filter((t) => t === "match").length, 1);
      assertEquals(p.tiers[p.correct], "match");
      assertEquals(p.candidates[p.correct].id, e.scene.id);
      assertEquals(e.answer, String.fromCharCode(65 + p.correct));
      assertEquals(extractAnswer(e.target), e.answer);
      pos[p.correct]++;
      const sig = cueSignature(e.cues!.ground);
      p.tiers.forEach((t, i) => {
        if (t === "match") return;
        const c = p.candidates[i];
        const d = haversineKm(e.scene, c);
        negs++;
        assertNotEquals(cueSignature(e.cues!.candidates![i]), sig, "a negative must differ in some cue");
        if (t === "near") {
          near++;
          assert(d >= NEAR_MIN_KM && d <= NEAR_MAX_KM, `near at ${d} km`);
          assertEquals(c.country, e.scene.country);
          assertEquals(c.style.roofName, e.scene.style.roofName);
        } else if (t === "climate") {
          assertEquals(c.climate, e.scene.climate);
          assert(d > FAR_MIN_KM, `climate at ${d} km`);
        } else {
          assert(d > FAR_MIN_KM, `far at ${d} km`);
        }
      });
      if (split === "test") {
        assert(near / negs >= spec.testNearMin, `prefix near fraction ${near / negs}`);
      }
    }
    if (split === "train") assert(near / negs > 0.15 && near / negs < 0.55, `train near ${near / negs}`);
    assert(pos.every((c) => c > N / 10), `answer positions ${pos}`);
  }
});

/** Every phrase (both styles) the cue phrase functions make of a tile's cues. */
function findPhrases(c: ViewCues): string[] {
  const styles = [0, 1] as const;
  return [
    ...COMPARABLE_KEYS.flatMap((k) => styles.map((st) => cuePhrase(c, k, st))),
    ...styles.map((st) => buildingsPhrase(c, st)),
  ];
}

Deno.test("tasks: geolocate, geoqa, caption answers follow the metadata; all words are in the vocabulary", async () => {
  const world = await testWorld();
  const s = createTaskSampler(world, dataSpec({ cot: { verbosity: 2, noise: 0.3 } }), WORLD_SPEC, {
    noImages: true,
  });
  const tok = createTokenizer();
  const kinds = new Set<string>();
  const texts: string[] = [];
  for (const e of s.examples("geolocate", "train", 0, 30)) {
    assertEquals(
      e.answer,
      `${e.scene.lat.toFixed(2)}, ${e.scene.lon.toFixed(2)}`.replaceAll("-0.00", "0.00"),
    );
    // Targets answer the place prior of the scene's country and climate (whole degrees), CoT and short alike.
    const written = extractAnswer(e.target)!;
    assert(/^-?\d{1,2}, -?\d{1,3}$/.test(written), written);
    assertEquals(extractAnswer(e.targetCot!), written);
    texts.push(e.target, e.targetCot!, e.prompt);
  }
  for (const e of s.examples("geoqa", "train", 0, 60)) {
    kinds.add(e.qaKind!);
    const m = e.scene;
    const want = {
      continent: m.continent,
      country: m.countryName,
      climate: m.climate,
      settlement: m.settlement,
      driving: m.drivingSide,
    }[e.qaKind!];
    assertEquals(e.answer, want);
    assertEquals(extractAnswer(e.target), want);
    texts.push(e.target, e.prompt);
  }
  assertEquals(kinds.size, QA_KINDS.length);
  const variants = new Set<string>();
  for (const e of s.examples("caption", "train", 0, 30)) {
    assertEquals(extractAnswer(e.target), e.answer);
    // Ground captions show the panorama; aerial captions show K tiles and name the one described; aerial
    // finds show K tiles and ask which one shows a cue phrase that exactly one tile's cues produce.
    assertEquals(e.ground === null, e.aerial.length === dataSpec().candidates);
    if (e.ground === null) {
      const describe = e.prompt.match(/^Describe aerial view ([A-Z])\.$/);
      const find = e.prompt.match(/^Which aerial view A, B, C or D shows (.+)\? Answer with the letter\.$/);
      assert(describe || find, e.prompt);
      const pick = (describe ? describe[1] : e.answer).charCodeAt(0) - 65;
      assertEquals(e.cues!.candidates![pick], e.cues!.ground);
      if (find) {
        variants.add("find");
        assertEquals(
          e.target,
          `<think>aerial view ${e.answer} shows ${find[1]}.</think><answer>${e.answer}</answer>`,
        );
        const shows = e.cues!.candidates!.map((c) => findPhrases(c).includes(find[1]));
        assertEquals(shows.filter(Boolean).length, 1, `${e.prompt}: one tile shows the phrase`);
        assert(shows[pick], `${e.prompt}: the answer's tile shows it`);
      } else variants.add("describe");
    } else variants.add("ground");
    texts.push(e.target, e.prompt);
  }
  assertEquals([...variants].sort(), ["describe", "find", "ground"]);
  for (const e of s.examples("pairing", "train", 0, 30)) texts.push(e.target, e.prompt);
  // The control's prompt and think line (its answers: tests/science/scaffold_data_test.ts).
  for (const e of s.examples("control", "train", 0, 10)) texts.push(e.target, e.prompt);
  const unknown = new Set<string>();
  for (const t of texts) {
    for (const w of t.replace(/<\/?(think|answer)>/g, " ").match(/[A-Za-z]+(-[A-Za-z]+)*/g) ?? []) {
      if (tok.encode(" " + w).length !== 1) unknown.add(w);
    }
  }
  assertEquals([...unknown], [], "words outside the closed vocabulary");
});

Deno.test("tasks: sample() draws examples from an Rng deterministically", async () => {
  const world = await testWorld();
  const s = createTaskSampler(world, dataSpec(), WORLD_SPEC, { noImages: true });
  const a = s.sample("caption", "train", 5, new Rng(3)).map((e) => e.id);
  const b = s.sample("caption", "train", 5, new Rng(3)).map((e) => e.id);
  assertEquals(a, b);
  assertEquals(new Set(a).size, 5);
});
