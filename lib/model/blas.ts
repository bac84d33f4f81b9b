/**
 * Native matmuls for the wasm backend: the machine's OpenBLAS (`cblas_sgemm`), called through Deno FFI on
 * the tfjs-wasm heap itself (operands and result stay where tfjs keeps them: no copies), registered as the
 * wasm backend's `BatchMatMul` and `_FusedMatMul` kernels. Every other kernel stays tfjs-wasm's.
 *
 * Why: tfjs-wasm's GEMM reaches ~25 GFLOP/s on a 512^3 product on the 2-core reference machine and falls to
 * a scalar loop for transposed or batched operands; OpenBLAS reaches ~90 per core there, with transposes
 * and batches at full speed. Matmuls are most of a training step's arithmetic (bench/RESULTS.md).
 *
 * Library: `GEO_R1_BLAS` names a CBLAS library file, or `off` for tfjs-wasm's own matmuls; unset, the first
 * of {@link BLAS_CANDIDATES} that loads (Debian/Ubuntu: `apt-get install libopenblas0`). Absent or not
 * loadable (no `--allow-ffi` for it), the wasm kernels stay and {@link enableBlas} says why in one line.
 *
 * CPU kernels: OpenBLAS picks its kernels from the CPU model, and a CPU it does not know (a new server part
 * in a VM) gets its generic SSE3 kernels at a fifth of the speed. So unless `OPENBLAS_CORETYPE` is set, the
 * core type is named from the instruction sets the CPU supports (AVX-512 -> SkylakeX, AVX2 + FMA ->
 * Haswell; as libgcc detects them, else from /proc/cpuinfo) before the library loads.
 *
 * Threads: one per core (`navigator.hardwareConcurrency`), shared between data-parallel replicas
 * ({@link shareBlasThreads}). Reproducibility: at a given thread count a product's result is the same
 * call after call, whatever the threads' timing (tests/blas_test.ts checks repeats bitwise). Across thread
 * counts most of the model's products are also bitwise equal, but products with a long inner dimension and
 * a small output (weight gradients of a few thousand rows, e.g. [2000, 128]^T x [2000, 60]) are summed in
 * another order by one thread than by two, so the thread count (cores / replicas, recorded with the run's
 * backend) belongs to what makes a run repeat exactly. Results differ from tfjs-wasm's by float summation
 * order only.
 * @module
 */
import * as tf from "@tensorflow/tfjs";

/** Library files tried in order when `GEO_R1_BLAS` is unset. */
export const BLAS_CANDIDATES: readonly string[] = [
  "/usr/lib/x86_64-linux-gnu/libopenblas.so.0",
  "/usr/lib/aarch64-linux-gnu/libopenblas.so.0",
  "/usr/lib64/libopenblas.so.0",
  "/usr/lib/libopenblas.so.0",
];

const SYMBOLS = {
  cblas_sgemm: {
    // order, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc
    parameters: [
      "i32",
      "i32",
      "i32",
      "i32",
      "i32",
      "i32",
      "f32",
      "buffer",
      "i32",
      "buffer",
      "i32",
      "f32",
      "buffer",
      "i32",
    ],
    result: "void",
  },
  openblas_set_num_threads: { parameters: ["i32"], result: "void", optional: true },
  openblas_get_num_threads: { parameters: [], result: "i32", optional: true },
  openblas_get_config: { parameters: [], result: "pointer", optional: true },
  openblas_get_corename: { parameters: [], result: "pointer", optional: true },
} as const;

type BlasLib = Deno.DynamicLibrary<typeof SYMBOLS>;

const ROW_MAJOR = 101, NO_TRANS = 111, TRANS = 112;

/** What {@link enableBlas} found: the library in use, or why there is none. */
export interface BlasStatus {
  /** e.g. "OpenBLAS 0.3.21 SkylakeX, 2 threads (/usr/lib/x86_64-linux-gnu/libopenblas.so.0)"; null: off. */
  active: string | null;
  /** One line for the user when the native path is off (null when active or turned off on purpose). */
  message: string | null;
}

let lib: BlasLib | null = null;
let libPath: string | null = null;
let loadError: string | null = null;
let installed = false;

function granted(desc: Deno.PermissionDescriptor): boolean {
  try {
    return Deno.permissions.querySync(desc).state === "granted";
  } catch {
    return false;
  }
}

function envGet(name: string): string | undefined {
  return granted({ name: "env", variable: name }) ? Deno.env.get(name) : undefined;
}

