/**
 * The auxiliary cue loss (lib/data/cue_labels.ts, lib/train/supervised.ts `cueLoss`): a fixed label space that
 * covers every cue the world produces, the loss against hand-computed values, the model's cue heads
 * (parameter count, one forward), a tiny model that learns its views' cues, and the spec rule that the loss
 * needs the heads.
 */
import * as tf from "@tensorflow/tfjs";
import { join } from "node:path";
import { assert, assertEquals, assertRejects, assertThrows } from "./assert.ts";
import { CharTokenizer, GEOM, pairingExample, testConfig, useWasm } from "./helpers_model.ts";
import { dataSpec, testWorld, WORLD_SPEC } from "./data_helpers.ts";
import {
  CUE_GROUP_OFFSETS,
  CUE_GROUPS,
  CUE_OUTPUTS,
  CUE_ROAD_OUTPUTS,
  cueBatchTargets,
  cueTarget,
} from "../lib/data/cue_labels.ts";
import type { ViewCues } from "../lib/data/cues.ts";
import { createTaskSampler } from "../lib/data/tasks.ts";
import { Rng } from "../lib/rng.ts";
import { makeModelConfig, paramCount } from "../lib/model/config.ts";
import { saveCheckpoint } from "../lib/model/checkpoint.ts";
import { createTokenizer } from "../lib/data/tokenizer.ts";
import { createModel } from "../lib/model/vlm.ts";
import { collateTrain } from "../lib/model/collate.ts";
import { cueLoss, trainSupervised } from "../lib/train/supervised.ts";
import type { SupervisedStageSpec } from "../lib/spec/types.ts";
import { EXPERIMENTS_DIR, loadSpec } from "../lib/spec/mod.ts";
import { UserError } from "../lib/errors.ts";

await useWasm();

const CUES: ViewCues = {
  roadAxes: ["north-south", "east-west"],
  waterSide: "west",
  buildings: "sparse",
  roof: CUE_GROUPS[3].classes[2],
  trees: "many",
  roadLine: CUE_GROUPS[4].classes[1],
  sunSide: "south",
  vegetation: CUE_GROUPS[5].classes[0],
};

Deno.test("cue labels: fixed width, hand-checked target, every sampled cue value is in the label space", async () => {
  assertEquals(CUE_OUTPUTS, 4 + CUE_GROUPS.reduce((s, g) => s + g.classes.length, 0));
  assertEquals(CUE_GROUP_OFFSETS[0], CUE_ROAD_OUTPUTS);
  const t = cueTarget(CUES);
  assertEquals(t.roads, [1, 0, 1, 0]);
  // waterSide "west" is compass index 6, after "none"; sparse = 1; many = 2; roof/line/veg as picked above.
  assertEquals(t.classes, [7, 1, 2, 2, 1, 0]);
  const none = cueTarget({ ...CUES, roadAxes: [], waterSide: null, roof: null, roadLine: null });
  assertEquals(none.roads, [0, 0, 0, 0]);
  assertEquals([none.classes[0], none.classes[3], none.classes[4]], [0, 0, 0]);
  assertThrows(() => cueTarget({ ...CUES, vegetation: "lava" }), Error, `"lava" is not in the label space`);

  const s = createTaskSampler(await testWorld(), dataSpec(), WORLD_SPEC, { noImages: true });
  const seen = new Set<string>();
  for (const e of s.sample("pairing", "train", 60, new Rng(3))) {
    const b = cueBatchTargets([e]);
    assertEquals(b.ground!.weight.length, 1);
    assertEquals(b.aerial!.weight.length, 4);
    for (const c of e.cues!.candidates!) seen.add(c.vegetation);
  }
  assert(seen.size >= 3, `only ${seen.size} vegetation words in 60 examples`);
  // A view without cues (real data) has weight 0.
  const bare = cueBatchTargets([pairingExample(1)]);
  assertEquals(Array.from(bare.aerial!.weight), [0, 0, 0, 0]);
});

