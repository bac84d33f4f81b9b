/**
 * The acceptance test of sweeps with the real per-run command: `main.ts sweep tiny-smoke` (6 runs of geo-r1
 * on the tiny preset, 2 workers) as a subprocess, SIGKILLed after its first run finishes, then re-run to
 * completion. Checks that the killed sweep's `exp` processes die with it, that the re-run completes only
 * the missing runs (finished runs keep their manifest startedAt and one attempt), that no run's
 * metrics.jsonl or rollouts.jsonl holds a torn line or a duplicated (stage, kind, step) record, that every
 * run has eval.json and report.html, and that the sweep report lists both cells.
 * Set GEO_R1_SKIP_SWEEP_E2E=1 to skip it (it trains 6 tiny models).
 */
import { join } from "node:path";
import { assertEquals, assertOk } from "./assert.ts";
import type { SweepState } from "../lib/sweep/mod.ts";
import { readJson, readState, ROOT, sleep, survivorsAfterKill, sweepSubprocess } from "./sweep_helpers.ts";

/** `main.ts sweep tiny-smoke` with 2 workers. */
function sweepProcess(runsDir: string): Deno.ChildProcess {
  return sweepSubprocess("main.ts", ["sweep", "tiny-smoke", "--runs-dir", runsDir, "--workers", "2"]);
}

/** Lines of a JSONL file: count of torn lines and duplicated (stage, kind, step[, group, sample]) keys. */
async function jsonlCheck(path: string, keyOf: (r: Record<string, unknown>) => string) {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch {
    return { lines: 0, torn: 0, dups: [] as string[] };
  }
  const seen = new Set<string>();
  const dups: string[] = [];
  let torn = text.length && !text.endsWith("\n") ? 1 : 0;
  let lines = 0;
  for (const line of text.split("\n")) {
    if (!line) continue;
    lines++;
    let r: Record<string, unknown>;
    try {
      r = JSON.parse(line);
    } catch {
      torn++;
      continue;
    }
    const k = keyOf(r);
    if (seen.has(k)) dups.push(k);
    seen.add(k);
  }
  return { lines, torn, dups };
}

async function drain(p: Deno.ChildProcess): Promise<string> {
  const [o, e] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text()]);
  return o + e;
}

Deno.test({
  name: "sweep e2e: tiny-smoke (6 runs, 2 workers) with real exp, SIGKILL mid-way, re-run completes the rest",
  ignore: Deno.build.os !== "linux" || Deno.env.get("GEO_R1_SKIP_SWEEP_E2E") === "1",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    // Sweep runs get exactly exp's permissions: their runs dir must lie under the project's runs/.
    await Deno.mkdir(join(ROOT, "runs"), { recursive: true });
    const dir = await Deno.makeTempDir({ dir: join(ROOT, "runs"), prefix: ".sweep_e2e_" });
    const runsDir = join(dir, "runs");
    const statePath = join(runsDir, "sweeps", "tiny-smoke", "state.json");
    const children: Deno.ChildProcess[] = [];
    try {
      const child = sweepProcess(runsDir);
      children.push(child);
      const output = drain(child);
      const until = Date.now() + 480_000;
      let killedAfter: SweepState | null = null;
      for (;;) {
        const st = await readState(statePath);
        const done = st?.runs.filter((r) => r.status === "done").length ?? 0;
        const failed = st?.runs.filter((r) => r.status === "failed") ?? [];
        assertEquals(failed.map((r) => `${r.runId}: ${r.error}`), [], "a tiny run failed");
        if (done >= 1 && done < 6) {
          killedAfter = st;
          break;
        }
        const exited = await Promise.race([child.status.then(() => true), sleep(200).then(() => false)]);
        if (exited) throw new Error(`sweep exited before a run finished:\n${await output}`);
        assertOk(Date.now() < until, "no tiny run finished within 8 minutes");
      }
      child.kill("SIGKILL");
      await child.status;
      await output;
      const orphans = await survivorsAfterKill(runsDir);
      assertEquals(orphans, [], "the killed sweep's exp processes must die with it");

      const killed = (await readState(statePath))!;
      const doneBefore = killed.runs.filter((r) => r.status === "done");
      assertOk(doneBefore.length >= 1, JSON.stringify(killedAfter?.runs.map((r) => r.status)));
      const startedAt = new Map<string, string>();
      for (const r of doneBefore) {
        startedAt.set(r.runId, (await readJson(join(r.runDir, "manifest.json"))).startedAt as string);
      }

      const again = sweepProcess(runsDir);
      children.push(again);
      const [status, text] = await Promise.all([again.status, drain(again)]);
      assertEquals(status.code, 0, text);
      const final = (await readState(statePath))!;
      assertEquals(final.runs.length, 6);
      assertEquals(final.runs.map((r) => r.status), Array(6).fill("done"), text);
      for (const r of final.runs) {
        const m = await jsonlCheck(join(r.runDir, "metrics.jsonl"), (x) => `${x.stage}/${x.kind}/${x.step}`);
        assertEquals(m.torn, 0, `${r.runId}: torn metrics line`);
        assertEquals(m.dups, [], `${r.runId}: duplicated metrics records`);
        assertOk(m.lines > 0, `${r.runId}: metrics.jsonl is empty`);
        const ro = await jsonlCheck(
          join(r.runDir, "rollouts.jsonl"),
          (x) => `${x.stage}/${x.step}/${x.promptId}/${x.group}/${x.sample}`,
        );
        assertEquals(ro.torn, 0, `${r.runId}: torn rollouts line`);
        assertEquals(ro.dups, [], `${r.runId}: duplicated rollouts`);
        const ev = await readJson(join(r.runDir, "eval.json"));
        assertOk(Array.isArray(ev.rows) && ev.rows.length > 0);
        await Deno.stat(join(r.runDir, "report.html"));
        if (startedAt.has(r.runId)) {
          assertEquals((await readJson(join(r.runDir, "manifest.json"))).startedAt, startedAt.get(r.runId));
          assertEquals(r.attempts, 1, `${r.runId} finished before the kill and must not be re-run`);
          assertOk(!text.includes(`-> ${r.runId}`), `${r.runId} was started again`);
        }
      }
      const html = await Deno.readTextFile(join(runsDir, "sweeps", "tiny-smoke", "report.html"));
      assertOk(html.includes("groupSize=2") && html.includes("groupSize=4"));
      assertOk(html.includes("Pairing accuracy vs groupSize"));
    } finally {
      for (const c of children) {
        try {
          c.kill("SIGTERM"); // the sweep stops its runs and exits
          await c.status;
        } catch { /* already exited */ }
      }
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
