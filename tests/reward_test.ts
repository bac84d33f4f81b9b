/** Rewards: the strict format, per-task accuracy, the geodesic shaping, and completions that must earn 0. */
import { assert, assertEquals } from "./assert.ts";
import type { Example, TaskName } from "../lib/data/types.ts";
import type { SceneMeta } from "../lib/world/types.ts";
import { parseCompletion } from "../lib/reward/parse.ts";
import {
  accuracyReward,
  combineRewards,
  completionDistanceKm,
  formatReward,
  geodesicReward,
  pairingReward,
  REWARD_FUNCTIONS,
  REWARD_NAMES,
} from "../lib/reward/rewards.ts";

function ex(task: TaskName, answer: string, lat = 48.86, lon = 2.35): Example {
  return {
    id: `${task}-test`,
    task,
    split: "test",
    ground: null,
    aerial: [],
    prompt: "",
    answer,
    scene: { lat, lon } as unknown as SceneMeta,
    target: "",
  };
}

const wrap = (answer: string, think = "the roofs are red") =>
  `<think>${think}</think><answer>${answer}</answer>`;
const PAIR = ex("pairing", "B");
const GEO = ex("geolocate", "48.86, 2.35", 48.86, 2.35);
const QA = ex("geoqa", "Europe");
const R = 6371.0088;
const KM_PER_DEG = (R * Math.PI) / 180; // length of one degree of latitude on the sphere

Deno.test("valid completions parse and earn format + accuracy", () => {
  const ok = [
    wrap("B"),
    "<think></think><answer>B</answer>", // empty think is allowed
    "\n  <think>\nstep 1\nstep 2\n</think>\n\n<answer> B </answer>\n",
    "<think>a < b and c > d, <thinking> is not a tag</think> <answer>B</answer>",
  ];
  for (const c of ok) {
    const p = parseCompletion(c);
    assert.ok(p.ok, `${JSON.stringify(c)}: ${p.reason}`);
    assertEquals(p.answer, "B");
    assertEquals(formatReward(c, PAIR), 1);
    assertEquals(accuracyReward(c, PAIR), 1);
    assertEquals(pairingReward(c, PAIR), 1);
  }
  assertEquals(parseCompletion(ok[2]).think, "step 1\nstep 2");
});

Deno.test("adversarial formats earn neither format nor accuracy", () => {
  const bad: Record<string, string> = {
    "empty": "",
    "whitespace": "  \n ",
    "bare letter": "B",
    "answer outside tags": "<think>it is B</think>B",
    "no think block": "<answer>B</answer>",
    "empty answer": "<think>x</think><answer></answer>",
    "blank answer": "<think>x</think><answer>  \n </answer>",
    "two answer blocks": "<think>x</think><answer>A</answer><answer>B</answer>",
    "two answer blocks, spaced": wrap("B") + "\n<answer>B</answer>",
    "two think blocks": "<think>x</think><think>y</think><answer>B</answer>",
    "unclosed answer": "<think>x</think><answer>B",
    "unclosed think": "<think>x<answer>B</answer>",
    "only opening tags": "<think><answer>B",
    "text after </answer>": wrap("B") + " because roofs",
    "stray closer after": wrap("B") + "</answer>",
    "text before <think>": "Sure! " + wrap("B"),
    "text between blocks": "<think>x</think> so <answer>B</answer>",
    "reversed blocks": "<answer>B</answer><think>x</think>",
    "nested think": "<think><think>x</think></think><answer>B</answer>",
    "nested answer": "<think>x</think><answer><answer>B</answer></answer>",
    "answer hidden in think": "<think>x <answer>A</answer></think><answer>B</answer>",
    "think tag inside answer": "<think>x</think><answer>B<think></answer>",
    "upper-case tags": "<THINK>x</THINK><ANSWER>B</ANSWER>",
    "spaced tags": "<think>x</think>< answer >B</ answer >",
    "tag with attribute": '<think>x</think><answer id="1">B</answer>',
  };
  for (const [name, c] of Object.entries(bad)) {
    const p = parseCompletion(c);
    assert.ok(!p.ok, `${name} parsed`);
    assert.ok(p.reason && p.reason.length > 0, `${name}: a reason`);
    assertEquals(p.answer, null);
    for (const e of [PAIR, GEO, QA]) {
      const r = combineRewards(c, e, { format: 1, accuracy: 1, geodesic: 1 });
      assertEquals(r.total, 0, `${name} (${e.task}) earned ${JSON.stringify(r.parts)}`);
    }
  }
});

Deno.test("pairing accuracy is one exact capital letter", () => {
  for (
    const a of [
      "A B C D",
      "A, B, C, or D",
      "ABCD",
      "A or B",
      "B or C",
      "BB",
      "b",
      "B.",
      "(B)",
      "Option B",
      "B!",
      "B C",
    ]
  ) {
    assertEquals(formatReward(wrap(a), PAIR), 1, a);
    assertEquals(accuracyReward(wrap(a), PAIR), 0, `${a} earned accuracy`);
  }
  assertEquals(accuracyReward(wrap("C"), PAIR), 0, "wrong letter");
  assertEquals(accuracyReward(wrap("B"), ex("pairing", " B ")), 1, "canonical answer trimmed");
  assertEquals(geodesicReward(wrap("B"), PAIR), 0, "geodesic is 0 off geolocate");
  assertEquals(pairingReward(wrap("Europe"), QA), 0, "pairingReward only scores pairing");
});

