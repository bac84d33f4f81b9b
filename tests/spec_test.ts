import { join } from "node:path";
import { assert, assertEquals, assertRejects } from "./assert.ts";
import {
  canonicalJson,
  displayPath,
  EXPERIMENTS_DIR,
  listExperiments,
  loadSpec,
  resolveExperimentPath,
  SPEC_SCHEMA,
  specHash,
} from "../lib/spec/mod.ts";
import type {
  BaselineStageSpec,
  DataSpec,
  EvalSpec,
  ExperimentSpec,
  GrpoSpec,
  GrpoStageSpec,
  ModelSpec,
  OptimSpec,
  SupervisedStageSpec,
  WorldSpec,
} from "../lib/spec/types.ts";
import { deriveSeed } from "../lib/rng.ts";
import { UserError } from "../lib/errors.ts";
import {
  DATA_DEFAULTS,
  EVAL_DEFAULTS,
  fillDefaults,
  GRPO_DEFAULTS,
  STAGE_DEFAULTS,
  SUPERVISED_DEFAULTS,
} from "../lib/spec/defaults.ts";
import type { JsonObject } from "../lib/spec/merge.ts";

const FIX = new URL("./fixtures/spec/", import.meta.url).pathname;
const fx = (name: string) => join(FIX, name);
const exp = (name: string) => join(EXPERIMENTS_DIR, `${name}.json`);

/** Assert that `p` rejects with a UserError whose message is exactly `message`. */
async function rejectsWith(p: Promise<unknown>, message: string): Promise<void> {
  await assertRejects(p, (e: unknown) => {
    assert(e instanceof UserError, `expected UserError, got ${e}`);
    assertEquals(e.message, message);
    return true;
  });
}

const ALL_EXPERIMENTS =
  "base, cells, control, geo-r1, geo-r1-anchored, geo-r1-geoloc, geo-r1-mixed, geo-r1-zero, geo-r1-zero-anchored, geo-sft, geoclip, nearest-prior, task-sft";

Deno.test("every shipped experiment resolves under every preset", async () => {
  const names = listExperiments();
  assertEquals(names, [
    "base",
    "cells",
    "control",
    "geo-r1",
    "geo-r1-anchored",
    "geo-r1-geoloc",
    "geo-r1-mixed",
    "geo-r1-zero",
    "geo-r1-zero-anchored",
    "geo-sft",
    "geoclip",
    "nearest-prior",
    "task-sft",
  ]);
  for (const name of names) {
    for (const preset of [undefined, "tiny", "small", "large"]) {
      const { spec, hash } = await loadSpec(exp(name), { preset });
      assertEquals(spec.name, name);
      assert(/^[0-9a-f]{64}$/.test(hash));
      const raw = spec as unknown as Record<string, unknown>;
      assert(!("presets" in raw) && !("extends" in raw) && !("$schema" in raw));
    }
  }
  const r1 = (await loadSpec(exp("geo-r1"))).spec;
  assertEquals(r1.pipeline, ["base", "sft", "grpo"]);
  assertEquals(r1.stages.grpo.from, "sft");
  const zero = (await loadSpec(exp("geo-r1-zero"))).spec;
  assertEquals(zero.pipeline, ["base", "grpo"]);
  assertEquals(zero.stages.grpo.from, "base");
  assertEquals((await loadSpec(exp("geo-sft"))).spec.pipeline, ["base", "sft"]);
  // small is the default: the preset changes nothing.
  assertEquals(
    (await loadSpec(exp("geo-r1"), { preset: "small" })).hash,
    (await loadSpec(exp("geo-r1"))).hash,
  );
});

