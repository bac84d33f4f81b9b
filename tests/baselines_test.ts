/** The baselines' pure parts (prior, cells, projection) and their trainers, against hand-worked cases. */
import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, assertThrows } from "./assert.ts";
import {
  checkResolutions,
  commonCellMean,
  equalEarth,
  GpsEncoder,
  hierarchicalArgmax,
  ImageBank,
  medoid,
  partitionCells,
  sphericalMean,
  trainMethod,
} from "../lib/baselines/mod.ts";
import { galleryOracle } from "../lib/pipeline/baseline.ts";
import { initBackend } from "../lib/backend.ts";
import { Rng } from "../lib/rng.ts";
import type { BaselineStageSpec } from "../lib/spec/types.ts";
import type { RGBImage } from "../lib/world/types.ts";

const close = (a: number, b: number, tol = 1e-9) => Math.abs(a - b) <= tol;

Deno.test("medoid() is the point with the least summed great-circle distance", () => {
  // On the equator at lon 0, 10, 11, 30: sums 51, 41 (= 10 + 1 + 20), 41 + ... so 10 or 11; by hand:
  // 10 -> 10 + 0 + 1 + 20 = 31 degrees, 11 -> 11 + 1 + 0 + 19 = 31 degrees: a tie, the first wins.
  const pts = [0, 10, 11, 30].map((lon) => ({ lat: 0, lon }));
  assertEquals(medoid(pts), { lat: 0, lon: 10 });
  assertEquals(medoid([{ lat: 0, lon: 30 }, { lat: 0, lon: 11 }, { lat: 0, lon: 0 }]), { lat: 0, lon: 11 });
  assertThrows(() => medoid([]), /no points/);
});

Deno.test("sphericalMean() averages across the antimeridian and commonCellMean() picks the fullest cell", () => {
  const m = sphericalMean([{ lat: 0, lon: 179 }, { lat: 0, lon: -179 }]);
  assert(close(Math.abs(m.lon), 180, 1e-9) && close(m.lat, 0), JSON.stringify(m));
  // Cell r5 of (41, 2) holds two points, the other cell one: the mean of the two is about (41.5, 2.5).
  const c = commonCellMean([{ lat: 41, lon: 2 }, { lat: 10, lon: 100 }, { lat: 42, lon: 3 }], 5);
  assert(close(c.lat, 41.5, 0.01) && close(c.lon, 2.5, 0.01), JSON.stringify(c));
});

Deno.test("checkResolutions() accepts nesting grids coarse to fine and names the first that does not nest", () => {
  assertEquals(checkResolutions([20, 10, 5]), null);
  assertEquals(checkResolutions([20, 7]), "20 is not a whole multiple (> 1) of 7: cells would not nest");
  assertEquals(checkResolutions([5, 10]), "5 is not a whole multiple (> 1) of 10: cells would not nest");
  assertEquals(checkResolutions([]), "needs at least one resolution");
});

Deno.test("partitionCells() nests fine cells in their parents; hierarchicalArgmax() sums the levels", () => {
  // Coarse 20-degree cells: P = lat [0, 20) lon [0, 20), Q = lat [20, 40). Fine 10-degree cells: a, b in P,
  // c in Q. Points: a twice, b once, c once.
  const pts = [
    { lat: 1, lon: 1 }, // a
    { lat: 3, lon: 3 }, // a
    { lat: 1, lon: 15 }, // b
    { lat: 25, lon: 1 }, // c
  ];
  const p = partitionCells(pts, [20, 10]);
  assertEquals(p.levels.map((l) => l.keys.length), [2, 3]);
  assertEquals(Array.from(p.levels[1].labels), [0, 0, 1, 2]);
  assertEquals(Array.from(p.parents[0]), [0, 0, 1]);
  assert(close(p.centres[0].lat, 2, 0.01) && close(p.centres[0].lon, 2, 0.01));
  // Fine log-probs alone prefer c (-0.9 > -1.0 > -1.1); the coarse head says P (log 0.9) over Q (log 0.1):
  // totals a = ln .9 - 1.0 = -1.105, b = -1.205, c = ln .1 - 0.9 = -3.203, so a wins.
  const coarse = tf.tensor2d([[Math.log(0.9), Math.log(0.1)]]);
  const fine = tf.tensor2d([[-1.0, -1.1, -0.9]]);
  const best = hierarchicalArgmax(p, [coarse, fine]);
  assertEquals(Array.from(best.dataSync()), [0]);
  assertEquals(Array.from(hierarchicalArgmax(p, [tf.zeros([1, 2]) as tf.Tensor2D, fine]).dataSync()), [2]);
  tf.dispose([coarse, fine, best]);
  assertThrows(() => partitionCells(pts, [20, 7]), /do not nest|would not nest/);
});

