/** The authors' length and repetition rewards: pure functions, their edges, and completions that game them. */
import { assert, assertEquals, assertThrows } from "../assert.ts";
import type { Example } from "../../lib/data/types.ts";
import type { SceneMeta } from "../../lib/world/types.ts";
import {
  combineRewards,
  lengthReward,
  repeatedNgramShare,
  repetitionReward,
} from "../../lib/reward/rewards.ts";

const PAIR: Example = {
  id: "pairing-test",
  task: "pairing",
  split: "test",
  ground: null,
  aerial: [],
  prompt: "",
  answer: "B",
  scene: {} as SceneMeta,
  target: "",
};
const wrap = (think: string, answer = "B") => `<think>${think}</think><answer>${answer}</answer>`;
const close = (a: number, b: number) => Math.abs(a - b) < 1e-12;

Deno.test("length: 1 at 0 tokens, 0.75 at half of maxTokens, 0.5 at maxTokens and beyond (cosine)", () => {
  const c = { max: 1, min: 0.5, maxTokens: 1024 };
  assertEquals(lengthReward("", PAIR, { tokens: 0, length: c }), 1);
  assert(close(lengthReward("x", PAIR, { tokens: 512, length: c }), 0.75));
  assert(close(lengthReward("x", PAIR, { tokens: 1024, length: c }), 0.5));
  assert(close(lengthReward("x", PAIR, { tokens: 5000, length: c }), 0.5), "clamped beyond maxTokens");
  // cos(pi/4): 0.5 + 0.5 * (1 + 0.7071) / 2
  assert(close(lengthReward("x", PAIR, { tokens: 256, length: c }), 0.5 + 0.25 * (1 + Math.SQRT1_2)));
  // Monotone: shorter is never worth less.
  let prev = Infinity;
  for (let t = 0; t <= 1100; t += 50) {
    const r = lengthReward("x", PAIR, { tokens: t, length: c });
    assert(r <= prev + 1e-15, `not monotone at ${t}`);
    prev = r;
  }
  // Without a token count it counts words; a truncated completion earns 0 like every reward.
  assert(close(lengthReward("a b c d", PAIR, { length: { max: 1, min: 0, maxTokens: 8 } }), 0.5));
  assertEquals(lengthReward(wrap("short"), PAIR, { tokens: 3, truncated: true }), 0);
  assertThrows(() => lengthReward("x", PAIR, { length: { max: 1, min: 0.5, maxTokens: 0 } }), RangeError);
});

Deno.test("repetition: 0 without repeats or under n words, -1 * repeated share, any format", () => {
  assertEquals(repeatedNgramShare([], 6), 0);
  assertEquals(repeatedNgramShare("a b c d e".split(" "), 6), 0, "fewer words than n");
  assertEquals(repeatedNgramShare("a b c d e f".split(" "), 6), 0);
  // 12 identical words: 7 six-grams, 1 distinct.
  const same = Array(12).fill("in");
  assert(close(repeatedNgramShare(same, 6), 1 - 1 / 7));
  assert(close(repetitionReward(same.join(" "), PAIR), -(1 - 1 / 7)));
  // "so in in in in in" degeneration inside a valid completion is penalised the same way.
  const degenerate = wrap("so " + Array(20).fill("in").join(" "));
  assert(repetitionReward(degenerate, PAIR) < -0.5, "degenerate think block");
  assertEquals(repetitionReward(wrap("the roofs are red and the road lines are white"), PAIR), 0);
  // Whitespace does not hide a repeat; n and the penalty come from the options.
  const spaced = "a b  a b\ta b\na b";
  assert(close(repetitionReward(spaced, PAIR, { repetition: { n: 2, maxPenalty: -2 } }), -2 * (1 - 2 / 7)));
  assertEquals(repetitionReward(spaced, PAIR, { repetition: { n: 2, maxPenalty: -1 }, truncated: true }), 0);
  assertThrows(() => repeatedNgramShare(["a"], 0), RangeError);
});

Deno.test("combineRewards: the recipe's four equal weights add accuracy, format, length and repetition", () => {
  const w = { format: 1, accuracy: 1, geodesic: 0, length: 1, repetition: 1 };
  const o = { tokens: 0, length: { max: 1, min: 0.5, maxTokens: 128 }, repetition: { n: 6, maxPenalty: -1 } };
  const right = combineRewards(wrap("b fits"), PAIR, w, o);
  assertEquals(right.parts, { format: 1, accuracy: 1, geodesic: 0, length: 1, repetition: 0 });
  assertEquals(right.total, 3);
  // A wrong letter keeps format and length: the group still prefers the right one by exactly 1.
  assertEquals(combineRewards(wrap("b fits", "C"), PAIR, w, o).total, 2);
  // Malformed text gets length and repetition but no format or accuracy.
  const bad = combineRewards("B", PAIR, w, o);
  assertEquals(bad.parts.format + bad.parts.accuracy, 0);
  assertEquals(bad.total, 1);
});
