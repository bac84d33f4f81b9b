import { assert, assertEquals, assertRejects } from "./assert.ts";
import { join } from "node:path";
import { encodePng, imageToFloat } from "../lib/data/images.ts";
import { loadCrossView, loadGeolocateCsv, parseCsv } from "../lib/data/loaders.ts";
import { exportExamples } from "../lib/data/export.ts";
import { createTaskSampler } from "../lib/data/tasks.ts";
import { extractAnswer } from "../lib/data/cot.ts";
import { UserError } from "../lib/errors.ts";
import { dataSpec, testWorld, WORLD_SPEC } from "./data_helpers.ts";

function pattern(w: number, h: number, k: number) {
  return { width: w, height: h, data: new Uint8Array(w * h * 3).map((_, i) => (i * 7 + k * 31) % 256) };
}

/** A cross-view fixture folder: n ground/aerial PNG pairs and pairs.csv (extra CSV rows appended raw). */
async function crossViewFixture(n: number, extra = ""): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "geo-r1-cv-" });
  await Deno.mkdir(join(dir, "street"));
  await Deno.mkdir(join(dir, "sat"));
  const rows = ["ground_path,aerial_path,lat,lon"];
  for (let i = 0; i < n; i++) {
    await Deno.writeFile(join(dir, `street/${i}.png`), await encodePng(pattern(96, 24, i)));
    await Deno.writeFile(join(dir, `sat/${i}.png`), await encodePng(pattern(40, 40, i + 100)));
    rows.push(`street/${i}.png,sat/${i}.png,${40 + i * 0.1},${-100 + i}`);
  }
  await Deno.writeTextFile(join(dir, "pairs.csv"), rows.join("\n") + "\n" + extra);
  return dir;
}

