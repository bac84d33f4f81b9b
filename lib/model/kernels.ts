/**
 * A hand-written WebAssembly SIMD kernel for the batched attention products on the wasm backend.
 *
 * Why: tfjs-backend-wasm sends every batched or transposed BatchMatMul to a scalar loop (~1 GFLOP/s here);
 * only unbatched, untransposed products reach XNNPACK. Attention products are batched over (example, head),
 * so they ran ~10x slower than the dense layers and dominated the step time. This kernel computes
 * out[t] = a[t] @ b[t]^T with f32x4 SIMD and 2x4 register blocking (source: kernels/bmm_nt.wat, assembled
 * with wabt's wat2wasm --enable-simd; the bytes are embedded below). Operands are copied from the tfjs heap
 * into this module's memory and the result back (a few MB per call, small next to the arithmetic).
 * Results equal tf.matMul up to float summation order.
 *
 * A second kernel (source: kernels/attn_decode.wat, assembled the same way) runs the attention of one
 * KV-cached decoding step: `DecodeAttention` owns a module instance per generate() call whose memory holds
 * the prefix K/V and a preallocated generated-token K/V cache, so a step appends in place (no O(t) concat)
 * and computes scores, softmax and the weighted values for all rows and heads in one call.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { blasActive } from "./blas.ts";

const WASM_B64 =
  "AGFzbQEAAAABFwNgAXsBfWADf39/AX1gB39/f39/f38AAwQDAAECBQMBAAEHEAIDbWVtAgAGYm1tX250AAIKsQcDGQAgAP0fACAA/R8BkiAA/R8CIAD9HwOSkgtUAgF/AXv9DAAAAAAAAAAAAAAAAAAAAAAhBEEAIQMCQANAIAMgAk8NASAEIAAgA2r9AAQAIAEgA2r9AAQA/eYB/eQBIQQgA0EQaiEDDAALCyAEEAALvwYCEH8LeyAGQQJ0IQtBACEHAkADQCAHIANPDQEgACAHIAQgC2xsaiEMIAEgByAFIAtsbGohDSACIAcgBCAFbGxBAnRqIQ5BACEIAkADQCAIIARPDQEgDCAIIAtsaiEPIA4gCCAFbEECdGohFSAIQQFqIARJBEAgDyALaiEQIBUgBUECdGohFkEAIQkCQANAIAlBBGogBUsNASANIAkgC2xqIREgESALaiESIBIgC2ohEyATIAtqIRT9DAAAAAAAAAAAAAAAAAAAAAAhGv0MAAAAAAAAAAAAAAAAAAAAACEb/QwAAAAAAAAAAAAAAAAAAAAAIRz9DAAAAAAAAAAAAAAAAAAAAAAhHf0MAAAAAAAAAAAAAAAAAAAAACEe/QwAAAAAAAAAAAAAAAAAAAAAIR/9DAAAAAAAAAAAAAAAAAAAAAAhIP0MAAAAAAAAAAAAAAAAAAAAACEhQQAhCgJAA0AgCiALTw0BIA8gCmr9AAQAIRcgECAKav0ABAAhGCARIApq/QAEACEZIBogFyAZ/eYB/eQBIRogHiAYIBn95gH95AEhHiASIApq/QAEACEZIBsgFyAZ/eYB/eQBIRsgHyAYIBn95gH95AEhHyATIApq/QAEACEZIBwgFyAZ/eYB/eQBIRwgICAYIBn95gH95AEhICAUIApq/QAEACEZIB0gFyAZ/eYB/eQBIR0gISAYIBn95gH95AEhISAKQRBqIQoMAAsLIBUgCUECdGogGhAAOAIAIBUgCUECdGogGxAAOAIEIBUgCUECdGogHBAAOAIIIBUgCUECdGogHRAAOAIMIBYgCUECdGogHhAAOAIAIBYgCUECdGogHxAAOAIEIBYgCUECdGogIBAAOAIIIBYgCUECdGogIRAAOAIMIAlBBGohCQwACwsCQANAIAkgBU8NASANIAkgC2xqIREgFSAJQQJ0aiAPIBEgCxABOAIAIBYgCUECdGogECARIAsQATgCACAJQQFqIQkMAAsLIAhBAmohCAVBACEJAkADQCAJIAVPDQEgFSAJQQJ0aiAPIA0gCSALbGogCxABOAIAIAlBAWohCQwACwsgCEEBaiEICwwACwsgB0EBaiEHDAALCws=";

interface Kernel {
  mem: WebAssembly.Memory;
  bmm: (a: number, b: number, o: number, batch: number, n: number, m: number, k: number) => void;
}

let kernel: Kernel | null | undefined;

function load(): Kernel | null {
  if (kernel !== undefined) return kernel;
  try {
    const bytes = Uint8Array.from(atob(WASM_B64), (c) => c.charCodeAt(0));
    const inst = new WebAssembly.Instance(new WebAssembly.Module(bytes), {});
    kernel = { mem: inst.exports.mem as WebAssembly.Memory, bmm: inst.exports.bmm_nt as Kernel["bmm"] };
  } catch {
    kernel = null; // no SIMD support: callers fall back to tf.matMul
  }
  return kernel;
}

/** Host batched NT product: a [batch, n, k], b [batch, m, k] -> [batch, n, m] (row-major). */
export function bmmNTHost(
  a: Float32Array,
  b: Float32Array,
  batch: number,
  n: number,
  m: number,
  k: number,
): Float32Array {
  const kern = load();
  if (!kern) throw new Error("wasm SIMD kernel unavailable");
  const kp = Math.ceil(k / 4) * 4;
  const aBytes = batch * n * kp * 4, bBytes = batch * m * kp * 4, oBytes = batch * n * m * 4;
  const need = aBytes + bBytes + oBytes;
  const have = kern.mem.buffer.byteLength;
  if (need > have) kern.mem.grow(Math.ceil((need - have) / 65536));
  const heap = new Float32Array(kern.mem.buffer);
  const put = (src: Float32Array, rows: number, off: number) => {
    if (kp === k) heap.set(src, off);
    else {
      for (let r = 0; r < rows; r++) {
        heap.set(src.subarray(r * k, r * k + k), off + r * kp);
        heap.fill(0, off + r * kp + k, off + r * kp + kp);
      }
    }
  };
  put(a, batch * n, 0);
  put(b, batch * m, aBytes / 4);
  kern.bmm(0, aBytes, aBytes + bBytes, batch, n, m, kp);
  return new Float32Array(kern.mem.buffer, aBytes + bBytes, batch * n * m).slice();
}