Deno.test("schema.json lists exactly the fields of lib/spec/types.ts", () => {
  // Record<keyof T, true> makes the compiler check each list against the interface.
  const world: Record<keyof WorldSpec, true> = {
    seed: true,
    groundShape: true,
    aerialSize: true,
    tileHalfExtent: true,
  };
  const data: Record<keyof DataSpec, true> = {
    source: true,
    seed: true,
    coordTokens: true,
    candidates: true,
    negatives: true,
    testNearMin: true,
    regionCellDeg: true,
    valFraction: true,
    testFraction: true,
    cot: true,
  };
  const model: Record<keyof ModelSpec, true> = {
    preset: true,
    dModel: true,
    nLayers: true,
    nHeads: true,
    dFF: true,
    maxText: true,
    slotSegments: true,
    cueHead: true,
    cueText: true,
    cueMatch: true,
    cueMatchAll: true,
    seed: true,
  };
  const optim: Record<keyof OptimSpec, true> = {
    lr: true,
    weightDecay: true,
    beta1: true,
    beta2: true,
    warmupSteps: true,
    minLrRatio: true,
    gradClip: true,
  };
  const sup: Record<keyof SupervisedStageSpec, true> = {
    kind: true,
    from: true,
    tasks: true,
    steps: true,
    batchSize: true,
    optim: true,
    evalEvery: true,
    evalN: true,
    checkpointEvery: true,
    cueLoss: true,
    answerWeight: true,
    verdictWeight: true,
    freeze: true,
    replicas: true,
    seed: true,
  };
  const grpoStage: Record<keyof GrpoStageSpec, true> = {
    kind: true,
    from: true,
    tasks: true,
    steps: true,
    optim: true,
    grpo: true,
    evalEvery: true,
    evalN: true,
    checkpointEvery: true,
    freeze: true,
    replicas: true,
    negatives: true,
    anchor: true,
    seed: true,
  };
  const baselineStage: Record<keyof BaselineStageSpec, true> = {
    kind: true,
    method: true,
    from: true,
    trainViews: true,
    gallery: true,
    steps: true,
    batchSize: true,
    optim: true,
    encoder: true,
    geoclip: true,
    cells: true,
    prior: true,
    seed: true,
  };
  const grpo: Record<keyof GrpoSpec, true> = {
    promptsPerStep: true,
    groupSize: true,
    maxNewTokens: true,
    temperature: true,
    topP: true,
    beta: true,
    epsilonLow: true,
    epsilonHigh: true,
    lossType: true,
    scaleRewards: true,
    numIterations: true,
    maskTruncated: true,
    microBatchRows: true,
    rewards: true,
    geodesicTauKm: true,
    length: true,
    repetition: true,
  };
  const evalS: Record<keyof EvalSpec, true> = {
    n: true,
    tasks: true,
    bootstrap: true,
    temperature: true,
    maxNewTokens: true,
    gallery: true,
    replicas: true,
    seed: true,
  };
  const top: Record<keyof ExperimentSpec, true> = {
    name: true,
    description: true,
    seed: true,
    backend: true,
    world: true,
    data: true,
    model: true,
    stages: true,
    pipeline: true,
    eval: true,
  };
  // deno-lint-ignore no-explicit-any
  const s = SPEC_SCHEMA as any;
  const keys = (o: Record<string, unknown>) => Object.keys(o).sort();
  assertEquals(keys(s.properties), keys(top));
  const defs: [string, Record<string, true>][] = [
    ["world", world],
    ["data", data],
    ["model", model],
    ["optim", optim],
    ["supervisedStage", sup],
    ["grpoStage", grpoStage],
    ["baselineStage", baselineStage],
    ["grpo", grpo],
    ["eval", evalS],
  ];
  for (const [name, fields] of defs) {
    assertEquals(keys(s.$defs[name].properties), keys(fields), `$defs/${name}`);
    assertEquals(s.$defs[name].additionalProperties, false);
  }
  assertEquals(s.$defs.model.required.sort(), ["preset", "seed"]);
});

Deno.test("typo'd key: names file, pointer and the nearest valid key", async () => {
  await rejectsWith(
    loadSpec(fx("typo.json")),
    `${
      displayPath(fx("typo.json"))
    }: /stages/grpo/grpo/gruopSize: unknown key 'gruopSize'; did you mean 'groupSize'?`,
  );
});

Deno.test("wrong type: expected type and the value found", async () => {
  await rejectsWith(
    loadSpec(fx("wrong_type.json")),
    `${displayPath(fx("wrong_type.json"))}: /stages/grpo/steps: must be integer, got string "many"`,
  );
});

Deno.test("bad enum: lists the allowed values", async () => {
  await rejectsWith(
    loadSpec(fx("bad_enum.json")),
    `${
      displayPath(fx("bad_enum.json"))
    }: /stages/grpo/grpo/lossType: must be one of "grpo", "dr_grpo", "dapo", got string "ppo"`,
  );
});

