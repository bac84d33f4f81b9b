/**
 * Folder sources (data.source): the round trip GeoWorld -> `data export --format folder` -> tiny `exp` and
 * `eval` from the folder gives bit-identical records to the same rows held in memory (wasm), and every bad
 * folder stops with one line naming the file, line and column, leaving no run directory behind.
 */
import { join } from "node:path";
import { assert, assertEquals } from "./assert.ts";
import { cli } from "./helpers_cli.ts";
import { loadSpec, resolveExperimentPath } from "../lib/spec/load.ts";
import { openDataSource } from "../lib/data/source.ts";
import { geoworldRows } from "../lib/data/folder_export.ts";
import { readFolderRows, rowSetInMemory } from "../lib/data/folder_source.ts";
import { readJsonl } from "../lib/run/jsonl.ts";
import type { EvalFile, MetricRecord, StageEval } from "../lib/run/records.ts";

const PER_SPLIT = 6;
const NO_CAPTIONS = [
  "stages.base.tasks.caption=0",
  "stages.sft.tasks.caption=0",
  "stages.sft.tasks.scaffold=0",
];

/** Metrics without wall-clock fields. */
function stable(recs: MetricRecord[]): MetricRecord[] {
  const drop = new Set(["time", "step_time", "tokens_per_s", "generate_time"]);
  return recs.map((r) => Object.fromEntries(Object.entries(r).filter(([k]) => !drop.has(k))) as MetricRecord);
}

/** An eval row without its stage hash (the folder's and the in-memory rows' content hashes differ). */
function unhashed(row: StageEval): Omit<StageEval, "stageHash"> {
  const { stageHash: _, ...rest } = row;
  return rest;
}

async function exportRows(out: string): Promise<void> {
  const r = await cli([
    "data",
    "export",
    "--format",
    "folder",
    "--preset",
    "tiny",
    "--n",
    `${PER_SPLIT}`,
    "--out",
    out,
  ]);
  assertEquals(r.code, 0, r.err);
}

