/**
 * The tfjs backend: `--backend auto|wasm|webgpu|cpu|tensorflow`.
 * - `auto`: WebGPU when navigator.gpu offers a real (non-fallback) adapter, else wasm.
 * - `wasm`: XNNPACK/SIMD kernels; the default on CPUs. Its .wasm binaries load from node_modules. Its
 *   matmuls run on the machine's OpenBLAS when one loads (lib/model/blas.ts; `GEO_R1_BLAS=off` keeps
 *   tfjs-wasm's), else on tfjs-wasm with one line saying why.
 * - `webgpu`: any adapter the runtime offers (a fallback/software adapter is used but recorded as such).
 * - `cpu`: tfjs's plain-JS kernels (slow; a reference for tests).
 * - `tensorflow`: libtensorflow through `@tensorflow/tfjs-node-gpu`, only if installed by the user (its
 *   install script downloads libtensorflow, which this project cannot do), else a clear error.
 * What was chosen, and the adapter, go into the run manifest.
 * @module
 */
import { createRequire } from "node:module";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import * as tf from "@tensorflow/tfjs";
import { UserError } from "./errors.ts";
import { enableBlas } from "./model/blas.ts";
import type { BackendName } from "./spec/types.ts";

/** The backend in use and the GPU adapter seen (null off WebGPU / when no adapter was queried). */
export interface BackendInfo {
  name: string;
  adapter: string | null;
  isFallbackAdapter: boolean | null;
  /** The native BLAS behind the wasm backend's matmuls (lib/model/blas.ts), or null: tfjs-wasm's own. */
  blas: string | null;
}

/** Lines already printed about the native BLAS (one per process). */
let blasNoted = false;

/** The backend names `--backend` accepts. */
export const BACKENDS: readonly BackendName[] = ["auto", "wasm", "webgpu", "cpu", "tensorflow"];

/** The tfjs version loaded (e.g. "4.22.0"). */
export function tfjsVersion(): string {
  return tf.version.tfjs;
}

interface AdapterProbe {
  adapter: unknown | null;
  description: string | null;
  isFallback: boolean | null;
}

/** Ask navigator.gpu for an adapter; never throws. */
export async function probeWebGpu(): Promise<AdapterProbe> {
  // deno-lint-ignore no-explicit-any
  const gpu = (globalThis.navigator as any)?.gpu;
  if (!gpu?.requestAdapter) return { adapter: null, description: null, isFallback: null };
  try {
    const adapter = await gpu.requestAdapter({ powerPreference: "high-performance" });
    if (!adapter) return { adapter: null, description: null, isFallback: null };
    const info = adapter.info ?? {};
    const isFallback = Boolean(info.isFallbackAdapter ?? adapter.isFallbackAdapter ?? false);
    const parts = [info.vendor, info.architecture, info.device, info.description].filter((s) => s);
    return { adapter, description: parts.join(" / ") || "unknown adapter", isFallback };
  } catch {
    return { adapter: null, description: null, isFallback: null };
  }
}

/** Set up tfjs-wasm with native matmuls where a BLAS loads; returns the BLAS description or null. */
async function useWasm(): Promise<string | null> {
  await import("@tensorflow/tfjs-backend-wasm");
  if (!(await tf.setBackend("wasm"))) throw new Error("tfjs could not initialise the wasm backend");
  await tf.ready();
  const blas = enableBlas();
  if (blas.message && !blasNoted) console.error(blas.message);
  blasNoted = true;
  return blas.active;
}

async function useWebGpu(): Promise<void> {
  await import("@tensorflow/tfjs-backend-webgpu");
  if (!(await tf.setBackend("webgpu"))) throw new Error("tfjs could not initialise the webgpu backend");
  await tf.ready();
}

/** Where a user-installed tfjs-node-gpu would live (npm install @tensorflow/tfjs-node-gpu in the project). */
const TFJS_NODE_GPU_DIR = fileURLToPath(
  new URL("../node_modules/@tensorflow/tfjs-node-gpu/", import.meta.url),
);

/**
 * Load a user-installed @tensorflow/tfjs-node-gpu from the project's node_modules. It is looked up on disk
 * first and loaded with require(), never through an `npm:` specifier, so trying it can never fetch packages
 * or touch deno.lock.
 */
function loadTfjsNodeGpu(): void {
  try {
    Deno.statSync(join(TFJS_NODE_GPU_DIR, "package.json"));
  } catch {
    throw new UserError(
      "--backend tensorflow needs @tensorflow/tfjs-node-gpu, which is not installed: its install script " +
        "downloads libtensorflow (CUDA) at install time, which this project does not do. Install it yourself " +
        "(npm install --no-save @tensorflow/tfjs-node-gpu@4.22.0 in the project, with CUDA present), " +
        "or use --backend webgpu or wasm",
    );
  }
  try {
    createRequire(import.meta.url)("@tensorflow/tfjs-node-gpu");
  } catch (e) {
    throw new UserError(
      `--backend tensorflow: @tensorflow/tfjs-node-gpu is installed but failed to load ` +
        `(libtensorflow missing? needs --allow-ffi): ${(e as Error).message.split("\n")[0]}`,
    );
  }
}

/**
 * Select and initialise a tfjs backend. Throws UserError (exit 2) when the requested backend cannot be
 * used (no WebGPU adapter, tfjs-node-gpu not installed).
 */
export async function initBackend(name: BackendName): Promise<BackendInfo> {
  switch (name) {
    case "auto": {
      const p = await probeWebGpu();
      if (p.adapter && p.isFallback === false) {
        try {
          await useWebGpu();
          return { name: "webgpu", adapter: p.description, isFallbackAdapter: false, blas: null };
        } catch {
          // fall through to wasm, recording the adapter that failed
        }
      }
      const blas = await useWasm();
      return { name: "wasm", adapter: p.description, isFallbackAdapter: p.isFallback, blas };
    }
    case "wasm":
      return { name: "wasm", adapter: null, isFallbackAdapter: null, blas: await useWasm() };
    case "cpu":
      await tf.setBackend("cpu");
      await tf.ready();
      return { name: "cpu", adapter: null, isFallbackAdapter: null, blas: null };
    case "webgpu": {
      const p = await probeWebGpu();
      if (!p.adapter) {
        throw new UserError(
          "--backend webgpu: no WebGPU adapter is available (navigator.gpu.requestAdapter() returned none); " +
            "use --backend wasm, or auto to pick the best available",
        );
      }
      try {
        await useWebGpu();
      } catch (e) {
        throw new UserError(
          `--backend webgpu: initialising tfjs on ${p.description} failed: ${(e as Error).message}`,
        );
      }
      return { name: "webgpu", adapter: p.description, isFallbackAdapter: p.isFallback, blas: null };
    }
    case "tensorflow": {
      loadTfjsNodeGpu();
      if (!(await tf.setBackend("tensorflow"))) {
        throw new UserError(
          "--backend tensorflow: tfjs-node-gpu loaded but the 'tensorflow' backend did not start",
        );
      }
      await tf.ready();
      return { name: "tensorflow", adapter: null, isFallbackAdapter: null, blas: null };
    }
    default:
      throw new UserError(`unknown backend '${name}'; expected one of ${BACKENDS.join(", ")}`);
  }
}
