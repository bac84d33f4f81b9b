/**
 * Data-parallel model replicas in Web Workers (`stages.<name>.replicas`, `eval.replicas`).
 *
 * Why: the CPU default is tfjs's wasm backend, which runs on one core (threaded wasm fails in Deno), so one
 * process leaves the second core of a 2-core machine idle. A replica is a worker thread with its own tfjs
 * wasm instance and its own copy of the model; the trainer sends it the current weights and a shard of the
 * step's work and gets back host arrays (gradients, completions). What runs where:
 * - supervised steps: the batch is cut into `replicas` contiguous shards; each shard's loss is its share of
 *   the full batch's loss (divided by the full batch's token and view counts), so the summed gradients are
 *   the full batch's up to float summation order (tests/replicas_test.ts);
 * - GRPO: each replica generates the rollouts of a contiguous share of the prompts (its own sampler seed),
 *   and the policy update's micro-batches are spread over the replicas (the same chunks, summed in the same
 *   order as in one process);
 * - evaluation: the fixed 64-example decoding batches alternate between replicas; greedy decoding of a batch
 *   does not depend on where it runs, so the metrics equal one process's exactly.
 * Everything is a deterministic function of the spec: shard boundaries and seeds depend on `replicas`, not on
 * the machine, so the same spec and seed give the same metrics on a 1-core and a 16-core CPU (only slower).
 * Replicas are for CPU backends; on WebGPU the stage runs in one process (one device).
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type {
  GenerateOptions,
  GenerateResult,
  GroupLayout,
  ModelConfig,
  ModelInput,
  VLM,
} from "../model/types.ts";
import type { CueBatchTargets } from "../data/cue_labels.ts";
import type { LossType } from "./grpo_loss.ts";
import { paramKey } from "./optim.ts";
import { shareBlasThreads } from "../model/blas.ts";

/** A tensor as host data (structured-cloneable). */
export interface PackedTensor {
  data: Float32Array | Int32Array;
  shape: number[];
  dtype: "float32" | "int32";
}

/** A ModelInput as host data. */
export interface PackedInput {
  B: number;
  ground: PackedTensor | null;
  aerial: PackedTensor | null;
  ids: PackedTensor;
  attn: PackedTensor;
}

export function packTensor(t: tf.Tensor): PackedTensor {
  const dtype = t.dtype === "int32" ? "int32" : "float32";
  return { data: t.dataSync() as Float32Array | Int32Array, shape: [...t.shape], dtype };
}

export function unpackTensor(p: PackedTensor): tf.Tensor {
  return tf.tensor(p.data, p.shape, p.dtype);
}

export function packInput(i: ModelInput): PackedInput {
  return {
    B: i.B,
    ground: i.ground ? packTensor(i.ground) : null,
    aerial: i.aerial ? packTensor(i.aerial) : null,
    ids: packTensor(i.ids),
    attn: packTensor(i.attn),
  };
}

export function unpackInput(p: PackedInput): ModelInput {
  return {
    B: p.B,
    ground: p.ground ? (unpackTensor(p.ground) as tf.Tensor4D) : null,
    aerial: p.aerial ? (unpackTensor(p.aerial) as tf.Tensor5D) : null,
    ids: unpackTensor(p.ids) as tf.Tensor2D,
    attn: unpackTensor(p.attn) as tf.Tensor2D,
  };
}

/** Weights by checkpoint name. */
export type HostWeights = [string, Float32Array][];

/** Normalisers of a sharded supervised loss: the full batch's loss-mask sum and cue-view weight sum. */
export interface SupervisedNorm {
  tokens: number;
  views: number;
}

/** One GRPO micro-batch's inputs (see lib/train/grpo.ts). */
export interface GrpoChunk {
  input: PackedInput;
  lossMask: PackedTensor;
  fullMask: PackedTensor;
  advantages: Float32Array;
  refLogp: PackedTensor | null;
  oldLogp: PackedTensor | null;
}

/** The loss settings of a GRPO micro-batch. */
export interface GrpoChunkParams {
  temperature: number;
  beta: number;
  epsilonLow: number;
  epsilonHigh: number;
  lossType: LossType;
  maxCompletionLength: number;
  /** The chunk's share of the loss normaliser. */
  weight: number;
  /** Entropy weight of the chunk (its share of sampled tokens), or null to skip the entropy. */
  entropyWeight: number | null;
  /** The chunk's groups (prompt encoded once per group), or null for the per-row forward. */
  groups: GroupLayout | null;
}

/** What a replica returns for a gradient request. */
export interface GradResult {
  grads: HostWeights;
  /** Loss value of the shard (already weighted). */
  value: number;
  /** Extra scalars (supervised: ce, cue; GRPO: loss stats and entropy). */
  scalars: Record<string, number>;
}

export type ReplicaRequest =
  | { op: "init"; config: ModelConfig; backend: string }
  | {
    op: "supervised";
    weights: HostWeights;
    train: string[];
    input: PackedInput;
    lossMask: PackedTensor;
    cue: CueBatchTargets | null;
    cueWeight: number;
    norm: SupervisedNorm;
  }
  | {
    op: "grpo";
    weights: HostWeights;
    train: string[];
    chunk: GrpoChunk;
    params: GrpoChunkParams;
    /** Compute the chunk's reference log-probs here, from the weights of the last `reference` request. */
    reference: boolean;
  }
  /** Keep the frozen reference's weights for later `grpo` requests (null forgets them). */
  | { op: "reference"; weights: HostWeights | null }
  | { op: "generate"; weights: HostWeights; prompt: PackedInput; opts: GenerateOptions };

