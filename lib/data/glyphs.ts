/**
 * A 5x7 bitmap font for the few words drawn on contact sheets (candidate letters and the frame legend), so
 * the sheet needs no font files and is the same on every machine.
 * @module
 */
import type { RGBImage } from "../world/types.ts";

/** Rows top to bottom, `#` = ink. Upper-case letters and the characters the sheet uses. */
const GLYPHS: Record<string, string[]> = {
  A: [".###.", "#...#", "#...#", "#####", "#...#", "#...#", "#...#"],
  B: ["####.", "#...#", "#...#", "####.", "#...#", "#...#", "####."],
  C: [".###.", "#...#", "#....", "#....", "#....", "#...#", ".###."],
  D: ["####.", "#...#", "#...#", "#...#", "#...#", "#...#", "####."],
  E: ["#####", "#....", "#....", "####.", "#....", "#....", "#####"],
  F: ["#####", "#....", "#....", "####.", "#....", "#....", "#...."],
  G: [".###.", "#...#", "#....", "#.###", "#...#", "#...#", ".###."],
  H: ["#...#", "#...#", "#...#", "#####", "#...#", "#...#", "#...#"],
  I: [".###.", "..#..", "..#..", "..#..", "..#..", "..#..", ".###."],
  L: ["#....", "#....", "#....", "#....", "#....", "#....", "#####"],
  M: ["#...#", "##.##", "#.#.#", "#.#.#", "#...#", "#...#", "#...#"],
  N: ["#...#", "##..#", "#.#.#", "#..##", "#...#", "#...#", "#...#"],
  O: [".###.", "#...#", "#...#", "#...#", "#...#", "#...#", ".###."],
  R: ["####.", "#...#", "#...#", "####.", "#.#..", "#..#.", "#...#"],
  S: [".####", "#....", "#....", ".###.", "....#", "....#", "####."],
  T: ["#####", "..#..", "..#..", "..#..", "..#..", "..#..", "..#.."],
  U: ["#...#", "#...#", "#...#", "#...#", "#...#", "#...#", ".###."],
  " ": [".....", ".....", ".....", ".....", ".....", ".....", "....."],
};

/** Glyph cell size in font pixels (5 wide + 1 spacing, 7 high). */
export const GLYPH_W = 6;
export const GLYPH_H = 7;

/** Width in image pixels of `text` drawn at `scale`. */
export function textWidth(text: string, scale: number): number {
  return text.length * GLYPH_W * scale;
}

/** Draw `text` (upper-cased; unknown characters as blanks) with its top-left corner at (x, y). */
export function drawText(
  img: RGBImage,
  text: string,
  x: number,
  y: number,
  scale: number,
  c: number[],
): void {
  [...text.toUpperCase()].forEach((ch, k) => {
    const g = GLYPHS[ch] ?? GLYPHS[" "];
    for (let r = 0; r < GLYPH_H; r++) {
      for (let col = 0; col < 5; col++) {
        if (g[r][col] !== "#") continue;
        for (let dy = 0; dy < scale; dy++) {
          for (let dx = 0; dx < scale; dx++) {
            const px = x + (k * GLYPH_W + col) * scale + dx, py = y + r * scale + dy;
            if (px < 0 || py < 0 || px >= img.width || py >= img.height) continue;
            const d = (py * img.width + px) * 3;
            img.data[d] = c[0];
            img.data[d + 1] = c[1];
            img.data[d + 2] = c[2];
          }
        }
      }
    }
  });
}
