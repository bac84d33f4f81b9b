/**
 * End-to-end pipeline tests on the tiny preset, through the CLI as a user runs it: stage records, the stage
 * cache shared across experiments (four-row table from siblings), determinism of metrics on wasm, and the
 * per-stage lock when two processes need the same stage at once.
 */
import { assert, assertEquals } from "./assert.ts";
import { join } from "node:path";
import type { EvalFile, Manifest, MetricRecord, RolloutRecord } from "../lib/run/records.ts";
import { readJsonl } from "../lib/run/jsonl.ts";

const ROOT = new URL("../", import.meta.url).pathname;

async function exp(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const cmd = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "main.ts", "exp", ...args],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  });
  const r = await cmd.output();
  return { code: r.code, out: new TextDecoder().decode(r.stdout), err: new TextDecoder().decode(r.stderr) };
}

async function onlyRunDir(runsDir: string): Promise<string> {
  const dirs: string[] = [];
  for await (const e of Deno.readDir(runsDir)) if (e.isDirectory) dirs.push(join(runsDir, e.name));
  assertEquals(dirs.length, 1, `expected one run dir in ${runsDir}: ${dirs}`);
  return dirs[0];
}

/** Metrics without wall-clock fields: what must be identical between two runs of one spec. */
function stable(recs: MetricRecord[]): MetricRecord[] {
  const drop = new Set(["time", "step_time", "tokens_per_s", "generate_time"]);
  return recs.map((r) => Object.fromEntries(Object.entries(r).filter(([k]) => !drop.has(k))) as MetricRecord);
}