Deno.test("overlong: truncated completions and maxChars earn 0 on every function", () => {
  const c = wrap("B");
  for (const name of REWARD_NAMES) {
    assertEquals(REWARD_FUNCTIONS[name](wrap("48.86, 2.35"), GEO, { truncated: true }), 0, name);
  }
  assertEquals(
    combineRewards(c, PAIR, { format: 1, accuracy: 1, geodesic: 0 }, { truncated: true }).total,
    0,
  );
  assertEquals(formatReward(c, PAIR, { maxChars: c.length }), 1);
  assertEquals(formatReward(c, PAIR, { maxChars: c.length - 1 }), 0);
  assertEquals(accuracyReward(c, PAIR, { maxChars: c.length - 1 }), 0);
  const long = wrap("B", "x".repeat(10_000));
  assertEquals(accuracyReward(long, PAIR, { maxChars: 4096 }), 0);
  assertEquals(accuracyReward(long, PAIR), 1, "no limit by default");
});

Deno.test("geolocate: accuracy within 25 km, geodesic exp(-d / tau), unparseable answers earn 0", () => {
  const tau = 500;
  assertEquals(accuracyReward(wrap("48.86, 2.35"), GEO), 1);
  assertEquals(geodesicReward(wrap("48.86, 2.35"), GEO, { tauKm: tau }), 1);
  // 0.1 degree of latitude north: d = 0.1 * pi / 180 * R = 11.1195 km.
  const d1 = 0.1 * KM_PER_DEG;
  assertEquals(accuracyReward(wrap("48.96, 2.35"), GEO), 1);
  assert.ok(Math.abs(geodesicReward(wrap("48.96, 2.35"), GEO, { tauKm: tau }) - Math.exp(-d1 / tau)) < 1e-9);
  // 1 degree: 111.195 km, outside 25 km but inside a 200 km radius.
  const d2 = 1 * KM_PER_DEG;
  assertEquals(accuracyReward(wrap("49.86, 2.35"), GEO), 0);
  assertEquals(accuracyReward(wrap("49.86, 2.35"), GEO, { accuracyKm: 200 }), 1);
  assert.ok(Math.abs(geodesicReward(wrap("49.86, 2.35"), GEO, { tauKm: tau }) - Math.exp(-d2 / tau)) < 1e-9);
  assert.ok(Math.abs(completionDistanceKm(wrap("49.86, 2.35"), GEO) - d2) < 1e-6);
  for (
    const a of [
      "NaN, 2.35",
      "48.86, NaN",
      "Infinity, 0",
      "91, 2.35",
      "-90.5, 2.35",
      "48.86, 180.01",
      "48.86 2.35",
      "48.86, 2.35, 0",
      "48.86N, 2.35E",
      "4.886e1, 2.35",
      "lat 48.86, lon 2.35",
      "48.86,",
      ", 2.35",
      "",
    ]
  ) {
    const c = wrap(a);
    assertEquals(accuracyReward(c, GEO), 0, a);
    assertEquals(geodesicReward(c, GEO), 0, a);
    assertEquals(completionDistanceKm(c, GEO), Infinity, a);
  }
  // Range edges parse.
  assert.ok(geodesicReward(wrap("-90, 180"), GEO) > 0);
  assert.ok(geodesicReward(wrap("+48.86 ,  -2.35"), GEO) > 0);
  // The truth falls back to the canonical answer when the scene has no valid location.
  const noScene = ex("geolocate", "10, 20", NaN, NaN);
  assertEquals(accuracyReward(wrap("10, 20"), noScene), 1);
  assertEquals(completionDistanceKm("10, 20", GEO), Infinity, "malformed completion");
});

Deno.test("geoqa: exact match up to case and whitespace", () => {
  for (const a of ["Europe", "europe", " EUROPE ", "Europe"]) assertEquals(accuracyReward(wrap(a), QA), 1, a);
  const multi = ex("geoqa", "United  Kingdom");
  assertEquals(accuracyReward(wrap("united kingdom"), multi), 1);
  for (const a of ["Europe.", "Europe or Asia", "Eur", "Asia", "Europe Asia Africa"]) {
    assertEquals(accuracyReward(wrap(a), QA), 0, a);
  }
  assertEquals(accuracyReward(wrap("anything"), ex("caption", "anything")), 0, "caption is never scored");
});

Deno.test("combineRewards: weighted sum, all parts reported, same as the registry", () => {
  const w = { format: 0.5, accuracy: 1, geodesic: 2 };
  const r = combineRewards(wrap("49.86, 2.35"), GEO, w, { tauKm: 100 });
  const geo = Math.exp(-KM_PER_DEG / 100);
  assertEquals(Object.keys(r.parts).sort(), ["accuracy", "format", "geodesic", "length", "repetition"]);
  assertEquals(r.parts.format, 1);
  assertEquals(r.parts.accuracy, 0);
  assert.ok(Math.abs(r.parts.geodesic - geo) < 1e-9);
  assert.ok(Math.abs(r.total - (0.5 + 2 * geo)) < 1e-9);
  const p = combineRewards(wrap("B"), PAIR, { format: 0.2, accuracy: 1, geodesic: 0 });
  assertEquals(p.total, 1.2);
  const completions = [wrap("B"), wrap("C"), wrap("48.9, 2.3"), "B", wrap("Europe"), wrap("A B")];
  for (const c of completions) {
    for (const e of [PAIR, GEO, QA]) {
      const parts = combineRewards(c, e, { format: 1, accuracy: 1, geodesic: 1 }).parts;
      for (const name of REWARD_NAMES) {
        assertEquals(parts[name], REWARD_FUNCTIONS[name](c, e), `${name} ${c}`);
      }
    }
  }
});
