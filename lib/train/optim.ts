/**
 * AdamW (Loshchilov & Hutter: decoupled weight decay) on tf.Variables, with global-norm gradient clipping.
 *
 * - Update (PyTorch's AdamW): m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
 *   p = p (1 - lr wd) - lr (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps).
 * - Weight decay applies to tensors of rank >= 2 (matmul weights, patch embeddings, token/position/view-type
 *   embeddings, as in nanoGPT) and not to rank-1 tensors (biases, LayerNorm gains and shifts).
 * - Clipping: the global L2 norm over all gradients; when `clip > 0` and the norm exceeds it, every gradient
 *   is scaled by clip / norm. `applyGradients` returns the norm BEFORE clipping.
 * - A variable whose gradient is null/absent in a step is skipped entirely (its moments do not decay), as
 *   PyTorch skips parameters with `grad is None`.
 * - State (step + both moments per variable) round-trips through `getState` / `setState` for checkpoints;
 *   slots are keyed by the variable's checkpoint name (the part after the model-instance prefix "vlmN/").
 * - A non-finite global gradient norm stops before any change (TrainingHealthError naming the step).
 * Every temporary tensor is disposed; the moments are the only tensors it holds.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { OptimSpec } from "../spec/types.ts";
import { TrainingHealthError } from "./health.ts";
import { UserError } from "../errors.ts";

/** The checkpoint name of a variable: its name without a leading "<instance>/" prefix. */
export function paramKey(v: tf.Variable): string {
  const i = v.name.indexOf("/");
  return i >= 0 ? v.name.slice(i + 1) : v.name;
}

/**
 * The variables a stage trains: all of `vars` except those whose checkpoint name starts with one of the
 * `freeze` prefixes (`stages.<stage>.freeze`). A prefix that names no parameter, or freezing everything, is
 * a UserError naming the field.
 */
export function unfrozen(
  vars: tf.Variable[],
  freeze: readonly string[] | undefined,
  stage: string,
): tf.Variable[] {
  if (!freeze || freeze.length === 0) return vars;
  const where = `stages.${stage}.freeze`;
  for (const p of freeze) {
    if (!vars.some((v) => paramKey(v).startsWith(p))) {
      throw new UserError(
        `${where}: '${p}' names no parameter of the model (names start with vis., dec., aux., proj)`,
      );
    }
  }
  const out = vars.filter((v) => !freeze.some((p) => paramKey(v).startsWith(p)));
  if (out.length === 0) throw new UserError(`${where}: freezes every parameter, nothing would train`);
  return out;
}

/** Host copy of an optimiser state. */
export interface AdamWState {
  step: number;
  /** checkpoint name -> first and second moments. */
  slots: Map<string, { m: Float32Array; v: Float32Array }>;
}

export type AdamWOptions = Pick<OptimSpec, "beta1" | "beta2" | "weightDecay"> & { eps?: number };

export class AdamW {
  readonly vars: tf.Variable[];
  readonly beta1: number;
  readonly beta2: number;
  readonly weightDecay: number;
  readonly eps: number;
  /** Number of updates applied so far. */
  step = 0;
  readonly #m: tf.Variable[];
  readonly #v: tf.Variable[];

  constructor(vars: tf.Variable[], opts: AdamWOptions) {
    this.vars = [...vars];
    this.beta1 = opts.beta1;
    this.beta2 = opts.beta2;
    this.weightDecay = opts.weightDecay;
    this.eps = opts.eps ?? 1e-8;
    // tf.variable shares its initial tensor's data and leaves that tensor alive: tidy disposes it, so a
    // disposed optimizer leaves no tensor behind.
    this.#m = this.vars.map((v) => tf.tidy(() => tf.variable(tf.zerosLike(v), false, `${v.name}/adam_m`)));
    this.#v = this.vars.map((v) => tf.tidy(() => tf.variable(tf.zerosLike(v), false, `${v.name}/adam_v`)));
  }

