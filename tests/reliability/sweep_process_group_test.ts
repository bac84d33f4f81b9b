/**
 * A sweep is as narrow and as killable as `exp`: the runs it starts get exactly the permissions of
 * `deno task exp` (deno.json), so a runs dir outside them is refused before any run starts; and SIGKILL of
 * the sweep's whole process group (what a terminal's job control or a batch system does) kills its runs
 * too, so an immediate re-run never resumes a run beside a live orphan.
 */
import { join } from "node:path";
import { assert, assertEquals, assertOk } from "../assert.ts";
import { defaultRunCommand, runSweep } from "../../lib/sweep/mod.ts";
import { UserError } from "../../lib/errors.ts";
import {
  fakeSweepArgs,
  processesWith,
  readState,
  sleep,
  smallSweep,
  survivorsAfterKill,
  sweepSubprocess,
  writeSweep,
} from "../sweep_helpers.ts";
import { taskFlags } from "./helpers.ts";

Deno.test("reliability: sweep-started runs get exactly exp's permissions", async () => {
  const cmd = defaultRunCommand();
  const expFlags = taskFlags("exp").filter((f) => f.startsWith("--allow-"));
  assertEquals(cmd.filter((a) => a.startsWith("--allow-")), expFlags);
  assertEquals(cmd.at(-1), "exp");

  // A runs dir outside exp's write grant is refused up front, naming it; nothing is started or written.
  const dir = await Deno.makeTempDir({ prefix: "geo-r1-rel-sweep-perm-" });
  try {
    const path = await writeSweep(dir, smallSweep("perm"));
    const runsDir = join(dir, "runs");
    const msg = await runSweep({ sweep: path, runsDir, reportsDir: null, log: () => {}, out: () => {} }).then(
      () => "accepted",
      (e) => (e instanceof UserError ? e.message : String(e)),
    );
    assert(msg.includes(runsDir) && /--runs-dir/.test(msg), msg);
    assertEquals([...Deno.readDirSync(dir)].map((e) => e.name), ["sweep.json"]);
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

Deno.test({
  name: "reliability: SIGKILL of a sweep's whole process group kills its runs",
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "geo-r1-rel-sweep-pg-" });
    const runsDir = join(dir, "runs");
    try {
      const path = await writeSweep(dir, smallSweep("pgkill"));
      // Its own process group, as a shell gives a job: the group id is the sweep's pid.
      const child = sweepSubprocess("lib/cli/sweep.ts", fakeSweepArgs(path, runsDir), {
        env: { FAKE_STEPS: "200", FAKE_STEP_MS: "50" },
        detached: true,
        quiet: true,
      });
      const statePath = join(runsDir, "sweeps", "pgkill", "state.json");
      const until = Date.now() + 60_000;
      for (;;) {
        const st = await readState(statePath);
        if ((st?.runs.filter((r) => r.status === "running").length ?? 0) >= 2) break;
        assertOk(Date.now() < until, "the sweep did not start two runs");
        await sleep(50);
      }
      await sleep(300);
      assert(processesWith(runsDir).length >= 2, "runs are alive before the kill");
      Deno.kill(-child.pid, "SIGKILL");
      await child.status;
      const orphans = await survivorsAfterKill(runsDir);
      assertEquals(orphans, [], "no run of the killed sweep may survive");
    } finally {
      for (const pid of processesWith(runsDir)) {
        try {
          Deno.kill(pid, "SIGKILL");
        } catch { /* gone */ }
      }
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
