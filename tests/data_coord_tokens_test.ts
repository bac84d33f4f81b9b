/**
 * Coordinate tokens (`data.coordTokens`, tokenizer type `geo-r1-word-v2`): every string still round-trips,
 * whole degrees and two-digit fractions are one token each, non-canonical numbers fall back to bytes, word
 * ids do not move, the JSON of either type restores its own tokenizer, and what a policy can write with the
 * new tokens parses (or fails to parse) as the answer parser says.
 */
import { join } from "node:path";
import { assert, assertEquals, assertRejects, assertThrows } from "./assert.ts";
import {
  COORD_MAX,
  COORD_MIN,
  COORD_TOKENIZER_TYPE,
  createTokenizer,
  TOKENIZER_TYPE,
  tokenizerFromJSON,
} from "../lib/data/tokenizer.ts";
import { formatLatLon } from "../lib/data/cot.ts";
import { formatPrior } from "../lib/data/place_prior.ts";
import { parseLatLon } from "../lib/eval/geo.ts";
import { parseCompletion } from "../lib/reward/parse.ts";
import { Rng } from "../lib/rng.ts";
import { UserError } from "../lib/errors.ts";
import { EXPERIMENTS_DIR, loadSpec } from "../lib/spec/load.ts";

const coord = createTokenizer({ coords: true });
const plain = createTokenizer();

Deno.test("coord tokens: 361 degrees twice plus 100 fractions after the words; word ids unchanged", () => {
  assertEquals(coord.vocabSize, plain.vocabSize + 2 * (COORD_MAX - COORD_MIN + 1) + 100);
  assertEquals(coord.words, plain.words);
  assertEquals(new Set(coord.coords).size, coord.coords.length);
  for (const w of coord.words) assertEquals(coord.encode(w), plain.encode(w), w);
  const text = "<think>red roofs and white road lines, Europe, temperate.</think><answer>B</answer>";
  assertEquals(coord.encode(text), plain.encode(text));
  assertEquals(createTokenizer({ coords: true }), coord, "memoised per variant");
});

Deno.test("coord tokens: every whole-degree answer is 3 tokens, a two-decimal answer 5, both round-trip", () => {
  for (let lat = -90; lat <= 90; lat++) {
    for (let lon = -180; lon <= 180; lon += 7) {
      const s = formatPrior({ lat, lon });
      const ids = coord.encode(s);
      assertEquals(ids.length, 3, s);
      assertEquals(coord.decode(ids), s);
      assertEquals(ids.map((i) => coord.tokenString(i)), [String(lat), ",", " " + lon]);
    }
  }
  const rng = new Rng(3);
  for (let k = 0; k < 500; k++) {
    const s = formatLatLon(rng.next() * 180 - 90, rng.next() * 360 - 180);
    const ids = coord.encode(s);
    assertEquals(coord.decode(ids), s);
    // "-0.43" has no whole-degree token "-0": its sign and zero are bytes.
    assert(ids.length <= 7, `${s}: ${ids.length} tokens`);
    if (!s.startsWith("-0.") && !s.includes(" -0.")) assertEquals(ids.length, 5, s);
  }
  assertEquals(plain.encode("-12, 130").length, 8);
  assertEquals(plain.encode("12.34, -45.67").length, 13);
});

Deno.test("coord tokens: non-canonical and out-of-range numbers are bytes, never two numbers", () => {
  const bytes = (s: string) => [...s].map((ch) => plain.encode(ch)[0]);
  for (const s of ["-0", "007", "01", "181", "-181", " 1234", "-05", " 00"]) {
    assertEquals(coord.encode(s), bytes(s), s);
  }
  assertEquals(coord.encode(" -90").length, 1);
  assertEquals(coord.encode("180").length, 1);
  assertEquals(coord.encode(".05").length, 1);
  // A fraction is exactly two digits: the dot of ".5" and ".123" is a byte, the digits a number piece.
  assertEquals(coord.encode(".5").map((i) => coord.tokenString(i)), [".", "5"]);
  assertEquals(coord.encode(".123").map((i) => coord.tokenString(i)), [".", "123"]);
  // A digit run of 400 digits is bytes throughout.
  const long = "1".repeat(400);
  assertEquals(coord.encode(long), bytes(long));
  assertEquals(coord.encode("-1.3.4").map((i) => coord.tokenString(i)), ["-1", ".", "3", ".", "4"]);
});