  /**
   * Apply one update. `grads` is the map tf.variableGrads returns (keyed by variable name) or an array
   * aligned with `vars`. Does not dispose the gradients. Returns the pre-clip global gradient norm.
   *
   * A non-finite global norm (a NaN/Inf gradient, e.g. from a NaN loss) throws a `TrainingHealthError`
   * naming `step` (the caller's training step; default the number of updates done so far) BEFORE anything
   * is modified: weights, moments and the update count stay as they were, so the last checkpoint and the
   * live model both remain good.
   */
  applyGradients(
    grads: tf.NamedTensorMap | (tf.Tensor | null)[],
    lr: number,
    clip: number,
    step: number = this.step,
  ): number {
    const gs = Array.isArray(grads) ? grads : this.vars.map((v) => grads[v.name] ?? null);
    const normT = tf.tidy(() => {
      const sq = gs.filter((g): g is tf.Tensor => g !== null).map((g) => g.square().sum());
      return sq.length === 0 ? tf.scalar(0) : (sq.length === 1 ? sq[0] : tf.addN(sq)).sqrt();
    });
    const n = normT.dataSync()[0];
    if (!Number.isFinite(n)) {
      normT.dispose();
      throw new TrainingHealthError(
        step,
        `global gradient norm is ${n} (NaN/Inf in the loss or gradients); the update was not applied ` +
          `and the last good checkpoint is kept`,
      );
    }
    this.step++;
    const t = this.step;
    const b1 = this.beta1, b2 = this.beta2;
    const bc1 = 1 - b1 ** t, bc2 = 1 - b2 ** t;
    tf.tidy(() => {
      const norm = normT;
      const scale = clip > 0 ? tf.minimum(tf.scalar(1), tf.scalar(clip).div(norm.add(1e-6))) : tf.scalar(1);
      const c1 = tf.scalar(1 - b1), c2 = tf.scalar(1 - b2), sb1 = tf.scalar(b1), sb2 = tf.scalar(b2);
      const lrT = tf.scalar(lr), decay = tf.scalar(1 - lr * this.weightDecay);
      const ibc1 = tf.scalar(1 / bc1), ibc2 = tf.scalar(1 / bc2), eps = tf.scalar(this.eps);
      for (let i = 0; i < this.vars.length; i++) {
        const g0 = gs[i];
        if (!g0) continue;
        const p = this.vars[i], m = this.#m[i], v = this.#v[i];
        const g = g0.mul(scale);
        const m1 = m.mul(sb1).add(g.mul(c1));
        const v1 = v.mul(sb2).add(g.square().mul(c2));
        m.assign(m1);
        v.assign(v1);
        const upd = m1.mul(ibc1).div(v1.mul(ibc2).sqrt().add(eps)).mul(lrT);
        p.assign((p.rank >= 2 && this.weightDecay > 0 ? p.mul(decay) : p).sub(upd));
      }
    });
    normT.dispose();
    return n;
  }

  /** Host copy of the state (for checkpoints). */
  getState(): AdamWState {
    const slots = new Map<string, { m: Float32Array; v: Float32Array }>();
    this.vars.forEach((p, i) => {
      slots.set(paramKey(p), {
        m: this.#m[i].dataSync() as Float32Array,
        v: this.#v[i].dataSync() as Float32Array,
      });
    });
    return { step: this.step, slots };
  }

  /** Restore a state saved by getState (every variable must have its slot, with matching sizes). */
  setState(state: AdamWState): void {
    this.vars.forEach((p, i) => {
      const key = paramKey(p);
      const s = state.slots.get(key);
      if (!s) throw new Error(`optimizer state has no slot for ${key}`);
      if (s.m.length !== p.size || s.v.length !== p.size) {
        throw new Error(`optimizer state for ${key} has ${s.m.length} values, expected ${p.size}`);
      }
      tf.tidy(() => {
        this.#m[i].assign(tf.tensor(s.m, p.shape, "float32"));
        this.#v[i].assign(tf.tensor(s.v, p.shape, "float32"));
      });
    });
    this.step = state.step;
  }

  dispose(): void {
    for (const t of [...this.#m, ...this.#v]) t.dispose();
  }
}
