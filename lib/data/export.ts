/**
 * Dataset export: PNGs (sharp) + metadata.jsonl, written into a temporary sibling folder and renamed into
 * place at the end, so a failed export leaves nothing partial behind (the temp folder is removed).
 *
 * Layout of DIR:
 * - `images/NNNNNN_ground.png`, `images/NNNNNN_aerial_A.png` ... (per example, letter order)
 * - `metadata.jsonl`: one JSON object per example: id, task, split, prompt, answer, target, targetCot?,
 *   qaKind?, ground (relative path or null), aerial (relative paths), scene (SceneMeta), pairing?, cues?
 * - `export.json`: what was exported (task, split, n, start, spec name and hash when known, tokenizer size).
 * @module
 */
import { join } from "node:path";
import { atomicWrite } from "../run/atomic.ts";
import { writeDirAtomic } from "../run/fs.ts";
import { encodePng } from "./images.ts";
import type { Example } from "./types.ts";

export interface ExportOptions {
  /** Replace an existing DIR (the old one is removed only after the new one is complete). */
  force?: boolean;
  /** Extra fields for export.json. */
  info?: Record<string, unknown>;
  /** Called before each example is written (tests inject failures here). */
  onExample?: (i: number) => void;
}

/** The metadata line of one example (image paths relative to the export folder). */
export function metadataLine(e: Example, ground: string | null, aerial: string[]): Record<string, unknown> {
  return {
    id: e.id,
    task: e.task,
    split: e.split,
    prompt: e.prompt,
    answer: e.answer,
    target: e.target,
    ...(e.targetCot !== undefined ? { targetCot: e.targetCot } : {}),
    ...(e.qaKind !== undefined ? { qaKind: e.qaKind } : {}),
    ground,
    aerial,
    scene: e.scene,
    ...(e.pairing ? { pairing: e.pairing } : {}),
    ...(e.cues ? { cues: e.cues } : {}),
  };
}

/**
 * Write `examples` (any iterable, consumed once, so generation can stream) to `outDir`. Returns the number
 * of examples written. Throws UserError when outDir exists and `force` is not set.
 */
export async function exportExamples(
  examples: Iterable<Example>,
  outDir: string,
  opts: ExportOptions = {},
): Promise<number> {
  return await writeDirAtomic(outDir, opts, async (tmp) => {
    await Deno.mkdir(join(tmp, "images"));
    const lines: string[] = [];
    let n = 0;
    for (const e of examples) {
      opts.onExample?.(n);
      const stem = String(n).padStart(6, "0");
      let g: string | null = null;
      if (e.ground) {
        g = `images/${stem}_ground.png`;
        await Deno.writeFile(join(tmp, g), await encodePng(e.ground));
      }
      const as: string[] = [];
      for (let i = 0; i < e.aerial.length; i++) {
        const a = `images/${stem}_aerial_${String.fromCharCode(65 + i)}.png`;
        await Deno.writeFile(join(tmp, a), await encodePng(e.aerial[i]));
        as.push(a);
      }
      lines.push(JSON.stringify(metadataLine(e, g, as)));
      n++;
    }
    await atomicWrite(join(tmp, "metadata.jsonl"), lines.join("\n") + (lines.length ? "\n" : ""));
    await atomicWrite(
      join(tmp, "export.json"),
      JSON.stringify({ n, created: new Date().toISOString(), ...opts.info }, null, 2) + "\n",
    );
    return n;
  });
}
