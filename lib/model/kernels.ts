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
 * @module
 */
import * as tf from "@tensorflow/tfjs";

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

/** Whether the SIMD kernel is used for the current backend. */
export function useSimdKernel(): boolean {
  return tf.getBackend() === "wasm" && load() !== null;
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
