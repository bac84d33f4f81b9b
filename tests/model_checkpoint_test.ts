/**
 * Checkpoint tests: safetensors format, save -> load -> identical logits, corrupt/truncated/mismatched files
 * fail with a UserError naming the file (and tensor), optimizer state round-trip.
 */
import * as tf from "@tensorflow/tfjs";
import { join } from "node:path";
import { assert, assertEquals } from "./assert.ts";
import { CharTokenizer, pairingExample, testConfig, useWasm } from "./helpers_model.ts";
import { createModel } from "../lib/model/vlm.ts";
import { collateTrain } from "../lib/model/collate.ts";
import {
  decodeSafetensors,
  encodeSafetensors,
  loadCheckpoint,
  restoreCheckpoint,
  saveCheckpoint,
} from "../lib/model/checkpoint.ts";
import { AdamW } from "../lib/train/optim.ts";
import { UserError } from "../lib/errors.ts";

await useWasm();
const tok = new CharTokenizer();

async function expectUserError(f: () => Promise<unknown>, ...parts: (string | RegExp)[]): Promise<void> {
  try {
    await f();
  } catch (e) {
    assert(e instanceof UserError, `expected UserError, got ${(e as Error).stack}`);
    for (const p of parts) {
      const ok: boolean = typeof p === "string" ? e.message.includes(p) : p.test(e.message);
      assert(ok, `message "${e.message}" lacks ${p}`);
    }
    return;
  }
  throw new Error("expected a UserError");
}

Deno.test("safetensors: layout is the documented format", () => {
  const bytes = encodeSafetensors([
    { name: "a", shape: [2, 3], data: new Float32Array([1, 2, 3, 4, 5, 6]) },
    { name: "b", shape: [1], data: new Float32Array([-1.5]) },
  ], { format: "pt" });
  const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assertEquals(n % 8, 0);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
  assertEquals(header.a, { dtype: "F32", shape: [2, 3], data_offsets: [0, 24] });
  assertEquals(header.b, { dtype: "F32", shape: [1], data_offsets: [24, 28] });
  assertEquals(header.__metadata__, { format: "pt" });
  assertEquals(bytes.length, 8 + n + 28);
  assertEquals(new DataView(bytes.buffer).getFloat32(8 + n + 24, true), -1.5);
  const back = decodeSafetensors(bytes, "x.safetensors");
  assertEquals(Array.from(back.tensors.get("a")!.data), [1, 2, 3, 4, 5, 6]);
});

Deno.test("save -> load gives identical logits; optimizer state round-trips", async () => {
  const dir = await Deno.makeTempDir({ prefix: "geo-r1-ckpt-" });
  try {
    const cfg = testConfig("tiny", 4);
    const m = createModel(cfg);
    const opt = new AdamW(m.trainable(), { beta1: 0.9, beta2: 0.95, weightDecay: 0.1 });
    const b = collateTrain([pairingExample(1), pairingExample(2)], tok, cfg);
    const { value, grads } = tf.variableGrads(
      () => m.tokenLogProbs(b.input).mean() as tf.Scalar,
      m.trainable(),
    );
    opt.applyGradients(grads, 1e-2, 1);
    value.dispose();
    for (const k in grads) grads[k].dispose();
    await saveCheckpoint(dir, m, { tokenizer: tok.toJSON(), step: 1, optimizer: opt, meta: { stage: "t" } });
    const loaded = await loadCheckpoint(dir);
    assertEquals(loaded.config, cfg);
    assertEquals(loaded.tokenizer, tok.toJSON());
    assertEquals(loaded.meta.step, 1);
    const a = m.logits(b.input), c = loaded.model.logits(b.input);
    assertEquals(Array.from(a.dataSync()), Array.from(c.dataSync()));
    const st = opt.getState(), st2 = loaded.optimizerState!;
    assertEquals(st2.step, 1);
    for (const [k, v] of st.slots) assertEquals(Array.from(st2.slots.get(k)!.m), Array.from(v.m));
    // restore into a fresh model + optimizer
    const m3 = createModel({ ...cfg });
    const opt3 = new AdamW(m3.trainable(), { beta1: 0.9, beta2: 0.95, weightDecay: 0.1 });
    await restoreCheckpoint(dir, m3, opt3);
    assertEquals(opt3.step, 1);
    const d = m3.logits(b.input);
    assertEquals(Array.from(d.dataSync()), Array.from(a.dataSync()));
    for (const t of [a, c, d]) t.dispose();
    b.dispose();
    for (const x of [m, loaded.model, m3]) x.dispose();
    opt.dispose();
    opt3.dispose();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("corrupt, truncated and mismatched checkpoints fail with a clear UserError", async () => {
  const dir = await Deno.makeTempDir({ prefix: "geo-r1-ckpt-" });
  try {
    const cfg = testConfig("tiny", 5);
    const m = createModel(cfg);
    await saveCheckpoint(dir, m, { tokenizer: tok.toJSON() });
    m.dispose();
    const st = join(dir, "model.safetensors");
    const good = await Deno.readFile(st);
    // flipped byte in the data section
    const flipped = good.slice();
    flipped[flipped.length - 10] ^= 0xff;
    await Deno.writeFile(st, flipped);
    await expectUserError(() => loadCheckpoint(dir), "model.safetensors", "sha256", "corrupt");
    // truncated
    await Deno.writeFile(st, good.subarray(0, good.length - 100));
    await expectUserError(() => loadCheckpoint(dir), "model.safetensors", "truncated");
    // a model.json whose config no longer matches the tensors (hash updated so the shape check is reached)
    await Deno.writeFile(st, good);
    const meta = JSON.parse(await Deno.readTextFile(join(dir, "model.json")));
    meta.config.dFF = 48;
    await Deno.writeTextFile(join(dir, "model.json"), JSON.stringify(meta));
    await expectUserError(() => loadCheckpoint(dir), "model.safetensors", "dec.layers.0.mlp.fc.w", "[32,48]");
    // broken JSON and missing files
    await Deno.writeTextFile(join(dir, "model.json"), "{ not json");
    await expectUserError(() => loadCheckpoint(dir), "model.json", "corrupt JSON");
    await expectUserError(() => loadCheckpoint(join(dir, "nope")), "model.json", "cannot read");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
