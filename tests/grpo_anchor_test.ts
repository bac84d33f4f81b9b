/**
 * The label-free anchor (`stages.<grpo>.anchor`): the spec's checks, and a tiny `exp` whose anchor prompts
 * are sampled, never scored, measured by their KL to the stage's starting policy, and whose tasks the
 * in-stage validation follows.
 */
import { assert, assertEquals, assertRejects } from "./assert.ts";
import { join } from "node:path";
import { loadSpec } from "../lib/spec/load.ts";
import { EXPERIMENTS_DIR } from "../lib/spec/mod.ts";
import { UserError } from "../lib/errors.ts";
import { readJsonl } from "../lib/run/jsonl.ts";
import type { EvalFile, MetricRecord, RolloutRecord } from "../lib/run/records.ts";
import { withTinyRun } from "./helpers_cli.ts";

const ANCHOR = { tasks: { geoqa: 1, geolocate: 1 }, promptsPerStep: 3, beta: 1 };
const set = (v: unknown) => `stages.grpo.anchor=${JSON.stringify(v)}`;
const zero = join(EXPERIMENTS_DIR, "geo-r1-zero.json");

Deno.test("spec: an anchor names tasks with some weight and a positive beta, in a GRPO stage only", async () => {
  const ok = await loadSpec(zero, { sets: [set(ANCHOR)] });
  assertEquals((ok.spec.stages.grpo as { anchor?: unknown }).anchor, ANCHOR);
  const plain = await loadSpec(zero, {});
  assert(plain.hash !== ok.hash, "the anchor is in the spec hash");
  assertEquals("anchor" in plain.spec.stages.grpo, false);
  const none = set({ ...ANCHOR, tasks: { geoqa: 0 } });
  await assertRejects(
    () => loadSpec(zero, { sets: [none] }),
    UserError,
    `--set ${none}: /stages/grpo/anchor/tasks: weights must not all be 0`,
  );
  await assertRejects(
    () => loadSpec(zero, { sets: [set({ ...ANCHOR, beta: 0 })] }),
    UserError,
    "/stages/grpo/anchor/beta",
  );
  await assertRejects(
    () =>
      loadSpec(join(EXPERIMENTS_DIR, "task-sft.json"), {
        sets: [`stages.sft.anchor=${JSON.stringify(ANCHOR)}`],
      }),
    UserError,
    "/stages/sft",
  );
});

Deno.test("geo-r1-anchored and geo-r1-zero-anchored are the recipe's experiments plus the anchor", async () => {
  const recipeAnchor = { tasks: { geoqa: 1, geolocate: 1 }, promptsPerStep: 2, beta: 1 };
  for (const name of ["geo-r1", "geo-r1-zero"]) {
    const named = await loadSpec(join(EXPERIMENTS_DIR, `${name}-anchored.json`), { preset: "small" });
    const set_ = await loadSpec(join(EXPERIMENTS_DIR, `${name}.json`), {
      preset: "small",
      sets: [set(recipeAnchor)],
    });
    const { name: n1, description: _d1, ...a } = named.spec;
    const { name: n2, description: _d2, ...b } = set_.spec;
    assertEquals([n1, n2], [`${name}-anchored`, name]);
    assertEquals(a, b, `${name}-anchored is ${name} with the anchor, field for field`);
  }
});

Deno.test("exp geo-r1-zero-anchored tiny on two replicas: anchors unscored, their KL recorded", async () => {
  // Three anchor prompts (the experiment's two, overridden) after two pairing prompts: the first replica's
  // shard holds both layouts.
  const sets = ["stages.grpo.anchor.promptsPerStep=3", "stages.grpo.replicas=2"];
  await withTinyRun("geo-r1-zero-anchored", sets, async (run) => {
    // The row says which Zero it is: the table keeps it apart from the recipe's.
    const ev: EvalFile = JSON.parse(await Deno.readTextFile(join(run, "eval.json")));
    assertEquals(ev.rows.map((r) => r.label), ["Base", "Geo-R1-Zero + anchor"]);
    // Only the scored (pairing) prompts' rollouts are recorded: anchors have no reward to record.
    const rolls = await readJsonl<RolloutRecord>(join(run, "rollouts.jsonl"));
    assert(rolls.length > 0);
    assertEquals(new Set(rolls.map((x) => x.promptId.split("/")[0])), new Set(["pairing"]));
    const grpo = (await readJsonl<MetricRecord>(join(run, "metrics.jsonl"))).filter((m) => m.kind === "grpo");
    assert(grpo.length >= 2, `${grpo.length} GRPO steps`);
    const kl = grpo.map((m) => m["anchor/kl"] as number);
    // Step 0 samples from the reference itself (KL 0 up to float noise); after updates the policy has moved.
    assert(Math.abs(kl[0]) < 1e-5, `anchor KL at step 0: ${kl[0]}`);
    assert(kl[kl.length - 1] > 1e-7, `anchor KL at the last step: ${kl[kl.length - 1]}`);
    for (const m of grpo) assert((m["anchor/completions/mean_length"] as number) > 0, `step ${m.step}`);
    // The in-stage validation follows the anchored tasks too, not only the rewarded one.
    const val = (await readJsonl<MetricRecord>(join(run, "metrics.jsonl"))).filter((m) => m.kind === "eval");
    assert(val.length >= 2, `${val.length} in-stage evaluations`);
    for (
      const key of ["eval/val_pairing/accuracy", "eval/val_geoqa/accuracy", "eval/val_geolocate/acc@2500km"]
    ) {
      assert(val.every((m) => typeof m[key] === "number"), `${key} in every in-stage evaluation`);
    }
  });
});
