/**
 * The benchmark summary as JSON: backend + adapter, preset, matmul roofline, FLOPs per token, rollout
 * tokens/s by batch size and completion length (each also as % of the roofline), KV cache vs recompute,
 * shared prefix vs not, SFT and GRPO step seconds, and the two throughput targets of docs/DESIGN.md "Benchmark targets".
 *
 *   deno run --allow-read --allow-write --allow-env --allow-ffi --allow-sys bench/run.ts \
 *     [--backend auto|wasm|webgpu|cpu] [--preset tiny|small|large] [--json out.json] [--quick] [--profile]
 *
 * Batch sizes are rows = prompts x G with G = min(rows, the spec's GRPO group size), the rollout layout.
 * Progress goes to stderr, the JSON to stdout (and to --json).
 * @module
 */
import { parseArgs } from "node:util";
import * as tf from "@tensorflow/tfjs";
import type { Preset } from "../lib/model/types.ts";
import type { BackendName } from "../lib/spec/types.ts";
import { flopsPerToken } from "../lib/model/config.ts";
import {
  measureGrpoStep,
  measureOverheads,
  measureRollout,
  measureSftStep,
  profileDecodeStep,
  type RolloutResult,
  setupBench,
} from "./harness.ts";
import { decodeMatmuls, measureRoofline, pctOfRoofline } from "./roofline.ts";

/** Options of one summary run. */
export interface SummaryOptions {
  backend?: BackendName;
  preset?: Preset;
  /** Fewer repetitions and smaller cases (smoke runs, tests). */
  quick?: boolean;
  /** Add the per-kernel profile of a decoding step and the decode-shape matmul rates. */
  profile?: boolean;
  /** Skip the SFT and GRPO step timings. */
  skipTrain?: boolean;
  batchSizes?: number[];
  newTokens?: number[];
  log?: (line: string) => void;
}

/** The CPU model name: /proc/cpuinfo (Deno asks for --allow-all to read it), else `grep` with --allow-run. */
async function cpuModel(): Promise<string | null> {
  const pick = (txt: string) => txt.match(/^model name\s*:\s*(.+)$/m)?.[1]?.trim() ?? null;
  try {
    return pick(await Deno.readTextFile("/proc/cpuinfo"));
  } catch {
    // fall through
  }
  try {
    if (Deno.permissions.querySync({ name: "run" }).state !== "granted") return null;
    const out = await new Deno.Command("grep", {
      args: ["-m1", "model name", "/proc/cpuinfo"],
      stdout: "piped",
    })
      .output();
    return pick(new TextDecoder().decode(out.stdout));
  } catch {
    return null;
  }
}

const round = (x: number, d = 3) => Number.isFinite(x) ? Number(x.toFixed(d)) : x;

