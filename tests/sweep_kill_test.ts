/**
 * SIGKILL of a running sweep, then a re-run: the sweep runs as a real subprocess (lib/cli/sweep.ts) with the
 * fake per-run command; it is killed with SIGKILL after its first run(s) finish. Checks: the killed sweep's
 * runs die with it (no orphan keeps writing), the re-run completes only the missing runs (finished runs are
 * not re-run: same manifest startedAt, one attempt), the interrupted run is resumed, and every run's
 * metrics.jsonl has each step exactly once and no torn line.
 */
import { join } from "node:path";
import { assert, assertEquals, assertOk } from "./assert.ts";
import type { SweepState } from "../lib/sweep/mod.ts";
import {
  fakeSweepArgs,
  metricSteps,
  processesWith,
  readJson,
  readState,
  sleep,
  smallSweep,
  survivorsAfterKill,
  sweepSubprocess,
  writeSweep,
} from "./sweep_helpers.ts";

/** lib/cli/sweep.ts on `path` with the fake per-run command and 2 workers. */
function sweepProcess(path: string, runsDir: string, env: Record<string, string>): Deno.ChildProcess {
  return sweepSubprocess("lib/cli/sweep.ts", fakeSweepArgs(path, runsDir), { env });
}

Deno.test({
  name: "sweep: SIGKILL mid-way, re-run completes only the missing runs, no duplicate or torn records",
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "sweep_kill_" });
    const runsDir = join(dir, "runs");
    const statePath = join(runsDir, "sweeps", "kill", "state.json");
    try {
      const path = await writeSweep(dir, smallSweep("kill"));
      const env = { FAKE_STEPS: "10", FAKE_STEP_MS: "120" };
      const child = sweepProcess(path, runsDir, env);
      // Wait until at least one run is done and another is in flight past its first checkpoint (step 2),
      // then SIGKILL the sweep process alone (not its process group).
      const until = Date.now() + 90_000;
      let st: SweepState | null = null;
      for (;;) {
        st = await readState(statePath);
        const done = st?.runs.filter((r) => r.status === "done").length ?? 0;
        let midway = 0;
        for (const r of st?.runs.filter((r) => r.status === "running") ?? []) {
          const n = (await metricSteps(r.runDir).catch(() => ({ steps: [] }))).steps.length;
          if (n >= 3 && n <= 7) midway++;
        }
        if (done >= 1 && midway >= 1) break;
        assertOk(Date.now() < until, "the sweep did not finish a run in time");
        await sleep(30);
      }
      child.kill("SIGKILL");
      const status = await child.status;
      assertEquals(status.signal, "SIGKILL");
      await child.stdout.cancel();
      await child.stderr.cancel();

      // The killed sweep's runs die with it (their wrappers watch a pipe from the sweep).
      const orphans = await survivorsAfterKill(runsDir);
      assertEquals(orphans, [], "no process of the killed sweep may survive");

      const killed = (await readState(statePath))!;
      const doneBefore = killed.runs.filter((r) => r.status === "done");
      assertOk(doneBefore.length >= 1 && doneBefore.length < 6, `done before the kill: ${doneBefore.length}`);
      const startedAt = new Map<string, string>();
      for (const r of doneBefore) {
        startedAt.set(r.runId, (await readJson(join(r.runDir, "manifest.json"))).startedAt as string);
      }
      const interrupted = killed.runs.filter((r) => r.status === "running");
      assertOk(interrupted.length >= 1, "a run was in flight when the sweep was killed");
      const stepsAtKill = new Map<string, number>();
      for (const r of interrupted) {
        stepsAtKill.set(r.runId, (await metricSteps(r.runDir).catch(() => ({ steps: [] }))).steps.length);
      }

      // Runs killed past their first checkpoint (one may have completed in the instant before the kill; it
      // is then skipped by the re-run, not resumed).
      const unfinishedAtKill = new Set<string>();
      for (const r of interrupted) {
        const m = await readJson(join(r.runDir, "manifest.json")).catch(() => null);
        if ((stepsAtKill.get(r.runId) ?? 0) >= 3 && m?.status !== "done") unfinishedAtKill.add(r.runId);
      }

      // Re-run to completion.
      const again = sweepProcess(path, runsDir, env);
      const out = await again.output();
      const stderr = new TextDecoder().decode(out.stderr);
      assertEquals(out.code, 0, stderr);
      const final = (await readState(statePath))!;
      assertEquals(final.runs.map((r) => r.status), Array(6).fill("done"));
      assertEquals(final.invocations.length, 2);
      for (const r of final.runs) {
        const { steps, torn } = await metricSteps(r.runDir);
        assertEquals(torn, 0, `${r.runId}: torn line`);
        assertEquals(steps, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], `${r.runId}: every step exactly once`);
        if (startedAt.has(r.runId)) {
          assertEquals((await readJson(join(r.runDir, "manifest.json"))).startedAt, startedAt.get(r.runId));
          assertEquals(r.attempts, 1, `${r.runId} finished before the kill and must not be re-run`);
          assertOk(!stderr.includes(`-> ${r.runId}`), `${r.runId} must not be started again`);
        }
      }
      // An interrupted run was resumed (not restarted): same startedAt lineage, a second attempt, "resuming".
      const resumed = interrupted.filter((r) => unfinishedAtKill.has(r.runId));
      assertOk(resumed.length >= 1, "a run was killed past its first checkpoint");
      for (const r of resumed) {
        const fin = final.runs.find((x) => x.runId === r.runId)!;
        assertEquals(fin.attempts, 2);
        assert.match(await Deno.readTextFile(join(r.runDir, "log.txt")), /resuming .* from step \d+/);
        assert.match(stderr, new RegExp(`-> ${r.runId} \\(resume\\)`));
      }
      assertEquals(processesWith(runsDir), []);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