Deno.test("several problems: one line each", async () => {
  const f = displayPath(fx("many_errors.json"));
  await rejectsWith(
    loadSpec(fx("many_errors.json")),
    `2 problems in the experiment spec:\n` +
      `  ${f}: /backend: must be one of "auto", "wasm", "webgpu", "cpu", "tensorflow", got string "gpu"\n` +
      `  ${f}: /world/aerialSize: must be >= 4, got number 0`,
  );
});

Deno.test("missing files: spec, extends target, unknown experiment name", async () => {
  await rejectsWith(loadSpec(fx("nope.json")), `spec file not found: ${displayPath(fx("nope.json"))}`);
  await rejectsWith(
    loadSpec(fx("missing_extends.json")),
    `${displayPath(fx("missing_extends.json"))}: /extends: file not found: ./does_not_exist.json ` +
      `(resolved to ${displayPath(fx("does_not_exist.json"))})`,
  );
  let err: unknown;
  try {
    resolveExperimentPath("geo-r2");
  } catch (e) {
    err = e;
  }
  assert(err instanceof UserError);
  assertEquals(
    err.message,
    `unknown experiment 'geo-r2'; did you mean 'geo-r1'? ` +
      `(available in ${displayPath(EXPERIMENTS_DIR)}: ${ALL_EXPERIMENTS})`,
  );
  assertEquals(resolveExperimentPath("geo-r1"), exp("geo-r1"));
});

Deno.test("extends cycle is refused", async () => {
  const a = displayPath(fx("cycle_a.json"));
  const b = displayPath(fx("cycle_b.json"));
  await rejectsWith(loadSpec(fx("cycle_a.json")), `${b}: /extends: cycle: ${a} -> ${b} -> ${a}`);
});

