/**
 * Model tests (tiny preset, wasm): forward conventions, padding invariance, KV-cache generation vs
 * recompute-from-scratch, sampling determinism, collate, no tensor leaks.
 *
 * KV-vs-recompute tolerance: max |logit difference| <= 1e-4 over every decoding step, with weights scaled
 * up so that logits span several units (differences seen: ~1e-6).
 */
import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, assertThrows } from "./assert.ts";
import { CharTokenizer, groundExample, pairingExample, testConfig, useWasm } from "./helpers_model.ts";
import { CUE_OUTPUTS } from "../lib/data/cue_labels.ts";
import { createModel, type TfVLM } from "../lib/model/vlm.ts";
import { collateCompletions, collatePrompts, collateTrain, disposeInput } from "../lib/model/collate.ts";
import {
  flopsPerToken,
  imagePrefixLen,
  makeModelConfig,
  paramCount,
  slotSegmentsFor,
} from "../lib/model/config.ts";
import type { GenerateOptions } from "../lib/model/types.ts";

await useWasm();
const tok = new CharTokenizer();
const STOP = tok.special.answerClose;

/** Scale weight matrices so logits are O(1..10) and cache/recompute mismatches would show. */
function sharpen(m: TfVLM, factor = 12): void {
  tf.tidy(() => {
    for (const [name, v] of m.namedParams()) {
      if (v.rank >= 2 && !name.startsWith("vis.patch")) v.assign(v.mul(factor));
    }
  });
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assertEquals(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

const greedy = (o: Partial<GenerateOptions> = {}): GenerateOptions => ({
  groupSize: 2,
  maxNewTokens: 10,
  temperature: 0,
  topP: 1,
  seed: 7,
  stopIds: [STOP],
  returnLogits: true,
  ...o,
});

Deno.test("config: presets, validation, FLOPs and parameter count", () => {
  const geom = {
    vocabSize: 100,
    groundShape: [32, 128] as [number, number],
    aerialSize: 32,
    maxCandidates: 4,
  };
  const small = makeModelConfig({ preset: "small", seed: 1 }, geom);
  assertEquals([small.dModel, small.nLayers, small.nHeads, small.dFF], [128, 3, 4, 512]);
  // 16 ground strips + 4 tiles x 16 polar sectors.
  assertEquals(imagePrefixLen(small, true, 4), 80);
  assertEquals(imagePrefixLen(small, false, 2), 32);
  const large = makeModelConfig({ preset: "large", seed: 1, nLayers: 2 }, geom);
  assertEquals(large.nLayers, 2);
  assertThrows(() => makeModelConfig({ preset: "small", seed: 1, nHeads: 5 }, geom), /nHeads/);
  // 3 layers * 2*(4*128^2 + 2*128*512) + 4*L*128*3 + 2*128*100
  assertEquals(
    flopsPerToken(small, 100),
    3 * (2 * (4 * 128 * 128 + 2 * 128 * 512) + 4 * 100 * 128) + 2 * 128 * 100,
  );
  const m = createModel(testConfig("tiny"));
  const n = m.trainable().reduce((s, v) => s + v.size, 0);
  assertEquals(n, paramCount(m.config));
  m.dispose();
});

Deno.test("init is deterministic in the seed", async () => {
  const a = createModel(testConfig("tiny", 5)), b = createModel(testConfig("tiny", 5));
  const c = createModel(testConfig("tiny", 6));
  const w = (m: TfVLM) => m.namedParams().find(([n]) => n === "dec.layers.0.attn.qkv.w")![1].dataSync();
  assertEquals(maxAbsDiff(w(a), w(b)), 0);
  assert(maxAbsDiff(w(a), w(c)) > 0);
  for (const m of [a, b, c]) m.dispose();
  await Promise.resolve();
});

Deno.test("collate: layout, padding, loss mask, errors", () => {
  const cfg = testConfig("tiny");
  const exs = [pairingExample(1, 4, 2), pairingExample(2, 4, 6)];
  const b = collateTrain(exs, tok, cfg);
  const [B, T] = b.input.ids.shape;
  assertEquals(B, 2);
  assertEquals(b.input.aerial!.shape, [2, 4, 32, 32, 3]);
  assertEquals(b.input.ground!.shape, [2, 32, 128, 3]);
  const ids = b.input.ids.arraySync(), attn = b.input.attn.arraySync(), mask = b.lossMask.arraySync();
  for (let r = 0; r < 2; r++) {
    const p = [tok.special.bos, ...tok.encode(exs[r].prompt)];
    const t = tok.encode(exs[r].target);
    assertEquals(ids[r].slice(b.promptLen - p.length, b.promptLen), p);
    assertEquals(ids[r].slice(b.promptLen, b.promptLen + t.length), t);
    assertEquals(t[t.length - 1], STOP);
    assertEquals(attn[r].reduce((a, x) => a + x, 0), p.length + t.length);
    assertEquals(mask[r].reduce((a, x) => a + x, 0), t.length);
    assertEquals(mask[r].slice(0, b.promptLen).every((x) => x === 0), true);
  }
  assert(T >= b.promptLen);
  const px = b.input.ground!.max().dataSync()[0];
  assert(px <= 1 && px > 0.5);
  b.dispose();
  assertThrows(() => collateTrain([pairingExample(1), groundExample(2)], tok, cfg), /mixed task layouts/);
  const bad = pairingExample(3);
  bad.ground = { width: 64, height: 32, data: new Uint8Array(64 * 32 * 3) };
  assertThrows(() => collateTrain([bad], tok, cfg), /ground image of pairing\/test\/3 is 64x32/);
  const g = collateCompletions(exs, [[10, 11, STOP], [12], [13, 14], []], tok, cfg, 2);
  assertEquals(g.input.ids.shape[0], 4);
  assertEquals(g.lossMask.sum(1).arraySync(), [3, 1, 2, 0]);
  assertEquals(g.input.aerial!.shape[0], 4);
  g.dispose();
});

Deno.test("tokenLogProbs at a temperature is logSoftmax(logits / T), in both GRPO entry points", () => {
  const cfg = testConfig("tiny", 3);
  const m = createModel(cfg);
  sharpen(m, 4);
  const b = collateTrain([pairingExample(11, 4, 1), pairingExample(12, 4, 7)], tok, cfg);
  const lg = m.logits(b.input);
  const ids = b.input.ids.arraySync();
  for (const T of [0.5, 0.7, 2]) {
    const ls = tf.tidy(() => tf.logSoftmax(lg.div(T)).arraySync() as number[][][]);
    const ref = ids.flatMap((row, r) => row.map((id, t) => (t === 0 ? 0 : ls[r][t - 1][id])));
    const lp = m.tokenLogProbs(b.input, false, T);
    const both = m.tokenLogProbsAndEntropy(b.input, true, T);
    assert(maxAbsDiff(lp.dataSync(), ref) < 1e-5, `T=${T}`);
    assert(maxAbsDiff(both.logp.dataSync(), ref) < 1e-5, `T=${T} (with entropy)`);
    for (const t of [lp, both.logp, both.entropy]) t.dispose();
  }
  // The default is T = 1 and differs from T = 0.5 (the scaling is applied, not ignored).
  const one = m.tokenLogProbs(b.input), half = m.tokenLogProbs(b.input, false, 0.5);
  assert(maxAbsDiff(one.dataSync(), half.dataSync()) > 1e-2);
  assertThrows(() => m.tokenLogProbs(b.input, false, 0), RangeError, "temperature");
  for (const t of [lg, one, half]) t.dispose();
  b.dispose();
  m.dispose();
});

Deno.test("tokenLogProbs matches logSoftmax of logits; padding does not change a row", () => {
  const cfg = testConfig("tiny", 3);
  const m = createModel(cfg);
  sharpen(m, 4);
  const exs = [pairingExample(11, 4, 1), pairingExample(12, 4, 7)];
  const b = collateTrain(exs, tok, cfg);
  const lp = m.tokenLogProbs(b.input);
  const lg = m.logits(b.input);
  const ref = tf.tidy(() => {
    const ls = tf.logSoftmax(lg).arraySync() as number[][][];
    const ids = b.input.ids.arraySync();
    return ids.map((row, r) => row.map((id, t) => (t === 0 ? 0 : ls[r][t - 1][id])));
  });
  assert(maxAbsDiff(lp.dataSync(), ref.flat()) < 1e-5);
  const h = m.tokenEntropy(b.input);
  assert(h.min().dataSync()[0] >= -1e-5);
  assertEquals(h.shape, lp.shape);
  // Row 0 (short prompt, left-padded in the batch) alone gives the same completion log-probs.
  const solo = collateTrain([exs[0]], tok, cfg);
  const lpSolo = m.tokenLogProbs(solo.input);
  const nComp = solo.lossMask.sum().dataSync()[0];
  const a = lp.slice([0, b.promptLen], [1, nComp]).dataSync();
  const s = lpSolo.slice([0, solo.promptLen], [1, nComp]).dataSync();
  assert(maxAbsDiff(a, s) < 1e-4, `padding changed log-probs by ${maxAbsDiff(a, s)}`);
  for (const t of [lp, lg, h, lpSolo]) t.dispose();
  b.dispose();
  solo.dispose();
  m.dispose();
});

Deno.test("KV-cache generation equals recompute-from-scratch (logits within 1e-4, same greedy tokens)", async () => {
  for (
    const [cfg, make] of [
      [testConfig("tiny", 3), (s: number) => pairingExample(s, 4, 1 + (s % 5))],
      [testConfig("tiny", 9), (s: number) => groundExample(s)],
      // Candidate-slot segments: the decoder's segment state (host or device) must follow the forward's.
      [
        { ...testConfig("tiny", 6), slots: slotSegmentsFor(tok, 4) },
        (s: number) => pairingExample(s, 4, 2 + (s % 3)),
      ],
      // Cue-conditioned text: the decoder adds each row's ground and segment cue embeddings per step.
      [
        {
          ...testConfig("tiny", 8),
          slots: slotSegmentsFor(tok, 4),
          cueHead: CUE_OUTPUTS,
          cueText: true,
          cueMatch: true,
        },
        (s: number) => pairingExample(s, 4, 2 + (s % 3)),
      ],
    ] as const
  ) {
    const m = createModel(cfg);
    sharpen(m);
    const prompt = collatePrompts([make(21), make(22), make(23)], tok, cfg);
    const kv = await m.generate(prompt, greedy({ groupSize: 2, maxNewTokens: 12, readbackEvery: 3 }));
    const re = await m.generate(
      prompt,
      greedy({ groupSize: 2, maxNewTokens: 12, readbackEvery: 3, useCache: false }),
    );
    assertEquals(kv.completions, re.completions);
    assertEquals(kv.truncated, re.truncated);
    assertEquals(kv.stepLogits!.length, re.stepLogits!.length);
    let worst = 0, scale = 0;
    for (let s = 0; s < kv.stepLogits!.length; s++) {
      worst = Math.max(worst, maxAbsDiff(kv.stepLogits![s], re.stepLogits![s]));
      for (const x of re.stepLogits![s]) scale = Math.max(scale, Math.abs(x));
    }
    assert(scale > 1, `logits too flat to be a meaningful check (max ${scale})`);
    assert(worst <= 1e-4, `KV vs recompute max abs logit diff ${worst}`);
    // Group-contiguous: greedy samples of one prompt are identical.
    assertEquals(kv.completions[0], kv.completions[1]);
    disposeInput(prompt);
    m.dispose();
  }
});

Deno.test("generated tokens' log-probs equal the training forward's (GRPO old-logp consistency)", async () => {
  const cfg = testConfig("tiny", 4);
  const m = createModel(cfg);
  sharpen(m, 6);
  const exs = [pairingExample(31, 4, 2), pairingExample(32, 4, 5)];
  const prompt = collatePrompts(exs, tok, cfg);
  const r = await m.generate(prompt, { ...greedy(), temperature: 1, topP: 1, groupSize: 2, maxNewTokens: 8 });
  const batch = collateCompletions(exs, r.completions, tok, cfg, 2);
  const lp = m.tokenLogProbs(batch.input).arraySync();
  for (let row = 0; row < 4; row++) {
    const c = r.completions[row];
    for (let s = 0; s < c.length; s++) {
      const logits = r.stepLogits![s].subarray(row * cfg.vocabSize, (row + 1) * cfg.vocabSize);
      const mx = Math.max(...logits);
      const lse = mx + Math.log(logits.reduce((a, x) => a + Math.exp(x - mx), 0));
      const want = logits[c[s]] - lse;
      assert(Math.abs(lp[row][batch.promptLen + s] - want) < 1e-4, `row ${row} step ${s}`);
    }
  }
  batch.dispose();
  disposeInput(prompt);
  m.dispose();
});

Deno.test("sampling: seeded, reproducible, top-p -> 0 is greedy, stop ids end rows, no leaks", async () => {
  const cfg = testConfig("tiny", 5);
  const m = createModel(cfg);
  sharpen(m, 3);
  const prompt = collatePrompts([pairingExample(41), pairingExample(42)], tok, cfg);
  const opts = { groupSize: 4, maxNewTokens: 16, temperature: 1, topP: 0.9, seed: 11, stopIds: [STOP] };
  // The first call builds the model's polar sampling tables (two tensors it keeps until dispose()).
  const a = await m.generate(prompt, opts);
  const before = tf.memory().numTensors;
  const b = await m.generate(prompt, opts);
  const c = await m.generate(prompt, { ...opts, seed: 12 });
  assertEquals(tf.memory().numTensors, before);
  assertEquals(a, b);
  assert(JSON.stringify(a) !== JSON.stringify(c));
  assertEquals(a.completions.length, 8);
  for (let i = 0; i < 8; i++) {
    const row = a.completions[i];
    assert(row.length >= 1 && row.length <= 16);
    assertEquals(a.truncated[i], !row.includes(STOP));
    if (row.includes(STOP)) assertEquals(row.indexOf(STOP), row.length - 1);
  }
  const g = await m.generate(prompt, { ...opts, temperature: 0 });
  const p0 = await m.generate(prompt, { ...opts, topP: 1e-6 });
  assertEquals(p0.completions, g.completions);
  // A stop id that greedy decoding emits first ends every row there.
  const first = g.completions[0][0];
  const s = await m.generate(prompt, { ...opts, temperature: 0, stopIds: [first], readbackEvery: 1 });
  assertEquals(s.completions[0], [first]);
  assertEquals(s.truncated[0], false);
  assertEquals(tf.memory().numTensors, before);
  await assertRejectsMsg(() => m.generate(prompt, { ...opts, maxNewTokens: cfg.maxText }), /exceeds maxText/);
  disposeInput(prompt);
  m.dispose();
});

async function assertRejectsMsg(f: () => Promise<unknown>, re: RegExp): Promise<void> {
  try {
    await f();
  } catch (e) {
    assert(re.test((e as Error).message), (e as Error).message);
    return;
  }
  throw new Error("expected a rejection");
}

Deno.test("cloneFrozen: same outputs, no trainable variables, independent of later updates", () => {
  const cfg = testConfig("tiny", 8);
  const m = createModel(cfg);
  const f = m.cloneFrozen();
  assertEquals(f.trainable().length, 0);
  const b = collateTrain([groundExample(1), groundExample(2)], tok, cfg);
  const x = m.tokenLogProbs(b.input), y = f.tokenLogProbs(b.input);
  assertEquals(maxAbsDiff(x.dataSync(), y.dataSync()), 0);
  tf.tidy(() => m.trainable()[0].assign(m.trainable()[0].add(1)));
  const z = f.tokenLogProbs(b.input);
  assertEquals(maxAbsDiff(y.dataSync(), z.dataSync()), 0);
  for (const t of [x, y, z]) t.dispose();
  b.dispose();
  f.dispose();
  m.dispose();
});
