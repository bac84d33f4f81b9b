import { assertEquals, assertNotEquals, assertOk } from "./assert.ts";
import { createWorld } from "../lib/world/mod.ts";
import type { Layout, RGB, Scene } from "../lib/world/types.ts";
import { renderAerial, renderGround, rowElevation } from "../lib/render/mod.ts";

const world = await createWorld({ seed: 42 });
const base = world.sceneAt(48.8566, 2.3522);
const GH = 32, GW = 128;
const SURFACE: RGB = [58, 60, 66];
const LINE: RGB = [245, 245, 245];

/** A scene with a hand-made layout (Paris metadata, sun fixed). */
function synth(layout: Partial<Layout>, sun = { el: 30, az: 200 }): Scene {
  return {
    meta: {
      ...base.meta,
      sunElevation: sun.el,
      sunAzimuth: sun.az,
      style: { ...base.meta.style, roadSurface: SURFACE, roadLine: LINE },
    },
    layout: {
      halfExtent: 60,
      roads: [],
      buildings: [],
      trees: [],
      water: null,
      ground: [110, 160, 70],
      vegetation: [30, 84, 34],
      ...layout,
    },
  };
}

function px(img: { width: number; data: Uint8Array }, r: number, c: number): RGB {
  const o = (r * img.width + c) * 3;
  return [img.data[o], img.data[o + 1], img.data[o + 2]];
}
const near = (a: RGB, b: RGB, tol = 40) =>
  Math.abs(a[0] - b[0]) + Math.abs(a[1] - b[1]) + Math.abs(a[2] - b[2]) < tol;
const horizon = () => {
  let r = 0;
  while (rowElevation(r, GH) > 0) r++;
  return r;
};
/** Fraction of below-horizon rows of column c that show road surface or line. */
function roadFraction(img: ReturnType<typeof renderGround>, c: number): number {
  let n = 0, k = 0;
  for (let r = horizon(); r < GH; r++, n++) {
    const p = px(img, r, c);
    if (near(p, SURFACE, 60) || near(p, LINE, 60)) k++;
  }
  return k / n;
}

Deno.test("image shapes", () => {
  const g = renderGround(base, [GH, GW]);
  assertEquals([g.width, g.height, g.data.length], [GW, GH, GW * GH * 3]);
  const a = renderAerial(base, 32);
  assertEquals([a.width, a.height, a.data.length], [32, 32, 32 * 32 * 3]);
  const g2 = renderGround(base, [64, 256]);
  assertEquals(g2.data.length, 64 * 256 * 3);
});

Deno.test("rendering is deterministic; different places render differently", () => {
  const s = world.sceneAt(35.6812, 139.7671);
  assertEquals(renderGround(s, [GH, GW]).data, renderGround(world.sceneAt(35.6812, 139.7671), [GH, GW]).data);
  assertEquals(renderAerial(s, 32).data, renderAerial(s, 32).data);
  const t = world.sceneAt(35.7812, 139.7671);
  assertNotEquals(renderAerial(s, 32).data, renderAerial(t, 32).data);
  assertNotEquals(renderGround(s, [GH, GW]).data, renderGround(t, [GH, GW]).data);
});

Deno.test("a road at bearing b appears at azimuths b and b+180 in the panorama", () => {
  for (const b of [0, 45, 90, 28.125, 135, 163.125]) {
    const s = synth({ roads: [{ bearing: b, offset: 0, width: 10 }] });
    const g = renderGround(s, [GH, GW]);
    const col = (az: number) => Math.round((((az % 360) + 360) % 360) / 360 * GW) % GW;
    assertOk(roadFraction(g, col(b)) > 0.9, `road along ${b}: ${roadFraction(g, col(b))}`);
    assertOk(roadFraction(g, col(b + 180)) > 0.9, `road along ${b}+180`);
    assertOk(roadFraction(g, col(b + 90)) < 0.6, `road across at ${b}+90: ${roadFraction(g, col(b + 90))}`);
    assertOk(roadFraction(g, col(b + 270)) < 0.6);
    // aerial: the road passes through the centre pixel band along its bearing
    const a = renderAerial(s, 32);
    const rad = (b * Math.PI) / 180;
    for (const d of [-40, -20, 20, 40]) {
      const x = d * Math.sin(rad), y = d * Math.cos(rad);
      const i = Math.floor((x + 60) / 120 * 32), j = Math.floor((60 - y) / 120 * 32);
      const p = px(a, j, i);
      assertOk(near(p, SURFACE, 60) || near(p, LINE, 60), `aerial road ${b} at ${d} m: ${p}`);
    }
  }
});

