/**
 * The contact sheet and the data command's defaults as a user meets them: `data sheet` letters every
 * candidate and draws the frame legend; `data export|sheet|stats` look at the train split unless told.
 */
import { join } from "node:path";
import sharp from "sharp";
import { assert, assertEquals } from "./assert.ts";
import { contactSheet, SHEET_COLOURS } from "../lib/data/images.ts";
import { createTaskSampler } from "../lib/data/tasks.ts";
import { drawText, GLYPH_H, textWidth } from "../lib/data/glyphs.ts";
import type { RGBImage } from "../lib/world/types.ts";
import { dataSpec, testWorld, WORLD_SPEC } from "./data_helpers.ts";

function count(img: RGBImage, c: number[], y0 = 0, y1 = img.height, x0 = 0, x1 = img.width): number {
  let n = 0;
  for (let y = y0; y < y1; y++) {
    for (let x = x0; x < x1; x++) {
      const d = (y * img.width + x) * 3;
      if (img.data[d] === c[0] && img.data[d + 1] === c[1] && img.data[d + 2] === c[2]) n++;
    }
  }
  return n;
}

Deno.test("drawText draws the glyph of each letter, and distinct letters differently", () => {
  const blank = () => ({ width: 40, height: 10, data: new Uint8Array(40 * 10 * 3) });
  const a = blank(), b = blank();
  drawText(a, "A", 0, 0, 1, [255, 255, 255]);
  drawText(b, "B", 0, 0, 1, [255, 255, 255]);
  assertEquals(count(a, [255, 255, 255]), 18, "the 5x7 A has 18 ink pixels (counted by hand)");
  assert(count(b, [255, 255, 255]) > 0 && a.data.some((v, i) => v !== b.data[i]));
  assertEquals(textWidth("AB", 2), 24);
});

Deno.test("contact sheet: a legend of the four frame colours on top and a letter under each candidate", async () => {
  const sampler = createTaskSampler(await testWorld(), dataSpec(), WORLD_SPEC);
  const ex = sampler.examples("pairing", "train", 0, 1);
  const scale = 3;
  const sheet = contactSheet(ex, scale);
  const font = 2;
  const legendBottom = 6 * scale + GLYPH_H * font;
  for (const [tier, c] of Object.entries(SHEET_COLOURS)) {
    assert(count(sheet, c, 0, legendBottom) > 0, `legend swatch of ${tier}`);
  }
  const label = [230, 230, 230];
  assert(count(sheet, label, 0, legendBottom) > 100, "legend words");
  // Under the candidates: one letter per tile, in its own column band.
  const below = sheet.height - 6 * scale - (GLYPH_H + 3) * font;
  const tile = WORLD_SPEC.aerialSize * scale, pad = 6 * scale;
  for (let i = 0; i < ex[0].aerial.length; i++) {
    const x0 = pad + i * (tile + pad);
    assert(count(sheet, label, below, sheet.height, x0, x0 + tile) > 5, `letter ${"ABCD"[i]} under its tile`);
  }
});

Deno.test("data export, sheet and stats default to the train split", async () => {
  const { dataCommand } = await import("../lib/cli/data.ts");
  const parent = await Deno.makeTempDir({ prefix: "geo-r1-datasplit-" });
  const log = console.log;
  const printed: string[] = [];
  console.log = (...a: unknown[]) => printed.push(a.join(" "));
  try {
    const out = join(parent, "x");
    assertEquals(await dataCommand.run({ task: "pairing", n: "2", out, preset: "tiny" }, ["export"]), 0);
    const meta = (await Deno.readTextFile(join(out, "metadata.jsonl"))).trim().split("\n").map((l) =>
      JSON.parse(l)
    );
    assertEquals(meta.map((m) => m.split), ["train", "train"]);
    assertEquals(await dataCommand.run({ task: "pairing", n: "2", preset: "tiny" }, ["stats"]), 0);
    assertEquals(JSON.parse(printed.at(-1)!).split, "train");
    const png = join(parent, "s.png");
    assertEquals(await dataCommand.run({ task: "pairing", n: "1", out: png, preset: "tiny" }, ["sheet"]), 0);
    assert(printed.at(-1)!.includes("(train)"), printed.at(-1)!);
    assertEquals((await sharp(png).metadata()).format, "png");
  } finally {
    console.log = log;
    await Deno.remove(parent, { recursive: true });
  }
});
