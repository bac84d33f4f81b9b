/**
 * The replica pools of one run (lib/train/replicas.ts), by size.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { ModelConfig } from "../model/types.ts";
import { ReplicaPool } from "../train/replicas.ts";

/**
 * The run's replica pools by size, started on first use and closed when the run ends (`stages.*.replicas`,
 * `eval.replicas`; lib/train/replicas.ts). Off the CPU backends a stage runs in one thread (one device).
 */
export class Replicas {
  readonly #pools = new Map<number, ReplicaPool>();
  #warned = false;

  constructor(readonly cfg: ModelConfig, readonly log: (line: string) => void) {}

  /** A pool of `n` replicas, or undefined for n <= 1 (or off wasm/cpu). */
  async get(n: number | undefined): Promise<ReplicaPool | undefined> {
    const size = n ?? 1;
    if (size <= 1) return undefined;
    const backend = tf.getBackend();
    if (backend !== "wasm" && backend !== "cpu") {
      if (!this.#warned) this.log(`replicas: ${size} requested; the ${backend} backend runs in one thread`);
      this.#warned = true;
      return undefined;
    }
    let pool = this.#pools.get(size);
    if (!pool) {
      pool = await ReplicaPool.start(size, this.cfg, backend);
      this.#pools.set(size, pool);
    }
    return pool;
  }

  close(): void {
    for (const p of this.#pools.values()) p.close();
    this.#pools.clear();
  }
}
