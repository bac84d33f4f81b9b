/**
 * Readout probe: how fast a fresh `small` model learns to describe an aerial tile from captions alone.
 * Trains on "Describe aerial view X." captions only (AdamW, batch 16, warmup 20) and prints, every 50
 * steps, the mean NLL per answer token on 32 validation captions and the NLL of the think line's letter.
 *
 *   deno run -A bench/readout_probe.ts --mode k4|k1|blind [--steps 300] [--lr 0.001]
 *
 * Modes: `k4` four tiles in the candidate slots, describe the named one (the base task); `k1` only the
 * named tile (letter A); `blind` like k1 with the tile replaced by grey, the NLL a model reaches without
 * looking. docs/RESULTS.md (third build) quotes k4 0.48, k1 0.39, blind 0.48 at step 300.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { parseArgs } from "node:util";
import { initBackend } from "../lib/backend.ts";
import { loadSpec } from "../lib/spec/mod.ts";
import { createWorld } from "../lib/world/mod.ts";
import { createTaskSampler } from "../lib/data/tasks.ts";
import { createTokenizer } from "../lib/data/tokenizer.ts";
import type { Example } from "../lib/data/types.ts";
import { createModel } from "../lib/model/vlm.ts";
import { modelConfigForSpec } from "../lib/model/config.ts";
import { collateTrain } from "../lib/model/collate.ts";
import { AdamW } from "../lib/train/optim.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    mode: { type: "string", default: "k4" },
    steps: { type: "string", default: "300" },
    lr: { type: "string", default: "0.001" },
  },
});
const mode = values.mode!;
if (!["k4", "k1", "blind"].includes(mode)) {
  console.error(`--mode: "${mode}" must be k4, k1 or blind`);
  Deno.exit(2);
}
const steps = Number(values.steps), lr0 = Number(values.lr);
await initBackend("wasm");
const { spec } = await loadSpec("experiments/geo-r1.json", {});
const world = await createWorld({ seed: spec.world.seed, tileHalfExtent: spec.world.tileHalfExtent });
const sampler = createTaskSampler(world, spec.data, spec.world, { evalSeed: spec.eval.seed });
const tok = createTokenizer();
const cfg = modelConfigForSpec(spec, tok);
const model = createModel(cfg);
const opt = new AdamW(model.trainable(), { beta1: 0.9, beta2: 0.99, weightDecay: 0.01 });
const letterIds = new Set(["A", "B", "C", "D"].map((l) => tok.encode(` ${l}`)[0]));

function prep(e: Example): Example {
  if (mode === "k4") return e;
  const k = e.prompt.match(/view ([A-D])/)![1].charCodeAt(0) - 65;
  const tile = e.aerial[k];
  const img = mode === "blind" ? { ...tile, data: new Uint8Array(tile.data.length).fill(128) } : tile;
  const toA = (s: string) => s.replace(/view [A-D]/, "view A");
  return { ...e, aerial: [img], prompt: toA(e.prompt), target: toA(e.target) };
}
const captions = (split: "train" | "val", off: number, n: number) =>
  sampler.examples("caption", split, off, n).filter((e) => !e.ground).map(prep);
const val = captions("val", 0, 64).slice(0, 32);

function evaluate(): { answer: number; letter: number } {
  const b = collateTrain(val, tok, cfg);
  const lp = model.tokenLogProbs(b.input);
  const l = lp.arraySync() as number[][], ids = b.input.ids.arraySync() as number[][];
  const m = b.lossMask.arraySync() as number[][];
  let ans = 0, na = 0, let_ = 0, nl = 0;
  for (let i = 0; i < val.length; i++) {
    let inAnswer = false;
    for (let t = 0; t < ids[i].length; t++) {
      if (m[i][t] <= 0) continue;
      if (ids[i][t] === tok.special.answerOpen) inAnswer = true;
      else if (inAnswer) (ans += -l[i][t], na++);
      else if (letterIds.has(ids[i][t])) (let_ += -l[i][t], nl++);
    }
  }
  lp.dispose();
  b.dispose();
  return { answer: ans / na, letter: nl ? let_ / nl : NaN };
}

let off = 0;
const buf: Example[] = [];
const t0 = performance.now();
for (let s = 1; s <= steps; s++) {
  while (buf.length < 16) buf.push(...captions("train", (off += 64) - 64, 64));
  const b = collateTrain(buf.splice(0, 16), tok, cfg);
  const { value, grads } = tf.variableGrads(() => {
    const lp = model.tokenLogProbs(b.input, true);
    return lp.mul(b.lossMask).sum().neg().div(b.lossMask.sum()) as tf.Scalar;
  }, model.trainable());
  opt.applyGradients(model.trainable().map((v) => grads[v.name] ?? null), lr0 * Math.min(1, s / 20), 1);
  tf.dispose([value, grads]);
  b.dispose();
  if (s % 50 === 0 || s === steps) {
    const e = evaluate();
    console.log(JSON.stringify({
      mode,
      step: s,
      answerNll: +e.answer.toFixed(4),
      letterNll: +e.letter.toFixed(4),
      seconds: Math.round((performance.now() - t0) / 1000),
    }));
  }
}
