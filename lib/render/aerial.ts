/**
 * Aerial tile: a north-up orthographic raster of the layout (row 0 = north edge), centred on the scene.
 * Layers: ground, water half-plane, roads (surface + centre line), building and tree shadows (cast away from the
 * sun), roofs (the half facing away from the sun a little darker), tree crowns.
 * @module
 */
import type { RGB, RGBImage, Scene } from "../world/types.ts";
import { DEG, roadFrames, TREE, TREE_LIT, WATER, waterPlane } from "./common.ts";

/** A tile being painted: n x n pixels covering [-H, H] metres on both axes, `mpp` metres a pixel. */
interface Tile {
  data: Uint8Array;
  n: number;
  H: number;
  mpp: number;
}

/** The direction shadows fall (unit, east/north), their length per metre of height, and the sun. */
interface Shadows {
  shx: number;
  shy: number;
  perM: number;
  /** sun azimuth (radians) */
  saz: number;
  /** whether the sun is above the horizon (no shadows, no shaded roof half otherwise) */
  sun: boolean;
}

/** Render the aerial tile (size x size pixels) of a scene. */
export function renderAerial(scene: Scene, size: number): RGBImage {
  const L = scene.layout;
  const n = size | 0;
  const tile: Tile = { data: new Uint8Array(n * n * 3), n, H: L.halfExtent, mpp: (2 * L.halfExtent) / n };
  paintGround(tile, scene);
  const shadows = shadowsOf(scene);
  if (shadows.sun) paintShadows(tile, scene, shadows);
  // roof: two halves along the hh axis; the half facing away from the sun is darker
  for (const bd of L.buildings) {
    fillRect(tile, bd.x, bd.y, bd.hw, bd.hh, bd.rot, bd.roof, shadows.sun ? shadows.saz : null);
  }
  paintCrowns(tile, scene, shadows);
  return { width: n, height: n, data: tile.data };
}

/** Per pixel: the vegetation colour lightly mottled, the water half-plane, the roads. */
function paintGround(tile: Tile, scene: Scene): void {
  const { data, n, H, mpp } = tile;
  const L = scene.layout, style = scene.meta.style;
  const { rc, rs, ro, rw } = roadFrames(L.roads);
  const lineHalf = Math.max(0.6, mpp * 0.45);
  const water = waterPlane(L.water);
  const g = L.ground, sf = style.roadSurface, ln = style.roadLine;
  for (let j = 0; j < n; j++) {
    const y = H - (j + 0.5) * mpp;
    for (let i = 0; i < n; i++) {
      const x = (i + 0.5) * mpp - H;
      const o = (j * n + i) * 3;
      let r = g[0], gg = g[1], b = g[2];
      // light mottling so that the ground is not flat (deterministic in position)
      const m = ((((i * 73856093) ^ (j * 19349663)) >>> 0) % 9) - 4;
      r += m, gg += m, b += m;
      if (water !== null && x * water.sx + y * water.cy > water.distance) {
        r = WATER[0], gg = WATER[1], b = WATER[2];
      } else {
        for (let k = 0; k < rc.length; k++) {
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
}

/** Shadows fall away from the sun; a low sun is treated as 8 degrees so that they stay short. */
function shadowsOf(scene: Scene): Shadows {
  const el = Math.max(8, scene.meta.sunElevation), saz = scene.meta.sunAzimuth * DEG;
  return {
    shx: -Math.sin(saz),
    shy: -Math.cos(saz),
    perM: 1 / Math.tan(el * DEG),
    saz,
    sun: scene.meta.sunElevation > 0,
  };
}

/** Building shadows (the footprint swept in three steps along the shadow) and tree shadows (one disc). */
function paintShadows(tile: Tile, scene: Scene, sh: Shadows): void {
  const L = scene.layout;
  for (const bd of L.buildings) {
    const len = Math.min(14, bd.height * sh.perM);
    for (const f of [0.35, 0.7, 1]) {
      fillRect(tile, bd.x + sh.shx * len * f, bd.y + sh.shy * len * f, bd.hw, bd.hh, bd.rot, null);
    }
  }
  for (const t of L.trees) {
    const len = Math.min(12, t.height * sh.perM);
    fillDisc(tile, t.x + sh.shx * len * 0.6, t.y + sh.shy * len * 0.6, t.r, null);
  }
}

/** Tree crowns, then a lit spot on each crown's sun side. */
function paintCrowns(tile: Tile, scene: Scene, sh: Shadows): void {
  const T = scene.layout.trees;
  for (const t of T) fillDisc(tile, t.x, t.y, t.r, TREE);
  for (const t of T) fillDisc(tile, t.x - 0.3 * t.r * sh.shx, t.y - 0.3 * t.r * sh.shy, t.r * 0.45, TREE_LIT);
}

/** How much a building (rect) or tree (disc) shadow keeps of the red, green and blue below it. */
const RECT_SHADOW = [0.5, 0.5, 0.55] as const, DISC_SHADOW = [0.55, 0.55, 0.6] as const;

/** Paint pixel o with `colour` scaled by k, or, with `colour` null, darken it by the `shadow` factors. */
function paintPixel(
  data: Uint8Array,
  o: number,
  colour: RGB | null,
  k: number,
  shadow: readonly [number, number, number],
): void {
  if (colour === null) {
    data[o] = (data[o] * shadow[0]) | 0;
    data[o + 1] = (data[o + 1] * shadow[1]) | 0;
    data[o + 2] = (data[o + 2] * shadow[2]) | 0;
  } else {
    data[o] = colour[0] * k;
    data[o + 1] = colour[1] * k;
    data[o + 2] = colour[2] * k;
  }
}

/**
 * Fill a rotated rectangle with `colour`, or darken it (a shadow) when `colour` is null. With `sunAz`, the hw
 * half away from the sun is shaded.
 */
function fillRect(
  tile: Tile,
  cx: number,
  cy: number,
  hw: number,
  hh: number,
  rot: number,
  colour: RGB | null,
  sunAz: number | null = null,
): void {
  const { data, n, H, mpp } = tile;
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
      paintPixel(data, (j * n + i) * 3, colour, sunSign !== 0 && u * sunSign < 0 ? 0.8 : 1, RECT_SHADOW);
    }
  }
}

/** Fill a disc with `colour`, or darken it (a shadow) when `colour` is null. */
function fillDisc(tile: Tile, cx: number, cy: number, rad: number, colour: RGB | null): void {
  const { data, n, H, mpp } = tile;
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
      paintPixel(data, (j * n + i) * 3, colour, 1, DISC_SHADOW);
    }
  }
}