/**
 * Whether the SIMD kernel is used for the current backend: on wasm without native BLAS (with it, tf.matMul's
 * transposed batched products run at full speed on the tfjs heap, with no copies).
 */
export function useSimdKernel(): boolean {
  return tf.getBackend() === "wasm" && !blasActive() && load() !== null;
}

/** a [..., n, k] @ b [..., m, k]^T -> [..., n, m] (no gradient; see vlm.ts bmmNT for the differentiable op). */
export function matMulNT(a: tf.Tensor, b: tf.Tensor): tf.Tensor {
  if (!useSimdKernel()) return tf.matMul(a, b, false, true);
  const r = a.rank;
  const n = a.shape[r - 2], k = a.shape[r - 1], m = b.shape[r - 2];
  const lead = a.shape.slice(0, r - 2);
  const batch = lead.reduce((x, y) => x * y, 1);
  const bLead = b.shape.slice(0, r - 2).reduce((x, y) => x * y, 1);
  if (bLead !== batch || b.shape[r - 1] !== k) return tf.matMul(a, b, false, true);
  const out = bmmNTHost(a.dataSync() as Float32Array, b.dataSync() as Float32Array, batch, n, m, k);
  return tf.tensor(out, [...lead, n, m], "float32");
}

const ATTN_B64 =
  "AGFzbQEAAAABKgRgAXsBe2AGf39/f39/AGAFf39/f38AYBB/f39/f39/f39/f39/f399AAMFBAABAgMFAwEAAQcOAgNtZW0CAARhdHRuAAMKlw4EmgMBBHsgAP0MAACuwgAArsIAAK7CAACuwv1DIQQgAP0MAACuwgAArsIAAK7CAACuwv3pASEAIAD9DDuquD87qrg/O6q4PzuquD/95gH9aiEBIAAgAf0MAIAxPwCAMT8AgDE/AIAxP/3mAf3lASECIAIgAf0Mg4BeuYOAXrmDgF65g4Beuf3mAf3lASEC/QwBDVA5AQ1QOQENUDkBDVA5IQMgAyAC/eYB/QxhC7Y6YQu2OmELtjphC7Y6/eQBIQMgAyAC/eYB/QyJiAg8iYgIPImICDyJiAg8/eQBIQMgAyAC/eYB/Qyrqio9q6oqPauqKj2rqio9/eQBIQMgAyAC/eYB/Qyrqio+q6oqPquqKj6rqio+/eQBIQMgAyAC/eYB/QwAAAA/AAAAPwAAAD8AAAA//eQBIQMgAyAC/eYB/QwAAIA/AACAPwAAgD8AAIA//eQBIQMgAyAC/eYB/QwAAIA/AACAPwAAgD8AAIA//eQBIQMgAyAB/fgB/Qx/AAAAfwAAAH8AAAB/AAAA/a4BQRf9qwH95gEgBP1PC5sCAgN/BXtBACEGAkADQCAGIANPDQH9DAAAAAAAAAAAAAAAAAAAAAAhCv0MAAAAAAAAAAAAAAAAAAAAACEL/QwAAAAAAAAAAAAAAAAAAAAAIQz9DAAAAAAAAAAAAAAAAAAAAAAhDSABIAZBBnRqIQhBACEHAkADQCAHIARPDQEgACAHQQJ0av0JAgAhCSAKIAkgCP0ABAD95gH95AEhCiALIAkgCP0ABBD95gH95AEhCyAMIAkgCP0ABCD95gH95AEhDCANIAkgCP0ABDD95gH95AEhDSAIIAJqIQggB0EBaiEHDAALCyAFIAZBBnRqIQggCCAK/QsEACAIIAv9CwQQIAggDP0LBCAgCCAN/QsEMCAGQQFqIQYMAAsLC4ICBAN/AXsBfwR7IANBAnQhCUEAIQUCQANAIAUgCU8NASAEIAVq/QAEACEKIAQgBWr9AAQQIQsgBCAFav0ABCAhDCAEIAVq/QAEMCENIAEgBWohB0EAIQYCQANAIAYgAk8NASAAIAZBAnRq/QkCACEIIAogCCAH/QAEAP3mAf3kASEKIAsgCCAH/QAEEP3mAf3kASELIAwgCCAH/QAEIP3mAf3kASEMIA0gCCAH/QAEMP3mAf3kASENIAcgCWohByAGQQFqIQYMAAsLIAQgBWogCv0LBAAgBCAFaiAL/QsEECAEIAVqIAz9CwQgIAQgBWogDf0LBDAgBUHAAGohBQwACwsL1wYDEn8FewF/IAtBAnQhFyAKIBdsIRggGEEDbCEZIAchGiAHIBdqIRsgGyAMQQJ0aiEcIA5BEGpBcHEhFiAMIBZqIRUgD/0TISJBACEQAkADQCAQIAhPDQEgECAJbiESIAQgEiAMbEECdGohIUEAIRECQANAIBEgCk8NASAAIBAgGWxqIBEgF2xqIR0gEiAKbCARaiAMbCAXbCEeIBAgCmwgEWogDWwgF2whH0EAIRQCQANAIBQgF08NASAaIBRqIB0gFGr9AAQAICL95gH9CwQAIAYgH2ogDiAXbCAUamogHSAYQQF0aiAUav0ABAD9CwQAIBRBEGohFAwACwtBACEUAkADQCAUIAtPDQEgBSAfaiAUIA1sIA5qQQJ0aiAdIBhqIBRBAnRqKgIAOAIAIBRBAWohFAwACwsgGiACIB5qIAxBAnQgDEEEdiALIBsQASAaIAUgH2ogDUECdCAWQQR2IAsgHBABQQAhEwJAA0AgEyAMTw0BIBsgE0ECdGogGyATQQJ0av0ABAAgISATQQJ0av0ABAD95AH9CwQAIBNBBGohEwwACwsgDkEBaiETAkADQCATIBZPDQEgHCATQQJ0akMoa27OOAIAIBNBAWohEwwACwv9DMrySfHK8knxyvJJ8crySfEhI0EAIRMCQANAIBMgFU8NASAjIBsgE0ECdGr9AAQA/ekBISMgE0EEaiETDAALCyAj/R8AICP9HwGXICP9HwIgI/0fA5eX/RMhI/0MAAAAAAAAAAAAAAAAAAAAACEkQQAhEwJAA0AgEyAVTw0BIBsgE0ECdGohJyAn/QAEACAj/eUBEAAhJSAnICX9CwQAICQgJf3kASEkIBNBBGohEwwACwtDAACAPyAk/R8AICT9HwGSICT9HwIgJP0fA5KSlf0TISYgASAQIBhsIBEgF2xqaiEgQQAhFAJAA0AgFCAXTw0BICAgFGr9DAAAAAAAAAAAAAAAAAAAAAD9CwQAIBRBEGohFAwACwsgGyADIB5qIAwgCyAgEAIgHCAGIB9qIA5BAWogCyAgEAJBACEUAkADQCAUIBdPDQEgICAUaiAgIBRq/QAEACAm/eYB/QsEACAUQRBqIRQMAAsLIBFBAWohEQwACwsgEEEBaiEQDAALCws=";

