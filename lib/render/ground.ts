/**
 * Ground panorama: a north-aligned 360-degree strip seen from a camera 2 m above the scene centre. Column c looks
 * along azimuth 360 * c / W (column 0 = north, clockwise). Rows map to elevation angles non-linearly (finer near
 * the horizon): above the horizon e = 60 (k / K)^1.5 degrees, below e = -60 (k / K')^1.6, k = rows from the
 * horizon. Per column, once: the ground plane is sampled along the ray (water, road surface and centre line,
 * vegetation, distance haze), then buildings (walls lit by the sun, a roof-coloured band on top) and trees are
 * painted far to near at their true azimuths and angular sizes; the sky has a gradient and the sun disc.
 * @module
 */
import type { RGBImage, Scene } from "../world/types.ts";
import { DEG, roadFrames, SUN, TREE, TREE_LIT, TRUNK, wallOf, WATER, WATER_FAR } from "./common.ts";

const CAM_H = 2;

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

/** Render the ground panorama of a scene; `shape` = [height, width]. */
export function renderGround(scene: Scene, shape: [number, number]): RGBImage {
  const [h, w] = shape;
  const G = geometry(h | 0, w | 0);
  const L = scene.layout, meta = scene.meta, st = meta.style;
  const data = new Uint8Array(h * w * 3);
  const hz = G.horizon;
  const roads = L.roads, nr = roads.length;
  const { rc, rs, ro, rw } = roadFrames(roads);
  const lineHalf = 0.6;
  const wt = L.water;
  const wsx = wt ? Math.sin(wt.bearing * DEG) : 0, wcy = wt ? Math.cos(wt.bearing * DEG) : 0;
  const wd = wt ? wt.distance : 0;
  const gr = L.ground, sf = st.roadSurface, ln = st.roadLine;
  // sky colours depend on the sun height
  const sunEl = meta.sunElevation, sunAz = meta.sunAzimuth * DEG;
  const day = Math.max(0.25, Math.min(1, (sunEl + 6) / 20));
  const zen = [60 * day, 118 * day, 200 * day], hor = [196 * day, 214 * day, 232 * day];
  const haze = hor;
  const sinSE = Math.sin(sunEl * DEG), cosSE = Math.cos(sunEl * DEG);
  const sunUp = sunEl > -1;
  const cosSun = Math.cos(4.5 * DEG), cosGlow = Math.cos(14 * DEG);
  const sdx = Math.sin(sunAz), sdy = Math.cos(sunAz);
  // objects: building frames precomputed once per call
  const B = L.buildings, nb = B.length;
  const bc = new Float64Array(nb), bs = new Float64Array(nb);
  for (let k = 0; k < nb; k++) {
    bc[k] = Math.cos(B[k].rot * DEG);
    bs[k] = Math.sin(B[k].rot * DEG);
  }
  const walls = B.map((b) => wallOf(b.roof));
  const T = L.trees, nt = T.length;
  const hitT = new Float64Array(nb + nt),
    hitK = new Int32Array(nb + nt),
    hitShade = new Float64Array(nb + nt);
  const hitQ = new Float64Array(nb + nt);
  const order = new Int32Array(nb + nt);

  for (let c = 0; c < w; c++) {
    const dx = G.sinA[c], dy = G.cosA[c];
    // --- sky ---
    const cosDaz = dx * sdx + dy * sdy;
    for (let r = 0; r < hz; r++) {
      const o = (r * w + c) * 3;
      const f = (hz - r) / hz;
      let R = hor[0] + (zen[0] - hor[0]) * f,
        Gc = hor[1] + (zen[1] - hor[1]) * f,
        Bc = hor[2] + (zen[2] - hor[2]) * f;
      if (sunUp) {
        const ca = G.sinE[r] * sinSE + G.cosE[r] * cosSE * cosDaz;
        if (ca > cosSun) (R = SUN[0]), (Gc = SUN[1]), (Bc = SUN[2]);
        else if (ca > cosGlow) {
          const k = (ca - cosGlow) / (cosSun - cosGlow);
          R += (255 - R) * k * 0.7;
          Gc += (240 - Gc) * k * 0.7;
          Bc += (200 - Bc) * k * 0.5;
        }
      }
      data[o] = R;
      data[o + 1] = Gc;
      data[o + 2] = Bc;
    }
    // --- ground plane along the ray ---
    for (let r = hz; r < h; r++) {
      const t = G.tRow[r];
      const x = t * dx, y = t * dy;
      let R: number, Gc: number, Bc: number;
      if (wt && x * wsx + y * wcy > wd) {
        const k = Math.min(1, t / 120);
        R = WATER[0] + (WATER_FAR[0] - WATER[0]) * k;
        Gc = WATER[1] + (WATER_FAR[1] - WATER[1]) * k;
        Bc = WATER[2] + (WATER_FAR[2] - WATER[2]) * k;
      } else {
        R = gr[0], Gc = gr[1], Bc = gr[2];
        for (let k = 0; k < nr; k++) {
          const p = x * rc[k] - y * rs[k] - ro[k];
          const a = p < 0 ? -p : p;
          if (a < rw[k]) {
            if (a < lineHalf) (R = ln[0]), (Gc = ln[1]), (Bc = ln[2]);
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
    // --- objects hit by this column's ray ---
    let nh = 0;
    for (let k = 0; k < nb; k++) {
      const b = B[k];
      const ca = bc[k], sa = bs[k];
      // local frame: u along (c, -s) [hw], v along (s, c) [hh]; origin at -centre
      const ou = -b.x * ca + b.y * sa, ov = -b.x * sa - b.y * ca;
      const du = dx * ca - dy * sa, dv = dx * sa + dy * ca;
      let tmin = -Infinity, tmax = Infinity, face = 0;
      if (Math.abs(du) < 1e-12) {
        if (ou < -b.hw || ou > b.hw) continue;
      } else {
        let t1 = (-b.hw - ou) / du, t2 = (b.hw - ou) / du;
        if (t1 > t2) [t1, t2] = [t2, t1];
        if (t1 > tmin) (tmin = t1), (face = du > 0 ? -1 : 1);
        if (t2 < tmax) tmax = t2;
      }
      if (Math.abs(dv) < 1e-12) {
        if (ov < -b.hh || ov > b.hh) continue;
      } else {
        let t1 = (-b.hh - ov) / dv, t2 = (b.hh - ov) / dv;
        if (t1 > t2) [t1, t2] = [t2, t1];
        if (t1 > tmin) (tmin = t1), (face = dv > 0 ? -2 : 2);
        if (t2 < tmax) tmax = t2;
      }
      if (tmin >= tmax || tmin <= 0.1) continue;
      // face normal in world (east, north)
      let nx: number, ny: number;
      if (face === 1 || face === -1) (nx = face * ca), (ny = -face * sa);
      else (nx = (face / 2) * sa), (ny = (face / 2) * ca);
      const lit = sunUp ? Math.max(0, nx * sdx + ny * sdy) : 0;
      hitT[nh] = tmin;
      hitK[nh] = k;
      hitShade[nh] = 0.62 + 0.38 * lit;
      nh++;
    }
    for (let k = 0; k < nt; k++) {
      const tr = T[k];
      const along = tr.x * dx + tr.y * dy;
      if (along <= 0.5) continue;
      const q = Math.abs(tr.x * dy - tr.y * dx);
      if (q >= tr.r) continue;
      hitT[nh] = along - Math.sqrt(tr.r * tr.r - q * q);
      hitK[nh] = nb + k;
      hitQ[nh] = q;
      nh++;
    }
    if (nh === 0) continue;
    // insertion sort, far to near (few hits per column)
    for (let i = 0; i < nh; i++) {
      let j = i;
      while (j > 0 && hitT[order[j - 1]] < hitT[i]) (order[j] = order[j - 1]), j--;
      order[j] = i;
    }
    for (let oi = 0; oi < nh; oi++) {
      const i = order[oi];
      const t = Math.max(0.5, hitT[i]);
      const k = hitK[i];
      const hf = 1 - Math.exp(-t / 260);
      if (k < nb) {
        const b = B[k];
        const top = (b.height - CAM_H) / t, bottom = -CAM_H / t, eave = (b.height * 0.8 - CAM_H) / t;
        const wc = walls[k], rf = b.roof, sh = hitShade[i];
        for (let r = 0; r < h; r++) {
          const te = G.tanE[r];
          if (te > top || te < bottom) continue;
          const o = (r * w + c) * 3;
          let R: number, Gc: number, Bc: number;
          if (te > eave) (R = rf[0] * 0.9), (Gc = rf[1] * 0.9), (Bc = rf[2] * 0.9);
          else (R = wc[0] * sh), (Gc = wc[1] * sh), (Bc = wc[2] * sh);
          data[o] = R + (haze[0] - R) * hf;
          data[o + 1] = Gc + (haze[1] - Gc) * hf;
          data[o + 2] = Bc + (haze[2] - Bc) * hf;
        }
      } else {
        const tr = T[k - nb];
        const s = Math.sqrt(Math.max(0, 1 - (hitQ[i] / tr.r) ** 2));
        const cz = tr.height - tr.r; // crown centre height
        const ctop = (cz + tr.r * s - CAM_H) / t, cbot = (cz - tr.r * s - CAM_H) / t;
        const trunk = hitQ[i] < Math.max(0.35, 0.2 * tr.r);
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
    }
  }
  return { width: w, height: h, data };
}