/** Host copy of every parameter of a tfjs model, by checkpoint name. */
export function hostWeights(model: VLM): HostWeights {
  const m = model as unknown as { namedParams?: () => [string, tf.Variable][] };
  if (!m.namedParams) throw new Error("replicas: the model does not expose its parameters (TfVLM)");
  return m.namedParams().map(([k, v]) => [k, v.dataSync() as Float32Array]);
}

/** Gradients of a variableGrads map by checkpoint name, as host arrays. */
export function hostGrads(grads: tf.NamedTensorMap, vars: tf.Variable[]): HostWeights {
  return vars.filter((v) => grads[v.name]).map((
    v,
  ) => [paramKey(v), grads[v.name].dataSync() as Float32Array]);
}

/**
 * Add replica gradients (host arrays) into `sum` (a variableGrads map keyed by variable name), in place,
 * disposing the replaced tensors. Replicas are added in the order given.
 */
export function addHostGrads(sum: tf.NamedTensorMap, vars: tf.Variable[], parts: HostWeights[]): void {
  const byKey = new Map(vars.map((v) => [paramKey(v), v]));
  for (const part of parts) {
    for (const [k, a] of part) {
      const v = byKey.get(k);
      if (!v) throw new Error(`replicas: gradient of unknown parameter ${k}`);
      const prev = sum[v.name];
      sum[v.name] = prev ? tf.tidy(() => prev.add(tf.tensor(a, v.shape, "float32"))) : tf.tensor(a, v.shape);
      prev?.dispose();
    }
  }
}

/** Contiguous shards of [0, n) into k parts whose sizes differ by at most one (earlier ones larger). */
export function shardRanges(n: number, k: number): [number, number][] {
  const out: [number, number][] = [];
  const base = Math.floor(n / k), extra = n % k;
  let at = 0;
  for (let i = 0; i < k; i++) {
    const len = base + (i < extra ? 1 : 0);
    out.push([at, at + len]);
    at += len;
  }
  return out;
}

interface Pending {
  resolve(v: unknown): void;
  reject(e: Error): void;
}

/** One worker thread holding a model replica. */
class Replica {
  readonly #worker: Worker;
  readonly #pending = new Map<number, Pending>();
  #next = 0;
  #dead: Error | null = null;

  constructor(readonly index: number) {
    this.#worker = new Worker(new URL("./replica_worker.ts", import.meta.url).href, { type: "module" });
    this.#worker.onmessage = (e: MessageEvent) => {
      const { id, result, error } = e.data as { id: number; result?: unknown; error?: string };
      const p = this.#pending.get(id);
      if (!p) return;
      this.#pending.delete(id);
      if (error !== undefined) p.reject(new Error(`replica ${this.index}: ${error}`));
      else p.resolve(result);
    };
    this.#worker.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      this.#fail(new Error(`replica ${this.index} crashed: ${e.message}`));
    };
  }

  #fail(err: Error): void {
    this.#dead = err;
    for (const p of this.#pending.values()) p.reject(err);
    this.#pending.clear();
  }

  call<T>(req: ReplicaRequest): Promise<T> {
    if (this.#dead) return Promise.reject(this.#dead);
    const id = this.#next++;
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.#worker.postMessage({ id, req });
    });
  }

  terminate(): void {
    this.#worker.terminate();
    this.#fail(new Error(`replica ${this.index} was closed`));
  }
}

/**
 * `size - 1` worker replicas; the calling thread is replica 0. Create with {@link ReplicaPool.start}, close
 * with {@link ReplicaPool.close}.
 */
export class ReplicaPool {
  readonly #workers: Replica[];

  private constructor(workers: Replica[]) {
    this.#workers = workers;
  }

  /** Total replicas including the calling thread. */
  get size(): number {
    return this.#workers.length + 1;
  }

  /** Start `size - 1` workers, each with a model of `config` on `backend` (wasm or cpu). */
  static async start(size: number, config: ModelConfig, backend: string): Promise<ReplicaPool> {
    if (!Number.isInteger(size) || size < 2) throw new Error(`ReplicaPool: size must be >= 2 (got ${size})`);
    if (backend !== "wasm" && backend !== "cpu") {
      throw new Error(`ReplicaPool: replicas run on CPU backends (wasm, cpu), not ${backend}`);
    }
    const workers = Array.from({ length: size - 1 }, (_, i) => new Replica(i + 1));
    const pool = new ReplicaPool(workers);
    shareBlasThreads(size);
    try {
      await Promise.all(workers.map((w) => w.call({ op: "init", config, backend })));
    } catch (e) {
      pool.close();
      throw e;
    }
    return pool;
  }

  /** Send a request to worker replica `i` (1-based: replica 0 is the caller). */
  call<T>(i: number, req: ReplicaRequest): Promise<T> {
    const w = this.#workers[i - 1];
    if (!w) throw new Error(`ReplicaPool: no replica ${i} (size ${this.size})`);
    return w.call<T>(req);
  }

  /** Generate on worker replica `i` with the given weights. */
  generate(
    i: number,
    weights: HostWeights,
    prompt: ModelInput,
    opts: GenerateOptions,
  ): Promise<GenerateResult> {
    return this.call<GenerateResult>(i, { op: "generate", weights, prompt: packInput(prompt), opts });
  }

  close(): void {
    for (const w of this.#workers) w.terminate();
    shareBlasThreads(1);
  }
}