/** The OpenBLAS core type for a CPU with these instruction sets, or null to leave the choice to OpenBLAS. */
export function coreTypeFor(flags: ReadonlySet<string>): string | null {
  const has = (...f: string[]) => f.every((x) => flags.has(x));
  if (has("avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512cd")) return "SkylakeX";
  if (has("avx2", "fma")) return "Haswell";
  return null;
}

/** The instruction-set flags of a /proc/cpuinfo text (x86 `flags` line). */
export function cpuinfoFlags(cpuinfo: string): Set<string> {
  const line = cpuinfo.split("\n").find((l) => /^flags\s*:/.test(l));
  return new Set(line ? line.split(":")[1].trim().split(/\s+/) : []);
}

/** Bits of libgcc's `__cpu_model.__cpu_features[0]` (gcc's `enum processor_features`) that matter here. */
const LIBGCC_FEATURES: [number, string][] = [
  [9, "avx"],
  [10, "avx2"],
  [14, "fma"],
  [15, "avx512f"],
  [20, "avx512vl"],
  [21, "avx512bw"],
  [22, "avx512dq"],
  [23, "avx512cd"],
];

/** Flags named by a libgcc feature word. */
export function libgccFlags(word: number): Set<string> {
  return new Set(LIBGCC_FEATURES.filter(([bit]) => (word >>> bit) & 1).map(([, name]) => name));
}

/**
 * The CPU's instruction sets as libgcc detected them at load time (cpuid + the OS's register-state check),
 * read through libc's dlvsym: Deno reads /proc/cpuinfo only with --allow-all. Null off x86-64 glibc.
 */
function cpuFlagsFromLibgcc(): Set<string> | null {
  if (Deno.build.arch !== "x86_64" || Deno.build.os !== "linux") return null;
  for (const path of ["/usr/lib/x86_64-linux-gnu/libc.so.6", "/usr/lib64/libc.so.6"]) {
    if (!granted({ name: "ffi", path })) continue;
    try {
      const libc = Deno.dlopen(
        path,
        {
          dlopen: { parameters: ["buffer", "i32"], result: "pointer" },
          dlvsym: { parameters: ["pointer", "buffer", "buffer"], result: "pointer" },
          memcpy: { parameters: ["buffer", "pointer", "usize"], result: "pointer" },
        } as const,
      );
      try {
        const c = (s: string) => new TextEncoder().encode(`${s}\0`);
        const handle = libc.symbols.dlopen(c("libgcc_s.so.1"), 2 /* RTLD_NOW */);
        if (!handle) return null;
        const model = libc.symbols.dlvsym(handle, c("__cpu_model"), c("GCC_4.8.0"));
        if (!model) return null;
        const words = new Uint32Array(4); // vendor, type, subtype, features[0]
        libc.symbols.memcpy(words, model, 16n);
        return libgccFlags(words[3]);
      } finally {
        libc.close();
      }
    } catch {
      // not glibc / no libgcc_s: try the next path
    }
  }
  return null;
}

function cpuFlags(): Set<string> | null {
  const viaLibgcc = cpuFlagsFromLibgcc();
  if (viaLibgcc) return viaLibgcc;
  try {
    return cpuinfoFlags(Deno.readTextFileSync("/proc/cpuinfo"));
  } catch {
    return null;
  }
}

function chooseCoreType(): void {
  if (!granted({ name: "env", variable: "OPENBLAS_CORETYPE" })) return;
  if (Deno.env.get("OPENBLAS_CORETYPE")) return;
  const flags = cpuFlags();
  const core = flags && coreTypeFor(flags);
  if (core) Deno.env.set("OPENBLAS_CORETYPE", core);
}

/** Load the library once per process (workers share it); null with `loadError` set when it cannot load. */
function loadLibrary(): BlasLib | null {
  if (lib || loadError) return lib;
  const want = envGet("GEO_R1_BLAS");
  if (want === "off") {
    loadError = "off";
    return null;
  }
  const paths = want ? [want] : [...BLAS_CANDIDATES];
  const tried: string[] = [];
  for (const p of paths) {
    if (!granted({ name: "ffi", path: p })) {
      tried.push(`${p} (no --allow-ffi)`);
      continue;
    }
    if (granted({ name: "read", path: p })) {
      try {
        Deno.statSync(p);
      } catch {
        tried.push(`${p} (absent)`);
        continue;
      }
    }
    try {
      chooseCoreType();
      lib = Deno.dlopen(p, SYMBOLS);
      libPath = p;
      // The library (and its thread count) is one per process; workers leave the count to the main thread.
      if (!inWorker()) lib.symbols.openblas_set_num_threads?.(cores());
      return lib;
    } catch (e) {
      tried.push(`${p} (${(e as Error).message.split("\n")[0]})`);
    }
  }
  loadError = want
    ? `GEO_R1_BLAS=${want} did not load: ${tried.join("; ")}`
    : `no BLAS library found (${tried.join("; ")}); install libopenblas0 (apt-get install libopenblas0)`;
  return null;
}

