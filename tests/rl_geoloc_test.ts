/**
 * Geolocation as an RL task: `geo-r1-geoloc` (GRPO on geolocation prompts, geodesic reward) and
 * `geo-r1-mixed` (pairing and geolocation prompts) run end to end on the tiny preset through the CLI, and
 * their reward weights score a geolocation completion as the spec says.
 */
import { assert, assertEquals } from "./assert.ts";
import { join } from "node:path";
import type { EvalFile, MetricRecord, RolloutRecord } from "../lib/run/records.ts";
import { readJsonl } from "../lib/run/jsonl.ts";
import { loadSpec } from "../lib/spec/load.ts";
import { EXPERIMENTS_DIR } from "../lib/spec/mod.ts";
import type { GrpoStageSpec } from "../lib/spec/types.ts";
import { combineRewards } from "../lib/reward/rewards.ts";
import { haversineKm } from "../lib/eval/geo.ts";
import type { Example } from "../lib/data/types.ts";

const ROOT = new URL("../", import.meta.url).pathname;

async function exp(args: string[]): Promise<{ code: number; err: string }> {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "main.ts", "exp", ...args],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: r.code, err: new TextDecoder().decode(r.stderr) };
}

async function runDirOf(runsDir: string, name: string): Promise<string> {
  for await (const e of Deno.readDir(runsDir)) {
    if (e.name.startsWith(`${name}-`)) return join(runsDir, e.name);
  }
  throw new Error(`no run of ${name} in ${runsDir}`);
}

Deno.test("geo-r1-geoloc and geo-r1-mixed tiny: GRPO on geolocation prompts with the geodesic reward", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "geo-r1-rlgeo-" });
  try {
    const dirs = ["--runs-dir", join(tmp, "runs"), "--cache-dir", join(tmp, "cache")];
    for (const name of ["geo-r1-geoloc", "geo-r1-mixed"]) {
      const r = await exp([name, "--preset", "tiny", "--backend", "wasm", ...dirs]);
      assertEquals(r.code, 0, r.err);
    }
    const geoloc = await runDirOf(join(tmp, "runs"), "geo-r1-geoloc");
    const mixed = await runDirOf(join(tmp, "runs"), "geo-r1-mixed");

    // geoloc: every rollout answers a geolocation prompt and carries the geodesic reward.
    const rolls = await readJsonl<RolloutRecord>(join(geoloc, "rollouts.jsonl"));
    assertEquals(rolls.length, 4 * 2 * 4); // tiny: 4 steps x 2 prompts x 4 samples
    assert(rolls.every((r) => r.promptId.startsWith("geolocate/train/")));
    assert(rolls.every((r) => typeof r.rewards.geodesic === "number" && r.rewards.geodesic >= 0));
    const grpo = (await readJsonl<MetricRecord>(join(geoloc, "metrics.jsonl"))).filter((m) =>
      m.kind === "grpo"
    );
    assertEquals(grpo.length, 4);
    assert(grpo.every((m) => typeof m["rewards/geodesic/mean"] === "number"));
    // In-stage validation decodes geolocation, the stage's task.
    const val = (await readJsonl<MetricRecord>(join(geoloc, "metrics.jsonl"))).filter((m) =>
      m.kind === "eval"
    );
    assert(val.length > 0 && val.every((m) => typeof m["eval/val_geolocate/acc@2500km"] === "number"));
    assert(val.every((m) => typeof m["eval/val_geolocate/parse_rate"] === "number"));
    assert(val.every((m) => typeof m["eval/val_geolocate/repetition_rate"] === "number"));
    assert(val.every((m) => (m["eval/val_geolocate/median_km"] as number) > 0));
    const ev: EvalFile = JSON.parse(await Deno.readTextFile(join(geoloc, "eval.json")));
    assertEquals(ev.rows.map((r) => r.label), ["Base", "Geo-SFT", "Geo-R1 (geolocate RL)"]);
    assert(
      ev.rows.every((r) => r.geolocate?.bootstrap === "cluster" && typeof r.geolocate.parseRate === "number"),
    );

    // mixed: each step is one task; both tasks occur; its own row label.
    const mixedRolls = await readJsonl<RolloutRecord>(join(mixed, "rollouts.jsonl"));
    const taskOfStep = new Map<number, Set<string>>();
    for (const r of mixedRolls) {
      const s = taskOfStep.get(r.step) ?? new Set();
      s.add(r.promptId.split("/")[0]);
      taskOfStep.set(r.step, s);
    }
    assert([...taskOfStep.values()].every((s) => s.size === 1), "one task per step");
    assertEquals(new Set([...taskOfStep.values()].flatMap((s) => [...s])), new Set(["pairing", "geolocate"]));
    const mixedEval: EvalFile = JSON.parse(await Deno.readTextFile(join(mixed, "eval.json")));
    assertEquals(mixedEval.rows.at(-1)?.label, "Geo-R1 (pairing+geolocate RL)");
    // The base and SFT stages are shared with geo-r1-geoloc through the stage cache.
    assertEquals(mixedEval.rows[0].stageHash, ev.rows[0].stageHash);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("geo-r1-geoloc's rewards: geodesic exp(-d / 2,500 km) in place of accuracy, the recipe's others", async () => {
  const { spec } = await loadSpec(join(EXPERIMENTS_DIR, "geo-r1-geoloc.json"));
  const base = (await loadSpec(join(EXPERIMENTS_DIR, "geo-r1.json"))).spec.stages.grpo as GrpoStageSpec;
  const gs = spec.stages.grpo as GrpoStageSpec;
  assertEquals(gs.tasks.geolocate, 1);
  assertEquals(gs.tasks.pairing, 0);
  assertEquals(gs.grpo.rewards, { ...base.grpo.rewards, accuracy: 0, geodesic: 1 });
  const ex = {
    task: "geolocate",
    answer: "48.86, 2.35",
    scene: { lat: 48.86, lon: 2.35 },
  } as unknown as Example;
  const d = haversineKm({ lat: 48.86, lon: 2.35 }, { lat: 51.5, lon: -0.13 });
  assertEquals(gs.grpo.geodesicTauKm, 2500);
  const opts = { tauKm: gs.grpo.geodesicTauKm };
  const r = combineRewards(
    "<think>red roofs: Europe</think><answer>51.5, -0.13</answer>",
    ex,
    gs.grpo.rewards,
    opts,
  );
  assert(Math.abs(r.parts.geodesic - Math.exp(-d / 2500)) < 1e-12, `${r.parts.geodesic}`);
  // The geodesic part moves the total by its weight: the same completion answering Paris exactly.
  const exact = combineRewards(
    "<think>red roofs: Europe</think><answer>48.86, 2.35</answer>",
    ex,
    gs.grpo.rewards,
    opts,
  );
  assert(Math.abs(exact.total - r.total - (1 - Math.exp(-d / 2500))) < 1e-9, `${exact.total} vs ${r.total}`);
  const bad = combineRewards("<think>x</think><answer>-1.3.4</answer>", ex, gs.grpo.rewards, opts);
  assertEquals(bad.parts.geodesic, 0); // the format holds, the answer does not parse: no geodesic reward
});
