/**
 * A corrupt checkpoint pointer (`ckpt/latest.json`) of an interrupted stage: `--resume` stops with one
 * line naming the file and how to recover, and leaves the stage's records untouched; once the pointer is
 * repaired the run resumes and ends with every record of the stage exactly once.
 */
import { join } from "node:path";
import { assert, assertEquals } from "../assert.ts";
import { exp, onlyRun, scratch } from "./helpers.ts";

Deno.test("reliability: a corrupt ckpt/latest.json is named with a recovery hint and loses no record", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "geo-r1-rel-ptr-" });
  try {
    const s = scratch(tmp);
    // Crash while writing the second checkpoint of the base stage (12 steps, a checkpoint every 6).
    const a = await exp(s, "base", [], { GEO_R1_FAULT: "crash:step-00000012/model.safetensors" });
    assertEquals(a.code, 137, a.stderr);
    const run = await onlyRun(s.runs);
    const stageDir = await onlyRun(s.cache);
    const pointer = join(stageDir, "ckpt", "latest.json");
    const metrics = join(stageDir, "metrics.jsonl");
    const good = await Deno.readTextFile(pointer);
    const before = await Deno.readTextFile(metrics);
    assert(before.split("\n").length > 6, before);

    await Deno.writeTextFile(pointer, '{"step": 6, "dir": "step-0000');
    const b = await exp(s, "base", ["--resume"]);
    assertEquals(b.code, 1, b.stderr);
    assert(b.stderr.includes(pointer), `the error names the file:\n${b.stderr}`);
    assert(/to recover/i.test(b.stderr), `the error says how to recover:\n${b.stderr}`);
    assert(!/\n\s+at /.test(b.stderr), `no stack trace:\n${b.stderr}`);
    assertEquals(await Deno.readTextFile(metrics), before, "the stage's metrics.jsonl is untouched");

    // A pointer to a checkpoint that does not exist is refused the same way.
    await Deno.writeTextFile(pointer, JSON.stringify({ step: 6, dir: "step-00000099" }));
    const c = await exp(s, "base", ["--resume"]);
    assertEquals(c.code, 1, c.stderr);
    assert(c.stderr.includes(pointer) && /to recover/i.test(c.stderr), c.stderr);
    assertEquals(await Deno.readTextFile(metrics), before);

    await Deno.writeTextFile(pointer, good);
    const d = await exp(s, "base", ["--resume"]);
    assertEquals(d.code, 0, d.stderr);
    const recs = (await Deno.readTextFile(join(run, "metrics.jsonl"))).trim().split("\n").map((l) =>
      JSON.parse(l)
    );
    assertEquals(recs.filter((r) => r.kind === "pretrain").map((r) => r.step), [...Array(12).keys()]);
    assertEquals(recs.filter((r) => r.kind === "test").length, 1);
    assertEquals(JSON.parse(await Deno.readTextFile(join(run, "manifest.json"))).status, "done");
  } finally {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
});
