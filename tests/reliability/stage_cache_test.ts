/**
 * The stage cache never silently duplicates or drops records: a cached stage's files are checked against
 * what its `done.json` recorded before reuse (a deleted or cut metrics.jsonl re-runs the stage, saying so),
 * and a re-evaluation after an unreadable `eval-*.json` replaces the stage's test record instead of adding
 * a second one.
 */
import { join } from "node:path";
import { assert, assertEquals } from "../assert.ts";
import { exp, onlyRun, scratch } from "./helpers.ts";

interface Rec {
  stage: string;
  kind: string;
  step: number;
}

async function recs(path: string): Promise<Rec[]> {
  return (await Deno.readTextFile(path)).split("\n").filter((l) => l).map((l) => JSON.parse(l));
}

/** `exp base` into a fresh run dir over the same cache; returns stderr and the run's records. */
async function again(s: ReturnType<typeof scratch>) {
  await Deno.remove(s.runs, { recursive: true }).catch(() => {});
  const r = await exp(s, "base");
  assertEquals(r.code, 0, r.stderr);
  return { stderr: r.stderr, recs: await recs(join(await onlyRun(s.runs), "metrics.jsonl")) };
}

function assertComplete(rs: Rec[], what: string) {
  assertEquals(rs.filter((r) => r.kind === "pretrain").map((r) => r.step), [...Array(12).keys()], what);
  assertEquals(rs.filter((r) => r.kind === "test").length, 1, `${what}: one test record`);
  assertEquals(rs.length, 13, what);
}

Deno.test("reliability: a cached stage is verified against done.json; no record is appended twice", async (t) => {
  const tmp = await Deno.makeTempDir({ prefix: "geo-r1-rel-cache-" });
  try {
    const s = scratch(tmp);
    const first = await again(s);
    assertComplete(first.recs, "first run");
    const stage = await onlyRun(s.cache);
    const metrics = join(stage, "metrics.jsonl");
    const good = await Deno.readTextFile(metrics);

    await t.step("unreadable eval-*.json: re-evaluated, the test record replaced, not doubled", async () => {
      const evalFile = [...Deno.readDirSync(stage)].find((e) => /^eval-.*\.json$/.test(e.name))!.name;
      await Deno.writeTextFile(join(stage, evalFile), "{ not json");
      const r = await again(s);
      assertComplete(r.recs, "after re-evaluation");
      assertComplete(await recs(metrics), "stage metrics after re-evaluation");
    });
    await t.step("deleted metrics.jsonl: the stage is re-run with a warning naming the file", async () => {
      await Deno.remove(metrics);
      const r = await again(s);
      assert(r.stderr.includes(metrics) && /re-running/i.test(r.stderr), r.stderr);
      assertComplete(r.recs, "after a deleted metrics.jsonl");
    });
    await t.step("metrics.jsonl cut to its first lines: the stage is re-run", async () => {
      await Deno.writeTextFile(metrics, good.split("\n").slice(0, 3).join("\n") + "\n");
      const r = await again(s);
      assert(r.stderr.includes(metrics) && /re-running/i.test(r.stderr), r.stderr);
      assertComplete(r.recs, "after a cut metrics.jsonl");
    });
    await t.step("a verified cache is reused as is", async () => {
      const r = await again(s);
      assert(/stage base \[pretrain\] \w+: cached/.test(r.stderr) && !/re-running/.test(r.stderr), r.stderr);
      assertComplete(r.recs, "cached");
    });
  } finally {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
});
