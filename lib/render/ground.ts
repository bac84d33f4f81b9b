/**
 * Ground panorama: a north-aligned 360-degree strip seen from a camera 2 m above the scene centre. Column c looks
 * along azimuth 360 * c / W (column 0 = north, clockwise). Rows map to elevation angles non-linearly (finer near
 * the horizon): above the horizon e = 60 (k / K)^1.5 degrees, below e = -60 (k / K')^1.6, k = rows from the
 * horizon. Per column, once: the ground plane is sampled along the ray (water, road surface and centre line,
 * vegetation, distance haze), then buildings (walls lit by the sun, a roof-coloured band on top) and trees are
 * painted far to near at their true azimuths and angular sizes; the sky has a gradient and the sun disc.
 * @module
 */
import type { Building, Layout, RGB, RGBImage, Scene, SceneMeta, Tree } from "../world/types.ts";
import {
  DEG,
  type RoadFrames,
  roadFrames,
  SUN,
  TREE,
  TREE_LIT,
  TRUNK,
  wallOf,
  WATER,
  WATER_FAR,
  type WaterPlane,
  waterPlane,
} from "./common.ts";

const CAM_H = 2;
/** Half width (m) of a road's centre line. */
const LINE_HALF = 0.6;
/** Angular radius of the sun disc and of its glow. */
const COS_SUN = Math.cos(4.5 * DEG), COS_GLOW = Math.cos(14 * DEG);

interface Geometry {
  h: number;
  w: number;
  horizon: number;
  /** tan of each row's elevation */
  tanE: Float64Array;
  sinE: Float64Array;
  cosE: Float64Array;
  sinA: Float64Array;
  cosA: Float64Array;
  /** ground distance and haze factor of each below-horizon row */
  tRow: Float64Array;
  hazeRow: Float64Array;
}

const GEOMS = new Map<string, Geometry>();

/** Row elevation (degrees) of row r in a panorama of height h (exported for tests and the data engine). */
export function rowElevation(r: number, h: number): number {
  const hz = Math.round(h / 2);
  if (r < hz) return 60 * Math.pow((hz - r - 0.5) / hz, 1.5);
  return -60 * Math.pow((r - hz + 0.5) / (h - hz), 1.6);
}

function geometry(h: number, w: number): Geometry {
  const key = `${h}x${w}`;
  let g = GEOMS.get(key);
  if (g) return g;
  const tanE = new Float64Array(h), sinE = new Float64Array(h), cosE = new Float64Array(h);
  for (let r = 0; r < h; r++) {
    const e = rowElevation(r, h) * DEG;
    tanE[r] = Math.tan(e);
    sinE[r] = Math.sin(e);
    cosE[r] = Math.cos(e);
  }
  const sinA = new Float64Array(w), cosA = new Float64Array(w);
  for (let c = 0; c < w; c++) {
    sinA[c] = Math.sin((2 * Math.PI * c) / w);
    cosA[c] = Math.cos((2 * Math.PI * c) / w);
  }
  const tRow = new Float64Array(h), hazeRow = new Float64Array(h);
  for (let r = 0; r < h; r++) {
    if (tanE[r] < 0) {
      tRow[r] = CAM_H / -tanE[r];
      hazeRow[r] = 1 - Math.exp(-tRow[r] / 260);
    }
  }
  g = { h, w, horizon: Math.round(h / 2), tanE, sinE, cosE, sinA, cosA, tRow, hazeRow };
  if (GEOMS.size > 16) GEOMS.clear();
  GEOMS.set(key, g);
  return g;
}

/** The pixels of a panorama being painted, `h` rows of `w` columns. */
interface Canvas {
  data: Uint8Array;
  h: number;
  w: number;
}

/** Sky colours and sun direction of a scene; the horizon colour is also the distance haze. */
interface Light {
  zenith: number[];
  horizon: number[];
  sunUp: boolean;
  sinSE: number;
  cosSE: number;
  /** east and north components of the sun's azimuth */
  sdx: number;
  sdy: number;
}

/** What the ground plane shows: water, roads (surface and centre line) and the vegetation colour. */
interface Plane {
  water: WaterPlane | null;
  roads: RoadFrames;
  ground: RGB;
  surface: RGB;
  line: RGB;
}

/**
 * Buildings and trees with their per-image constants, and the hit buffers a column's ray fills: entry
 * distance `t`, object index `k` (buildings first, then trees), wall shade (buildings) or miss distance `q` of
 * the ray from the trunk axis (trees), and `order`, the hits sorted far to near.
 */
