/**
 * Loaders for real data a user brings. Images are decoded and resized with sharp to the spec's shapes
 * (ground panorama groundShape [h, w], aerial tile aerialSize square).
 *
 * - Cross-view (CVUSA / VIGOR style): a CSV with a header naming the columns `ground_path`, `aerial_path`,
 *   `lat`, `lon` (aliases: ground/street/streetview/panorama; aerial/sat/satellite/bingmap; latitude;
 *   lng/long/longitude), paths relative to the CSV's folder (or `root`). Each row becomes a pairing example:
 *   its ground view + K aerial candidates, the K-1 negatives drawn (seeded) from other rows, tier "far".
 * - IM2GPS3K style: a CSV with an image column (`image`/`img_id`/`path`/`file`/`image_path`) and `lat`,
 *   `lon`; images in `imagesDir` (default: the CSV's folder). Each row becomes a geolocate example.
 *
 * Errors are UserErrors (exit code 1) naming the file, the line and the column: missing CSV or columns, bad
 * coordinates (not a number, |lat| > 90, |lon| > 180), missing images, truncated or corrupt images.
 *
 * Scene metadata: real images have no procedural scene. With `world` given, geography fields (country,
 * continent, climate, ...) come from the world's lookups at the row's coordinates; without it they are the
 * strings "UNK" / "Unknown" (cast, documented: only lat/lon are meaningful then).
 * @module
 */
import { dirname, isAbsolute, join } from "node:path";
import { UserError } from "../errors.ts";
import { checkPath } from "../run/sandbox.ts";
import { deriveSeed, Rng } from "../rng.ts";
import type { WorldSpec } from "../spec/types.ts";
import type { RGBImage, SceneMeta, World } from "../world/types.ts";
import { decodeImageFile } from "./images.ts";
import { realGroundExample, realPairingExample } from "./real_examples.ts";
import type { Example, Split } from "./types.ts";

/** Parse CSV text (RFC 4180: quotes, doubled quotes, CRLF). Returns rows with their 1-based line numbers. */
export function parseCsv(text: string, file = "csv"): { line: number; cells: string[] }[] {
  const rows: { line: number; cells: string[] }[] = [];
  let cells: string[] = [];
  let cell = "";
  let inQ = false;
  let line = 1;
  let rowLine = 1;
  let touched = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inQ) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          cell += '"';
          i++;
        } else inQ = false;
      } else {
        if (c === "\n") line++;
        cell += c;
      }
      continue;
    }
    if (c === '"') {
      inQ = true;
      touched = true;
    } else if (c === ",") {
      cells.push(cell);
      cell = "";
      touched = true;
    } else if (c === "\n" || c === "\r") {
      if (c === "\r" && text[i + 1] === "\n") i++;
      if (touched || cell.length) {
        cells.push(cell);
        rows.push({ line: rowLine, cells });
      }
      cells = [];
      cell = "";
      touched = false;
      line++;
      rowLine = line;
    } else {
      cell += c;
      touched = true;
    }
  }
  if (inQ) throw new UserError(`${file}:${rowLine}: unterminated quoted field`, 1);
  if (touched || cell.length) {
    cells.push(cell);
    rows.push({ line: rowLine, cells });
  }
  return rows;
}

const ALIASES: Record<string, string[]> = {
  ground: [
    "ground_path",
    "ground",
    "street",
    "streetview",
    "street_path",
    "panorama",
    "pano",
    "ground_image",
  ],
  aerial: ["aerial_path", "aerial", "sat", "satellite", "sat_path", "bingmap", "aerial_image"],
  image: ["image", "img_id", "image_path", "path", "file", "filename", "img"],
  lat: ["lat", "latitude"],
  lon: ["lon", "lng", "long", "longitude"],
};