Deno.test("a building at bearing b appears at azimuth b in the panorama and at its place in the tile", () => {
  const roof: RGB = [200, 40, 40];
  const sky = renderGround(synth({}), [GH, GW]);
  for (const b of [0, 60, 135, 250, 330]) {
    const rad = (b * Math.PI) / 180, d = 30;
    const s = synth({
      buildings: [{ x: d * Math.sin(rad), y: d * Math.cos(rad), hw: 5, hh: 5, rot: 20, height: 14, roof }],
    });
    const g = renderGround(s, [GH, GW]);
    const cols: number[] = [];
    const r = horizon() - 3; // a row a little above the horizon
    for (let c = 0; c < GW; c++) if (!near(px(g, r, c), px(sky, r, c), 6)) cols.push(c);
    assertOk(cols.length > 0 && cols.length < 16, `building ${b}: ${cols}`);
    // circular mean of the covered columns
    let sx = 0, sy = 0;
    for (const c of cols) (sx += Math.sin((2 * Math.PI * c) / GW)), (sy += Math.cos((2 * Math.PI * c) / GW));
    const az = ((Math.atan2(sx, sy) * 180) / Math.PI + 360) % 360;
    const err = Math.abs(((az - b + 540) % 360) - 180);
    assertOk(err < 6, `building at ${b} seen at ${az.toFixed(1)}`);
    const a = renderAerial(s, 32);
    const i = Math.floor((d * Math.sin(rad) + 60) / 120 * 32),
      j = Math.floor((60 - d * Math.cos(rad)) / 120 * 32);
    const p = px(a, j, i);
    assertOk(p[0] > 140 && p[1] < 70, `roof at ${b}: ${p}`);
  }
});

Deno.test("water lies on its side in both views", () => {
  const water = [38, 92, 150] as RGB;
  for (const b of [0, 90, 225]) {
    const s = synth({ water: { bearing: b, distance: 20 } });
    const g = renderGround(s, [GH, GW]);
    const c = Math.round((b / 360) * GW) % GW, opp = Math.round((((b + 180) % 360) / 360) * GW) % GW;
    const isWater = (p: RGB) => p[2] > p[0] + 50 && p[2] > p[1] + 20;
    assertOk(isWater(px(g, horizon(), c)), `water toward ${b}`);
    assertOk(!isWater(px(g, horizon(), opp)), `no water away from ${b}`);
    const a = renderAerial(s, 32);
    const rad = (b * Math.PI) / 180;
    const i = Math.floor((50 * Math.sin(rad) + 60) / 120 * 32),
      j = Math.floor((60 - 50 * Math.cos(rad)) / 120 * 32);
    assertOk(near(px(a, j, i), water, 10));
    const i2 = Math.floor((-50 * Math.sin(rad) + 60) / 120 * 32),
      j2 = Math.floor((60 + 50 * Math.cos(rad)) / 120 * 32);
    assertOk(!near(px(a, j2, i2), water, 30));
  }
});

Deno.test("the sun is drawn at its azimuth; shadows fall away from it", () => {
  for (const az of [90, 200, 300]) {
    const s = synth({}, { el: 20, az });
    const g = renderGround(s, [GH, GW]);
    let best = -1, bc = 0;
    for (let c = 0; c < GW; c++) {
      for (let r = 0; r < horizon(); r++) {
        const p = px(g, r, c);
        if (p[0] + p[1] + p[2] > best) (best = p[0] + p[1] + p[2]), (bc = c);
      }
    }
    const seen = (bc / GW) * 360;
    assertOk(Math.abs(((seen - az + 540) % 360) - 180) < 6, `sun ${az} seen at ${seen}`);
    // a tall building's shadow: darker ground on the side away from the sun
    const t = synth({ buildings: [{ x: 0, y: 0, hw: 6, hh: 6, rot: 0, height: 20, roof: [200, 40, 40] }] }, {
      el: 30,
      az,
    });
    const a = renderAerial(t, 32);
    const rad = (az * Math.PI) / 180;
    const at = (d: number) => {
      const i = Math.floor((d * Math.sin(rad) + 60) / 120 * 32),
        j = Math.floor((60 - d * Math.cos(rad)) / 120 * 32);
      return px(a, j, i);
    };
    const lum = (p: RGB) => p[0] + p[1] + p[2];
    assertOk(lum(at(-16)) < lum(at(16)) - 60, `shadow away from sun ${az}`);
  }
});