interface Objects {
  buildings: Building[];
  cosRot: Float64Array;
  sinRot: Float64Array;
  walls: RGB[];
  trees: Tree[];
  t: Float64Array;
  k: Int32Array;
  shade: Float64Array;
  q: Float64Array;
  order: Int32Array;
}

/** Render the ground panorama of a scene; `shape` = [height, width]. */
export function renderGround(scene: Scene, shape: [number, number]): RGBImage {
  const [h, w] = shape;
  const G = geometry(h | 0, w | 0);
  const canvas: Canvas = { data: new Uint8Array(h * w * 3), h, w };
  const light = lightOf(scene.meta);
  const plane = planeOf(scene);
  const objects = objectsOf(scene.layout);
  for (let c = 0; c < w; c++) {
    const dx = G.sinA[c], dy = G.cosA[c];
    paintSky(canvas, G, light, c, dx, dy);
    paintPlane(canvas, G, plane, light.horizon, c, dx, dy);
    const nh = castRay(objects, light, dx, dy);
    if (nh === 0) continue;
    sortFarToNear(objects, nh);
    paintObjects(canvas, G, objects, light.horizon, c, nh);
  }
  return { width: w, height: h, data: canvas.data };
}

/** Sky colours from the sun's height (dusk darkens them), and the sun's direction. */
function lightOf(meta: SceneMeta): Light {
  const sunEl = meta.sunElevation, sunAz = meta.sunAzimuth * DEG;
  const day = Math.max(0.25, Math.min(1, (sunEl + 6) / 20));
  return {
    zenith: [60 * day, 118 * day, 200 * day],
    horizon: [196 * day, 214 * day, 232 * day],
    sunUp: sunEl > -1,
    sinSE: Math.sin(sunEl * DEG),
    cosSE: Math.cos(sunEl * DEG),
    sdx: Math.sin(sunAz),
    sdy: Math.cos(sunAz),
  };
}

function planeOf(scene: Scene): Plane {
  const L = scene.layout, style = scene.meta.style;
  return {
    water: waterPlane(L.water),
    roads: roadFrames(L.roads),
    ground: L.ground,
    surface: style.roadSurface,
    line: style.roadLine,
  };
}

function objectsOf(L: Layout): Objects {
  const B = L.buildings, nb = B.length, n = nb + L.trees.length;
  const cosRot = new Float64Array(nb), sinRot = new Float64Array(nb);
  for (let k = 0; k < nb; k++) {
    cosRot[k] = Math.cos(B[k].rot * DEG);
    sinRot[k] = Math.sin(B[k].rot * DEG);
  }
  return {
    buildings: B,
    cosRot,
    sinRot,
    walls: B.map((b) => wallOf(b.roof)),
    trees: L.trees,
    t: new Float64Array(n),
    k: new Int32Array(n),
    shade: new Float64Array(n),
    q: new Float64Array(n),
    order: new Int32Array(n),
  };
}

/** Rows above the horizon of column c: the zenith-to-horizon gradient, the sun disc and its glow. */
function paintSky(canvas: Canvas, G: Geometry, light: Light, c: number, dx: number, dy: number): void {
  const { data, w } = canvas, hz = G.horizon;
  const zen = light.zenith, hor = light.horizon;
  const { sunUp, sinSE, cosSE } = light;
  const cosDaz = dx * light.sdx + dy * light.sdy;
  for (let r = 0; r < hz; r++) {
    const o = (r * w + c) * 3;
    const f = (hz - r) / hz;
    let R = hor[0] + (zen[0] - hor[0]) * f,
      Gc = hor[1] + (zen[1] - hor[1]) * f,
      Bc = hor[2] + (zen[2] - hor[2]) * f;
    if (sunUp) {
      const ca = G.sinE[r] * sinSE + G.cosE[r] * cosSE * cosDaz;
      if (ca > COS_SUN) (R = SUN[0]), (Gc = SUN[1]), (Bc = SUN[2]);
      else if (ca > COS_GLOW) {
        const k = (ca - COS_GLOW) / (COS_SUN - COS_GLOW);
        R += (255 - R) * k * 0.7;
        Gc += (240 - Gc) * k * 0.7;
        Bc += (200 - Bc) * k * 0.5;
      }
    }
    data[o] = R;
    data[o + 1] = Gc;
    data[o + 2] = Bc;
  }
}

/**
 * Rows below the horizon of column c: the ground point each row's ray meets shows water (bluer with distance)
 * or a road or the vegetation colour, hazed with distance.
 */
