/**
 * `data.coordTokens` as a user runs it, on the tiny preset: `exp geo-sft --set data.coordTokens=true` trains
 * and evaluates end to end, every stage checkpoint carries the `geo-r1-word-v2` tokenizer and a vocabulary
 * of its size, `eval` decodes with the checkpoint's own tokenizer, and a checkpoint whose tokenizer this
 * code does not know is refused in one line naming it, exit 2, nothing written.
 */
import { join } from "node:path";
import { assert, assertEquals } from "./assert.ts";
import type { EvalFile } from "../lib/run/records.ts";
import { COORD_TOKENIZER_TYPE, createTokenizer } from "../lib/data/tokenizer.ts";
import { cli } from "./helpers_cli.ts";

Deno.test("exp geo-sft with data.coordTokens=true: v2 tokenizer in every checkpoint; eval loads it", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "geo-r1-coord-" });
  try {
    const runs = join(tmp, "runs");
    const cache = join(tmp, "cache");
    const r = await cli([
      "exp",
      "geo-sft",
      "--preset",
      "tiny",
      "--set",
      "data.coordTokens=true",
      "--runs-dir",
      runs,
      "--cache-dir",
      cache,
      "--reports-dir",
      join(tmp, "reports"),
    ]);
    assertEquals(r.code, 0, r.err);
    const run = join(runs, [...Deno.readDirSync(runs)][0].name);
    const spec = JSON.parse(await Deno.readTextFile(join(run, "spec.resolved.json")));
    assertEquals(spec.data.coordTokens, true);
    const manifest = JSON.parse(await Deno.readTextFile(join(run, "manifest.json")));
    assertEquals(manifest.stages.map((s: { name: string }) => s.name), ["base", "sft"]);
    for (const st of manifest.stages) {
      const meta = JSON.parse(await Deno.readTextFile(join(cache, st.hash, "final", "model.json")));
      assertEquals(meta.tokenizer.type, COORD_TOKENIZER_TYPE, st.name);
      assertEquals(meta.config.vocabSize, createTokenizer({ coords: true }).vocabSize, st.name);
    }
    const ev: EvalFile = JSON.parse(await Deno.readTextFile(join(run, "eval.json")));
    assertEquals(ev.rows.map((x) => x.label), ["Base", "Geo-SFT"]);
    for (const row of ev.rows) assert(typeof row.geolocate?.parseRate === "number", row.label);

    const out = join(tmp, "ev");
    const e = await cli(["eval", run, "--tasks", "geolocate", "--n", "3", "--out", out]);
    assertEquals(e.code, 0, e.err);
    const own: EvalFile = JSON.parse(await Deno.readTextFile(join(out, "eval.json")));
    assertEquals(own.rows[0].geolocate!.n, 3);

    // A checkpoint whose tokenizer this code does not know: one line naming the tokenizer, exit 2.
    const sftHash = manifest.stages[1].hash;
    const bad = join(tmp, "bad");
    await Deno.mkdir(bad);
    for (const f of Deno.readDirSync(join(cache, sftHash, "final"))) {
      await Deno.copyFile(join(cache, sftHash, "final", f.name), join(bad, f.name));
    }
    const meta = JSON.parse(await Deno.readTextFile(join(bad, "model.json")));
    meta.tokenizer.type = "geo-r1-word-v9";
    await Deno.writeTextFile(join(bad, "model.json"), JSON.stringify(meta));
    const badOut = join(tmp, "bad-ev");
    const refused = await cli(["eval", bad, "--tasks", "geolocate", "--n", "2", "--out", badOut]);
    assertEquals(refused.code, 2, refused.err);
    assert(/tokenizer JSON: .*got type "geo-r1-word-v9"/.test(refused.err), refused.err);
    assertEquals(refused.err.trim().split("\n").filter((l) => !l.startsWith("eval ")).length, 1, refused.err);
    assertEquals([...Deno.readDirSync(tmp)].map((x) => x.name).filter((n) => n.includes("bad-ev")), []);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
