/**
 * Aerial tile: a north-up orthographic raster of the layout (row 0 = north edge), centred on the scene.
 * Layers: ground, water half-plane, roads (surface + centre line), building and tree shadows (cast away from the
 * sun), roofs (the half facing away from the sun a little darker), tree crowns.
 * @module
 */
import type { RGBImage, Scene } from "../world/types.ts";
import { DEG, roadFrames, TREE, TREE_LIT, WATER } from "./common.ts";

/** Render the aerial tile (size x size pixels) of a scene. */
export function renderAerial(scene: Scene, size: number): RGBImage {
  const L = scene.layout, st = scene.meta.style;
  const n = size | 0;
  const data = new Uint8Array(n * n * 3);
  const H = L.halfExtent, mpp = (2 * H) / n;
  const roads = L.roads;
  const nr = roads.length;
  const { rc, rs, ro, rw } = roadFrames(roads);
  const lineHalf = Math.max(0.6, mpp * 0.45);
  const w = L.water;
  const wsx = w ? Math.sin(w.bearing * DEG) : 0,
    wcy = w ? Math.cos(w.bearing * DEG) : 0,
    wd = w ? w.distance : 0;
  const g = L.ground, sf = st.roadSurface, ln = st.roadLine;
  // ground, water, roads: per pixel
  for (let j = 0; j < n; j++) {
    const y = H - (j + 0.5) * mpp;
    for (let i = 0; i < n; i++) {
      const x = (i + 0.5) * mpp - H;
      const o = (j * n + i) * 3;
      let r = g[0], gg = g[1], b = g[2];
      // light mottling so that the ground is not flat (deterministic in position)
      const m = ((((i * 73856093) ^ (j * 19349663)) >>> 0) % 9) - 4;
      r += m, gg += m, b += m;
      if (w && x * wsx + y * wcy > wd) {
        r = WATER[0], gg = WATER[1], b = WATER[2];
      } else {
        for (let k = 0; k < nr; k++) {
          const p = x * rc[k] - y * rs[k] - ro[k];
          const a = p < 0 ? -p : p;
          if (a < rw[k]) {
            if (a < lineHalf) (r = ln[0]), (gg = ln[1]), (b = ln[2]);
            else (r = sf[0]), (gg = sf[1]), (b = sf[2]);
            break;
          }
        }
      }
      data[o] = r;
      data[o + 1] = gg;
      data[o + 2] = b;
    }
  }
  // shadows (cast away from the sun), then roofs and crowns
  const el = Math.max(8, scene.meta.sunElevation), saz = scene.meta.sunAzimuth * DEG;
  const sun = scene.meta.sunElevation > 0;
  const shx = -Math.sin(saz), shy = -Math.cos(saz);
  const shadowPerM = 1 / Math.tan(el * DEG);
  if (sun) {
    for (const bd of L.buildings) {
      const len = Math.min(14, bd.height * shadowPerM);
      for (const f of [0.35, 0.7, 1]) {
        fillRect(
          data,
          n,
          H,
          mpp,
          bd.x + shx * len * f,
          bd.y + shy * len * f,
          bd.hw,
          bd.hh,
          bd.rot,
          -1,
          0,
          0,
          0,
        );
      }
    }
    for (const t of L.trees) {
      const len = Math.min(12, t.height * shadowPerM);
      fillDisc(data, n, H, mpp, t.x + shx * len * 0.6, t.y + shy * len * 0.6, t.r, -1, 0, 0);
    }
  }
  for (const bd of L.buildings) {
    // roof: two halves along the hh axis; the half facing away from the sun is darker
    const rr = bd.roof;
    fillRect(data, n, H, mpp, bd.x, bd.y, bd.hw, bd.hh, bd.rot, rr[0], rr[1], rr[2], sun ? saz : null);
  }
  for (const t of L.trees) fillDisc(data, n, H, mpp, t.x, t.y, t.r, TREE[0], TREE[1], TREE[2]);
  for (const t of L.trees) {
    fillDisc(
      data,
      n,
      H,
      mpp,
      t.x - 0.3 * t.r * shx,
      t.y - 0.3 * t.r * shy,
      t.r * 0.45,
      TREE_LIT[0],
      TREE_LIT[1],
      TREE_LIT[2],
    );
  }
  return { width: n, height: n, data };
}

