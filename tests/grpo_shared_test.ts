import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, assertThrows } from "./assert.ts";
import { initBackend } from "../lib/backend.ts";
import { createModel } from "../lib/model/vlm.ts";
import { collateCompletions } from "../lib/model/collate.ts";
import type { ModelConfig } from "../lib/model/types.ts";
import { createTokenizer } from "../lib/data/tokenizer.ts";
import { createWorld } from "../lib/world/mod.ts";
import { createTaskSampler } from "../lib/data/tasks.ts";
import { loadSpec } from "../lib/spec/mod.ts";
import { modelConfigForSpec } from "../lib/model/config.ts";
import { Rng } from "../lib/rng.ts";

await initBackend("wasm");
const tok = createTokenizer();
const { spec } = await loadSpec(new URL("../experiments/geo-r1.json", import.meta.url).pathname, {
  preset: "tiny",
});
const world = await createWorld({ seed: spec.world.seed, tileHalfExtent: spec.world.tileHalfExtent });
const sampler = createTaskSampler(world, spec.data, spec.world);

/** P pairing prompts x G random completions of uneven lengths (some padded), collated as GRPO does. */
function batchFor(cfg: ModelConfig, P: number, G: number, seed: number) {
  const exs = sampler.examples("pairing", "train", seed, P);
  const rng = new Rng(seed);
  const comps = Array.from({ length: P * G }, () => {
    const n = 3 + Math.floor(rng.next() * 10);
    return Array.from({ length: n }, () => 5 + Math.floor(rng.next() * (cfg.vocabSize - 5)));
  });
  return collateCompletions(exs, comps, tok, cfg, G);
}

/** Every trainable gradient of sum(logp * w * mask) + sum(entropy * mask), and the two outputs. */
function gradsOf(cfg: ModelConfig, shared: boolean, P: number, G: number, seed: number) {
  const m = createModel(cfg);
  const batch = batchFor(cfg, P, G, seed);
  const groups = shared ? { size: G, promptLen: batch.promptLen } : undefined;
  const w = tf.randomNormal(batch.lossMask.shape, 0, 1, "float32", 7);
  let out: { logp: Float32Array; entropy: Float32Array } | null = null;
  const { value, grads } = tf.variableGrads(() => {
    const r = m.tokenLogProbsAndEntropy(batch.input, true, 0.7, groups);
    out = { logp: r.logp.dataSync() as Float32Array, entropy: r.entropy.dataSync() as Float32Array };
    return r.logp.mul(w).mul(batch.lossMask).sum().add(r.entropy.mul(batch.lossMask).sum()) as tf.Scalar;
  }, m.trainable());
  const g = Object.fromEntries(
    Object.entries(grads).map(([k, t]) => [k.replace(/^vlm\d+\//, ""), t.dataSync() as Float32Array]),
  );
  const res = { value: value.dataSync()[0], grads: g, out: out!, mask: batch.lossMask.dataSync() };
  tf.dispose([value, w, ...Object.values(grads)]);
  batch.dispose();
  m.dispose();
  return res;
}

function maxRel(a: Float32Array, b: Float32Array): { abs: number; scale: number } {
  let abs = 0, scale = 0;
  for (let i = 0; i < a.length; i++) {
    abs = Math.max(abs, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return { abs, scale };
}

for (const [name, P, G] of [["2 prompts x G 3", 2, 3], ["3 prompts x G 4", 3, 4]] as const) {
  Deno.test(`shared prefix (${name}): log-probs, entropy and every gradient equal the per-row forward within 1e-5`, () => {
    const cfg = modelConfigForSpec(spec, tok);
    assert(cfg.slots && cfg.cueText, "the test config exercises slot segments and cue-conditioned text");
    const full = gradsOf(cfg, false, P, G, 11 + P);
    const shared = gradsOf(cfg, true, P, G, 11 + P);
    assertEquals(Object.keys(shared.grads).sort(), Object.keys(full.grads).sort());
    const d1 = maxRel(shared.out.logp, full.out.logp), d2 = maxRel(shared.out.entropy, full.out.entropy);
    assert(d1.abs <= 1e-5 * Math.max(1, d1.scale), `logp differs by ${d1.abs}`);
    assert(d2.abs <= 1e-5 * Math.max(1, d2.scale), `entropy differs by ${d2.abs}`);
    let nonzero = 0;
    for (const [k, g] of Object.entries(full.grads)) {
      const d = maxRel(shared.grads[k], g);
      assert(d.abs <= 1e-5 * Math.max(1, d.scale), `gradient of ${k} differs by ${d.abs} (scale ${d.scale})`);
      if (d.scale > 0) nonzero++;
    }
    assert(nonzero > Object.keys(full.grads).length / 2, `only ${nonzero} gradients are non-zero`);
    assert(Math.abs(shared.value - full.value) <= 1e-5 * Math.max(1, Math.abs(full.value)));
  });
}

Deno.test("shared prefix refuses groups whose rows differ in their images, and row counts not in whole groups", () => {
  const cfg = modelConfigForSpec(spec, tok);
  const m = createModel(cfg);
  const batch = batchFor(cfg, 2, 2, 3);
  try {
    // Rows built as 2 groups of 2, declared as one group of 4: rows 2-3 hold the second prompt's images.
    assertThrows(
      () => m.tokenLogProbs(batch.input, false, 1, { size: 4, promptLen: batch.promptLen }).dispose(),
      Error,
      "row 2 differs from row 0 in its",
    );
    assertThrows(
      () => m.tokenLogProbs(batch.input, false, 1, { size: 3, promptLen: batch.promptLen }).dispose(),
      Error,
      "4 rows are not groups of 3",
    );
  } finally {
    batch.dispose();
    m.dispose();
  }
});