Deno.test("coord tokens: adversarial and random digit-heavy strings round-trip in both tokenizers", () => {
  const fixed = [
    "",
    "-",
    " -",
    "--5",
    "- 5",
    "1.",
    "..05",
    "12.34.56",
    "1111111...",
    "3.11, -1",
    "-1.3.4",
    "<answer>-12, 130</answer>",
    "<think>so in in in</think><answer>0, -180</answer>",
    "\u0000-1\u00002",
    "١٢٣, ４５", // Arabic-Indic and full-width digits are not ASCII digits: bytes
    "x-12 north-south-12 12north",
    "🌍-45.67🌍",
    "  -90 ,  180  ",
  ];
  for (const s of fixed) {
    assertEquals(coord.decode(coord.encode(s)), s, JSON.stringify(s));
    assertEquals(plain.decode(plain.encode(s)), s, JSON.stringify(s));
  }
  const alphabet = [..."0123456789-. ,<>/answerthink", "é", "🌍", "\n"];
  const rng = new Rng(11);
  for (let k = 0; k < 2000; k++) {
    let s = "";
    const n = rng.int(40);
    for (let i = 0; i < n; i++) s += alphabet[rng.int(alphabet.length)];
    assertEquals(coord.decode(coord.encode(s)), s, JSON.stringify(s));
  }
  // Any id sequence decodes to a string that re-encodes to the same text (ids may differ: "12" "3" -> "123").
  for (let k = 0; k < 500; k++) {
    const ids = Array.from({ length: 1 + rng.int(12) }, () => rng.int(coord.vocabSize));
    const s = coord.decode(ids);
    assertEquals(coord.decode(coord.encode(s)), s);
  }
});

Deno.test("coord tokens: what a policy writes with them parses exactly when it is one lat, lon pair", () => {
  const answer = (...tokens: string[]) => {
    const ids = tokens.map((t) => {
      const e = coord.encode(t);
      assertEquals(e.length, 1, t);
      return e[0];
    });
    const text = coord.decode([
      ...coord.encode("<think>Asia, tropical.</think><answer>"),
      ...ids,
      coord.special.answerClose,
    ]);
    const parsed = parseCompletion(text);
    assert(parsed.ok, parsed.reason ?? "");
    return parseLatLon(parsed.answer!);
  };
  assertEquals(answer("-12", ",", " 130"), { lat: -12, lon: 130 });
  assertEquals(answer("12", ".34", ",", " -45", ".67"), { lat: 12.34, lon: -45.67 });
  assertEquals(answer("0", ",", " 0"), { lat: 0, lon: 0 });
  assertEquals(answer("12", " 130"), null, "no comma");
  assertEquals(answer("-12", "-12"), null);
  assertEquals(answer("12", ",", " 130", ",", " 5"), null, "three fields");
  assertEquals(answer("120", ",", " 5"), null, "latitude out of range");
  assertEquals(answer("12", ".34", ".56", ",", " 5"), null);
});

Deno.test("coord tokens: the JSON of either type restores its tokenizer; a wrong one is refused clearly", () => {
  const v2 = JSON.parse(JSON.stringify(coord.toJSON()));
  assertEquals(v2.type, COORD_TOKENIZER_TYPE);
  assertEquals(tokenizerFromJSON(v2), coord);
  const v1 = JSON.parse(JSON.stringify(plain.toJSON()));
  assertEquals(v1.type, TOKENIZER_TYPE);
  assertEquals(v1.coords, undefined);
  assertEquals(tokenizerFromJSON(v1), plain, "a geo-r1-word-v1 checkpoint loads with its byte numbers");
  const refused = (json: unknown, re: RegExp) =>
    assertThrows(() => tokenizerFromJSON(json), (e: Error) => e instanceof UserError && re.test(e.message));
  refused({ ...v2, coords: v2.coords.slice(0, -1) }, /coordinate tokens differ/);
  refused({ ...v2, coords: undefined }, /geo-r1-word-v2.*coords/);
  refused({ ...v1, coords: ["1"] }, /coordinate tokens differ/);
  refused({ ...v2, type: "geo-r1-word-v3" }, /got type "geo-r1-word-v3"/);
});

Deno.test("coord tokens: data.coordTokens is false unless set; a non-boolean names the field", async () => {
  const path = join(EXPERIMENTS_DIR, "geo-sft.json");
  const off = await loadSpec(path);
  assertEquals(off.spec.data.coordTokens, false);
  const on = await loadSpec(path, { sets: ["data.coordTokens=true"] });
  assertEquals(on.spec.data.coordTokens, true);
  assert(on.hash !== off.hash, "the switch is part of the spec hash (and so of every stage's cache key)");
  await assertRejects(
    loadSpec(path, { sets: ["data.coordTokens=yes"] }),
    (e: unknown) => e instanceof UserError && /\/data\/coordTokens/.test((e as Error).message),
  );
});