/** A C string returned by the library; reading it needs unscoped --allow-ffi, else "". */
function cString(p: Deno.PointerValue): string {
  if (!p || !granted({ name: "ffi" })) return "";
  try {
    return new Deno.UnsafePointerView(p).getCString();
  } catch {
    return "";
  }
}

/** Human-readable description of the loaded library. */
function describe(l: BlasLib): string {
  const s = l.symbols;
  const config = cString(s.openblas_get_config?.() ?? null).split(" ").slice(0, 2).join(" ");
  const core = cString(s.openblas_get_corename?.() ?? null) ||
    (granted({ name: "env", variable: "OPENBLAS_CORETYPE" }) ? Deno.env.get("OPENBLAS_CORETYPE") ?? "" : "");
  const threads = s.openblas_get_num_threads?.() ?? 1;
  const name = config || (s.openblas_get_num_threads ? "OpenBLAS" : "CBLAS");
  return `${name}${core ? ` ${core}` : ""}, ${threads} thread${threads === 1 ? "" : "s"} (${libPath})`;
}

// deno-lint-ignore no-explicit-any
type WasmBackend = any;

function offsetOf(backend: WasmBackend, t: tf.TensorInfo): number {
  return backend.dataIdMap.get(t.dataId).memoryOffset as number;
}

