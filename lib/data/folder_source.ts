/**
 * Folder sources: data a user brings, as a fixed set of rows, served through the same `TaskSampler` as
 * GeoWorld so every stage and `eval` take it unchanged.
 *
 * - pairing folder (CVUSA / VIGOR / CV-Cities style): `pairs.csv` with `ground_path, aerial_path, lat, lon`
 *   (the column aliases of lib/data/loaders.ts), image paths relative to the CSV's folder;
 * - geolocation CSV (IM2GPS3K / MP16 style): `path, lat, lon`, images relative to the CSV's folder.
 *
 * row: one CSV line with its decoded images (resized with sharp to the world's view shapes), coordinates and
 * the world's geography at them (country, climate, ... from GeoWorld's lookups: lib/data/loaders.ts).
 *
 * Splits: with `split: "region"` a row's split is the split of its region cell (the GeoWorld rule: cell key
 * hashed with the world seed), so a folder exported from GeoWorld splits exactly as GeoWorld does; with
 * `split: "test"` every row is a test row. Example `index` of a split uses row `index mod rows`.
 *
 * Pairing negatives are other rows of the same split, in the GeoWorld tiers: near (5-50 km, same country),
 * climate (same climate zone, more than 200 km), far (more than 200 km); rows 50-200 km away or closer
 * than 5 km are never negatives (they may show the same place). Val/test examples ask for near negatives
 * as GeoWorld does (`data.testNearMin`); when a row has no row of the asked tier, the next tier in the order
 * near, climate, far is used and the example records the tier it got (per-tier accuracy stays truthful).
 * A val/test row with fewer than K-1 usable negatives is an error; a training row passes its turn to the
 * next row.
 *
 * Targets: a row has no scene cues, so supervised targets use the fixed short think blocks of real data
 * (lib/data/prompts.ts REAL_*_THINK) and the cue loss gets weight 0. Captions, scaffold exemplars and
 * control tasks need scene cues: a folder source serves pairing, geolocate and geo-qa only.
 *
 * Errors are UserErrors naming the file, the line and the column: missing CSV or column, bad coordinate,
 * unreadable image, a duplicate row (same image path), a split with no rows, too few usable negatives.
 * Everything is read and checked before a run directory is made, so a bad folder leaves nothing behind.
 * @module
 */
import { createHash } from "node:crypto";
import { dirname, isAbsolute, join } from "node:path";
import { UserError } from "../errors.ts";
import { deriveSeed, Rng } from "../rng.ts";
import type { DataSpec, FolderSourceSpec, WorldSpec } from "../spec/types.ts";
import type { RGBImage, SceneMeta, World } from "../world/types.ts";
import { letter } from "./cot.ts";
import { decodeImageFile } from "./images.ts";
import { columnsOf, coordinateOf, readCsvRows } from "./loaders.ts";
import { realGroundExample, realPairingExample } from "./real_examples.ts";
import {
  FAR_MIN_KM,
  haversineKm,
  NEAR_MAX_KM,
  NEAR_MIN_KM,
  type NegativeMix,
  requiredNear,
  type TaskSampler,
  tierWeights,
} from "./tasks.ts";
import { type Example, type NegativeTier, QA_KINDS, type Split, type TaskName } from "./types.ts";

/** One located row of a folder source. */
export interface Row {
  /** Where it came from, for messages: `pairs.csv:12`. */
  where: string;
  lat: number;
  lon: number;
  ground: RGBImage;
  /** The aerial tile (pairing rows only). */
  aerial: RGBImage | null;
}

/** The rows of a source by role, plus a content hash (part of the stage cache key). */
export interface RowSet {
  /** Rows with ground and aerial views (pairing). */
  pairing: Row[];
  /** Rows with a ground view (geolocate, geo-qa); the pairing rows when no geolocation CSV is given. */
  geolocate: Row[];
  /** sha256 of what was read (CSV text and image bytes), or of the rows' pixels when built in memory. */
  contentHash: string;
  /** Files the rows come from, for messages. */
  files: { pairing: string | null; geolocate: string | null };
}

