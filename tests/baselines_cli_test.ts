/**
 * The baseline experiments (`geoclip`, `cells`, `nearest-prior`) through the CLI on the tiny preset: their
 * rows are scored on the same test views as the VLM rows, are reproducible, come from the stage cache on a
 * second run, and bad baseline specs fail with one message naming the field.
 */
import { assert, assertEquals } from "./assert.ts";
import { join } from "node:path";
import type { EvalFile, Manifest, MetricRecord } from "../lib/run/records.ts";
import { readJsonl } from "../lib/run/jsonl.ts";

const ROOT = new URL("../", import.meta.url).pathname;

async function exp(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "main.ts", "exp", ...args],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: r.code, out: new TextDecoder().decode(r.stdout), err: new TextDecoder().decode(r.stderr) };
}

async function runDirs(runsDir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(runsDir)) if (e.isDirectory) out.push(join(runsDir, e.name));
  return out.sort();
}

Deno.test("baselines tiny: one geolocation row each, same test views as the VLM rows, reproducible", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "geo-r1-baselines-" });
  try {
    const rows: Record<string, EvalFile["rows"][number]> = {};
    for (
      const [name, label] of [
        ["geoclip", "GeoCLIP-like"],
        ["cells", "Cells (ISN-like)"],
        ["nearest-prior", "Nearest prior"],
      ]
    ) {
      const runs = join(tmp, name);
      const cache = ["--cache-dir", join(tmp, "cache")];
      const dirs = ["--runs-dir", runs, ...cache];
      const r = await exp([name, "--preset", "tiny", "--backend", "wasm", ...dirs]);
      assertEquals(r.code, 0, r.err);
      assert(r.out.includes(label), r.out);
      const [dir] = await runDirs(runs);
      const ev: EvalFile = JSON.parse(await Deno.readTextFile(join(dir, "eval.json")));
      assertEquals(ev.rows.length, 1);
      const row = ev.rows[0];
      assertEquals(row.label, label);
      assertEquals(row.baseline, name);
      assertEquals(row.pairing, undefined);
      const g = row.geolocate!;
      assertEquals(g.n, 8); // tiny eval.n
      assertEquals(Object.keys(g.thresholds), ["1", "25", "200", "750", "2500"]);
      assertEquals(g.bootstrap, "cluster");
      assertEquals(g.parseRate, 1);
      assertEquals(g.errorsKm?.length, 8);
      assertEquals(g.galleryOracle?.n, 200);
      // Test views lie in held-out cells: no gallery (training) location is within 1 km of one.
      assertEquals(g.galleryOracle?.thresholds["1"], 0);
      const manifest: Manifest = JSON.parse(await Deno.readTextFile(join(dir, "manifest.json")));
      assertEquals(manifest.stages[0].cached, false);
      const metrics = await readJsonl<MetricRecord>(join(dir, "metrics.jsonl"));
      const test = metrics.filter((m) => m.kind === "test");
      assertEquals(test.length, 1);
      assert(typeof test[0].train_time_s === "number");
      const steps = name === "nearest-prior" ? 0 : 6;
      assertEquals(metrics.filter((m) => m.kind === "baseline").length, steps);
      assert(await Deno.stat(join(dir, "report.html")));
      rows[name] = row;

      // Again from the cache: same row, stage marked cached.
      const again = await exp([
        name,
        "--preset",
        "tiny",
        "--backend",
        "wasm",
        "--runs-dir",
        `${runs}-2`,
        ...cache,
      ]);
      assertEquals(again.code, 0, again.err);
      const [dir2] = await runDirs(`${runs}-2`);
      const m2: Manifest = JSON.parse(await Deno.readTextFile(join(dir2, "manifest.json")));
      assertEquals(m2.stages[0].cached, true);
      // Retrained without the cache: identical metrics (wasm is deterministic).
      const fresh = await exp([
        name,
        "--preset",
        "tiny",
        "--backend",
        "wasm",
        "--no-cache",
        "--runs-dir",
        `${runs}-3`,
        ...cache,
      ]);
      assertEquals(fresh.code, 0, fresh.err);
      const [dir3] = await runDirs(`${runs}-3`);
      const ev2: EvalFile = JSON.parse(await Deno.readTextFile(join(dir3, "eval.json")));
      assertEquals(ev2.rows[0], row);
    }
    // All three were scored on the same test views: the same cells in the same order.
    assertEquals(rows.geoclip.geolocate!.cells, rows.cells.geolocate!.cells);
    assertEquals(rows.cells.geolocate!.cells, rows["nearest-prior"].geolocate!.cells);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("baselines: a bad baseline spec exits 2 with one message naming the field, and writes nothing", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "geo-r1-baselines-bad-" });
  try {
    const dirs = ["--runs-dir", join(tmp, "runs"), "--cache-dir", join(tmp, "cache")];
    const cases: [string[], RegExp][] = [
      [
        ["cells", "--set", "stages.cells.cells.resolutionsDeg=[20,7]"],
        /\/stages\/cells\/cells\/resolutionsDeg: 20 is not a whole multiple/,
      ],
      [
        ["geoclip", "--set", "stages.geoclip.encoder.patchWidth=7"],
        /\/stages\/geoclip\/encoder\/patchWidth: 7 must divide the panorama width 128/,
      ],
      [
        ["geoclip", "--set", 'eval.tasks=["pairing"]'],
        /\/eval\/tasks: stage 'geoclip' is a geolocation baseline/,
      ],
      [
        ["nearest-prior", "--set", "stages.prior.method=knn"],
        /\/stages\/prior\/method: must be one of "geoclip", "cells", "nearest-prior"/,
      ],
      [["nearest-prior", "--set", "stages.prior.from=base"], /\/stages\/prior\/from: must be null/],
    ];
    for (const [args, want] of cases) {
      const r = await exp([...args, "--preset", "tiny", ...dirs]);
      assertEquals(r.code, 2, `${args.join(" ")}: ${r.err}`);
      assert(want.test(r.err), `${args.join(" ")}: ${r.err}`);
      assert(!r.err.includes("    at "), `no stack trace: ${r.err}`);
    }
    const made = await Deno.stat(join(tmp, "runs")).then(() => true, () => false);
    assertEquals(made, false, "no run directory for a refused spec");
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