function paintPlane(
  canvas: Canvas,
  G: Geometry,
  plane: Plane,
  haze: number[],
  c: number,
  dx: number,
  dy: number,
): void {
  const { data, h, w } = canvas;
  const water = plane.water, { rc, rs, ro, rw } = plane.roads;
  for (let r = G.horizon; r < h; r++) {
    const t = G.tRow[r];
    const x = t * dx, y = t * dy;
    let R: number, Gc: number, Bc: number;
    if (water !== null && x * water.sx + y * water.cy > water.distance) {
      const k = Math.min(1, t / 120);
      R = WATER[0] + (WATER_FAR[0] - WATER[0]) * k;
      Gc = WATER[1] + (WATER_FAR[1] - WATER[1]) * k;
      Bc = WATER[2] + (WATER_FAR[2] - WATER[2]) * k;
    } else {
      const gr = plane.ground, sf = plane.surface, ln = plane.line;
      R = gr[0], Gc = gr[1], Bc = gr[2];
      for (let k = 0; k < rc.length; k++) {
        const p = x * rc[k] - y * rs[k] - ro[k];
        const a = p < 0 ? -p : p;
        if (a < rw[k]) {
          if (a < LINE_HALF) (R = ln[0]), (Gc = ln[1]), (Bc = ln[2]);
          else (R = sf[0]), (Gc = sf[1]), (Bc = sf[2]);
          break;
        }
      }
      const hf = G.hazeRow[r];
      R += (haze[0] - R) * hf;
      Gc += (haze[1] - Gc) * hf;
      Bc += (haze[2] - Bc) * hf;
    }
    const o = (r * w + c) * 3;
    data[o] = R;
    data[o + 1] = Gc;
    data[o + 2] = Bc;
  }
}

/** Fill the hit buffers with the buildings, then the trees, that the ray (dx, dy) meets; returns the count. */
function castRay(objects: Objects, light: Light, dx: number, dy: number): number {
  const nh = hitBuildings(objects, light, dx, dy);
  return hitTrees(objects, dx, dy, nh);
}

/**
 * Slab test of the ray against each building's footprint (local frame: u along (c, -s) [hw], v along (s, c)
 * [hh], origin at -centre). A hit records the entry distance and the shade of the face it enters: lit by the
 * sun in proportion to how squarely the face looks at it.
 */
function hitBuildings(objects: Objects, light: Light, dx: number, dy: number): number {
  const { buildings: B, cosRot, sinRot, t, k: hitK, shade } = objects;
  const { sunUp, sdx, sdy } = light;
  let nh = 0;
  for (let k = 0; k < B.length; k++) {
    const b = B[k];
    const ca = cosRot[k], sa = sinRot[k];
    const ou = -b.x * ca + b.y * sa, ov = -b.x * sa - b.y * ca;
    const du = dx * ca - dy * sa, dv = dx * sa + dy * ca;
    const span = SPAN;
    span.tmin = -Infinity, span.tmax = Infinity, span.face = 0;
    if (!clipToSlab(span, ou, du, b.hw, 1) || !clipToSlab(span, ov, dv, b.hh, 2)) continue;
    const { tmin, tmax, face } = span;
    if (tmin >= tmax || tmin <= 0.1) continue;
    // face normal in world (east, north)
    let nx: number, ny: number;
    if (face === 1 || face === -1) (nx = face * ca), (ny = -face * sa);
    else (nx = (face / 2) * sa), (ny = (face / 2) * ca);
    const lit = sunUp ? Math.max(0, nx * sdx + ny * sdy) : 0;
    t[nh] = tmin;
    hitK[nh] = k;
    shade[nh] = 0.62 + 0.38 * lit;
    nh++;
  }
  return nh;
}

/** The part of a ray inside a footprint so far, and the face it enters by (+-1: hw sides, +-2: hh sides). */
interface Span {
  tmin: number;
  tmax: number;
  face: number;
}

/** Scratch span of hitBuildings (one per process: rendering is synchronous). */
const SPAN: Span = { tmin: -Infinity, tmax: Infinity, face: 0 };

/**
 * Clip `span` to the slab |o + t d| <= half of one footprint axis (`axis` 1: hw, 2: hh); false when a ray
 * parallel to the slab lies outside it.
 */
function clipToSlab(span: Span, o: number, d: number, half: number, axis: number): boolean {
  if (Math.abs(d) < 1e-12) return !(o < -half || o > half);
  let t1 = (-half - o) / d, t2 = (half - o) / d;
  if (t1 > t2) [t1, t2] = [t2, t1];
  if (t1 > span.tmin) (span.tmin = t1), (span.face = d > 0 ? -axis : axis);
  if (t2 < span.tmax) span.tmax = t2;
  return true;
}