let attnModule: WebAssembly.Module | null | undefined;

function attnKernelModule(): WebAssembly.Module | null {
  if (attnModule !== undefined) return attnModule;
  try {
    attnModule = new WebAssembly.Module(Uint8Array.from(atob(ATTN_B64), (c) => c.charCodeAt(0)));
  } catch {
    attnModule = null;
  }
  return attnModule;
}

type AttnFn = (
  qkv: number,
  out: number,
  pk: number,
  pv: number,
  pbias: number,
  gk: number,
  gv: number,
  sc: number,
  B: number,
  G: number,
  H: number,
  dh: number,
  S0: number,
  Tmax: number,
  t: number,
  scale: number,
) => void;

/**
 * The attention of KV-cached decoding on the host (wasm SIMD), for B = P x G rows over L layers. Holds, in
 * its own wasm memory, every layer's prefix K/V (one copy per prompt, shared by its G rows), the prefix key
 * mask and a generated-token K/V cache preallocated for `maxNew` positions. Keys are stored transposed
 * ([dh, positions], positions padded to 16) so the kernel scores 16 keys per pass. One instance per
 * generate() call; its memory is freed with the object.
 */
export class DecodeAttention {
  readonly #inst: WebAssembly.Instance;
  readonly #mem: WebAssembly.Memory;
  readonly #attn: AttnFn;
  #released = false;
  readonly #pk: number[] = [];
  readonly #pv: number[] = [];
  readonly #gk: number[] = [];
  readonly #gv: number[] = [];
  readonly #pbias: number;
  readonly #qkv: number;
  readonly #out: number;
  readonly #sc: number;
  readonly #dh: number;
  readonly #s0p: number;
  readonly #tp: number;
  readonly #scale: number;
  /** Generated positions already in the cache. */
  t = 0;

