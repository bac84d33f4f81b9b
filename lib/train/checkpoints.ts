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
import type { AdamW } from "./optim.ts";

interface Latest {
  step: number;
  dir: string;
}

export class RotatingCheckpoints {
  readonly #saved: string[] = [];
  constructor(readonly dir: string, readonly keep = 2) {}

  /** The newest complete checkpoint, or null. */
  async latest(): Promise<Latest | null> {
    try {
      return JSON.parse(await Deno.readTextFile(join(this.dir, "latest.json"))) as Latest;
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return null;
      throw e;
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
