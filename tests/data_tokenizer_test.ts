import { assert, assertEquals, assertThrows } from "./assert.ts";
import { createTokenizer, SPECIAL_TOKENS, tokenizerFromJSON } from "../lib/data/tokenizer.ts";
import { Rng } from "../lib/rng.ts";
import { UserError } from "../lib/errors.ts";

Deno.test("tokenizer: vocabulary is small and fixed by code", () => {
  const t = createTokenizer();
  assert(t.vocabSize < 2000, `vocab ${t.vocabSize}`);
  assertEquals(t.vocabSize, createTokenizer().vocabSize);
  assertEquals(new Set(t.words).size, t.words.length, "no duplicate tokens");
});

Deno.test("tokenizer: printable ASCII and Unicode round-trip", () => {
  const t = createTokenizer();
  const rng = new Rng(1);
  for (let k = 0; k < 300; k++) {
    const n = rng.int(60);
    let s = "";
    for (let i = 0; i < n; i++) s += String.fromCharCode(32 + rng.int(95));
    assertEquals(t.decode(t.encode(s)), s);
  }
  for (
    const s of [
      "",
      " ",
      "  double  spaces ",
      "Côte d'Ivoire, São Tomé and Principe",
      "emoji 🌍 and tabs\tand\nnewlines",
      "north-south north-southx -north- x-ray",
      "<think>a</think><answer>B</answer><answer",
      "48.86, -2.35",
    ]
  ) {
    assertEquals(t.decode(t.encode(s)), s);
  }
});

Deno.test("tokenizer: specials are single tokens; words with a leading space are one token", () => {
  const t = createTokenizer();
  const sp = t.special;
  assertEquals(t.encode("<think>"), [sp.thinkOpen]);
  assertEquals(t.encode("</think>"), [sp.thinkClose]);
  assertEquals(t.encode("<answer>"), [sp.answerOpen]);
  assertEquals(t.encode("</answer>"), [sp.answerClose]);
  assertEquals(new Set(Object.values(sp)).size, 8);
  assertEquals(SPECIAL_TOKENS.length, 8);
  assertEquals(t.encode(" water").length, 1);
  assertEquals(t.encode("water").length, 1);
  assertEquals(t.encode(" north-south").length, 1);
  assertEquals(t.encode(" Europe").length, 1);
  const ids = t.encode("<think>roads run north-south, water to the west.</think><answer>C</answer>");
  assertEquals(ids.length, 14);
  assertEquals(t.decode([sp.bos, ...ids, sp.eos, sp.pad]), t.decode(ids));
});

Deno.test("tokenizer: JSON round trip; a mismatching vocabulary is rejected clearly", () => {
  const t = createTokenizer();
  const j = JSON.parse(JSON.stringify(t.toJSON()));
  assertEquals(tokenizerFromJSON(j).vocabSize, t.vocabSize);
  const bad = { ...j, words: [...j.words] };
  bad.words[5] = "zzz";
  assertThrows(
    () => tokenizerFromJSON(bad),
    (e: Error) => e instanceof UserError && /mismatch at id/.test(e.message),
  );
  assertThrows(
    () => tokenizerFromJSON({ ...j, words: j.words.slice(1), vocabSize: j.vocabSize - 1 }),
    (e: Error) => e instanceof UserError && /vocabSize/.test(e.message),
  );
  assertThrows(() => tokenizerFromJSON({ type: "bpe" }), UserError);
});