/** Run every measurement and return the summary object (see the module doc). */
export async function benchSummary(o: SummaryOptions = {}): Promise<Record<string, unknown>> {
  const log = o.log ?? ((s: string) => console.error(s));
  const quick = o.quick ?? false;
  const reps = quick ? 1 : 3;
  const load0 = Deno.loadavg();
  const ctx = await setupBench({ backend: o.backend, preset: o.preset });
  try {
    const { cfg } = ctx;
    const G0 = Object.values(ctx.spec.stages).find((s) => s.kind === "grpo")?.grpo.groupSize ?? 8;
    log(`backend ${ctx.backend.name} (${ctx.backend.adapter ?? "no adapter"}), preset ${ctx.preset}`);
    const roof = await measureRoofline({ reps: quick ? 3 : 10 });
    log(`matmul roofline ${roof.gflops.toFixed(2)} GFLOP/s`);
    const overheads = await measureOverheads(quick ? 2 : 5);
    const batches = o.batchSizes ?? (quick ? [1, 8] : [1, 8, 64]);
    const lengths = o.newTokens ?? (quick ? [8] : [32, 128]);
    const rollout: (RolloutResult & { pctRoofline: number })[] = [];
    for (const N of lengths) {
      for (const rows of batches) {
        const r = await measureRollout(ctx, { rows, groupSize: Math.min(rows, G0), newTokens: N, reps });
        const pct = pctOfRoofline(r.tokensPerSec, r.flopsPerToken, roof.gflops);
        rollout.push({ ...r, pctRoofline: pct });
        log(
          `rollout rows ${rows} x ${N} tokens: ${r.tokensPerSec.toFixed(0)} tok/s (${
            pct.toFixed(1)
          }% of roofline)`,
        );
      }
    }
    // KV cache vs recompute: the recompute path re-runs the vision encoder and the whole prefix every step,
    // so it is measured at one group (8 rows) to keep the run short.
    const kvN = quick ? 8 : 128, kvRows = quick ? 2 : Math.min(8, G0);
    const kv = await measureRollout(ctx, { rows: kvRows, groupSize: kvRows, newTokens: kvN, reps });
    const rc = await measureRollout(ctx, {
      rows: kvRows,
      groupSize: kvRows,
      newTokens: kvN,
      reps: 1,
      useCache: false,
    });
    log(`kv vs recompute (${kvRows} rows x ${kvN}): ${(rc.seconds / kv.seconds).toFixed(1)}x`);
    // Shared prefix: P prompts x G samples with one encoded prefix per prompt, vs P*G separate prompts.
    const spRows = quick ? 4 : 64, spG = Math.min(spRows, G0);
    const shared: Record<string, unknown>[] = [];
    for (const N of quick ? [1] : [1, 32]) {
      const a = await measureRollout(ctx, { rows: spRows, groupSize: spG, newTokens: N, reps });
      const b = await measureRollout(ctx, {
        rows: spRows,
        groupSize: spG,
        newTokens: N,
        reps,
        sharedPrefix: false,
      });
      shared.push({
        rows: spRows,
        groupSize: spG,
        newTokens: N,
        sharedSeconds: round(a.seconds),
        separateSeconds: round(b.seconds),
        speedup: round(b.seconds / a.seconds, 2),
      });
      log(`shared prefix (${spRows} rows, G ${spG}, ${N} tokens): ${(b.seconds / a.seconds).toFixed(2)}x`);
    }
    let sft: Record<string, unknown> | null = null, grpo: Record<string, unknown> | null = null;
    if (!o.skipTrain) {
      const s = measureSftStep(ctx, { reps, batchSize: quick ? 4 : undefined });
      sft = {
        batchSize: s.batchSize,
        tokens: s.tokens,
        seconds: round(s.seconds),
        leakedTensors: s.leakedTensors,
      };
      log(`sft step (batch ${s.batchSize}): ${s.seconds.toFixed(2)} s`);
      const g = await measureGrpoStep(
        ctx,
        quick ? { prompts: 2, groupSize: 2, maxNewTokens: 8, reps: 1 } : { reps: 2 },
      );
      grpo = { ...g, seconds: round(g.seconds), generateSeconds: round(g.generateSeconds) };
      log(`grpo step (${g.prompts} x ${g.groupSize}, ${g.maxNewTokens} tokens): ${g.seconds.toFixed(2)} s`);
    }
    const biggest = rollout.filter((r) => r.rows === Math.max(...batches));
    const best = biggest.length ? Math.max(...biggest.map((r) => r.pctRoofline)) : NaN;
    const out: Record<string, unknown> = {
      date: new Date().toISOString(),
      machine: {
        cpu: await cpuModel(),
        cores: navigator.hardwareConcurrency,
        os: Deno.build.os,
        arch: Deno.build.arch,
        /** 1/5/15-minute load averages before and after: timings on a loaded machine are not comparable. */
        loadavgStart: load0,
        loadavgEnd: Deno.loadavg(),
      },
      deno: Deno.version.deno,
      tfjs: tf.version.tfjs,
      backend: ctx.backend.name,
      adapter: ctx.backend.adapter,
      isFallbackAdapter: ctx.backend.isFallbackAdapter,
      preset: ctx.preset,
      model: {
        dModel: cfg.dModel,
        nLayers: cfg.nLayers,
        nHeads: cfg.nHeads,
        dFF: cfg.dFF,
        vocabSize: cfg.vocabSize,
        prefixLen: ctx.prefixLen,
      },
      matmulGflops: round(roof.gflops, 2),
      matmulBySize: roof.bySize.map((r) => ({
        size: r.m,
        gflops: round(r.gflops, 2),
        medianMs: round(r.timing.medianMs),
      })),
      flopsPerToken: Object.fromEntries(
        lengths.map((N) => [`${N}`, Math.round(flopsPerToken(cfg, ctx.prefixLen + (N + 1) / 2))]),
      ),
      overheads: { usPerSmallOp: round(overheads.usPerSmallOp, 1), readbackMs: round(overheads.readbackMs) },
      rollout: rollout.map((r) => ({
        rows: r.rows,
        groupSize: r.groupSize,
        newTokens: r.newTokens,
        seconds: round(r.seconds),
        tokensPerSec: round(r.tokensPerSec, 1),
        pctRoofline: round(r.pctRoofline, 1),
        leakedTensors: r.leakedTensors,
      })),
      kvVsRecompute: {
        rows: kvRows,
        newTokens: kvN,
        kvSeconds: round(kv.seconds),
        recomputeSeconds: round(rc.seconds),
        speedup: round(rc.seconds / kv.seconds, 2),
      },
      sharedPrefix: shared,
      sftStep: sft,
      grpoStep: grpo,
      targets: {
        batchRooflinePct: { rows: Math.max(...batches), value: round(best, 1), target: 50, met: best >= 50 },
        kvSpeedup: { value: round(rc.seconds / kv.seconds, 2), target: 5, met: rc.seconds / kv.seconds >= 5 },
      },
    };
    if (o.profile) {
      const rows = Math.max(...batches);
      const prof = await profileDecodeStep(ctx, {
        rows,
        groupSize: Math.min(rows, G0),
        steps: quick ? 4 : 16,
      });
      const mm = await decodeMatmuls(cfg, rows, quick ? 3 : 10);
      out.profile = {
        rows,
        kernelsPerStep: round(prof.kernelsPerStep, 1),
        kernelMsPerStep: round(prof.kernelMsPerStep),
        byKernel: prof.byKernel.slice(0, 15).map((k) => ({
          ...k,
          perStep: round(k.perStep, 1),
          msPerStep: round(k.msPerStep),
        })),
        decodeMatmuls: mm.map((m) => ({
          label: m.label,
          shape: `[${m.m},${m.k}]x[${m.k},${m.n}]`,
          gflops: round(m.gflops, 2),
          medianMs: round(m.timing.medianMs),
        })),
      };
    }
    return out;
  } finally {
    ctx.dispose();
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      backend: { type: "string", default: "auto" },
      preset: { type: "string", default: "small" },
      json: { type: "string" },
      quick: { type: "boolean", default: false },
      profile: { type: "boolean", default: false },
      "skip-train": { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log(
      "usage: deno run --allow-read --allow-write --allow-env --allow-ffi --allow-sys bench/run.ts " +
        "[--backend auto|wasm|webgpu|cpu] [--preset tiny|small|large] [--json out.json] [--quick] [--profile] [--skip-train]",
    );
    Deno.exit(0);
  }
  const summary = await benchSummary({
    backend: values.backend as BackendName,
    preset: values.preset as Preset,
    quick: values.quick,
    profile: values.profile,
    skipTrain: values["skip-train"],
  });
  const text = JSON.stringify(summary, null, 2);
  console.log(text);
  if (values.json) await Deno.writeTextFile(values.json, text + "\n");
}