/** Append the trees (vertical cylinders of radius r) that the ray meets ahead of the camera. */
function hitTrees(objects: Objects, dx: number, dy: number, nh: number): number {
  const T = objects.trees, nb = objects.buildings.length;
  for (let k = 0; k < T.length; k++) {
    const tr = T[k];
    const along = tr.x * dx + tr.y * dy;
    if (along <= 0.5) continue;
    const q = Math.abs(tr.x * dy - tr.y * dx);
    if (q >= tr.r) continue;
    objects.t[nh] = along - Math.sqrt(tr.r * tr.r - q * q);
    objects.k[nh] = nb + k;
    objects.q[nh] = q;
    nh++;
  }
  return nh;
}

/** Insertion sort of the first nh hits into `order`, far to near (a column has few hits). */
function sortFarToNear(objects: Objects, nh: number): void {
  const { t, order } = objects;
  for (let i = 0; i < nh; i++) {
    let j = i;
    while (j > 0 && t[order[j - 1]] < t[i]) (order[j] = order[j - 1]), j--;
    order[j] = i;
  }
}

/** Paint column c's hits far to near, so nearer objects cover farther ones; each is hazed by its distance. */
function paintObjects(
  canvas: Canvas,
  G: Geometry,
  objects: Objects,
  haze: number[],
  c: number,
  nh: number,
): void {
  const nb = objects.buildings.length;
  for (let oi = 0; oi < nh; oi++) {
    const i = objects.order[oi];
    const t = Math.max(0.5, objects.t[i]);
    const k = objects.k[i];
    const hf = 1 - Math.exp(-t / 260);
    if (k < nb) {
      paintBuilding(canvas, G, objects.buildings[k], objects.walls[k], objects.shade[i], t, hf, haze, c);
    } else paintTree(canvas, G, objects.trees[k - nb], objects.q[i], t, hf, haze, c);
  }
}

/** A building at distance t: its wall (shaded by the face it shows) up to the eave, then a roof-coloured band. */
function paintBuilding(
  canvas: Canvas,
  G: Geometry,
  b: Building,
  wall: RGB,
  shade: number,
  t: number,
  hf: number,
  haze: number[],
  c: number,
): void {
  const { data, h, w } = canvas;
  const top = (b.height - CAM_H) / t, bottom = -CAM_H / t, eave = (b.height * 0.8 - CAM_H) / t;
  const rf = b.roof;
  for (let r = 0; r < h; r++) {
    const te = G.tanE[r];
    if (te > top || te < bottom) continue;
    const o = (r * w + c) * 3;
    let R: number, Gc: number, Bc: number;
    if (te > eave) (R = rf[0] * 0.9), (Gc = rf[1] * 0.9), (Bc = rf[2] * 0.9);
    else (R = wall[0] * shade), (Gc = wall[1] * shade), (Bc = wall[2] * shade);
    data[o] = R + (haze[0] - R) * hf;
    data[o + 1] = Gc + (haze[1] - Gc) * hf;
    data[o + 2] = Bc + (haze[2] - Bc) * hf;
  }
}

/**
 * A tree at distance t, met at distance q from its axis: the crown's chord at q (upper half lit), and the
 * trunk below it when the ray passes close to the axis.
 */
function paintTree(
  canvas: Canvas,
  G: Geometry,
  tr: Tree,
  q: number,
  t: number,
  hf: number,
  haze: number[],
  c: number,
): void {
  const { data, h, w } = canvas;
  const s = Math.sqrt(Math.max(0, 1 - (q / tr.r) ** 2));
  const cz = tr.height - tr.r; // crown centre height
  const ctop = (cz + tr.r * s - CAM_H) / t, cbot = (cz - tr.r * s - CAM_H) / t;
  const trunk = q < Math.max(0.35, 0.2 * tr.r);
  const bottom = -CAM_H / t;
  for (let r = 0; r < h; r++) {
    const te = G.tanE[r];
    const o = (r * w + c) * 3;
    let R: number, Gc: number, Bc: number;
    if (te <= ctop && te >= cbot) {
      const litSide = te > (ctop + cbot) / 2;
      const col = litSide ? TREE_LIT : TREE;
      (R = col[0]), (Gc = col[1]), (Bc = col[2]);
    } else if (trunk && te < cbot && te >= bottom) (R = TRUNK[0]), (Gc = TRUNK[1]), (Bc = TRUNK[2]);
    else continue;
    data[o] = R + (haze[0] - R) * hf;
    data[o + 1] = Gc + (haze[1] - Gc) * hf;
    data[o + 2] = Bc + (haze[2] - Bc) * hf;
  }
}