  /** Whether the kernel can run this geometry on the current backend. */
  static available(headDim: number): boolean {
    return tf.getBackend() === "wasm" && headDim % 16 === 0 && attnKernelModule() !== null;
  }

  constructor(
    readonly P: number,
    readonly G: number,
    readonly H: number,
    readonly d: number,
    readonly S0: number,
    readonly maxNew: number,
    readonly layers: number,
  ) {
    const mod = attnKernelModule();
    if (!mod) throw new Error("wasm SIMD attention kernel unavailable");
    // Reuse a released instance (its memory is already grown and paged in); else a fresh one.
    const inst = attnPool.pop() ?? new WebAssembly.Instance(mod, {});
    this.#inst = inst;
    this.#mem = inst.exports.mem as WebAssembly.Memory;
    this.#attn = inst.exports.attn as AttnFn;
    const B = P * G, dh = d / H;
    const s0p = Math.ceil(S0 / 16) * 16, tp = Math.ceil(maxNew / 16) * 16;
    this.#dh = dh;
    this.#s0p = s0p;
    this.#tp = tp;
    this.#scale = 1 / Math.sqrt(dh);
    let top = 64;
    const alloc = (floats: number) => {
      const off = top;
      top += Math.ceil((floats * 4) / 64) * 64;
      return off;
    };
    for (let l = 0; l < layers; l++) {
      this.#pk.push(alloc(P * H * s0p * dh));
      this.#pv.push(alloc(P * H * s0p * dh));
      this.#gk.push(alloc(B * H * tp * dh));
      this.#gv.push(alloc(B * H * tp * dh));
    }
    this.#pbias = alloc(P * s0p);
    this.#qkv = alloc(B * 3 * d);
    this.#out = alloc(B * d);
    this.#sc = alloc(dh + s0p + tp + 16);
    const have = this.#mem.buffer.byteLength;
    if (top > have) this.#mem.grow(Math.ceil((top - have) / 65536));
  }

