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
import type { MetricRecord, RolloutRecord } from "../lib/run/records.ts";
import { withTinyRun } from "./helpers_cli.ts";

// Three anchor prompts after two pairing prompts: the first replica's shard would hold both layouts.
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

Deno.test("exp geo-r1-zero tiny with an anchor on two replicas: anchors unscored, their KL recorded", async () => {
  await withTinyRun("geo-r1-zero", [set(ANCHOR), "stages.grpo.replicas=2"], async (run) => {
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
