/**
 * Retired model switches (cue tokens, the grid aerial layout, aerial pooling, additive-only embeddings): a
 * checkpoint whose config needs one fails to load naming the flag, and a spec that still sets one is
 * rejected naming the field (also through `eval`, as a user meets it). A checkpoint of the shipped configs
 * saved with the flags' neutral values still loads.
 */
import { join } from "node:path";
import { assert, assertEquals, assertRejects } from "./assert.ts";
import { CharTokenizer, testConfig, useWasm } from "./helpers_model.ts";
import { createModel } from "../lib/model/vlm.ts";
import { loadCheckpoint, saveCheckpoint } from "../lib/model/checkpoint.ts";
import { displayPath, EXPERIMENTS_DIR, loadSpec } from "../lib/spec/mod.ts";
import { UserError } from "../lib/errors.ts";
import { cli } from "./helpers_cli.ts";

await useWasm();
const tok = new CharTokenizer();

/** A saved tiny checkpoint whose model.json config is edited by `edit`, as an older version wrote it. */
async function oldCheckpoint(edit: (cfg: Record<string, unknown>, vision: Record<string, unknown>) => void) {
  const dir = await Deno.makeTempDir({ prefix: "geo-r1-retired-" });
  const m = createModel(testConfig("tiny", 5));
  await saveCheckpoint(dir, m, { tokenizer: tok.toJSON() });
  m.dispose();
  const file = join(dir, "model.json");
  const meta = JSON.parse(await Deno.readTextFile(file));
  edit(meta.config, meta.config.vision);
  await Deno.writeTextFile(file, JSON.stringify(meta));
  return { dir, file };
}

async function loadFails(
  edit: (cfg: Record<string, unknown>, vision: Record<string, unknown>) => void,
  message: string,
): Promise<void> {
  const { dir, file } = await oldCheckpoint(edit);
  try {
    await assertRejects(() => loadCheckpoint(dir), (e: unknown) => {
      assert(e instanceof UserError, `expected UserError, got ${e}`);
      assertEquals(e.message, `${file}: config.${message}`);
      return true;
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const RETRAIN = "retrain it with this version";

Deno.test("loadCheckpoint() refuses a checkpoint with cue tokens, naming cueTokens", async () => {
  await loadFails(
    (cfg) => (cfg.cueTokens = true),
    `cueTokens: true: cue tokens are retired (no decoder token per view); ${RETRAIN}`,
  );
});

Deno.test("loadCheckpoint() refuses the grid aerial layout, named or absent, naming aerialLayout", async () => {
  await loadFails(
    (_, v) => (v.aerialLayout = "grid"),
    `vision.aerialLayout: "grid": only the "polar" aerial layout is supported; ${RETRAIN}`,
  );
  await loadFails(
    (_, v) => delete v.aerialLayout,
    `vision.aerialLayout: absent (the grid layout): only the "polar" aerial layout is supported; ${RETRAIN}`,
  );
});

Deno.test("loadCheckpoint() refuses pooled aerial tokens, naming aerialPool", async () => {
  await loadFails(
    (_, v) => (v.aerialPool = 2),
    `vision.aerialPool: 2: aerial pooling is retired (1 token per sector); ${RETRAIN}`,
  );
});

Deno.test("loadCheckpoint() refuses additive-only embeddings, false or absent, naming embedGating", async () => {
  await loadFails(
    (_, v) => (v.embedGating = false),
    `vision.embedGating: false: only gated embeddings (true) are supported; ${RETRAIN}`,
  );
  await loadFails(
    (_, v) => delete v.embedGating,
    `vision.embedGating: absent (additive embeddings): only gated embeddings (true) are supported; ${RETRAIN}`,
  );
});

Deno.test("loadCheckpoint() loads an older polar checkpoint that spells out the neutral flag values", async () => {
  const { dir } = await oldCheckpoint((cfg, v) => {
    Object.assign(v, { aerialPool: 1, aerialPatch: 16 });
    cfg.cueTokens = false;
  });
  try {
    const { model } = await loadCheckpoint(dir);
    assertEquals(model.config.vision.aerialLayout, "polar");
    model.dispose();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a spec that sets model.cueTokens or model.aerialLayout is rejected naming each field", async () => {
  const file = join(new URL("./fixtures/spec/", import.meta.url).pathname, "retired_model_keys.json");
  await assertRejects(() => loadSpec(file), (e: unknown) => {
    assert(e instanceof UserError, `expected UserError, got ${e}`);
    assertEquals(
      e.message,
      "2 problems in the experiment spec:\n" +
        `  ${displayPath(file)}: /model/cueTokens: cue tokens are retired: the model has no decoder token ` +
        "per view; remove the key\n" +
        `  ${displayPath(file)}: /model/aerialLayout: the aerial layout is always "polar" (the grid layout ` +
        "is retired); remove the key",
    );
    return true;
  });
  await assertRejects(
    () => loadSpec(join(EXPERIMENTS_DIR, "geo-r1.json"), { sets: ['model.aerialLayout="grid"'] }),
    (e: unknown) => {
      assert(e instanceof UserError, `expected UserError, got ${e}`);
      assertEquals(
        e.message,
        `--set model.aerialLayout="grid": /model/aerialLayout: the aerial layout is always "polar" ` +
          "(the grid layout is retired); remove the key",
      );
      return true;
    },
  );
});

Deno.test("eval: a checkpoint that needs a retired flag stops with one line naming it, exit 2, no output", async () => {
  const { dir, file } = await oldCheckpoint((_, v) => (v.aerialLayout = "grid"));
  const out = join(dir, "ev");
  try {
    const r = await cli(["eval", dir, "--tasks", "pairing", "--n", "2", "--out", out]);
    assertEquals(r.code, 2, r.err);
    assertEquals(
      r.err.trim(),
      `${file}: config.vision.aerialLayout: "grid": only the "polar" aerial layout is supported; ${RETRAIN}`,
    );
    assertEquals(await Deno.stat(out).then(() => true, () => false), false, "nothing is written");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