Deno.test("loaders: cross-view CSV -> pairing examples at the spec's shapes, seeded negatives", async () => {
  const dir = await crossViewFixture(6);
  try {
    const opts = { worldSpec: WORLD_SPEC, seed: 3 };
    const ex = await loadCrossView(join(dir, "pairs.csv"), opts);
    assertEquals(ex.length, 6);
    for (const [i, e] of ex.entries()) {
      assertEquals([e.ground!.height, e.ground!.width], WORLD_SPEC.groundShape);
      assertEquals(e.aerial.length, 4);
      assertEquals(e.aerial[0].width, WORLD_SPEC.aerialSize);
      assertEquals(e.pairing!.tiers[e.pairing!.correct], "match");
      assertEquals(e.pairing!.candidates[e.pairing!.correct].lat, 40 + i * 0.1);
      assertEquals(extractAnswer(e.target), e.answer);
      assertEquals(new Set(e.pairing!.candidates.map((c) => c.id)).size, 4);
    }
    const again = await loadCrossView(join(dir, "pairs.csv"), opts);
    assertEquals(again.map((e) => e.answer), ex.map((e) => e.answer));
    const f = imageToFloat(ex[0].ground!);
    assertEquals(f.length, 32 * 128 * 3);
    assert(f.every((v) => v >= 0 && v <= 1));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loaders: a truncated image is rejected with an error naming the file", async () => {
  const dir = await crossViewFixture(5);
  try {
    const png = await Deno.readFile(join(dir, "sat/2.png"));
    await Deno.writeFile(join(dir, "sat/2.png"), png.slice(0, Math.floor(png.length / 2)));
    await assertRejects(
      () => loadCrossView(join(dir, "pairs.csv"), { worldSpec: WORLD_SPEC, seed: 1 }),
      (e: Error) => {
        assert(e instanceof UserError, String(e));
        assert(e.message.includes("sat/2.png"), e.message);
        assert(e.message.includes("pairs.csv:4"), e.message);
        assert(/truncated or corrupt/.test(e.message), e.message);
        return true;
      },
    );
    await Deno.remove(join(dir, "sat/2.png"));
    await assertRejects(
      () => loadCrossView(join(dir, "pairs.csv"), { worldSpec: WORLD_SPEC, seed: 1 }),
      (e: Error) => e instanceof UserError && /image not found: .*sat\/2\.png/.test(e.message),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loaders: bad coordinates name file, line and column", async () => {
  for (const [bad, col] of [["95,10", "lat"], ["NaN,10", "lat"], ["10,181", "lon"], ["10,", "lon"]]) {
    const dir = await crossViewFixture(4, `street/0.png,sat/0.png,${bad}\n`);
    try {
      await assertRejects(
        () => loadCrossView(join(dir, "pairs.csv"), { worldSpec: WORLD_SPEC, seed: 1 }),
        (e: Error) =>
          e instanceof UserError && e.message.includes("pairs.csv:6") &&
          e.message.includes(`column ${col}`) &&
          e.message.includes("street/0.png"),
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  }
});

Deno.test("loaders: IM2GPS3K-style CSV -> geolocate examples; missing column is named", async () => {
  const dir = await Deno.makeTempDir({ prefix: "geo-r1-im2gps-" });
  try {
    await Deno.writeFile(join(dir, "a.jpg.png"), await encodePng(pattern(50, 30, 1)));
    await Deno.writeTextFile(
      join(dir, "im2gps.csv"),
      'IMG_ID,AUTHOR,LAT,LON\n"a.jpg.png","x, y",48.8566,2.3522\n',
    );
    const ex = await loadGeolocateCsv(join(dir, "im2gps.csv"), { worldSpec: WORLD_SPEC });
    assertEquals(ex.length, 1);
    assertEquals(ex[0].answer, "48.86, 2.35");
    assertEquals(ex[0].ground!.width, 128);
    await Deno.writeTextFile(join(dir, "bad.csv"), "IMG_ID,LATITUDE\na.jpg.png,1\n");
    await assertRejects(
      () => loadGeolocateCsv(join(dir, "bad.csv"), { worldSpec: WORLD_SPEC }),
      (e: Error) => e instanceof UserError && /bad\.csv:1: missing column 'lon'/.test(e.message),
    );
    assertEquals(parseCsv('a,"b ""q""",c\r\n1,2,3').map((r) => r.cells), [["a", 'b "q"', "c"], [
      "1",
      "2",
      "3",
    ]]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("export: writes PNGs + metadata.jsonl; a failed export leaves nothing partial", async () => {
  const world = await testWorld();
  const s = createTaskSampler(world, dataSpec(), WORLD_SPEC);
  const parent = await Deno.makeTempDir({ prefix: "geo-r1-export-" });
  try {
    const out = join(parent, "pairs");
    const n = await exportExamples(s.examples("pairing", "test", 0, 3), out, { info: { task: "pairing" } });
    assertEquals(n, 3);
    const lines = (await Deno.readTextFile(join(out, "metadata.jsonl"))).trim().split("\n").map((l) =>
      JSON.parse(l)
    );
    assertEquals(lines.length, 3);
    for (const l of lines) {
      assertEquals(l.aerial.length, 4);
      for (const p of [l.ground, ...l.aerial]) assert((await Deno.stat(join(out, p))).size > 50, p);
      assertEquals(extractAnswer(l.target), l.answer);
    }
    assertEquals(JSON.parse(await Deno.readTextFile(join(out, "export.json"))).n, 3);
    // Existing output without force: refused; with force: replaced.
    await assertRejects(() => exportExamples([], out), UserError);
    // A failure mid-way: the target does not appear and no temp folder is left.
    const out2 = join(parent, "broken");
    await assertRejects(
      () =>
        exportExamples(s.examples("pairing", "test", 0, 4), out2, {
          onExample: (i) => {
            if (i === 2) throw new Error("boom");
          },
        }),
      /boom/,
    );
    const names = [...Deno.readDirSync(parent)].map((e) => e.name).sort();
    assertEquals(names, ["pairs"]);
    await exportExamples(s.examples("caption", "test", 0, 2), out, { force: true });
    assertEquals((await Deno.readTextFile(join(out, "metadata.jsonl"))).trim().split("\n").length, 2);
    assertEquals([...Deno.readDirSync(parent)].map((e) => e.name), ["pairs"]);
  } finally {
    await Deno.remove(parent, { recursive: true });
  }
});

Deno.test("data command: export and sheet through the Command; usage errors are UserErrors", async () => {
  const { dataCommand } = await import("../lib/cli/data.ts");
  const parent = await Deno.makeTempDir({ prefix: "geo-r1-datacmd-" });
  try {
    const out = join(parent, "x");
    assertEquals(await dataCommand.run({ task: "geoqa", n: "3", out, preset: "tiny" }, ["export"]), 0);
    assertEquals((await Deno.readTextFile(join(out, "metadata.jsonl"))).trim().split("\n").length, 3);
    const png = join(parent, "sheet.png");
    assertEquals(await dataCommand.run({ task: "pairing", n: "2", out: png, preset: "tiny" }, ["sheet"]), 0);
    assert((await Deno.stat(png)).size > 1000);
    await assertRejects(() => dataCommand.run({}, ["frobnicate"]), UserError);
    await assertRejects(() => dataCommand.run({ task: "nope" }, ["stats"]), UserError);
    await assertRejects(() => dataCommand.run({ n: "-1" }, ["stats"]), UserError);
    await assertRejects(
      () => dataCommand.run({}, ["export"]),
      (e: Error) => /--out is required/.test(e.message),
    );
  } finally {
    await Deno.remove(parent, { recursive: true });
  }
});