/** Fill a rotated rectangle; r < 0 darkens (shadow). With `sunAz`, the hw half away from the sun is shaded. */
function fillRect(
  data: Uint8Array,
  n: number,
  H: number,
  mpp: number,
  cx: number,
  cy: number,
  hw: number,
  hh: number,
  rot: number,
  r: number,
  g: number,
  b: number,
  sunAz: number | null = null,
): void {
  const c = Math.cos(rot * DEG), s = Math.sin(rot * DEG);
  // hw axis (c, -s), hh axis (s, c)
  const ext = Math.abs(hw * c) + Math.abs(hh * s), eyt = Math.abs(hw * s) + Math.abs(hh * c);
  const i0 = Math.max(0, Math.floor((cx - ext + H) / mpp)),
    i1 = Math.min(n - 1, Math.floor((cx + ext + H) / mpp));
  const j0 = Math.max(0, Math.floor((H - (cy + eyt)) / mpp)),
    j1 = Math.min(n - 1, Math.floor((H - (cy - eyt)) / mpp));
  // which hw side faces the sun: sign of (sun dir . hw axis)
  const sunSign = sunAz === null ? 0 : Math.sin(sunAz) * c - Math.cos(sunAz) * s >= 0 ? 1 : -1;
  // roofs never vanish at low resolution: grow the test by a fraction of a pixel
  const gw = hw + mpp * 0.25, gh = hh + mpp * 0.25;
  for (let j = j0; j <= j1; j++) {
    const y = H - (j + 0.5) * mpp - cy;
    for (let i = i0; i <= i1; i++) {
      const x = (i + 0.5) * mpp - H - cx;
      const u = x * c - y * s, v = x * s + y * c;
      if (u > gw || u < -gw || v > gh || v < -gh) continue;
      const o = (j * n + i) * 3;
      if (r < 0) {
        data[o] = (data[o] * 0.5) | 0;
        data[o + 1] = (data[o + 1] * 0.5) | 0;
        data[o + 2] = (data[o + 2] * 0.55) | 0;
      } else {
        const k = sunSign !== 0 && u * sunSign < 0 ? 0.8 : 1;
        data[o] = r * k;
        data[o + 1] = g * k;
        data[o + 2] = b * k;
      }
    }
  }
}

function fillDisc(
  data: Uint8Array,
  n: number,
  H: number,
  mpp: number,
  cx: number,
  cy: number,
  rad: number,
  r: number,
  g: number,
  b: number,
): void {
  const rr = rad + mpp * 0.3;
  const i0 = Math.max(0, Math.floor((cx - rr + H) / mpp)),
    i1 = Math.min(n - 1, Math.floor((cx + rr + H) / mpp));
  const j0 = Math.max(0, Math.floor((H - (cy + rr)) / mpp)),
    j1 = Math.min(n - 1, Math.floor((H - (cy - rr)) / mpp));
  const r2 = rr * rr;
  for (let j = j0; j <= j1; j++) {
    const y = H - (j + 0.5) * mpp - cy;
    for (let i = i0; i <= i1; i++) {
      const x = (i + 0.5) * mpp - H - cx;
      if (x * x + y * y > r2) continue;
      const o = (j * n + i) * 3;
      if (r < 0) {
        data[o] = (data[o] * 0.55) | 0;
        data[o + 1] = (data[o + 1] * 0.55) | 0;
        data[o + 2] = (data[o + 2] * 0.6) | 0;
      } else {
        data[o] = r;
        data[o + 1] = g;
        data[o + 2] = b;
      }
    }
  }
}