Deno.test("cue loss equals the hand-computed value (BCE on road axes, softmax CE per group, view weights)", () => {
  const t0 = cueTarget(CUES), t1 = cueTarget({ ...CUES, roadAxes: [], waterSide: null });
  const G = CUE_GROUPS.length;
  const targets = {
    roads: Float32Array.from([...t0.roads, ...t1.roads]),
    classes: Int32Array.from([...t0.classes, ...t1.classes]),
    weight: Float32Array.from([1, 1]),
  };
  // Zero logits: every road output costs ln 2, every group ln(classes).
  const zeros = tf.zeros([2, CUE_OUTPUTS]) as tf.Tensor2D;
  const flat = (4 * Math.log(2) + CUE_GROUPS.reduce((s, g) => s + Math.log(g.classes.length), 0)) / (4 + G);
  const l0 = cueLoss(zeros, targets);
  assert(Math.abs(l0.dataSync()[0] - flat) < 1e-5, `${l0.dataSync()[0]} vs ${flat}`);
  // View 0: logit 2 on road 0 (a road: -log sigmoid(2)) and on the true water class; view 1 weighted out.
  const z = new Float32Array(2 * CUE_OUTPUTS);
  z[0] = 2;
  z[CUE_GROUP_OFFSETS[0] + t0.classes[0]] = 2;
  z[CUE_OUTPUTS + 1] = 50; // view 1 would cost ~50 on road 1, but its weight is 0
  const logits = tf.tensor2d(z, [2, CUE_OUTPUTS]);
  const w = { ...targets, weight: Float32Array.from([1, 0]) };
  const nw = CUE_GROUPS[0].classes.length;
  const water = -2 + Math.log(Math.exp(2) + nw - 1);
  const road0 = Math.log(1 + Math.exp(-2));
  const rest = CUE_GROUPS.slice(1).reduce((s, g) => s + Math.log(g.classes.length), 0);
  const want = (road0 + 3 * Math.log(2) + water + rest) / (4 + G);
  const l1 = cueLoss(logits, w);
  assert(Math.abs(l1.dataSync()[0] - want) < 1e-5, `${l1.dataSync()[0]} vs ${want}`);
  for (const x of [zeros, l0, logits, l1]) x.dispose();
});

function spec(over: Partial<SupervisedStageSpec> = {}): SupervisedStageSpec {
  return {
    kind: "pretrain",
    from: null,
    tasks: { pairing: 1 },
    steps: 60,
    batchSize: 2,
    optim: {
      lr: 1e-2,
      weightDecay: 0,
      beta1: 0.9,
      beta2: 0.99,
      warmupSteps: 2,
      minLrRatio: 0.3,
      gradClip: 1,
    },
    evalEvery: 0,
    checkpointEvery: 0,
    cueLoss: 1,
    seed: 1,
    ...over,
  };
}

Deno.test("cue heads: counted parameters, one forward for log-probs and cues, a tiny model learns its views' cues", async () => {
  const tok = new CharTokenizer();
  const cfg = testConfig("tiny", 2, { cueHead: CUE_OUTPUTS });
  const m = createModel(cfg);
  assertEquals(m.trainable().reduce((s, v) => s + v.size, 0), paramCount(cfg));
  // Two pairing examples whose tiles carry different cues.
  const exs = [1, 2].map((seed) => {
    const e = pairingExample(seed);
    const cands = Array.from({ length: 4 }, (_, k) => ({
      ...CUES,
      roadAxes: k % 2 ? [] : CUES.roadAxes,
      trees: (["none", "few", "many"] as const)[(k + seed) % 3],
    }));
    return { ...e, cues: { ground: cands[0], candidates: cands } };
  });
  const b = collateTrain(exs, tok, cfg);
  const r = m.tokenLogProbsAndCues!(b.input);
  assertEquals(r.ground!.shape, [2, CUE_OUTPUTS]);
  assertEquals(r.aerial!.shape, [8, CUE_OUTPUTS]);
  const plain = m.tokenLogProbs(b.input);
  const diff = tf.tidy(() => r.logp.sub(plain).abs().max().dataSync()[0]);
  assert(diff < 1e-5, `log-probs differ by ${diff}`);
  for (const t of [r.logp, r.ground!, r.aerial!, plain]) t.dispose();
  b.dispose();

  const rec: { loss: number; cue: number }[] = [];
  const res = await trainSupervised({
    stageName: "cues",
    spec: spec(),
    model: m,
    tokenizer: tok,
    nextBatch: () => exs,
    onMetrics: (x) => void rec.push({ loss: x.loss as number, cue: x.cue_loss as number }),
  });
  const first = rec[0].cue, last = rec[rec.length - 1].cue;
  assert(Number.isFinite(first) && first > 0.5, `initial cue loss ${first}`);
  assert(last < 0.2 * first, `cue loss ${first} -> ${last}`);
  assert(rec[rec.length - 1].loss < rec[0].loss, "token loss did not fall");
  res.optimizer.dispose();

  // Cue-conditioned text with the agreement feature: counted parameters; cueMatch alone is refused.
  const slots = { tokens: [[tok.encode("A")[0]], [tok.encode("B")[0]]], reset: [tok.special.bos] };
  const tm = { ...cfg, slots, cueText: true, cueMatch: true };
  const mm = createModel(tm);
  assertEquals(mm.trainable().reduce((s, v) => s + v.size, 0), paramCount(tm));
  mm.dispose();
  // All candidates' agreement at every text token: counted parameters; refused without cueText.
  const ta = { ...tm, cueMatchAll: true };
  const ma = createModel(ta);
  assertEquals(ma.trainable().reduce((s, v) => s + v.size, 0), paramCount(ta));
  ma.dispose();
  assertThrows(() => createModel({ ...cfg, slots, cueMatchAll: true }), UserError, "cueMatchAll");
  assertThrows(() => createModel({ ...cfg, slots, cueMatch: true }), UserError, "cueMatch");
  assertThrows(() => createModel({ ...testConfig("tiny", 2), slots, cueText: true }), UserError, "cueText");
  assertThrows(() => createModel({ ...cfg, cueText: true }), UserError, "candidate-slot segments");

  // Without heads the stage refuses, naming the field.
  const plainModel = createModel(testConfig("tiny", 2));
  await assertRejects(
    () =>
      trainSupervised({
        stageName: "base",
        spec: spec(),
        model: plainModel,
        tokenizer: tok,
        nextBatch: () => exs,
      }),
    UserError,
    "stages.base.cueLoss",
  );
  plainModel.dispose();
  m.dispose();
});

