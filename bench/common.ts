/**
 * Shared setup of the `deno bench` suites: one BenchContext per process, configured by environment
 * variables (deno bench takes no script arguments):
 * - `GEO_R1_BENCH_BACKEND`: auto (default: WebGPU when a real GPU adapter exists, else wasm) | wasm | webgpu | cpu
 * - `GEO_R1_BENCH_PRESET`: small (default) | tiny | large
 * and a roofline table printed after the timed benches: each throughput figure as tokens/s and % of the
 * matmul roofline measured in the same process.
 * @module
 */
import type { Preset } from "../lib/model/types.ts";
import type { BackendName } from "../lib/spec/types.ts";
import { type BenchContext, setupBench } from "./harness.ts";
import { measureRoofline, pctOfRoofline } from "./roofline.ts";

let ctxP: Promise<BenchContext> | null = null;

/** The process-wide bench context (created on first use). */
export function benchContext(): Promise<BenchContext> {
  ctxP ??= setupBench({
    backend: (Deno.env.get("GEO_R1_BENCH_BACKEND") ?? "auto") as BackendName,
    preset: (Deno.env.get("GEO_R1_BENCH_PRESET") ?? "small") as Preset,
  });
  return ctxP;
}

interface Row {
  name: string;
  tokens: number;
  flopsPerToken: number;
  ms: number[];
}

const rows = new Map<string, Row>();

/** Record one timed iteration of a throughput bench (tokens generated in `ms`). */
export function recordThroughput(name: string, tokens: number, flopsPerToken: number, ms: number): void {
  const r = rows.get(name) ?? { name, tokens, flopsPerToken, ms: [] };
  r.ms.push(ms);
  rows.set(name, r);
}

/** Print the recorded throughputs as tokens/s and % of the roofline (measured now). */
export async function printRooflineTable(): Promise<void> {
  const ctx = await benchContext();
  const roof = await measureRoofline();
  const lines = [
    `roofline: ${roof.gflops.toFixed(2)} GFLOP/s (best square matmul) on ${ctx.backend.name}` +
    (ctx.backend.adapter ? ` [${ctx.backend.adapter}]` : "") + `, preset ${ctx.preset}`,
  ];
  for (const r of rows.values()) {
    const s = [...r.ms].sort((a, b) => a - b);
    const med = s[s.length >> 1] / 1000;
    const tps = r.tokens / med;
    lines.push(
      `${r.name.padEnd(44)} ${tps.toFixed(0).padStart(8)} tok/s  ${
        pctOfRoofline(tps, r.flopsPerToken, roof.gflops).toFixed(1).padStart(5)
      }% of roofline`,
    );
  }
  console.log(lines.join("\n"));
}