Deno.test("extends may not leave the project and the spec's folder", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const p = join(dir, "escape.json");
    await Deno.writeTextFile(p, JSON.stringify({ extends: "../../etc/passwd.json" }));
    await rejectsWith(
      loadSpec(p),
      `${
        displayPath(p)
      }: /extends: ../../etc/passwd.json resolves outside the project and the spec's folder ` +
        `(${join(dir, "../../etc/passwd.json")}); specs may only extend files inside them`,
    );
    // A spec outside the project may extend a shipped experiment and its own neighbours.
    await Deno.writeTextFile(
      p,
      JSON.stringify({ extends: join(EXPERIMENTS_DIR, "geo-r1.json"), name: "outside" }),
    );
    assertEquals((await loadSpec(p)).spec.name, "outside");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("invalid JSON names the file, line and column", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const p = join(dir, "bad.json");
    await Deno.writeTextFile(p, '{\n  "name": "x",,\n}\n');
    await assertRejects(loadSpec(p), (e: unknown) => {
      assert(e instanceof UserError);
      assert(e.message.startsWith(`${displayPath(p)}: invalid JSON: `), e.message);
      assert(e.message.endsWith("(line 2 column 15)"), e.message);
      return true;
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("--set: unknown path, unknown key, bad value, not an object, malformed", async () => {
  const p = exp("geo-r1");
  await rejectsWith(
    loadSpec(p, { sets: ["stages.grpo.steps=abc"] }),
    `--set stages.grpo.steps=abc: /stages/grpo/steps: must be integer, got string "abc"`,
  );
  await rejectsWith(
    loadSpec(p, { sets: ["stages.grpo.grpo.gruopSize=4"] }),
    `--set stages.grpo.grpo.gruopSize=4: /stages/grpo/grpo/gruopSize: unknown key 'gruopSize'; did you mean 'groupSize'?`,
  );
  await rejectsWith(
    loadSpec(p, { sets: ["stages.grp.steps=3"] }),
    `--set stages.grp.steps=3: /stages/grp: unknown key 'grp'; did you mean 'grpo'?`,
  );
  await rejectsWith(
    loadSpec(p, { sets: ["stages.grpo.grpo.lossType=ppo"] }),
    `--set stages.grpo.grpo.lossType=ppo: /stages/grpo/grpo/lossType: must be one of "grpo", "dr_grpo", "dapo", got string "ppo"`,
  );
  await rejectsWith(
    loadSpec(p, { sets: ["seed.x=1"] }),
    `--set seed.x=1: /seed: is number 0, not an object, so it has no key 'x'`,
  );
  await rejectsWith(
    loadSpec(p, { sets: ["stages.grpo.steps"] }),
    `--set stages.grpo.steps: expected KEY.PATH=VALUE, e.g. --set stages.grpo.steps=100`,
  );
  await rejectsWith(
    loadSpec(p, { sets: ["stages.sft.replicas=0"] }),
    `--set stages.sft.replicas=0: /stages/sft/replicas: must be >= 1, got number 0`,
  );
  await rejectsWith(
    loadSpec(p, { sets: ["__proto__.x=1"] }),
    `--set __proto__.x=1: : key '__proto__' is not allowed`,
  );
});

Deno.test("--set: JSON values, strings, coercion by the schema, optional fields", async () => {
  const { spec } = await loadSpec(exp("geo-r1"), {
    sets: [
      "stages.grpo.steps=7",
      "stages.grpo.grpo.maskTruncated=false",
      "name=123",
      "model.dModel=48",
      'eval.tasks=["pairing"]',
      "stages.sft.optim.lr=1e-4",
      "model.preset=tiny",
    ],
  });
  assertEquals(spec.stages.grpo.steps, 7);
  assertEquals((spec.stages.grpo as GrpoStageSpec).grpo.maskTruncated, false);
  assertEquals(spec.name, "123");
  assertEquals(spec.model.dModel, 48);
  assertEquals(spec.eval.tasks, ["pairing"]);
  assertEquals(spec.stages.sft.optim.lr, 1e-4);
  assertEquals(spec.model.preset, "tiny");
});

Deno.test("resolved-spec hash is stable across key order and changes with any value", async () => {
  const { spec, hash } = await loadSpec(exp("geo-r1"));
  const reverse = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(reverse);
    if (v && typeof v === "object") {
      return Object.fromEntries(Object.entries(v).reverse().map(([k, x]) => [k, reverse(x)]));
    }
    return v;
  };
  const reordered = reverse(spec);
  assert(JSON.stringify(reordered) !== JSON.stringify(spec));
  assertEquals(specHash(reordered), hash);
  assertEquals(canonicalJson({ b: 1, a: { d: [2, 1], c: null } }), '{"a":{"c":null,"d":[2,1]},"b":1}');
  const dir = await Deno.makeTempDir();
  try {
    const p = join(dir, "reordered.json");
    await Deno.writeTextFile(p, JSON.stringify(reordered, null, 1));
    assertEquals((await loadSpec(p)).hash, hash);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  const other = await loadSpec(exp("geo-r1"), { sets: ["eval.gallery=13"] });
  assert(other.hash !== hash);
});

Deno.test("extends: objects merge, arrays replace, presets merge across files", async () => {
  const { spec, sources } = await loadSpec(fx("merge_child.json"));
  assertEquals(sources, [exp("base"), exp("geo-sft"), fx("merge_child.json")]);
  assertEquals(spec.name, "merge-child");
  assertEquals(spec.world, { seed: 7, groundShape: [32, 128], aerialSize: 64, tileHalfExtent: 60 });
  assertEquals(spec.eval.tasks, ["pairing"]);
  assertEquals(spec.pipeline, ["base", "sft"]);
  assertEquals(spec.stages.sft.seed, 42);
  // tiny from base.json and from the child both apply; the child's own preset exists too.
  const tiny = (await loadSpec(fx("merge_child.json"), { preset: "tiny" })).spec;
  assertEquals(tiny.eval.n, 3);
  assertEquals(tiny.model.preset, "tiny");
  assertEquals(tiny.stages.base.steps, 12);
  assertEquals((await loadSpec(fx("merge_child.json"), { preset: "huge" })).spec.stages.sft.steps, 99999);
});

Deno.test("presets: tiny shrinks the run, unknown preset lists the available ones", async () => {
  const { spec } = await loadSpec(exp("geo-r1"), { preset: "tiny" });
  assertEquals(spec.model.preset, "tiny");
  assert(spec.stages.base.steps <= 20 && spec.eval.n <= 16);
  assertEquals((spec.stages.grpo as GrpoStageSpec).grpo.lossType, "dapo");
  // --set applies after the preset.
  const s2 = (await loadSpec(exp("geo-r1"), { preset: "tiny", sets: ["stages.base.steps=3"] })).spec;
  assertEquals(s2.stages.base.steps, 3);
  await rejectsWith(
    loadSpec(exp("geo-r1"), { preset: "tinny" }),
    `${
      displayPath(exp("geo-r1"))
    }: unknown preset 'tinny'; did you mean 'tiny'? (available: tiny, small, large)`,
  );
});

Deno.test("seeds: omitted ones derive from the master seed by JSON path; explicit ones stay", async () => {
  const { spec } = await loadSpec(exp("geo-r1"));
  assertEquals(spec.seed, 0);
  assertEquals(spec.data.seed, deriveSeed(0, "data.seed"));
  assertEquals(spec.model.seed, deriveSeed(0, "model.seed"));
  for (const name of ["base", "sft", "grpo"]) {
    assertEquals(spec.stages[name].seed, deriveSeed(0, `stages.${name}.seed`));
  }
  const s1 = (await loadSpec(exp("geo-r1"), { sets: ["seed=1"] })).spec;
  assertEquals(s1.data.seed, deriveSeed(1, "data.seed"));
  assert(s1.data.seed !== spec.data.seed);
  // world and eval seeds are constants shared by replicates.
  assertEquals(s1.world.seed, spec.world.seed);
  assertEquals(s1.eval.seed, spec.eval.seed);
  const s2 = (await loadSpec(exp("geo-r1"), { sets: ["seed=1", "stages.sft.seed=5"] })).spec;
  assertEquals(s2.stages.sft.seed, 5);
});

Deno.test("defaults: omitted stage and eval knobs are filled once, by the resolver; explicit ones stay", async () => {
  const { spec } = await loadSpec(exp("geo-r1"));
  const grpo = spec.stages.grpo as GrpoStageSpec;
  const sft = spec.stages.sft as SupervisedStageSpec;
  assertEquals(grpo.evalN, STAGE_DEFAULTS.evalN);
  assertEquals(grpo.grpo.microBatchRows, GRPO_DEFAULTS.microBatchRows);
  assertEquals([sft.answerWeight, sft.verdictWeight], [1, 1]);
  assertEquals(spec.data.coordTokens, DATA_DEFAULTS.coordTokens);
  // Set in experiments/base.json, so not the defaults.
  assertEquals([sft.replicas, sft.cueLoss, spec.eval.replicas], [2, 1, 2]);
  const bare: Record<string, unknown> = { data: {}, eval: {}, stages: { s: { kind: "sft" } } };
  fillDefaults(bare as JsonObject);
  assertEquals(bare, {
    data: { ...DATA_DEFAULTS },
    eval: { ...EVAL_DEFAULTS },
    stages: { s: { kind: "sft", ...STAGE_DEFAULTS, ...SUPERVISED_DEFAULTS } },
  });
  const set =
    (await loadSpec(exp("geo-r1"), { sets: ["stages.grpo.grpo.microBatchRows=16", "stages.sft.evalN=50"] }))
      .spec;
  assertEquals((set.stages.grpo as GrpoStageSpec).grpo.microBatchRows, 16);
  assertEquals((set.stages.sft as SupervisedStageSpec).evalN, 50);
  // A baseline stage has none of these knobs.
  const cells = (await loadSpec(exp("cells"))).spec;
  for (const st of Object.values(cells.stages)) {
    if (st.kind === "baseline") {
      assert(!("evalN" in st) && !("replicas" in st), JSON.stringify(Object.keys(st)));
    }
  }
});

Deno.test("cross-field rules: pipeline names stages, from precedes its stage", async () => {
  const f = displayPath(fx("bad_pipeline.json"));
  await rejectsWith(
    loadSpec(fx("bad_pipeline.json")),
    `2 problems in the experiment spec:\n` +
      `  ${f}: /pipeline/2: unknown stage 'sfft'; did you mean 'sft'?\n` +
      `  ${
        displayPath(exp("base"))
      }: /stages/grpo/from: stage 'sft' must come before 'grpo' in the pipeline [base, grpo, sfft]`,
  );
  await rejectsWith(
    loadSpec(exp("geo-r1"), { sets: ["data.negatives.far=0.5"] }),
    `${displayPath(exp("base"))}: /data/negatives: weights must sum to 1, got 1.16`,
  );
});
