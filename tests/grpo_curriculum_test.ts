/**
 * A curriculum over negative tiers (`stages.<grpo>.negatives`): the schedule's mix at a step, the sampler's
 * train-only override, the spec's checks, and a tiny `exp` whose prompts follow the schedule.
 */
import { assert, assertEquals, assertRejects } from "./assert.ts";
import { join } from "node:path";
import { createTaskSampler, type NegativePoint, negativesAt } from "../lib/data/tasks.ts";
import { loadSpec } from "../lib/spec/load.ts";
import { EXPERIMENTS_DIR } from "../lib/spec/mod.ts";
import { UserError } from "../lib/errors.ts";
import { readJsonl } from "../lib/run/jsonl.ts";
import type { MetricRecord, RolloutRecord } from "../lib/run/records.ts";
import { dataSpec, testWorld, WORLD_SPEC } from "./data_helpers.ts";
import { withTinyRun } from "./helpers_cli.ts";

const FAR_TO_NEAR: NegativePoint[] = [
  { step: 0, far: 1, climate: 0, near: 0 },
  { step: 3, far: 0, climate: 0, near: 1 },
];

Deno.test("negativesAt: the first mix before the first point, linear between points, the last after", () => {
  const pts: NegativePoint[] = [
    { step: 10, far: 1, climate: 0, near: 0 },
    { step: 20, far: 0, climate: 0.5, near: 0.5 },
    { step: 40, far: 0, climate: 0, near: 1 },
  ];
  assertEquals(negativesAt(pts, 0), { far: 1, climate: 0, near: 0 });
  assertEquals(negativesAt(pts, 10), { far: 1, climate: 0, near: 0 });
  assertEquals(negativesAt(pts, 15), { far: 0.5, climate: 0.25, near: 0.25 });
  assertEquals(negativesAt(pts, 20), { far: 0, climate: 0.5, near: 0.5 });
  assertEquals(negativesAt(pts, 30), { far: 0, climate: 0.25, near: 0.75 });
  assertEquals(negativesAt(pts, 40), { far: 0, climate: 0, near: 1 });
  assertEquals(negativesAt(pts, 1e6), { far: 0, climate: 0, near: 1 });
  // One point: a fixed mix for the whole stage.
  assertEquals(negativesAt([{ step: 0, far: 0, climate: 1, near: 0 }], 7), { far: 0, climate: 1, near: 0 });
});

Deno.test("sampler: a tier mix sets train pairing negatives only; val and test examples are unchanged", async () => {
  const world = await testWorld();
  const s = createTaskSampler(world, dataSpec(), WORLD_SPEC, { noImages: true });
  const negTiers = (tiers: string[]) => tiers.filter((t) => t !== "match");
  for (const tier of ["far", "climate", "near"] as const) {
    const mix = { far: 0, climate: 0, near: 0, [tier]: 1 };
    for (const e of s.examples("pairing", "train", 0, 20, mix)) {
      assertEquals(negTiers(e.pairing!.tiers), [tier, tier, tier], e.id);
    }
  }
  // Without a mix, data.negatives (about a third each) gives every tier over 20 examples.
  const mixed = new Set(s.examples("pairing", "train", 0, 20).flatMap((e) => negTiers(e.pairing!.tiers)));
  assertEquals(mixed, new Set(["far", "climate", "near"]));
  const allFar = { far: 1, climate: 0, near: 0 };
  for (const split of ["val", "test"] as const) {
    const plain = s.examples("pairing", split, 0, 12);
    const asked = s.examples("pairing", split, 0, 12, allFar);
    assertEquals(asked.map((e) => e.pairing), plain.map((e) => e.pairing), split);
    assert(plain.some((e) => e.pairing!.tiers.includes("near")), `${split} keeps its near negatives`);
  }
});

async function rejectsWith(p: Promise<unknown>, message: string): Promise<void> {
  await assertRejects(p, (e: unknown) => {
    assert(e instanceof UserError, `expected UserError, got ${e}`);
    assertEquals(e.message, message);
    return true;
  });
}

Deno.test("spec: a tier schedule must sum to 1, increase in step and feed pairing prompts", async () => {
  const set = (v: unknown) => `stages.grpo.negatives=${JSON.stringify(v)}`;
  const ok = await loadSpec(join(EXPERIMENTS_DIR, "geo-r1-zero.json"), { sets: [set(FAR_TO_NEAR)] });
  assertEquals((ok.spec.stages.grpo as { negatives?: unknown }).negatives, FAR_TO_NEAR);
  const bad = set([{ step: 0, far: 0.5, climate: 0, near: 0 }, { step: 0, far: 0, climate: 0, near: 1 }]);
  await rejectsWith(
    loadSpec(join(EXPERIMENTS_DIR, "geo-r1-zero.json"), { sets: [bad] }),
    `2 problems in the experiment spec:\n` +
      `  --set ${bad}: /stages/grpo/negatives/0: weights must sum to 1, got 0.5\n` +
      `  --set ${bad}: /stages/grpo/negatives/1/step: steps must increase: 0 after 0`,
  );
  await rejectsWith(
    loadSpec(join(EXPERIMENTS_DIR, "geo-r1-geoloc.json"), { sets: [set(FAR_TO_NEAR)] }),
    `--set ${
      set(FAR_TO_NEAR)
    }: /stages/grpo/negatives: has no effect: the stage's tasks give pairing no weight`,
  );
  // Supervised stages have no schedule (their pairing data follow data.negatives).
  await assertRejects(
    () =>
      loadSpec(join(EXPERIMENTS_DIR, "task-sft.json"), {
        sets: [`stages.sft.negatives=${JSON.stringify(FAR_TO_NEAR)}`],
      }),
    UserError,
    "/stages/sft",
  );
});

Deno.test("exp geo-r1-zero tiny with a far-to-near schedule: prompts and metrics follow it", async () => {
  await withTinyRun("geo-r1-zero", [`stages.grpo.negatives=${JSON.stringify(FAR_TO_NEAR)}`], async (run) => {
    const rolls = await readJsonl<RolloutRecord>(join(run, "rollouts.jsonl"));
    const negTiersAt = (step: number) =>
      new Set(rolls.filter((x) => x.step === step).flatMap((x) => x.tiers!.filter((t) => t !== "match")));
    assertEquals(negTiersAt(0), new Set(["far"]));
    assertEquals(negTiersAt(3), new Set(["near"]));
    const grpo = (await readJsonl<MetricRecord>(join(run, "metrics.jsonl"))).filter((m) => m.kind === "grpo");
    const at = (key: string) => grpo.map((m) => +(m[key] as number).toFixed(9));
    assertEquals(at("negatives/near"), [0, 0.333333333, 0.666666667, 1]);
    assertEquals(at("negatives/far"), [1, 0.666666667, 0.333333333, 0]);
    assertEquals(at("negatives/climate"), [0, 0, 0, 0]);
  });
});
