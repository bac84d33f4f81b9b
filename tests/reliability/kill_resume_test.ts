/**
 * Crash safety and exact resume: `exp geo-r1 --preset tiny` (base -> sft -> grpo, eval, report) is killed
 * at chosen points (fault hook GEO_R1_FAULT: mid checkpoint write, torn JSONL line, between stages, inside
 * GRPO after a non-zero update, during eval, during the report) and at random points (SIGKILL after a seeded number of log lines + delay); what
 * is on disk right after the kill must be consistent (every checkpoint verifies, every JSON parses, at most a
 * torn last JSONL line and orphaned temp files), and `--resume` must finish with metrics, rollouts, eval.json
 * and final weights identical to an uninterrupted run, with no torn line or temp file left behind.
 */
import { join } from "node:path";
import { assert, assertEquals } from "../assert.ts";
import {
  exp,
  expKilled,
  finalWeights,
  onlyRun,
  records,
  scratch,
  snapshotProject,
  treeProblems,
} from "./helpers.ts";

const NAME = "geo-r1";

interface Outcome {
  metrics: Record<string, unknown>[];
  rollouts: Record<string, unknown>[];
  evalJson: unknown;
  weights: Record<string, string>;
}

async function outcome(s: ReturnType<typeof scratch>): Promise<Outcome> {
  const run = await onlyRun(s.runs);
  return {
    metrics: await records(join(run, "metrics.jsonl")),
    rollouts: await records(join(run, "rollouts.jsonl")),
    evalJson: JSON.parse(await Deno.readTextFile(join(run, "eval.json"))),
    weights: await finalWeights(s.cache),
  };
}

function compare(got: Outcome, want: Outcome, what: string) {
  assertEquals(got.metrics.length, want.metrics.length, `${what}: number of metric records`);
  got.metrics.forEach((m, i) => assertEquals(m, want.metrics[i], `${what}: metrics.jsonl record ${i + 1}`));
  assertEquals(got.rollouts, want.rollouts, `${what}: rollouts.jsonl`);
  assertEquals(got.evalJson, want.evalJson, `${what}: eval.json`);
  assertEquals(got.weights, want.weights, `${what}: final weights (sha256 of model.safetensors)`);
}

/** mulberry32, for the random kill points. */
function rng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

Deno.test("reliability: kill -9 at any point, then --resume gives the uninterrupted run's results", async (t) => {
  const tmp = await Deno.makeTempDir({ prefix: "geo-r1-rel-kill-" });
  try {
    // A private copy of the sources: other work in a shared tree must not change code version or commit.
    const src = await snapshotProject(tmp);
    const ref = scratch(join(tmp, "ref"), src);
    const r = await exp(ref, NAME);
    assertEquals(r.code, 0, r.stderr);
    assertEquals(await treeProblems(ref.base), []);
    const want = await outcome(ref);
    const refLines = r.stderr.trimEnd().split("\n").length;
    assert(want.metrics.length > 20 && want.rollouts.length > 0);
    // The tiny GRPO stage really updates before its first checkpoint (step 2), so resuming from it restores
    // changed weights and non-zero optimiser moments, not only a step count.
    const grpoNorms = want.metrics.filter((m) => m.kind === "grpo").map((m) => m.grad_norm as number);
    assert(grpoNorms.slice(0, 2).some((g) => g > 0), `tiny GRPO grad norms before step 2: ${grpoNorms}`);

    // Fault-hook crash points (exit 137 exactly there, no unwinding), in pipeline order.
    const faults: [string, string][] = [
      [
        "mid checkpoint write: base step-6 weights written, not renamed",
        "crash:step-00000006/model.safetensors",
      ],
      ["torn eval metrics line after eval-*.json was written (base)", "torn:metrics.jsonl:13"],
      ["between stages: sft final written, done.json not yet", "crash:done.json:2"],
      ["torn rollout line mid GRPO (step 1)", "torn:rollouts.jsonl:9"],
      // The first step-4 checkpoint is SFT's, the second GRPO's: resume from GRPO step 2, after an update.
      ["mid GRPO checkpoint write after a real update", "crash:step-00000004/model.safetensors:2"],
      ["during report writing", "crash:report.html"],
    ];
    const trials: { name: string; run: () => Promise<void> }[] = faults.map(([what, fault]) => ({
      name: `fault ${fault}: ${what}`,
      run: async () => {
        const s = scratch(join(tmp, fault.replace(/[^a-z0-9]+/gi, "_")), src);
        const a = await exp(s, NAME, [], { GEO_R1_FAULT: fault });
        assertEquals(a.code, 137, `the fault did not fire:\n${a.stderr}`);
        assert(a.stderr.includes("GEO_R1_FAULT: simulated crash"), a.stderr);
        assertEquals(
          await treeProblems(s.base, { allowTorn: true, allowTmp: true }),
          [],
          "state after crash",
        );
        const b = await exp(s, NAME, ["--resume"]);
        assertEquals(b.code, 0, b.stderr);
        assertEquals(await treeProblems(s.base), [], "state after resume");
        compare(await outcome(s), want, fault);
      },
    }));
    // Real SIGKILLs at seeded random points (anywhere from startup to the report).
    for (const seed of [1, 2]) {
      const rand = rng(seed);
      const after = 1 + Math.floor(rand() * (refLines - 1));
      const delay = Math.floor(rand() * 400);
      trials.push({
        name: `SIGKILL seed ${seed}: after ${after} of ${refLines} log lines + ${delay} ms`,
        run: async () => {
          const s = scratch(join(tmp, `kill-${seed}`), src);
          const k = await expKilled(s, NAME, after, delay);
          assertEquals(await treeProblems(s.base, { allowTorn: true, allowTmp: true }), [], "after kill");
          const b = await exp(s, NAME, ["--resume"]);
          assertEquals(b.code, 0, `resume (killed=${k.killed}, last line: ${k.lines.at(-1)}):\n${b.stderr}`);
          assertEquals(await treeProblems(s.base), [], "state after resume");
          compare(await outcome(s), want, `seed ${seed}`);
        },
      });
    }
    // Two at a time (each trial is mostly one single-threaded process), reported one step each.
    const results = new Map<string, unknown>();
    let next = 0;
    const worker = async () => {
      while (next < trials.length) {
        const tr = trials[next++];
        results.set(tr.name, await tr.run().then(() => null, (e) => e));
      }
    };
    await Promise.all([worker(), worker()]);
    for (const tr of trials) {
      await t.step(tr.name, () => {
        const e = results.get(tr.name);
        if (e) throw e;
      });
    }
  } finally {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
});