Deno.test("spec: cueLoss without model.cueHead is rejected at load time", async () => {
  const p = join(EXPERIMENTS_DIR, "geo-r1.json");
  await assertRejects(
    () => loadSpec(p, { sets: ["model.cueHead=false", "stages.base.cueLoss=1"] }),
    UserError,
    "/stages/base/cueLoss: needs model.cueHead: true",
  );
  const ok = await loadSpec(p, { sets: ["model.cueHead=true", "stages.base.cueLoss=0.5"] });
  assertEquals(ok.spec.stages.base.kind, "pretrain");
});

Deno.test("bench/cue_probe.ts, bench/control_ceiling.ts: run on a checkpoint with cue heads, refuse one without", async () => {
  const dir = await Deno.makeTempDir({ prefix: "geo-r1-cueprobe-" });
  try {
    const tok = createTokenizer();
    const geom = { vocabSize: tok.vocabSize, ...GEOM };
    const withHeads = createModel(makeModelConfig({ preset: "tiny", seed: 1, cueHead: true }, geom));
    const without = createModel(makeModelConfig({ preset: "tiny", seed: 1 }, geom));
    await saveCheckpoint(join(dir, "heads"), withHeads, { tokenizer: tok.toJSON(), step: 0 });
    await saveCheckpoint(join(dir, "plain"), without, { tokenizer: tok.toJSON(), step: 0 });
    withHeads.dispose();
    without.dispose();
    const root = new URL("../", import.meta.url).pathname;
    const run = (script: string, ...args: string[]) =>
      new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", script, ...args],
        cwd: root,
        stdout: "piped",
        stderr: "piped",
        signal: AbortSignal.timeout(120_000),
      }).output();
    const json = (o: Deno.CommandOutput) =>
      JSON.parse(new TextDecoder().decode(o.stdout).trim().split("\n").pop()!);
    const probe = (ckpt: string) => run("bench/cue_probe.ts", ckpt, "--n", "8");
    const ok = await probe(join(dir, "heads"));
    assertEquals(ok.code, 0, new TextDecoder().decode(ok.stderr));
    const r = json(ok);
    assertEquals(r.n, 8);
    assert(r.idealMatcherPairingPct >= 0 && r.idealMatcherPairingPct <= 100);
    assertEquals(Object.keys(r.headAccuracyPct).length, 2 * (1 + CUE_GROUPS.length));
    const bad = await probe(join(dir, "plain"));
    assertEquals(bad.code, 2);
    assert(new TextDecoder().decode(bad.stderr).includes("has no cue heads"));

    // The control's ceiling: vegetation alone names tropical and arid scenes (their vegetation grows nowhere
    // else), so those rows are all hits; every test view is counted once per reader.
    const ceil = await run("bench/control_ceiling.ts", join(dir, "heads"), "--train", "300", "--n", "24");
    assertEquals(ceil.code, 0, new TextDecoder().decode(ceil.stderr));
    const c = json(ceil);
    assertEquals([c.trainExamples, c.testExamples], [300, 24]);
    assert(c.headVegetationAccuracyPct >= 0 && c.headVegetationAccuracyPct <= 100);
    assertEquals(Object.keys(c.ceilings).sort(), ["headVegetation", "trueCues", "trueVegetation"]);
    const counts = (row: Record<string, string>) =>
      Object.values(row).map((v) => v.split(" of ").map(Number));
    for (const k of Object.keys(c.ceilings)) {
      assertEquals(counts(c.ceilings[k].perClimate).reduce((a, [, n]) => a + n, 0), 24, k);
    }
    for (const climate of ["tropical", "arid"]) {
      const [hits, n] = c.ceilings.trueVegetation.perClimate[climate].split(" of ").map(Number);
      assert(n > 0 && hits === n, `${climate}: ${hits} of ${n}`);
    }
    const noHeads = await run("bench/control_ceiling.ts", join(dir, "plain"), "--train", "50", "--n", "4");
    assertEquals(noHeads.code, 2);
    assert(new TextDecoder().decode(noHeads.stderr).includes("has no cue heads"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