/** Column indices of `want` (keys of the alias table) in a CSV header; a missing one names file and line 1. */
export function columnsOf(header: string[], want: string[], file: string): Record<string, number> {
  const norm = header.map((h) => h.trim().toLowerCase());
  const out: Record<string, number> = {};
  for (const w of want) {
    const idx = norm.findIndex((h) => ALIASES[w].includes(h));
    if (idx < 0) {
      throw new UserError(
        `${file}:1: missing column '${ALIASES[w][0]}' (accepted names: ${
          ALIASES[w].join(", ")
        }); header is: ${header.join(",")}`,
        1,
      );
    }
    out[w] = idx;
  }
  return out;
}

/** Parse and check one coordinate cell; the error names file, line, column and the image of the row. */
export function coordinateOf(
  cells: string[],
  col: number,
  name: string,
  max: number,
  file: string,
  line: number,
  image: string,
): number {
  const raw = (cells[col] ?? "").trim();
  const v = raw === "" ? NaN : Number(raw);
  if (!Number.isFinite(v) || Math.abs(v) > max) {
    throw new UserError(
      `${file}:${line}: column ${name} (${col + 1}): ${JSON.stringify(raw)} is not a ${
        name === "lat" ? "latitude in [-90, 90]" : "longitude in [-180, 180]"
      } (image ${image})`,
      1,
    );
  }
  return v;
}

async function readCsv(csvPath: string): Promise<{ line: number; cells: string[] }[]> {
  return (await readCsvRows(csvPath)).rows;
}

/** Read and parse a CSV that must hold a header and at least one row; also returns its text. */
export async function readCsvRows(
  csvPath: string,
): Promise<{ rows: { line: number; cells: string[] }[]; text: string }> {
  let text: string;
  checkPath(csvPath, "read", "CSV");
  try {
    text = await Deno.readTextFile(csvPath);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw new UserError(`CSV not found: ${csvPath}`, 1);
    throw new UserError(`cannot read CSV ${csvPath}: ${(e as Error).message}`, 1);
  }
  const rows = parseCsv(text, csvPath);
  if (rows.length < 2) throw new UserError(`${csvPath}: expected a header line and at least one row`, 1);
  return { rows, text };
}

function metaFor(lat: number, lon: number, id: string, world?: World): SceneMeta {
  if (world) return { ...world.sceneAt(lat, lon).meta, id, lat, lon };
  const unknown = "Unknown" as never;
  return {
    id,
    lat,
    lon,
    country: "UNK",
    countryName: "Unknown",
    continent: unknown,
    climate: unknown,
    settlement: unknown,
    density: NaN,
    drivingSide: unknown,
    nearestCity: "",
    nearestCityKm: NaN,
    coast: false,
    timestamp: "",
    sunElevation: NaN,
    sunAzimuth: NaN,
    vegetation: "Unknown",
    style: {
      roofName: "Unknown",
      roofPalette: [],
      roadLine: [0, 0, 0],
      roadLineName: "Unknown",
      roadSurface: [0, 0, 0],
      buildingHeight: NaN,
      drivingSide: unknown,
    },
    regionKey: "",
  };
}

export interface CrossViewOptions {
  worldSpec: Pick<WorldSpec, "groundShape" | "aerialSize">;
  /** K candidates (default 4). */
  candidates?: number;
  /** Seed of the negatives and letter positions. */
  seed: number;
  /** Folder image paths are relative to (default: the CSV's folder). */
  root?: string;
  split?: Split;
  /** Optional world for the geography fields of the metadata. */
  world?: World;
  /** Read at most this many rows. */
  limit?: number;
}

/** One row of a cross-view CSV, decoded and located. */
interface CrossViewRow {
  ground: RGBImage;
  aerial: RGBImage;
  meta: SceneMeta;
}

/** Load a CVUSA/VIGOR-style cross-view CSV into pairing examples (see module doc). */
export async function loadCrossView(csvPath: string, opts: CrossViewOptions): Promise<Example[]> {
  const rows = await readCsv(csvPath);
  const col = columnsOf(rows[0].cells, ["ground", "aerial", "lat", "lon"], csvPath);
  const body = rows.slice(1, opts.limit ? opts.limit + 1 : undefined);
  const K = opts.candidates ?? 4;
  if (body.length < K) {
    throw new UserError(
      `${csvPath}: ${body.length} rows, need at least ${K} (one match + ${K - 1} negatives)`,
      1,
    );
  }
  const items = await readCrossViewRows(csvPath, rows[0].cells, col, body, opts);
  const split = opts.split ?? "test";
  return items.map((_, i) => crossViewExample(items, i, K, split, opts.seed));
}