Deno.test("equalEarth() maps the equator's ends and the poles to +-1", () => {
  assertEquals(equalEarth({ lat: 0, lon: 0 }), [0, 0]);
  const [x, y] = equalEarth({ lat: 0, lon: 180 });
  assert(close(x, 1) && close(y, 0));
  const [px, py] = equalEarth({ lat: -90, lon: 0 });
  assert(close(px, 0) && close(py, -1));
  // Equal area: a degree of longitude at 60 N is shorter than at the equator, but not cos(60) = 0.5 as short.
  const at60 = equalEarth({ lat: 60, lon: 1 })[0] / equalEarth({ lat: 0, lon: 1 })[0];
  assert(at60 > 0.5 && at60 < 0.9, `${at60}`);
});

Deno.test("galleryOracle() counts test views whose nearest gallery location is within each threshold", () => {
  // One degree of latitude is about 111.2 km.
  const truth = [{ lat: 0, lon: 0 }, { lat: 10, lon: 0 }];
  const o = galleryOracle(truth, [{ lat: 0.1, lon: 0 }, { lat: 50, lon: 0 }]);
  assertEquals(o.n, 2);
  assertEquals(o.thresholds, { "1": 0, "25": 0.5, "200": 0.5, "750": 0.5, "2500": 1 });
});

/** Images whose colour says where they are: red rises with latitude, blue with longitude. */
function views(n: number, rng: Rng): { images: RGBImage[]; locations: { lat: number; lon: number }[] } {
  const images: RGBImage[] = [];
  const locations = [];
  for (let i = 0; i < n; i++) {
    const lat = rng.range(-60, 60);
    const lon = rng.range(-180, 180);
    const data = new Uint8Array(8 * 16 * 3);
    for (let k = 0; k < data.length; k += 3) {
      data[k] = Math.round(((lat + 90) / 180) * 255);
      data[k + 2] = Math.round(((lon + 180) / 360) * 255);
    }
    images.push({ width: 16, height: 8, data });
    locations.push({ lat, lon });
  }
  return { images, locations };
}

function spec(method: BaselineStageSpec["method"]): BaselineStageSpec {
  return {
    kind: "baseline",
    method,
    from: null,
    trainViews: 64,
    gallery: 64,
    steps: 8,
    batchSize: 8,
    optim: {
      lr: 0.01,
      weightDecay: 0,
      beta1: 0.9,
      beta2: 0.99,
      warmupSteps: 1,
      minLrRatio: 0.1,
      gradClip: 1,
    },
    encoder: { patchWidth: 4, hidden: 8, embed: 8 },
    geoclip: { sigmas: [1, 4], features: 8, hidden: 8, queue: 16, temperature: 0.1 },
    cells: { resolutionsDeg: [40, 20] },
    prior: { kind: "medoid", cellDeg: 5 },
    seed: 3,
  };
}

Deno.test("geoclip and cells train deterministically and answer gallery locations or cell means", async () => {
  await initBackend("wasm");
  const { images, locations } = views(64, new Rng(1));
  const bank = new ImageBank(images, [8, 16]);
  for (const method of ["geoclip", "cells"] as const) {
    const answers: string[] = [];
    for (let rep = 0; rep < 2; rep++) {
      const losses: number[] = [];
      const before = tf.memory().numTensors;
      const p = await trainMethod({
        spec: spec(method),
        name: `${method}${rep}`,
        images: bank,
        locations,
        gallery: locations,
        onStep: (m) => void losses.push(m.loss),
      });
      const out = p.predict(bank);
      p.dispose();
      assertEquals(tf.memory().numTensors, before, `${method}: tensors leaked`);
      assertEquals(losses.length, 8);
      assert(losses.every(Number.isFinite));
      assertEquals(out.length, 64);
      if (method === "geoclip") {
        assert(out.every((a) => locations.includes(a)), "geoclip answers gallery locations");
      }
      answers.push(JSON.stringify(out) + JSON.stringify(losses));
    }
    assertEquals(answers[0], answers[1], `${method} is deterministic`);
  }
});

Deno.test("nearest-prior answers the medoid for every view and trains nothing", async () => {
  const { images, locations } = views(20, new Rng(2));
  const p = await trainMethod({
    spec: spec("nearest-prior"),
    name: "prior",
    images: null,
    locations,
    gallery: locations,
  });
  const out = p.predict(new ImageBank(images, [8, 16]));
  assertEquals(out, Array.from({ length: 20 }, () => medoid(locations)));
});

Deno.test("GpsEncoder embeds the same locations the same way for one seed", () => {
  const a = new GpsEncoder({ sigmas: [1, 16], features: 8, hidden: 4 }, 4, new Rng(5), "ga");
  const b = new GpsEncoder({ sigmas: [1, 16], features: 8, hidden: 4 }, 4, new Rng(5), "gb");
  const x = GpsEncoder.project([{ lat: 10, lon: 20 }, { lat: -30, lon: 170 }]);
  const ea = a.apply(x);
  const eb = b.apply(x);
  assertEquals(Array.from(ea.dataSync()), Array.from(eb.dataSync()));
  assertThrows(() => new GpsEncoder({ sigmas: [1], features: 7, hidden: 4 }, 4, new Rng(5), "gc"), /even/);
  tf.dispose([x, ea, eb]);
  a.dispose();
  b.dispose();
});