function size(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/**
 * out = op(a) @ op(b) (+ bias row) with cblas_sgemm per batch entry; null when the case is not covered
 * (then the caller uses tfjs-wasm's kernel): non-float32, batch shapes that broadcast other than 1 vs n,
 * a bias that is not one row of N values.
 */
function gemm(
  backend: WasmBackend,
  a: tf.TensorInfo,
  b: tf.TensorInfo,
  transA: boolean,
  transB: boolean,
  bias: tf.TensorInfo | null,
): tf.TensorInfo | null {
  if (!lib || a.dtype !== "float32" || b.dtype !== "float32") return null;
  if (a.shape.length < 2 || b.shape.length < 2) return null;
  const ar = a.shape.length, br = b.shape.length;
  const M = transA ? a.shape[ar - 1] : a.shape[ar - 2];
  const K = transA ? a.shape[ar - 2] : a.shape[ar - 1];
  const Kb = transB ? b.shape[br - 1] : b.shape[br - 2];
  const N = transB ? b.shape[br - 2] : b.shape[br - 1];
  if (K !== Kb) return null;
  const outerA = a.shape.slice(0, -2), outerB = b.shape.slice(0, -2);
  let outer: number[];
  try {
    outer = tf.broadcast_util.assertAndGetBroadcastShape(outerA, outerB);
  } catch {
    return null;
  }
  const batch = size(outer), batchA = size(outerA), batchB = size(outerB);
  if ((batchA !== batch && batchA !== 1) || (batchB !== batch && batchB !== 1)) return null;
  if (bias) {
    if (bias.dtype !== "float32" || size(bias.shape) !== N || bias.shape[bias.shape.length - 1] !== N) {
      return null;
    }
  }
  const out = backend.makeOutput([...outer, M, N], "float32");
  if (batch * M * N === 0) return out;
  const oOff = offsetOf(backend, out);
  const heap: Uint8Array = backend.wasm.HEAPU8;
  const c = new Float32Array(heap.buffer, oOff, batch * M * N);
  if (bias) {
    const row = new Float32Array(heap.buffer, offsetOf(backend, bias), N);
    for (let r = 0; r < batch * M; r++) c.set(row, r * N);
  } else c.fill(0);
  if (K === 0) return out;
  // Views of the operands where tfjs keeps them: FFI passes a view's address, so nothing is copied.
  const buf = heap.buffer, aOff = offsetOf(backend, a), bOff = offsetOf(backend, b);
  const aStep = batchA === 1 ? 0 : M * K * 4, bStep = batchB === 1 ? 0 : K * N * 4;
  const lda = transA ? M : K, ldb = transB ? K : N;
  const ta = transA ? TRANS : NO_TRANS, tb = transB ? TRANS : NO_TRANS;
  const sgemm = lib.symbols.cblas_sgemm;
  for (let i = 0; i < batch; i++) {
    const va = new Float32Array(buf, aOff + i * aStep, M * K);
    const vb = new Float32Array(buf, bOff + i * bStep, K * N);
    const vc = new Float32Array(buf, oOff + i * M * N * 4, M * N);
    sgemm(ROW_MAJOR, ta, tb, M, N, K, 1, va, lda, vb, ldb, 1, vc, N);
  }
  return out;
}

interface Saved {
  bmm: tf.KernelConfig;
  fused: tf.KernelConfig;
}

let saved: Saved | null = null;

/**
 * Load the native BLAS (once) and register it as the wasm backend's matmul kernels. Call after the wasm
 * backend is set up; a no-op when already enabled.
 */
export function enableBlas(): BlasStatus {
  const l = loadLibrary();
  if (!l) {
    return {
      active: null,
      message: loadError === "off" ? null : `native BLAS: ${loadError}; matmuls run on tfjs-wasm`,
    };
  }
  if (!installed) {
    const bmm = tf.getKernel("BatchMatMul", "wasm"), fused = tf.getKernel("_FusedMatMul", "wasm");
    if (!bmm || !fused) {
      return {
        active: null,
        message: "native BLAS: tfjs-wasm has no matmul kernels to replace; matmuls run on tfjs-wasm",
      };
    }
    saved = { bmm, fused };
    tf.unregisterKernel("BatchMatMul", "wasm");
    tf.registerKernel({
      kernelName: "BatchMatMul",
      backendName: "wasm",
      setupFunc: bmm.setupFunc,
      kernelFunc: (args) => {
        const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
        const { transposeA, transposeB } = args.attrs as { transposeA: boolean; transposeB: boolean };
        return gemm(args.backend, a, b, transposeA, transposeB, null) ?? bmm.kernelFunc(args);
      },
    });
    tf.unregisterKernel("_FusedMatMul", "wasm");
    tf.registerKernel({
      kernelName: "_FusedMatMul",
      backendName: "wasm",
      setupFunc: fused.setupFunc,
      kernelFunc: (args) => {
        const { a, b, bias, preluActivationWeights } = args.inputs as Record<
          string,
          tf.TensorInfo | undefined
        >;
        const { transposeA, transposeB, activation } = args.attrs as {
          transposeA: boolean;
          transposeB: boolean;
          activation: string;
        };
        const plain = (activation ?? "linear") === "linear" && !preluActivationWeights;
        return (plain ? gemm(args.backend, a!, b!, transposeA, transposeB, bias ?? null) : null) ??
          fused.kernelFunc(args);
      },
    });
    installed = true;
  }
  return { active: describe(l), message: null };
}

/** Put tfjs-wasm's own matmul kernels back (benchmarks and tests compare both paths in one process). */
export function disableBlas(): void {
  if (!installed || !saved) return;
  for (const k of [saved.bmm, saved.fused]) {
    tf.unregisterKernel(k.kernelName, "wasm");
    tf.registerKernel(k);
  }
  installed = false;
}

/** Whether the native matmuls are registered (and the wasm backend is the one in use). */
export function blasActive(): boolean {
  return installed && tf.getBackend() === "wasm";
}

/** Set the library's thread count (no-op without a library or on a CBLAS lacking the call). */
export function setBlasThreads(n: number): void {
  lib?.symbols.openblas_set_num_threads?.(n);
}

/**
 * Share the cores between `callers` threads that call into the library at once (data-parallel replicas):
 * each product then runs on cores / callers threads (at least one). One caller gets every core.
 *
 * Why: the library's thread pool is one per process, so two replicas each asking for every core contend
 * for the same threads; on the 2-core machine a replicated base step took 0.59-0.64 s with two threads per
 * product and 0.30-0.31 s with one (bench/RESULTS.md).
 */
export function shareBlasThreads(callers: number): void {
  setBlasThreads(Math.max(1, Math.floor(cores() / Math.max(1, callers))));
}

/** The library's thread count, or null without a library (or on a CBLAS that does not say). */
export function blasThreads(): number | null {
  return lib?.symbols.openblas_get_num_threads?.() ?? null;
}

function cores(): number {
  return Math.max(1, navigator.hardwareConcurrency || 1);
}

/** Whether this code runs in a Web Worker (a replica), not the process's main thread. */
function inWorker(): boolean {
  return typeof (globalThis as { WorkerGlobalScope?: unknown }).WorkerGlobalScope !== "undefined";
}
