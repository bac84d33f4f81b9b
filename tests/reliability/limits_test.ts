/**
 * Absurd sizes are refused when the spec is resolved, before anything is created: every count, size and
 * weight of the experiment schema has an upper bound, and the CLI names the field and the bound.
 */
import { assert, assertEquals } from "../assert.ts";
import { cli } from "./helpers.ts";

Deno.test("reliability: absurd sizes (steps=1e308, eval.n=1e15, ...) are refused with the field and its bound", async () => {
  const cases: [string, string][] = [
    ["stages.base.steps=1e308", "/stages/base/steps"],
    ["eval.n=1e15", "/eval/n"],
    ["stages.base.batchSize=1000000000", "/stages/base/batchSize"],
    ["stages.grpo.grpo.groupSize=1e9", "/stages/grpo/grpo/groupSize"],
    ["stages.grpo.grpo.maxNewTokens=1e12", "/stages/grpo/grpo/maxNewTokens"],
    ["model.dModel=1e9", "/model/dModel"],
    ["stages.base.optim.lr=1e300", "/stages/base/optim/lr"],
    ["eval.bootstrap=1e12", "/eval/bootstrap"],
  ];
  for (const [set, field] of cases) {
    const r = await cli("exp", ["geo-r1", "--preset", "tiny", "--set", set, "--dry-run"]);
    assertEquals(r.code, 2, `${set}: ${r.stderr}`);
    assert(r.stderr.includes(field) && /must be <=/.test(r.stderr), `${set}: ${r.stderr}`);
    assertEquals(r.stdout, "", `${set}: no output`);
  }
  // The bounds leave room: the small preset's own sizes and a 10x longer stage resolve.
  const ok = await cli("exp", ["geo-r1", "--set", "stages.base.steps=10000", "--dry-run"]);
  assertEquals(ok.code, 0, ok.stderr);
});