  #f32(off: number, n: number): Float32Array {
    return new Float32Array(this.#mem.buffer, off, n);
  }

  /** Layer l's prefix keys and values, both [P, H, S0, dh] row-major. */
  setPrefix(l: number, k: Float32Array, v: Float32Array): void {
    const { P, H, S0 } = this, dh = this.#dh, s0p = this.#s0p;
    const kT = this.#f32(this.#pk[l], P * H * dh * s0p), vp = this.#f32(this.#pv[l], P * H * s0p * dh);
    kT.fill(0); // padding columns / rows must be finite (a reused instance holds old values)
    vp.fill(0);
    for (let ph = 0; ph < P * H; ph++) {
      for (let j = 0; j < S0; j++) {
        const src = (ph * S0 + j) * dh;
        vp.set(v.subarray(src, src + dh), (ph * s0p + j) * dh);
        for (let c = 0; c < dh; c++) kT[(ph * dh + c) * s0p + j] = k[src + c];
      }
    }
  }

  /** Additive key mask of the prefix, [P, S0] (0 or a large negative number). */
  setPrefixBias(bias: Float32Array): void {
    const s0p = this.#s0p, out = this.#f32(this.#pbias, this.P * s0p);
    out.fill(-1e9);
    for (let p = 0; p < this.P; p++) out.set(bias.subarray(p * this.S0, (p + 1) * this.S0), p * s0p);
  }

  /**
   * Layer l of the current step: qkv [B, 3d] (q | k | v of this step) -> attention output [B, d] (a view
   * into the kernel memory, valid until the next call). K and V are appended at position `t`; call
   * `advance()` once all layers have run.
   */
  step(l: number, qkv: Float32Array): Float32Array {
    const B = this.P * this.G;
    if (this.#released) throw new Error("DecodeAttention: used after release()");
    if (this.t >= this.maxNew) throw new Error("DecodeAttention: cache is full");
    this.#f32(this.#qkv, B * 3 * this.d).set(qkv.subarray(0, B * 3 * this.d));
    this.#attn(
      this.#qkv,
      this.#out,
      this.#pk[l],
      this.#pv[l],
      this.#pbias,
      this.#gk[l],
      this.#gv[l],
      this.#sc,
      B,
      this.G,
      this.H,
      this.#dh,
      this.#s0p,
      this.#tp,
      this.t,
      this.#scale,
    );
    return this.#f32(this.#out, B * this.d);
  }

  /** Close the current position (after every layer ran `step`). */
  advance(): void {
    this.t++;
  }

  /** Hand the kernel instance (and its memory) back for reuse by a later generate() call. */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    if (attnPool.length < ATTN_POOL_MAX) attnPool.push(this.#inst);
  }
}

/** Released attention instances (wasm memory cannot shrink; at most this many are kept). */
const ATTN_POOL_MAX = 1;
const attnPool: WebAssembly.Instance[] = [];