Deno.test("pipeline: geo-r1 tiny trains base -> sft -> grpo, writes records, table and report", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "geo-r1-pipe-" });
  try {
    const cache = join(tmp, "cache");
    const r = await exp([
      "geo-r1",
      "--preset",
      "tiny",
      "--runs-dir",
      join(tmp, "runs"),
      "--cache-dir",
      cache,
    ]);
    assertEquals(r.code, 0, r.err);
    assert(/^Base\s/m.test(r.out) && /^Geo-SFT\s/m.test(r.out) && /^Geo-R1\s/m.test(r.out), r.out);
    const run = await onlyRunDir(join(tmp, "runs"));
    const manifest = JSON.parse(await Deno.readTextFile(join(run, "manifest.json"))) as Manifest;
    assertEquals(manifest.status, "done");
    assertEquals(manifest.stages.map((s) => [s.name, s.cached]), [["base", false], ["sft", false], [
      "grpo",
      false,
    ]]);
    const ev = JSON.parse(await Deno.readTextFile(join(run, "eval.json"))) as EvalFile;
    assertEquals(ev.rows.map((x) => x.label), ["Base", "Geo-SFT", "Geo-R1"]);
    for (const row of ev.rows) {
      assertEquals(row.pairing!.n, 8);
      assert(row.pairing!.accuracy >= 0 && row.pairing!.accuracy <= 1);
      const { namedMatchRate: named, answerFollowsMatch: follows } = row.pairing!;
      assert(named !== undefined && named >= 0 && named <= 1 && follows! >= 0 && follows! <= 1);
      assert(row.gallery.length > 0);
      for (const g of row.gallery) {
        assert((await Deno.stat(join(run, g.aerialPngs[0] ?? g.groundPng!))).size > 0);
      }
    }
    const metrics = await readJsonl<MetricRecord>(join(run, "metrics.jsonl"));
    const steps = (stage: string, kind: string) =>
      metrics.filter((m) => m.stage === stage && m.kind === kind).map((m) => m.step);
    assertEquals(steps("base", "pretrain"), Array.from({ length: 12 }, (_, i) => i));
    assertEquals(steps("sft", "sft"), Array.from({ length: 8 }, (_, i) => i));
    assertEquals(steps("grpo", "grpo"), [0, 1, 2, 3]);
    // In-stage validation (tiny: grpo evalEvery 2, evalN 4): before the first update, after 2, and at the end
    // (after 4; the test-split record at 4 is kind "test").
    const val = metrics.filter((m) =>
      m.stage === "grpo" && m.kind === "eval" && "eval/val_pairing/accuracy" in m
    );
    assertEquals(val.map((m) => m.step), [0, 2, 4]);
    for (const m of val) {
      const acc = m["eval/val_pairing/accuracy"] as number;
      assert(acc >= 0 && acc <= 1 && (m["eval/val_pairing/mean_length"] as number) > 0, JSON.stringify(m));
      assert(!("eval/val_geolocate/acc@1km" in m), "grpo trains pairing only: no geolocate validation");
    }
    assertEquals(steps("sft", "eval"), [], "sft evalEvery 0: no validation during the stage");
    for (const stage of ["base", "sft", "grpo"]) {
      assertEquals(steps(stage, "test"), [stage === "base" ? 12 : stage === "sft" ? 8 : 4], stage);
    }
    // stage/kind/step names one record (the sweep's resume check relies on it)
    const keys = metrics.map((m) => `${m.stage}/${m.kind}/${m.step}`);
    assertEquals(keys.length, new Set(keys).size);
    const g0 = metrics.find((m) => m.kind === "grpo")!;
    for (
      const k of [
        "reward",
        "accuracy",
        "completions/mean_length",
        "frac_reward_zero_std",
        "entropy",
        "grad_norm",
      ]
    ) {
      assert(typeof g0[k] === "number" && Number.isFinite(g0[k]), `grpo metric ${k}: ${g0[k]}`);
    }
    // Every rollout of every step: P * G per step (tiny: 2 prompts x 4 samples x 4 steps).
    const rollouts = await readJsonl<RolloutRecord>(join(run, "rollouts.jsonl"));
    assertEquals(rollouts.length, 2 * 4 * 4);
    assert((await Deno.stat(join(run, "report.html"))).size > 10_000);

    // A sibling experiment reuses the cached base and shows all four rows.
    const z = await exp([
      "geo-r1-zero",
      "--preset",
      "tiny",
      "--runs-dir",
      join(tmp, "runs0"),
      "--cache-dir",
      cache,
    ]);
    assertEquals(z.code, 0, z.err);
    const zrun = await onlyRunDir(join(tmp, "runs0"));
    const zm = JSON.parse(await Deno.readTextFile(join(zrun, "manifest.json"))) as Manifest;
    assertEquals(zm.stages.map((s) => [s.name, s.cached]), [["base", true], ["grpo", false]]);
    const zev = JSON.parse(await Deno.readTextFile(join(zrun, "eval.json"))) as EvalFile;
    assertEquals(zev.rows.map((x) => x.label), ["Base", "Geo-SFT", "Geo-R1-Zero", "Geo-R1"]);

    // Same spec + seed + backend, retrained from scratch: identical metrics and evaluation.
    const again = await exp([
      "geo-r1",
      "--preset",
      "tiny",
      "--runs-dir",
      join(tmp, "runs2"),
      "--cache-dir",
      join(tmp, "cache2"),
    ]);
    assertEquals(again.code, 0, again.err);
    const run2 = await onlyRunDir(join(tmp, "runs2"));
    assertEquals(stable(await readJsonl<MetricRecord>(join(run2, "metrics.jsonl"))), stable(metrics));
    const ev2 = JSON.parse(await Deno.readTextFile(join(run2, "eval.json"))) as EvalFile;
    assertEquals(
      ev2.rows.map((x) => [x.pairing, x.geolocate, x.geoqa]),
      ev.rows.map((x) => [x.pairing, x.geolocate, x.geoqa]),
    );
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("pipeline: two processes needing the same stage train it once (stage lock)", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "geo-r1-lock-" });
  try {
    const cache = join(tmp, "cache");
    const [a, b] = await Promise.all([
      exp(["geo-sft", "--preset", "tiny", "--runs-dir", join(tmp, "a"), "--cache-dir", cache]),
      exp(["geo-sft", "--preset", "tiny", "--runs-dir", join(tmp, "b"), "--cache-dir", cache]),
    ]);
    assertEquals([a.code, b.code], [0, 0], a.err + b.err);
    const cached: boolean[][] = [];
    for (const d of ["a", "b"]) {
      const m = JSON.parse(
        await Deno.readTextFile(join(await onlyRunDir(join(tmp, d)), "manifest.json")),
      ) as Manifest;
      cached.push(m.stages.map((s) => s.cached));
    }
    // Exactly one process trained each stage; the other found it cached.
    assertEquals(cached.map((c) => c.join()).sort(), ["false,false", "true,true"]);
    for await (const e of Deno.readDir(cache)) {
      if (!e.isDirectory) continue;
      const recs = await readJsonl<MetricRecord>(join(cache, e.name, "metrics.jsonl"));
      const keys = recs.map((r) => `${r.kind}/${r.step}`);
      assertEquals(new Set(keys).size, keys.length, `duplicate records in stage ${e.name}`);
    }
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