/** Rows per split of a row set, for messages and `data` summaries. */
export function splitCounts(rows: Row[], splitOf: (r: Row) => Split): Record<Split, number> {
  const out: Record<Split, number> = { train: 0, val: 0, test: 0 };
  for (const r of rows) out[splitOf(r)]++;
  return out;
}

async function statKind(path: string): Promise<"file" | "dir" | null> {
  try {
    const st = await Deno.stat(path);
    return st.isDirectory ? "dir" : "file";
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

/** The CSV a folder-source field names: the path itself when it is a file, else `<dir>/<defaultName>`. */
export async function csvOf(path: string, defaultName: string, field: string): Promise<string> {
  const kind = await statKind(path);
  if (kind === "file") return path;
  if (kind === "dir") {
    const csv = join(path, defaultName);
    if ((await statKind(csv)) === "file") return csv;
    throw new UserError(`data.source.${field}: ${path} is a folder without ${defaultName}`, 1);
  }
  throw new UserError(`data.source.${field}: ${path} not found`, 1);
}

/**
 * Read the rows of a folder source. Images are decoded and resized to `world`'s view shapes; every
 * problem is a UserError naming the file, line and column.
 */
export async function readFolderRows(
  src: FolderSourceSpec,
  world: Pick<WorldSpec, "groundShape" | "aerialSize">,
): Promise<RowSet> {
  const hash = createHash("sha256");
  const [gh, gw] = world.groundShape;
  const A = world.aerialSize;
  const readImage = async (path: string, w: number, h: number, where: string): Promise<RGBImage> => {
    const img = await decodeImageFile(path, w, h, where);
    hash.update(`${path}\n`);
    hash.update(await Deno.readFile(path));
    return img;
  };
  let pairing: Row[] = [];
  let pairingCsv: string | null = null;
  if (src.pairing !== undefined) {
    pairingCsv = await csvOf(src.pairing, "pairs.csv", "pairing");
    pairing = await readLocatedRows(pairingCsv, ["ground", "aerial", "lat", "lon"], hash, async (column) => {
      const g = column("ground"), a = column("aerial");
      return {
        ground: await readImage(g.path, gw, gh, g.where),
        aerial: await readImage(a.path, A, A, a.where),
      };
    });
  }
  let geolocate: Row[] = pairing;
  let geolocateCsv: string | null = null;
  if (src.geolocate !== undefined) {
    geolocateCsv = await csvOf(src.geolocate, "geolocate.csv", "geolocate");
    geolocate = await readLocatedRows(geolocateCsv, ["image", "lat", "lon"], hash, async (column) => {
      const g = column("image");
      return { ground: await readImage(g.path, gw, gh, g.where), aerial: null };
    });
  }
  if (src.pairing === undefined) pairing = [];
  return {
    pairing,
    geolocate,
    contentHash: hash.digest("hex"),
    files: { pairing: pairingCsv, geolocate: geolocateCsv },
  };
}

/** An image cell of a CSV row: the path it names (relative to the CSV) and where it is, for messages. */
type ImageCell = { path: string; where: string };

/**
 * The rows of one folder-source CSV whose first wanted column names the row's image: each row's path is
 * checked for duplicates and its lat/lon for range, then `images` reads its views. The CSV text goes into
 * `hash` (and `images` adds the pixels), so the content hash covers both.
 */
async function readLocatedRows(
  csv: string,
  columns: string[],
  hash: ReturnType<typeof createHash>,
  images: (column: (name: string) => ImageCell) => Promise<Pick<Row, "ground" | "aerial">>,
): Promise<Row[]> {
  const { rows, text } = await readCsvRows(csv);
  hash.update(text);
  const col = columnsOf(rows[0].cells, columns, csv);
  const seen = new Map<string, number>();
  const out: Row[] = [];
  for (const r of rows.slice(1)) {
    const at = `${csv}:${r.line}`;
    const column = (name: string): ImageCell => ({
      path: resolveIn(csv, (r.cells[col[name]] ?? "").trim()),
      where: `${at}: column ${rows[0].cells[col[name]]}`,
    });
    const key = column(columns[0]);
    checkDuplicate(seen, key.path, r.line, key.where);
    const lat = coordinateOf(r.cells, col.lat, "lat", 90, csv, r.line, key.path);
    const lon = coordinateOf(r.cells, col.lon, "lon", 180, csv, r.line, key.path);
    out.push({ where: at, lat, lon, ...(await images(column)) });
  }
  return out;
}

function resolveIn(csvPath: string, p: string): string {
  return isAbsolute(p) ? p : join(dirname(csvPath), p);
}

function checkDuplicate(seen: Map<string, number>, path: string, line: number, where: string): void {
  const first = seen.get(path);
  if (first !== undefined) {
    throw new UserError(`${where}: duplicate row: ${path} is already the image of line ${first}`, 1);
  }
  seen.set(path, line);
}

/** A row set built in memory (no files): its content hash covers coordinates and pixels. */
export function rowSetInMemory(pairing: Row[], geolocate?: Row[]): RowSet {
  const hash = createHash("sha256");
  for (const r of [...pairing, ...(geolocate ?? [])]) {
    hash.update(`${r.lat},${r.lon}\n`);
    hash.update(r.ground.data);
    if (r.aerial) hash.update(r.aerial.data);
  }
  return {
    pairing,
    geolocate: geolocate ?? pairing,
    contentHash: hash.digest("hex"),
    files: { pairing: null, geolocate: null },
  };
}

/** What a folder sampler needs besides the rows. */
export interface FolderSamplerOptions {
  world: World;
  data: DataSpec;
  worldSpec: WorldSpec;
  /** The GeoWorld sampler of the same world and data spec: its split rule decides a row's split. */
  geoworld: TaskSampler;
  /** Seed of val/test examples (eval.seed), as GeoWorld. */
  evalSeed: number;
  /** "region" (split by region cell) or "test" (every row is a test row). */
  split: "region" | "test";
}

const TIER_ORDER: NegativeTier[] = ["near", "climate", "far"];
const TIERS_BY_WEIGHT: NegativeTier[] = ["far", "climate", "near"];

/** A row with its scene metadata (the world's geography at the row's coordinates). */
interface Located {
  row: Row;
  meta: SceneMeta;
}

/** A row set arranged for sampling: located rows by role and split, and each anchor's negative pools. */
interface Arranged {
  rows: RowSet;
  opts: FolderSamplerOptions;
  /** Pairing rows by split. */
  pairing: Record<Split, Located[]>;
  /** Ground-view rows (geolocate, geo-qa) by split. */
  ground: Record<Split, Located[]>;
  splitOfRow(r: Row): Split;
  /** The row's scene metadata under example id `id` (the world lookup is cached per row). */
  metaOf(r: Row, id: string): SceneMeta;
  /** Negative pools per anchor and tier, computed once per anchor. */
  pools: Map<Located, Record<NegativeTier, Located[]>>;
}

/**
 * A TaskSampler over a row set (see module doc). Throws a UserError when a split holds no rows of a role.
 * `example()` of caption throws: folder data has no captions (the spec check refuses such stages first).
 */
export function createFolderSampler(rows: RowSet, o: FolderSamplerOptions): TaskSampler {
  const set = arrange(rows, o);
  const example = (task: TaskName, split: Split, index: number, mix?: NegativeMix): Example => {
    if (!Number.isInteger(index) || index < 0) {
      throw new Error(`example index must be a non-negative integer: ${index}`);
    }
    const seed = split === "train" ? o.data.seed >>> 0 : o.evalSeed >>> 0;
    const id = `${task}/${split}/${seed}/${index}`;
    const rng = new Rng(deriveSeed(seed, id));
    if (task === "pairing") return rowPairingExample(set, id, split, index, rng, mix);
    return rowGroundExample(set, task, id, split, index, rng);
  };
  return {
    data: o.data,
    worldSpec: o.worldSpec,
    splitOf: (lat, lon) => (o.split === "test" ? "test" : o.geoworld.splitOf(lat, lon)),
    splitOfKey: (key) => (o.split === "test" ? "test" : o.geoworld.splitOfKey(key)),
    regionKey: o.geoworld.regionKey,
    sampleLocation: (split, rng) => {
      const list = rowsFor(set, "geolocate", split);
      const r = list[rng.int(list.length)].row;
      return { lat: r.lat, lon: r.lon };
    },
    example,
    examples: (task, split, start, n, mix) =>
      Array.from({ length: n }, (_, i) => example(task, split, start + i, mix)),
    sample: (task, split, n, rng) => Array.from({ length: n }, () => example(task, split, rng.int(2 ** 31))),
  };
}

/** Locate every row and sort the rows of each role into their splits. */
function arrange(rows: RowSet, opts: FolderSamplerOptions): Arranged {
  const metaCache = new Map<Row, SceneMeta>();
  const metaOf = (r: Row, id: string): SceneMeta => {
    let m = metaCache.get(r);
    if (!m) {
      m = { ...opts.world.sceneAt(r.lat, r.lon).meta, lat: r.lat, lon: r.lon };
      metaCache.set(r, m);
    }
    return { ...m, id };
  };
  const splitOfRow = (
    r: Row,
  ): Split => (opts.split === "test" ? "test" : opts.geoworld.splitOf(r.lat, r.lon));
  const bySplit = (list: Row[]) => {
    const out: Record<Split, Located[]> = { train: [], val: [], test: [] };
    list.forEach((row, i) => out[splitOfRow(row)].push({ row, meta: metaOf(row, `row:${i}`) }));
    return out;
  };
  const pairing = bySplit(rows.pairing);
  const ground = bySplit(rows.geolocate);
  return { rows, opts, pairing, ground, splitOfRow, metaOf, pools: new Map() };
}

/** The located rows of a task's role in a split; a UserError for a task a folder lacks or an empty split. */
function rowsFor(set: Arranged, task: TaskName, split: Split): Located[] {
  if (task !== "pairing" && task !== "geolocate" && task !== "geoqa") {
    throw new UserError(`data.source: a folder source has no ${task} examples (they need scene cues)`);
  }
  const role = task === "pairing" ? "pairing" : "geolocate";
  const list = task === "pairing" ? set.pairing[split] : set.ground[split];
  if (!list.length) throw emptySplitError(set, task, role, split);
  return list;
}

/** The error for a split without rows: no rows at all, or the rows per split and how to move the split. */
function emptySplitError(
  set: Arranged,
  task: TaskName,
  role: "pairing" | "geolocate",
  split: Split,
): UserError {
  const { rows, opts } = set;
  const all = task === "pairing" ? rows.pairing : rows.geolocate;
  if (!all.length) {
    return new UserError(
      `data.source: no ${task} rows (${role === "pairing" ? "no pairing folder" : "no rows"})`,
    );
  }
  const c = splitCounts(all, set.splitOfRow);
  const file = rows.files[role] ?? rows.files.pairing ?? "(rows in memory)";
  return new UserError(
    `${file}: no rows in the ${split} split (rows per split: train ${c.train}, val ${c.val}, ` +
      `test ${c.test}; splits are region cells of ${opts.data.regionCellDeg} degrees hashed with world seed ` +
      `${opts.world.seed}): add rows there, or change data.regionCellDeg / data.testFraction / data.valFraction`,
    1,
  );
}

/** An anchor's negative pools: the other pairing rows of its split, by the tier their distance gives. */
function poolsOf(set: Arranged, a: Located, split: Split): Record<NegativeTier, Located[]> {
  let p = set.pools.get(a);
  if (!p) {
    p = { near: [], climate: [], far: [] };
    for (const c of set.pairing[split]) {
      if (c === a) continue;
      const d = haversineKm(a.meta, c.meta);
      if (d >= NEAR_MIN_KM && d <= NEAR_MAX_KM && c.meta.country === a.meta.country) p.near.push(c);
      else if (d > FAR_MIN_KM) {
        p.far.push(c);
        if (c.meta.climate === a.meta.climate) p.climate.push(c);
      }
    }
    set.pools.set(a, p);
  }
  return p;
}

/** Rows an anchor may take as negatives (near or far; the climate pool is a subset of far). */
function usableNegatives(set: Arranged, a: Located, split: Split): number {
  const p = poolsOf(set, a, split);
  return p.near.length + p.far.length;
}

/**
 * The pairing example of row `index mod rows` of a split: negatives by tier (by `mix` instead of
 * `data.negatives` on the train split when given), the match at any letter.
 */
function rowPairingExample(
  set: Arranged,
  id: string,
  split: Split,
  index: number,
  rng: Rng,
  mix?: NegativeMix,
): Example {
  const K = set.opts.data.candidates;
  const list = rowsFor(set, "pairing", split);
  const nNeg = K - 1;
  let anchor = list[index % list.length];
  // A training anchor without enough usable negatives passes its turn to the next row.
  for (let k = 1; split === "train" && k < list.length && usableNegatives(set, anchor, split) < nNeg; k++) {
    anchor = list[(index + k) % list.length];
  }
  const minNear = split === "train" ? 0 : requiredNear(index, nNeg, set.opts.data.testNearMin);
  const weights = tierWeights(split, mix, set.opts.data.negatives);
  const { negs, tiers } = drawRowNegatives(set, anchor, split, nNeg, minNear, weights, rng);
  const order = rng.shuffle(negs.map((_, i) => i));
  const correct = rng.int(K);
  const cand: Located[] = order.map((i) => negs[i]);
  const candTiers: (NegativeTier | "match")[] = order.map((i) => tiers[i]);
  cand.splice(correct, 0, anchor);
  candTiers.splice(correct, 0, "match");
  return realPairingExample(
    id,
    split,
    anchor.row.ground,
    set.metaOf(anchor.row, `${id}/ground`),
    cand.map((c, k) => ({ aerial: c.row.aerial!, meta: set.metaOf(c.row, `${id}/${letter(k)}`) })),
    correct,
    candTiers,
  );
}

/**
 * nNeg distinct negatives for an anchor, the first `minNear` asked near and the rest of a tier drawn by the
 * negative weights; a tier without a free row falls to the next in TIER_ORDER and records the tier it got.
 */
function drawRowNegatives(
  set: Arranged,
  anchor: Located,
  split: Split,
  nNeg: number,
  minNear: number,
  weights: NegativeMix,
  rng: Rng,
): { negs: Located[]; tiers: NegativeTier[] } {
  const pool = poolsOf(set, anchor, split);
  const w = [weights.far, weights.climate, weights.near];
  const negs: Located[] = [];
  const tiers: NegativeTier[] = [];
  for (let i = 0; i < nNeg; i++) {
    const asked = i < minNear ? "near" : TIERS_BY_WEIGHT[rng.weighted(w)];
    let got: Located | null = null;
    let tier: NegativeTier = asked;
    for (const t of [asked, ...TIER_ORDER.slice(TIER_ORDER.indexOf(asked) + 1)]) {
      const free = pool[t].filter((c) => !negs.includes(c));
      if (free.length) {
        got = free[rng.int(free.length)];
        tier = t;
        break;
      }
    }
    if (!got) {
      throw new UserError(
        `${anchor.row.where}: too few negatives for this row in the ${split} split: ${negs.length} rows of ` +
          `it lie 5-50 km away in the same country or more than 200 km away, need ${nNeg}`,
        1,
      );
    }
    negs.push(got);
    tiers.push(tier);
  }
  return { negs, tiers };
}

/** The geolocate or geo-qa example of row `index mod rows` of a split (geo-qa draws its question kind). */
function rowGroundExample(
  set: Arranged,
  task: TaskName,
  id: string,
  split: Split,
  index: number,
  rng: Rng,
): Example {
  const list = rowsFor(set, task, split);
  const at = list[index % list.length];
  const scene = set.metaOf(at.row, id);
  const qaKind = task === "geolocate" ? undefined : QA_KINDS[rng.int(QA_KINDS.length)];
  return realGroundExample(id, split, at.row.ground, scene, qaKind);
}