Deno.test("folder source: exported GeoWorld rows train and evaluate bit-identically to the same rows in memory", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "geo-r1-folder-" });
  try {
    const rows = join(tmp, "rows");
    await exportRows(rows);
    const sets = [`data.source={"pairing":"${rows}","geolocate":"${rows}/geolocate.csv"}`, ...NO_CAPTIONS];
    const { spec, hash } = await loadSpec(resolveExperimentPath("geo-r1"), { preset: "tiny", sets });

    // The folder read back: the same coordinates and pixels as rendering GeoWorld again.
    const fromFolder = await readFolderRows(
      spec.data.source as Exclude<typeof spec.data.source, "geoworld">,
      spec.world,
    );
    const geo = await openDataSource({ ...spec, data: { ...spec.data, source: "geoworld" } }, {
      stages: [],
      evalTasks: [],
    });
    const inMemory = geoworldRows(
      geo.world,
      geo.sampler,
      spec.world,
      PER_SPLIT,
      ["train", "val", "test"],
      spec.data.seed,
    );
    assertEquals(fromFolder.pairing.length, inMemory.length);
    fromFolder.pairing.forEach((r, i) => {
      assertEquals([r.lat, r.lon], [inMemory[i].lat, inMemory[i].lon]);
      assertEquals(r.ground.data, inMemory[i].ground.data);
      assertEquals(r.aerial!.data, inMemory[i].aerial!.data);
    });

    // exp from the folder, through the CLI.
    const runs = join(tmp, "runs");
    const r = await cli([
      "exp",
      "geo-r1",
      "--preset",
      "tiny",
      ...sets.flatMap((s) => ["--set", s]),
      "--runs-dir",
      runs,
      "--cache-dir",
      join(tmp, "cache"),
      "--reports-dir",
      join(tmp, "reports"),
    ]);
    assertEquals(r.code, 0, r.err);
    const run = join(runs, [...Deno.readDirSync(runs)][0].name);
    const folderEval = JSON.parse(await Deno.readTextFile(join(run, "eval.json"))) as EvalFile;

    // The same spec with the rows in memory, in this process.
    const { initBackend, tfjsVersion } = await import("../lib/backend.ts");
    const backend = await initBackend("wasm");
    const { buildManifest } = await import("../lib/run/manifest.ts");
    const { runExperiment } = await import("../lib/pipeline/run.ts");
    const memRun = join(tmp, "mem-run");
    await Deno.mkdir(memRun);
    const source = await openDataSource(
      spec,
      { stages: spec.pipeline, evalTasks: spec.eval.tasks },
      rowSetInMemory(inMemory),
    );
    // A GRPO stage's tier schedule reaches folder rows too: an all-far mix gives far training negatives;
    // evaluation examples ignore it.
    const allFar = { far: 1, climate: 0, near: 0 };
    const farTrain = source.sampler.examples("pairing", "train", 0, 8, allFar);
    assert(farTrain.every((e) => e.pairing!.tiers.every((t) => t === "match" || t === "far")));
    const tiersOf = (es: { pairing?: { tiers: string[] } }[]) => es.map((e) => e.pairing!.tiers);
    assertEquals(
      tiersOf(source.sampler.examples("pairing", "test", 0, 6, allFar)),
      tiersOf(source.sampler.examples("pairing", "test", 0, 6)),
    );
    const memEval = await runExperiment({
      spec,
      specHash: hash,
      runDir: memRun,
      manifest: await buildManifest({
        spec,
        specHash: hash,
        runId: "mem-run",
        backend,
        tfjsVersion: tfjsVersion(),
      }),
      cacheRoot: join(tmp, "mem-cache"),
      verbose: false,
      log: () => {},
      source,
    });
    assertEquals(folderEval.rows.map(unhashed), memEval.rows.map(unhashed));
    assertEquals(
      stable(await readJsonl<MetricRecord>(join(run, "metrics.jsonl"))),
      stable(await readJsonl<MetricRecord>(join(memRun, "metrics.jsonl"))),
    );
    const losses = (await readJsonl<MetricRecord>(join(run, "metrics.jsonl"))).filter((m) =>
      typeof m.loss === "number"
    );
    assert(losses.length >= 20, `${losses.length} training records compared`);
    // Tiers come from the rows' coordinates: exported neighbours give near negatives on the test split.
    const tiers = folderEval.rows[0].pairing!.byTier;
    assert((tiers.near?.n ?? 0) > 0, JSON.stringify(tiers));

    // eval of the folder-trained run equals its eval.json; --data evaluates every row of the folder.
    const own = join(tmp, "own");
    const e1 = await cli(["eval", run, "--out", own]);
    assertEquals(e1.code, 0, e1.err);
    const ownRow = (JSON.parse(await Deno.readTextFile(join(own, "eval.json"))) as EvalFile).rows[0];
    assertEquals(ownRow, folderEval.rows[folderEval.rows.length - 1]);
    const all = join(tmp, "all");
    const e2 = await cli([
      "eval",
      run,
      "--data",
      rows,
      "--tasks",
      "geolocate",
      "--n",
      `${3 * PER_SPLIT}`,
      "--out",
      all,
    ]);
    assertEquals(e2.code, 0, e2.err);
    const allSpec = JSON.parse(await Deno.readTextFile(join(all, "spec.resolved.json")));
    assertEquals(allSpec.data.source, { pairing: rows, geolocate: rows, split: "test" });
    assertEquals(
      (JSON.parse(await Deno.readTextFile(join(all, "eval.json"))) as EvalFile).rows[0].geolocate!.n,
      18,
    );
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

/** Rewrite pairs.csv of `dir` with `edit` applied to its lines (header first). */
async function editCsv(dir: string, edit: (lines: string[]) => string[]): Promise<void> {
  const p = join(dir, "pairs.csv");
  const lines = (await Deno.readTextFile(p)).trimEnd().split("\n");
  await Deno.writeTextFile(p, edit(lines).join("\n") + "\n");
}

Deno.test("folder source: bad folders stop with one line naming file, line and column, and write nothing", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "geo-r1-badfolder-" });
  try {
    const good = join(tmp, "good");
    await exportRows(good);
    const { spec } = await loadSpec(resolveExperimentPath("geo-r1"), { preset: "tiny" });
    const geo = await openDataSource(spec, { stages: [], evalTasks: [] });
    const csvLines = (await Deno.readTextFile(join(good, "pairs.csv"))).trimEnd().split("\n");
    const splitOfLine = (l: string) => {
      const [, , lat, lon] = l.split(",");
      return geo.sampler.splitOf(Number(lat), Number(lon));
    };
    const cases: { name: string; make(dir: string): Promise<void>; expect: RegExp }[] = [
      {
        name: "missing column",
        make: (d) => editCsv(d, (ls) => ls.map((l) => l.split(",").slice(0, 3).join(","))),
        expect: /pairs\.csv:1: missing column 'lon'/,
      },
      {
        name: "unreadable image",
        make: (d) => Deno.writeFile(join(d, "ground", "000003.png"), new TextEncoder().encode("not a png")),
        expect: /pairs\.csv:5: column ground_path: cannot decode image .*000003\.png/,
      },
      {
        name: "lat 91",
        make: (d) =>
          editCsv(d, (ls) => ls.map((l, i) => (i === 4 ? l.replace(/,[^,]*,([^,]*)$/, ",91,$1") : l))),
        expect: /pairs\.csv:5: column lat \(3\): "91" is not a latitude in \[-90, 90\]/,
      },
      {
        name: "duplicate rows",
        make: (d) => editCsv(d, (ls) => [...ls, ls[2]]),
        expect: new RegExp(
          `pairs\\.csv:${csvLines.length + 1}: column ground_path: duplicate row: .* line 3`,
        ),
      },
      {
        name: "an empty split",
        make: (d) => editCsv(d, (ls) => [ls[0], ...ls.slice(1).filter((l) => splitOfLine(l) !== "test")]),
        expect: /pairs\.csv: no rows in the test split \(rows per split: train 6, val 6, test 0;/,
      },
    ];
    for (const c of cases) {
      const dir = join(tmp, c.name.replaceAll(" ", "-"));
      await Deno.mkdir(dir);
      for (const sub of ["ground", "aerial"]) {
        await Deno.mkdir(join(dir, sub));
        for (const e of Deno.readDirSync(join(good, sub))) {
          await Deno.copyFile(join(good, sub, e.name), join(dir, sub, e.name));
        }
      }
      await Deno.copyFile(join(good, "pairs.csv"), join(dir, "pairs.csv"));
      await c.make(dir);
      const runs = join(tmp, `runs-${c.name}`);
      const r = await cli([
        "exp",
        "geo-r1",
        "--preset",
        "tiny",
        "--set",
        `data.source={"pairing":"${dir}"}`,
        ...NO_CAPTIONS.flatMap((s) => ["--set", s]),
        "--runs-dir",
        runs,
        "--cache-dir",
        join(tmp, `cache-${c.name}`),
      ]);
      assertEquals(r.code, 1, `${c.name}: ${r.err}`);
      const lines = r.err.trim().split("\n");
      assertEquals(lines.length, 1, `${c.name}: ${r.err}`);
      assert(c.expect.test(lines[0]), `${c.name}: ${lines[0]}`);
      assertEquals(await exists(runs), false, `${c.name}: no run directory`);
      assertEquals(await exists(join(tmp, `cache-${c.name}`)), false, `${c.name}: no stage cache`);
    }
    // Captions need scene cues: a folder-fed stage that asks for them is a spec error (exit 2) naming both fields.
    const cap = await cli([
      "exp",
      "geo-r1",
      "--preset",
      "tiny",
      "--set",
      `data.source={"pairing":"${good}"}`,
      "--dry-run",
    ]);
    assertEquals(cap.code, 0, cap.err);
    const capRun = await cli([
      "exp",
      "geo-r1",
      "--preset",
      "tiny",
      "--set",
      `data.source={"pairing":"${good}"}`,
      "--runs-dir",
      join(tmp, "cap"),
    ]);
    assertEquals(capRun.code, 2);
    assert(
      capRun.err.includes(
        "--set stages.base.tasks.caption=0 --set stages.sft.tasks.scaffold=0 --set stages.sft.tasks.caption=0",
      ),
      capRun.err,
    );
    assertEquals(await exists(join(tmp, "cap")), false);
    // A geolocation CSV alone cannot feed pairing.
    const noPairs = await cli([
      "exp",
      "geo-r1",
      "--preset",
      "tiny",
      "--set",
      `data.source={"geolocate":"${good}"}`,
      ...NO_CAPTIONS.flatMap((s) => ["--set", s]),
      "--runs-dir",
      join(tmp, "np"),
    ]);
    assertEquals(noPairs.code, 2);
    assert(
      /stages\.grpo\.tasks\.pairing asks for pairing examples, but data\.source names no pairing folder/.test(
        noPairs.err,
      ),
      noPairs.err,
    );
    // A schema error names the field.
    const bad = await cli([
      "exp",
      "geo-r1",
      "--preset",
      "tiny",
      "--set",
      `data.source={"pairs":"x"}`,
      "--dry-run",
    ]);
    assertEquals(bad.code, 2);
    assert(bad.err.includes("/data/source"), bad.err);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

async function exists(p: string): Promise<boolean> {
  try {
    await Deno.stat(p);
    return true;
  } catch {
    return false;
  }
}

Deno.test("folder source: images of any size and format are resized to the world's view shapes", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "geo-r1-anysize-" });
  try {
    const sharp = (await import("sharp")).default;
    const rows = ["ground_path,aerial_path,lat,lon"];
    for (let i = 0; i < 4; i++) {
      const colour = { r: 40 * i, g: 200 - 30 * i, b: 90 };
      // A 300x75 JPEG panorama and a 50x50 PNG tile with an alpha channel: sizes and formats a user's data has.
      await sharp({ create: { width: 300, height: 75, channels: 3, background: colour } }).jpeg()
        .toFile(join(tmp, `g${i}.jpg`));
      await sharp({ create: { width: 50, height: 50, channels: 4, background: { ...colour, alpha: 0.5 } } })
        .png()
        .toFile(join(tmp, `a${i}.png`));
      rows.push(`g${i}.jpg,a${i}.png,${45 + 3 * i},${5 + 4 * i}`);
    }
    await Deno.writeTextFile(join(tmp, "pairs.csv"), rows.join("\r\n") + "\r\n");
    const set = await readFolderRows({ pairing: tmp, split: "test" }, {
      groundShape: [32, 128],
      aerialSize: 32,
    });
    assertEquals(set.pairing.length, 4);
    for (const r of set.pairing) {
      assertEquals([r.ground.width, r.ground.height, r.ground.data.length], [128, 32, 128 * 32 * 3]);
      assertEquals([r.aerial!.width, r.aerial!.height, r.aerial!.data.length], [32, 32, 32 * 32 * 3]);
    }
    // The solid colour survives the resize (JPEG within a few levels).
    assert(Math.abs(set.pairing[2].ground.data[0] - 80) <= 4, `${set.pairing[2].ground.data[0]}`);
    assertEquals(set.geolocate, set.pairing);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
