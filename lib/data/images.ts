/**
 * Image helpers of the data engine: float conversion for collate, PNG encoding (sharp), decoding + resizing of
 * user images with errors that name the file, nearest-neighbour upscaling and the contact sheet.
 * @module
 */
import sharp from "sharp";
import { UserError } from "../errors.ts";
import { checkPath } from "../run/sandbox.ts";
import { drawText, GLYPH_H, textWidth } from "./glyphs.ts";
import type { RGBImage } from "../world/types.ts";
import type { Example } from "./types.ts";

/** RGB bytes -> float32 in [0, 1], same HWC layout (length width*height*3). */
export function imageToFloat(img: RGBImage, out?: Float32Array, offset = 0): Float32Array {
  const n = img.width * img.height * 3;
  const dst = out ?? new Float32Array(n);
  const src = img.data;
  for (let i = 0; i < n; i++) dst[offset + i] = src[i] * (1 / 255);
  return dst;
}

/** Encode an RGB image as PNG bytes. */
export async function encodePng(img: RGBImage): Promise<Uint8Array> {
  const buf = await sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } })
    .png({ compressionLevel: 6 })
    .toBuffer();
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

/**
 * Decode an image file (any format sharp reads) to RGB, resized (stretch) to width x height. A missing file,
 * a truncated or corrupt image throw a UserError (exit code 1) whose message names the file; `where`
 * prefixes the message (e.g. "pairs.csv:12: column ground_path").
 */
export async function decodeImageFile(
  path: string,
  width: number,
  height: number,
  where = "",
): Promise<RGBImage> {
  const at = where ? `${where}: ` : "";
  let bytes: Uint8Array;
  checkPath(path, "read", `${at}image`);
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw new UserError(`${at}image not found: ${path}`, 1);
    throw new UserError(`${at}cannot read image ${path}: ${(e as Error).message}`, 1);
  }
  try {
    const { data, info } = await sharp(bytes, { failOn: "truncated" })
      .removeAlpha()
      .toColourspace("srgb")
      .resize(width, height, { fit: "fill" })
      .raw()
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new Error(`expected 3 channels after conversion, got ${info.channels}`);
    return {
      width: info.width,
      height: info.height,
      data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    };
  } catch (e) {
    const msg = String((e as Error).message ?? e).split("\n")[0];
    throw new UserError(`${at}cannot decode image ${path} (truncated or corrupt?): ${msg}`, 1);
  }
}

/** Nearest-neighbour upscale by an integer factor. */
export function upscale(img: RGBImage, k: number): RGBImage {
  const w = img.width * k;
  const h = img.height * k;
  const out = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) {
    const sy = Math.floor(y / k);
    for (let x = 0; x < w; x++) {
      const s = (sy * img.width + Math.floor(x / k)) * 3;
      const d = (y * w + x) * 3;
      out[d] = img.data[s];
      out[d + 1] = img.data[s + 1];
      out[d + 2] = img.data[s + 2];
    }
  }
  return { width: w, height: h, data: out };
}

function blit(dst: RGBImage, src: RGBImage, x0: number, y0: number): void {
  for (let y = 0; y < src.height; y++) {
    const dy = y0 + y;
    if (dy < 0 || dy >= dst.height) continue;
    for (let x = 0; x < src.width; x++) {
      const dx = x0 + x;
      if (dx < 0 || dx >= dst.width) continue;
      const s = (y * src.width + x) * 3;
      const d = (dy * dst.width + dx) * 3;
      dst.data[d] = src.data[s];
      dst.data[d + 1] = src.data[s + 1];
      dst.data[d + 2] = src.data[s + 2];
    }
  }
}

function frame(dst: RGBImage, x0: number, y0: number, w: number, h: number, t: number, c: number[]): void {
  for (let y = y0 - t; y < y0 + h + t; y++) {
    for (let x = x0 - t; x < x0 + w + t; x++) {
      if (x >= x0 && x < x0 + w && y >= y0 && y < y0 + h) continue;
      if (x < 0 || y < 0 || x >= dst.width || y >= dst.height) continue;
      const d = (y * dst.width + x) * 3;
      dst.data[d] = c[0];
      dst.data[d + 1] = c[1];
      dst.data[d + 2] = c[2];
    }
  }
}

const LABEL_COLOUR = [230, 230, 230];

/** Frame colours of the contact sheet: the true match, and negatives by tier. */
export const SHEET_COLOURS: Record<string, number[]> = {
  match: [40, 200, 60],
  near: [230, 140, 20],
  climate: [60, 120, 230],
  far: [150, 150, 150],
};

/**
 * A contact sheet: one block per example, the ground strip (upscaled by `scale`) above its aerial tile(s) in
 * letter order, each tile lettered (A, B, ...) below. Pairing candidates are framed by tier (green = the
 * true match, orange = near, blue = climate, grey = far), with that legend across the top. Returns an RGB
 * image (encode with {@link encodePng}).
 */
export function contactSheet(examples: Example[], scale = 3): RGBImage {
  const pad = 6 * scale;
  const font = Math.max(1, Math.round(scale * 2 / 3));
  const labelH = (GLYPH_H + 3) * font;
  const framed = examples.some((e) => e.pairing);
  const blocks = examples.map((e) => {
    const g = e.ground ? upscale(e.ground, scale) : null;
    const as = e.aerial.map((a) => upscale(a, scale));
    const aw = as.reduce((s, a) => s + a.width, 0) + Math.max(0, as.length - 1) * pad;
    const ah = as.reduce((m, a) => Math.max(m, a.height), 0) + (as.length ? labelH : 0);
    const w = Math.max(g?.width ?? 0, aw);
    const h = (g?.height ?? 0) + (g && as.length ? pad : 0) + ah;
    return { e, g, as, w, h };
  });
  const legend = framed ? Object.keys(SHEET_COLOURS) : [];
  const swatch = GLYPH_H * font;
  const legendW = legend.reduce((s, k) => s + swatch + font * 3 + textWidth(k, font) + pad, 0);
  const legendH = legend.length ? swatch + pad : 0;
  const W = Math.max(1, legendW, ...blocks.map((b) => b.w)) + 2 * pad;
  const H = blocks.reduce((s, b) => s + b.h + pad, pad + legendH);
  const img: RGBImage = { width: W, height: H, data: new Uint8Array(W * H * 3).fill(24) };
  let lx = pad;
  for (const k of legend) {
    frame(img, lx + font, pad + font, swatch - 2 * font, swatch - 2 * font, font, SHEET_COLOURS[k]);
    lx += swatch + font * 3;
    drawText(img, k, lx, pad, font, LABEL_COLOUR);
    lx += textWidth(k, font) + pad;
  }
  let y = pad + legendH;
  for (const b of blocks) {
    if (b.g) blit(img, b.g, pad, y);
    let x = pad;
    const ya = y + (b.g ? b.g.height + pad : 0);
    b.as.forEach((a, i) => {
      blit(img, a, x, ya);
      const tier = b.e.pairing?.tiers[i];
      if (tier) frame(img, x, ya, a.width, a.height, Math.max(2, scale), SHEET_COLOURS[tier]);
      const letter = b.as.length > 1 ? String.fromCharCode(65 + i) : "";
      if (letter) {
        const lx0 = x + Math.round((a.width - textWidth(letter, font)) / 2);
        drawText(img, letter, lx0, ya + a.height + 2 * font + 1, font, LABEL_COLOUR);
      }
      x += a.width + pad;
    });
    y += b.h + pad;
  }
  return img;
}