/** Decode both views of each body row and locate it; errors name the file, line and column. */
async function readCrossViewRows(
  csvPath: string,
  header: string[],
  col: Record<string, number>,
  body: { line: number; cells: string[] }[],
  opts: CrossViewOptions,
): Promise<CrossViewRow[]> {
  const root = opts.root ?? dirname(csvPath);
  const abs = (p: string) => (isAbsolute(p) ? p : join(root, p));
  const [gh, gw] = opts.worldSpec.groundShape;
  const A = opts.worldSpec.aerialSize;
  const items: CrossViewRow[] = [];
  for (const r of body) {
    const gp = abs((r.cells[col.ground] ?? "").trim());
    const ap = abs((r.cells[col.aerial] ?? "").trim());
    const lat = coordinateOf(r.cells, col.lat, "lat", 90, csvPath, r.line, gp);
    const lon = coordinateOf(r.cells, col.lon, "lon", 180, csvPath, r.line, gp);
    const at = `${csvPath}:${r.line}: column`;
    const ground = await decodeImageFile(gp, gw, gh, `${at} ${header[col.ground]}`);
    const aerial = await decodeImageFile(ap, A, A, `${at} ${header[col.aerial]}`);
    items.push({ ground, aerial, meta: metaFor(lat, lon, `real:${gp}`, opts.world) });
  }
  return items;
}

/** Row i as a pairing example: K - 1 distinct other rows (seeded by i), tier "far"; the match at any letter. */
function crossViewExample(items: CrossViewRow[], i: number, K: number, split: Split, seed: number): Example {
  const rng = new Rng(deriveSeed(seed, `crossview/${i}`));
  const others: number[] = [];
  while (others.length < K - 1) {
    const j = rng.int(items.length);
    if (j !== i && !others.includes(j)) others.push(j);
  }
  const correct = rng.int(K);
  const idx = [...others];
  idx.splice(correct, 0, i);
  return realPairingExample(
    `real-pairing/${split}/${i}`,
    split,
    items[i].ground,
    items[i].meta,
    idx.map((j) => items[j]),
    correct,
    idx.map((j) => (j === i ? "match" : "far")),
  );
}

export interface GeolocateCsvOptions {
  worldSpec: Pick<WorldSpec, "groundShape">;
  /** Folder of the images (default: the CSV's folder). */
  imagesDir?: string;
  split?: Split;
  world?: World;
  limit?: number;
}

/** Load an IM2GPS3K-style CSV (image, lat, lon) into geolocate examples (see module doc). */
export async function loadGeolocateCsv(csvPath: string, opts: GeolocateCsvOptions): Promise<Example[]> {
  const rows = await readCsv(csvPath);
  const col = columnsOf(rows[0].cells, ["image", "lat", "lon"], csvPath);
  const body = rows.slice(1, opts.limit ? opts.limit + 1 : undefined);
  const dir = opts.imagesDir ?? dirname(csvPath);
  const [gh, gw] = opts.worldSpec.groundShape;
  const split = opts.split ?? "test";
  const out: Example[] = [];
  for (const r of body) {
    const name = (r.cells[col.image] ?? "").trim();
    const p = isAbsolute(name) ? name : join(dir, name);
    const lat = coordinateOf(r.cells, col.lat, "lat", 90, csvPath, r.line, p);
    const lon = coordinateOf(r.cells, col.lon, "lon", 180, csvPath, r.line, p);
    const ground = await decodeImageFile(
      p,
      gw,
      gh,
      `${csvPath}:${r.line}: column ${rows[0].cells[col.image]}`,
    );
    const scene = metaFor(lat, lon, `real:${p}`, opts.world);
    out.push(realGroundExample(`real-geolocate/${split}/${out.length}`, split, ground, scene));
  }
  return out;
}
