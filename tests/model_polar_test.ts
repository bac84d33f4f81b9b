/**
 * The polar aerial layout (VisionConfig.aerialLayout = "polar"): the resampling geometry against the ground
 * panorama's azimuth convention, and the parameter layout (aerial sectors share the ground's azimuth
 * embedding).
 */
import { assert, assertEquals, assertThrows } from "./assert.ts";
import { testConfig, useWasm } from "./helpers_model.ts";
import { createModel, polarSampling, slotSegments } from "../lib/model/vlm.ts";
import { makeModelConfig, paramCount } from "../lib/model/config.ts";

await useWasm();

Deno.test("polar sampling: bilinear weights sum to 1 and bearings follow the ground's convention", () => {
  const S = 32, R = 16, A = 64;
  const { idx, w } = polarSampling(S, R, A);
  assertEquals(idx.length, R * A * 4);
  for (let i = 0; i < R * A; i++) {
    const sum = w[4 * i] + w[4 * i + 1] + w[4 * i + 2] + w[4 * i + 3];
    assert(Math.abs(sum - 1) < 1e-6, `sample ${i}: weights sum to ${sum}`);
  }
  // The outermost ring at azimuth 0 (north) lies at the top centre, 90 (east) at the right centre, and so on.
  const where = (a: number) => {
    const o = ((R - 1) * A + a) * 4;
    let x = 0, y = 0;
    for (let j = 0; j < 4; j++) {
      x += w[o + j] * (idx[o + j] % S);
      y += w[o + j] * Math.floor(idx[o + j] / S);
    }
    return [Math.round(x), Math.round(y)];
  };
  assertEquals(where(0), [16, 0]);
  assertEquals(where(A / 4), [31, 16]);
  assertEquals(where(A / 2), [16, 31]);
  assertEquals(where((3 * A) / 4), [0, 16]);
});

Deno.test("polar sampling: a road along bearing b lights the sector of ground token b", () => {
  const S = 32, R = 16, A = 64, sectors = 16;
  const { idx, w } = polarSampling(S, R, A);
  // A bright half-line from the centre towards the east (bearing 90): rows 15-16, columns 16..31.
  const tile = new Float32Array(S * S);
  for (let y = 15; y <= 16; y++) for (let x = 16; x < S; x++) tile[y * S + x] = 1;
  const perSector = new Float64Array(sectors);
  for (let r = 0; r < R; r++) {
    for (let a = 0; a < A; a++) {
      const o = (r * A + a) * 4;
      let v = 0;
      for (let j = 0; j < 4; j++) v += w[o + j] * tile[idx[o + j]];
      perSector[Math.floor(a / (A / sectors))] += v;
    }
  }
  const best = perSector.indexOf(Math.max(...perSector));
  // Ground column c looks along 360 c / 128; full-height strips of 8 columns: bearing 90 is column 32, token 4.
  assertEquals(best, 32 / 8);
  assertEquals(best, (90 / 360) * sectors);
});

Deno.test("polar layout: sectors share the ground azimuth embedding; a bad sector count is refused", () => {
  const cfg = testConfig("tiny");
  assertEquals(cfg.vision.aerialLayout, "polar");
  const m = createModel(cfg);
  const names = m.namedParams().map(([n]) => n);
  assert(names.includes("vis.pos_ground"));
  assert(!names.includes("vis.pos_aerial"), "polar tiles reuse vis.pos_ground");
  assertEquals(m.trainable().reduce((s, v) => s + v.size, 0), paramCount(cfg));
  m.dispose();
  const geom = {
    vocabSize: 50,
    groundShape: [32, 128] as [number, number],
    aerialSize: 32,
    maxCandidates: 4,
  };
  const small = makeModelConfig({ preset: "small", seed: 1 }, geom);
  assertThrows(
    () =>
      createModel({ ...small, vision: { ...small.vision, polar: { radii: 16, azimuths: 64, sectors: 8 } } }),
    /vision\.polar\.sectors/,
  );
});

Deno.test("slot segments: the latest candidate letter tags the text after it; BOS and <think> reset", () => {
  // ids: 1 = BOS, 4 = <think>; 20/21 name slot 0 ("A", " A"), 22 slot 1; others keep the segment.
  const slots = { tokens: [[20, 21], [22]], reset: [1, 4] };
  const ids = Int32Array.from([1, 9, 22, 9, 4, 9, 21, 9, 9, 22, 9, 9]);
  const { seg, last } = slotSegments(slots, 23, ids, 2, 6);
  assertEquals(Array.from(seg), [0, 0, 2, 2, 0, 0, 1, 1, 1, 2, 2, 2]);
  assertEquals(Array.from(last), [0, 2]);
});
