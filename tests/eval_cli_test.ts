/**
 * `eval` through the CLI on the tiny preset: evaluating a finished run on its own test set gives exactly
 * the row of its eval.json, and on the validation split what its in-stage validation logged; another world
 * seed gives another test set; nothing is written into the run;
 * bad usage stops with one line and exit code 2.
 */
import { join } from "node:path";
import { assert, assertEquals } from "./assert.ts";
import type { EvalFile } from "../lib/run/records.ts";
import { cli, denoRun, ROOT, snapshot } from "./helpers_cli.ts";

function readEval(dir: string): EvalFile {
  return JSON.parse(Deno.readTextFileSync(join(dir, "eval.json")));
}

Deno.test("eval: a tiny run on its test set equals its eval.json, on validation its in-stage log; world 8 differs", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "geo-r1-eval-" });
  try {
    const runs = join(tmp, "runs");
    const cache = join(tmp, "cache");
    const r = await cli([
      "exp",
      "geo-r1",
      "--preset",
      "tiny",
      "--runs-dir",
      runs,
      "--cache-dir",
      cache,
      "--reports-dir",
      join(tmp, "reports"),
    ]);
    assertEquals(r.code, 0, r.err);
    const run = join(runs, [...Deno.readDirSync(runs)][0].name);
    const before = [...await snapshot(run), ...await snapshot(cache)];

    const own = join(tmp, "own");
    const e1 = await cli(["eval", run, "--out", own]);
    assertEquals(e1.code, 0, e1.err);
    const runRows = readEval(run).rows;
    const ownRows = readEval(own).rows;
    assertEquals(ownRows.length, 1);
    // The whole row: metrics, CIs, per-tier counts, gallery completions and image names.
    assertEquals(ownRows[0], runRows[runRows.length - 1]);
    assert(/^Geo-R1\s/m.test(e1.out), e1.out);
    // Every example as the run's predictions.jsonl has it for that row.
    const preds = (dir: string) =>
      Deno.readTextFileSync(join(dir, "predictions.jsonl")).trim().split("\n").map((l) => JSON.parse(l));
    const ownPreds = preds(own);
    assert(ownPreds.length > 0);
    assertEquals(ownPreds, preds(run).filter((p) => p.label === "Geo-R1"));
    assert((await Deno.stat(join(own, "report.html"))).size > 10_000);
    for (const g of ownRows[0].gallery) {
      assert((await Deno.stat(join(own, g.groundPng ?? g.aerialPngs[0]))).size > 0);
    }

    // --stage picks another stage: its row of the run's table.
    const sft = join(tmp, "sft");
    const e2 = await cli(["eval", run, "--stage", "sft", "--out", sft]);
    assertEquals(e2.code, 0, e2.err);
    assertEquals(readEval(sft).rows[0], runRows.find((x) => x.stage === "sft"));

    // Another world: same example ids, other places, so other images.
    const w8 = join(tmp, "w8");
    const e3 = await cli([
      "eval",
      run,
      "--set",
      "world.seed=8",
      "--tasks",
      "pairing",
      "--n",
      "4",
      "--out",
      w8,
    ]);
    assertEquals(e3.code, 0, e3.err);
    const spec8 = JSON.parse(await Deno.readTextFile(join(w8, "spec.resolved.json")));
    assertEquals(spec8.world.seed, 8);
    const row8 = readEval(w8).rows[0];
    assertEquals(row8.pairing!.n, 4);
    assertEquals(row8.geolocate, undefined);
    const g7 = ownRows[0].gallery[0];
    const g8 = row8.gallery[0];
    assertEquals(g8.exampleId, g7.exampleId);
    const img7 = await Deno.readFile(join(own, g7.groundPng!));
    const img8 = await Deno.readFile(join(w8, g8.groundPng!));
    assert(img7.length !== img8.length || img7.some((b, i) => b !== img8[i]), "world 8 shows other places");

    // --split val: the validation split, where choices are made. The last stage's final weights on its first
    // evalN validation pairings give the accuracy its in-stage validation logged at the last step.
    const val = join(tmp, "val");
    const ev = await cli(["eval", run, "--split", "val", "--tasks", "pairing", "--n", "4", "--out", val]);
    assertEquals(ev.code, 0, ev.err);
    assert(ev.err.includes("(validation split)"), ev.err);
    const valRow = readEval(val).rows[0];
    const grpoDir = join(
      cache,
      JSON.parse(await Deno.readTextFile(join(run, "manifest.json"))).stages[2].hash,
    );
    const logged = Deno.readTextFileSync(join(grpoDir, "metrics.jsonl")).trim().split("\n").map((l) =>
      JSON.parse(l)
    ).filter((m) => m.kind === "eval" && m.stage === "grpo").at(-1);
    assertEquals(valRow.pairing!.n, 4);
    assertEquals(valRow.pairing!.accuracy, logged["eval/val_pairing/accuracy"]);
    assertEquals(valRow.pairing!.meanLength, logged["eval/val_pairing/mean_length"]);
    const testIds = new Set(ownRows[0].gallery.map((g) => g.exampleId));
    assert(
      valRow.gallery.every((g) => !testIds.has(g.exampleId)),
      "validation examples are not test examples",
    );
    assertEquals(JSON.parse(Deno.readTextFileSync(join(val, "manifest.json"))).evalOf.split, "val");
    // The results tables read an eval folder like a run, and say which split its rows come from.
    const tv = await denoRun(["run", "--allow-read", "tools/results_tables.ts", val]);
    assertEquals(tv.code, 0, tv.err);
    assert(tv.out.includes("pairing on the validation split (4 pairings, greedy)"), tv.out);
    assert(/^\| Geo-R1 \| [0-9.]+; [0-9.]+ \|/m.test(tv.out), tv.out);
    const mixed = await denoRun(["run", "--allow-read", "tools/results_tables.ts", val, run]);
    assert(mixed.code !== 0 && mixed.err.includes("different splits"), mixed.err);
    assert(Deno.readTextFileSync(join(val, "report.html")).includes("pairing on the validation split"));
    assert(Deno.readTextFileSync(join(own, "report.html")).includes("pairing on the test split"));

    // An existing --out is refused; --force replaces it.
    const again = await cli(["eval", run, "--tasks", "pairing", "--n", "2", "--out", own]);
    assertEquals(again.code, 2);
    assert(again.err.includes("already exists"), again.err);
    const forced = await cli(["eval", run, "--tasks", "pairing", "--n", "2", "--out", own, "--force"]);
    assertEquals(forced.code, 0, forced.err);
    assertEquals(readEval(own).rows[0].pairing!.n, 2);

    // Bad usage: one line, exit 2, nothing written.
    const inside = await cli(["eval", run, "--out", join(run, "ev")]);
    assertEquals(inside.code, 2);
    assert(/overlaps the evaluated run/.test(inside.err), inside.err);
    const model = await cli(["eval", run, "--set", "model.preset=small"]);
    assertEquals(model.code, 2);
    assert(/world\., data\. and eval\. fields only/.test(model.err), model.err);
    const stage = await cli(["eval", run, "--stage", "nope"]);
    assertEquals(stage.code, 2);
    assert(stage.err.includes("the run has stages base, sft, grpo"), stage.err);
    const tasks = await cli(["eval", run, "--tasks", "pairing,caption"]);
    assertEquals(tasks.code, 2);
    const shape = await cli(["eval", run, "--set", "world.aerialSize=64"]);
    assertEquals(shape.code, 2);
    assert(/world\.aerialSize is 64, but the model .* takes 32/.test(shape.err), shape.err);
    const split = await cli(["eval", run, "--split", "train"]);
    assertEquals(split.code, 2);
    assert(split.err.includes("--split must be test or val, got 'train'"), split.err);
    const notRun = await cli(["eval", tmp]);
    assertEquals(notRun.code, 2);
    assert(notRun.err.includes("neither a run directory"), notRun.err);
    for (const x of [inside, model, stage, tasks, shape, split, notRun]) {
      assertEquals(x.err.trim().split("\n").length, 1, x.err);
    }

    // A checkpoint directory as TARGET (world/data/eval from experiments/base.json, tiny eval size).
    const ckpt = join(
      cache,
      JSON.parse(await Deno.readTextFile(join(run, "manifest.json"))).stages[0].hash,
      "final",
    );
    const ck = join(tmp, "ck");
    const e4 = await cli(["eval", ckpt, "--tasks", "geoqa", "--n", "3", "--out", ck]);
    assertEquals(e4.code, 0, e4.err);
    assertEquals(readEval(ck).rows[0].geoqa!.n, 3);
    assertEquals(readEval(ck).rows[0].stage, "base");

    assertEquals(
      [...await snapshot(run), ...await snapshot(cache)],
      before,
      "the evaluated run is unchanged",
    );
    assertEquals([...Deno.readDirSync(tmp)].filter((e) => e.name.includes(".partial-")), []);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("eval: --help documents every option; the task's permissions are exp's", async () => {
  const h = await cli(["eval", "--help"]);
  assertEquals(h.code, 0);
  for (
    const o of ["--stage", "--tasks", "--n", "--split", "--data", "--set", "--out", "--force", "--backend"]
  ) {
    assert(h.out.includes(o), o);
  }
  const tasks = JSON.parse(await Deno.readTextFile(join(ROOT, "deno.json"))).tasks;
  const flags = (t: string) => t.split(" ").filter((f: string) => f.startsWith("--allow-"));
  const exp = flags(tasks.exp).filter((f: string) => !f.startsWith("--allow-write"));
  assertEquals(flags(tasks.eval).filter((f: string) => !f.startsWith("--allow-write")), exp);
  assert(flags(tasks.eval).includes("--allow-write=evals"), tasks.eval);
});
