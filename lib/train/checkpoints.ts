/**
 * Rotating training checkpoints shared by the supervised and GRPO trainers: `<dir>/step-NNNNNNNN/` (model +
 * optimiser state, lib/model/checkpoint.ts) and `<dir>/latest.json` naming the newest complete one. The
 * pointer is written (atomically) only after the checkpoint itself, so a crash at any point leaves the
 * previous good checkpoint reachable; the oldest are pruned beyond `keep`.
 * @module
 */
import { join } from "node:path";
import type { VLM } from "../model/types.ts";
import { restoreCheckpoint, saveCheckpoint } from "../model/checkpoint.ts";
import { atomicWriteJson } from "../run/atomic.ts";
import { readTextIf } from "../run/fs.ts";
import type { AdamW } from "./optim.ts";
import { UserError } from "../errors.ts";

const STEP_DIR = /^step-\d{8}$/;

interface Latest {
  step: number;
  dir: string;
}

export class RotatingCheckpoints {
  readonly #saved: string[] = [];
  constructor(readonly dir: string, readonly keep = 2) {}

  /**
   * The newest complete checkpoint, or null when there is none yet. A pointer that does not parse, or names
   * a checkpoint without model.json, is a UserError naming the file and how to recover: nothing is
   * restored or dropped, so repairing the pointer and resuming again loses nothing.
   */
  async latest(): Promise<Latest | null> {
    const path = join(this.dir, "latest.json");
    const text = await readTextIf(path);
    if (text === null) return null;
    const refuse = (why: string) => {
      const steps = this.#stepDirs().map((d) => `{"step": ${Number(d.slice(5))}, "dir": "${d}"}`);
      throw new UserError(
        `${path}: ${why}; to recover, write ${
          steps.length ? steps.at(-1) : `{"step": N, "dir": "step-NNNNNNNN"}`
        } (a complete checkpoint in ${this.dir}) into it and resume again, or remove ${this.dir} to ` +
          `restart the stage from step 0`,
        1,
      );
    };
    let v: Partial<Latest>;
    try {
      v = JSON.parse(text);
    } catch (e) {
      return refuse(`corrupt checkpoint pointer (${(e as Error).message})`);
    }
    if (
      !v || typeof v !== "object" || !Number.isInteger(v.step) || typeof v.dir !== "string" ||
      !STEP_DIR.test(v.dir)
    ) {
      return refuse(`not a checkpoint pointer {"step": N, "dir": "step-NNNNNNNN"}`);
    }
    try {
      await Deno.stat(join(this.dir, v.dir, "model.json"));
    } catch {
      return refuse(`points to ${v.dir}, which has no model.json`);
    }
    return v as Latest;
  }

  /** Names of the complete checkpoints (with model.json) in the directory, oldest first. */
  #stepDirs(): string[] {
    try {
      return [...Deno.readDirSync(this.dir)].filter((e) => e.isDirectory && STEP_DIR.test(e.name)).map((e) =>
        e.name
      ).filter((n) => {
        try {
          return Deno.statSync(join(this.dir, n, "model.json")).isFile;
        } catch {
          return false;
        }
      }).sort();
    } catch {
      return [];
    }
  }

  /** Restore model + optimiser from the newest checkpoint; returns the steps it had done, or null. */
  async restore(model: VLM, optimizer: AdamW): Promise<number | null> {
    const latest = await this.latest();
    if (!latest) return null;
    const meta = await restoreCheckpoint(join(this.dir, latest.dir), model, optimizer);
    return meta.step ?? latest.step;
  }

  /** Save a checkpoint after `stepsDone` steps, point latest.json at it, prune old ones. */
  async save(
    stepsDone: number,
    model: VLM,
    optimizer: AdamW,
    tokenizer: unknown,
    meta: Record<string, unknown>,
  ): Promise<void> {
    const name = `step-${String(stepsDone).padStart(8, "0")}`;
    await saveCheckpoint(join(this.dir, name), model, { tokenizer, step: stepsDone, optimizer, meta });
    await atomicWriteJson(join(this.dir, "latest.json"), { step: stepsDone, dir: name });
    this.#saved.push(name);
    while (this.#saved.length > this.keep) {
      await Deno.remove(join(this.dir, this.#saved.shift()!), { recursive: true }).catch(() => {});
    }
  }
}
