/**
 * Fixture run directories for report tests: realistic records per lib/run/records.ts (manifest, a few hundred
 * metric lines for stages base/sft/grpo, a rollout ledger, eval.json with the four rows and a gallery, PNG
 * samples made with sharp). Deterministic in `seed`.
 */
import sharp from "sharp";
import { join } from "node:path";
import { Rng } from "../lib/rng.ts";
import type {
  EvalFile,
  GalleryItem,
  Manifest,
  MetricRecord,
  RolloutRecord,
  StageEval,
} from "../lib/run/records.ts";

export interface FixtureOptions {
  seed?: number;
  name?: string;
  runId?: string;
  /** Gallery items per eval row (default 3). */
  gallery?: number;
  /** Replaces the completion of the first gallery item of every row (e.g. an injection attempt). */
  completion?: string;
  /** Steps per stage (default base 120, sft 80, grpo 100). */
  steps?: { base?: number; sft?: number; grpo?: number };
  /** Aerial tile and ground panorama sizes (default 32 and 32x128). */
  aerialSize?: number;
  groundShape?: [number, number];
}

function lines(records: unknown[]): string {
  return records.map((r) => JSON.stringify(r)).join("\n") + "\n";
}

/** A procedural RGB image: sky/ground bands for panoramas, a road grid and roofs for tiles. */
async function png(rng: Rng, w: number, h: number, kind: "ground" | "aerial"): Promise<Uint8Array> {
  const px = new Uint8Array(w * h * 3);
  const base = [rng.int(120) + 60, rng.int(120) + 80, rng.int(80) + 40];
  const road = rng.int(w);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = (y * w + x) * 3;
      let c: number[];
      if (kind === "ground") {
        c = y < h * 0.45
          ? [110 + y * 2, 160 + y * 2, 230]
          : (x % 37 < 6 && y > h * 0.3 ? [90, 90, 100] : [base[0], base[1] - (y % 5) * 4, base[2]]);
      } else {
        c = Math.abs(x - road) < 2 || Math.abs(y - road) < 2
          ? [70, 70, 75]
          : ((x >> 3) + (y >> 3)) % 3 === 0
          ? [180, 80 + rng.int(40), 60]
          : [base[0], base[1], base[2]];
      }
      px[i] = c[0];
      px[i + 1] = c[1];
      px[i + 2] = c[2];
    }
  }
  return new Uint8Array(await sharp(px, { raw: { width: w, height: h, channels: 3 } }).png().toBuffer());
}

const LABELS: [string, string][] = [["base", "Base"], ["sft", "Geo-SFT"], ["grpo-zero", "Geo-R1-Zero"], [
  "grpo",
  "Geo-R1",
]];

/** Write a complete fixture run into `dir` (created). Returns the run id. */
export async function writeFixtureRun(dir: string, opts: FixtureOptions = {}): Promise<string> {
  const seed = opts.seed ?? 1;
  const rng = new Rng(seed);
  const name = opts.name ?? "geo-r1";
  const runId = opts.runId ?? `${name}-${(0x1000_0000 + seed * 7919).toString(16).slice(0, 8)}`;
  const steps = { base: 120, sft: 80, grpo: 100, ...opts.steps };
  const aerial = opts.aerialSize ?? 32;
  const [gh, gw] = opts.groundShape ?? [32, 128];
  await Deno.mkdir(join(dir, "samples"), { recursive: true });

  const spec = {
    name,
    description: "Geo-R1: base -> SFT on CoT exemplars -> GRPO on cross-view pairing (fixture)",
    seed,
    backend: "wasm",
    world: { seed: 7, groundShape: [gh, gw], aerialSize: aerial, tileHalfExtent: 150 },
    data: {
      seed: seed * 11,
      candidates: 4,
      negatives: { far: 0.4, climate: 0.3, near: 0.3 },
      testNearMin: 0.34,
      regionCellDeg: 5,
      valFraction: 0.1,
      testFraction: 0.15,
      cot: { verbosity: 1, noise: 0.05 },
    },
    model: { preset: "small", seed: seed * 13 },
    stages: {
      base: { kind: "pretrain", from: null, steps: steps.base, seed: seed * 17 },
      sft: { kind: "sft", from: "base", steps: steps.sft, seed: seed * 19 },
      grpo: { kind: "grpo", from: "sft", steps: steps.grpo, seed: seed * 23 },
    },
    pipeline: ["base", "sft", "grpo"],
    eval: {
      n: 400,
      tasks: ["pairing", "geolocate", "geoqa"],
      bootstrap: 1000,
      temperature: 0,
      maxNewTokens: 96,
      gallery: 12,
      seed: 5,
    },
  };
  const t0 = Date.UTC(2025, 10, 20, 9, 0, 0) + seed * 3_600_000;
  const manifest: Manifest = {
    name,
    runId,
    specHash: `sha256-${"0123456789abcdef".repeat(4).slice(seed % 8)}`.slice(0, 71),
    seed,
    git: { commit: "3f2c1e9a7b6d5c4e3f2a1b0c9d8e7f6a5b4c3d2e", dirty: false },
    lockHash: "sha256-9c1d2e3f",
    versions: { deno: "2.9.6", v8: "15.0.245.2", typescript: "6.0.3", tfjs: "4.22.0", geoR1: "0.1.0" },
    backend: { name: "wasm", adapter: null, isFallbackAdapter: null },
    device: { os: "linux", arch: "x86_64", cpus: 2, memGiB: 7.8, hostname: "ci-runner" },
    permissions: { read: "granted", write: "granted", env: "granted", ffi: "granted", net: "denied" },
    argv: ["exp", name, "--set", `seed=${seed}`],
    startedAt: new Date(t0).toISOString(),
    endedAt: new Date(t0 + 17 * 60_000 + 12_000).toISOString(),
    status: "done",
    stages: [
      {
        name: "base",
        kind: "pretrain",
        hash: `b${seed}a5e000111`,
        cached: true,
        dir: `cache/stages/b${seed}a5e000111`,
      },
      {
        name: "sft",
        kind: "sft",
        hash: `5f7${seed}00222`,
        cached: false,
        dir: `cache/stages/5f7${seed}00222`,
      },
      {
        name: "grpo",
        kind: "grpo",
        hash: `9a0${seed}00333`,
        cached: false,
        dir: `cache/stages/9a0${seed}00333`,
      },
    ],
  };

  const metrics: MetricRecord[] = [];
  let time = t0;
  const sup = (stage: string, kind: "pretrain" | "sft", n: number, l0: number, l1: number) => {
    for (let s = 1; s <= n; s++) {
      time += 900 + rng.int(200);
      const f = s / n;
      metrics.push({
        stage,
        kind,
        step: s,
        time,
        loss: l1 + (l0 - l1) * Math.exp(-4 * f) + 0.05 * rng.normal(),
        lr: 3e-4 * Math.min(1, s / 10) * (0.1 + 0.9 * 0.5 * (1 + Math.cos(Math.PI * f))),
        grad_norm: 0.5 + Math.exp(-3 * f) + 0.1 * rng.next(),
        step_time: 0.9 + 0.2 * rng.next(),
        tokens_per_s: 4200 + 300 * rng.normal(),
      });
      if (s % 20 === 0) {
        metrics.push({
          stage,
          kind: "eval",
          step: s,
          time,
          "eval/pairing/accuracy": 0.25 + 0.3 * f + 0.03 * rng.normal(),
        });
      }
    }
  };
  sup("base", "pretrain", steps.base, 4.2, 1.3);
  sup("sft", "sft", steps.sft, 1.6, 0.7);
  const rollouts: RolloutRecord[] = [];
  for (let s = 1; s <= steps.grpo; s++) {
    time += 2500 + rng.int(500);
    const f = s / steps.grpo;
    const acc = 0.45 + 0.35 * f + 0.05 * rng.normal();
    const len = 80 - 25 * f + 4 * rng.normal();
    metrics.push({
      stage: "grpo",
      kind: "grpo",
      step: s,
      time,
      loss: 0.02 * rng.normal(),
      lr: 1e-5,
      reward: 0.2 + acc,
      reward_std: 0.4 - 0.2 * f,
      "rewards/format/mean": Math.min(1, 0.9 + 0.1 * f),
      "rewards/format/std": 0.1,
      "rewards/accuracy/mean": acc,
      "rewards/accuracy/std": 0.45,
      accuracy: acc,
      "completions/mean_length": len,
      "completions/min_length": len - 20,
      "completions/max_length": len + 30,
      "completions/clipped_ratio": Math.max(0, 0.1 - 0.1 * f),
      frac_reward_zero_std: 0.1 + 0.3 * f,
      kl: 0.002 + 0.02 * f,
      entropy: 1.2 - 0.5 * f,
      "clip_ratio/low_mean": 0.01,
      "clip_ratio/high_mean": 0.02,
      "clip_ratio/region_mean": 0.03,
      grad_norm: 0.3 + 0.1 * rng.next(),
      step_time: 2.6,
      tokens_per_s: 900,
    });
    for (let g = 0; g < 2; g++) {
      for (let k = 0; k < 4; k++) {
        const ok = rng.next() < acc;
        const letter = "ABCD"[rng.int(4)];
        rollouts.push({
          stage: "grpo",
          step: s,
          promptId: `pairing-${s}-${g}`,
          group: g,
          sample: k,
          completion: `<think>The panorama shows red roofs and a road at azimuth ${
            rng.int(360)
          }; candidate ${letter} has a matching road.</think><answer>${letter}</answer>`,
          tokens: Math.round(len + 10 * rng.normal()),
          truncated: rng.next() < 0.02,
          rewards: { format: 1, accuracy: ok ? 1 : 0 },
          reward: ok ? 2 : 1,
          advantage: ok ? 0.8 : -0.8,
        });
      }
    }
  }

  const perRow = opts.gallery ?? 3;
  const rows: StageEval[] = [];
  const accs = [0.27, 0.58, 0.66, 0.74];
  const lens = [14, 96, 41, 63];
  for (let r = 0; r < LABELS.length; r++) {
    const [stage, label] = LABELS[r];
    const a = accs[r] + 0.02 * rng.normal();
    const L = lens[r] + 3 * rng.normal();
    const gallery: GalleryItem[] = [];
    for (let i = 0; i < perRow; i++) {
      const id = `${stage}-${i}`;
      const groundPng = `samples/${id}-ground.png`;
      await Deno.writeFile(join(dir, groundPng), await png(rng, gw, gh, "ground"));
      const aerialPngs: string[] = [];
      for (let c = 0; c < 4; c++) {
        const p = `samples/${id}-aerial-${"abcd"[c]}.png`;
        await Deno.writeFile(join(dir, p), await png(rng, aerial, aerial, "aerial"));
        aerialPngs.push(p);
      }
      const answer = "ABCD"[rng.int(4)];
      const guess = rng.next() < a ? answer : "ABCD"[rng.int(4)];
      gallery.push({
        task: "pairing",
        exampleId: `test-pairing-${i * 37 + r}`,
        prompt: "Which aerial tile (A, B, C or D) was taken at the location of this ground panorama?",
        completion: i === 0 && opts.completion !== undefined
          ? opts.completion
          : `<think>Sun low in the north: southern hemisphere. Terracotta roofs & a two-lane road running ` +
            `north-south; candidate ${guess} shows the same road bearing.</think><answer>${guess}</answer>`,
        answer,
        correct: guess === answer,
        groundPng,
        aerialPngs,
      });
    }
    rows.push({
      stage,
      label,
      stageHash: `${stage}-${seed}-hash`,
      pairing: {
        n: 400,
        accuracy: a,
        ci: [a - 0.045, a + 0.045],
        meanLength: L,
        lengthCi: [L - 2.5, L + 2.5],
        formatRate: r === 0 ? 0.81 : 0.99,
        byTier: {
          far: { n: 130, accuracy: Math.min(1, a + 0.15) },
          climate: { n: 130, accuracy: a },
          near: { n: 140, accuracy: Math.max(0, a - 0.12) },
        },
      },
      geolocate: {
        n: 200,
        thresholds: {
          "1": 0.0 + 0.01 * r,
          "25": 0.02 + 0.02 * r,
          "200": 0.08 + 0.05 * r,
          "750": 0.25 + 0.08 * r,
          "2500": 0.55 + 0.07 * r,
        },
        thresholdCi: {
          "1": [0, 0.02 + 0.01 * r],
          "25": [0.0, 0.05 + 0.02 * r],
          "200": [0.05 + 0.05 * r, 0.12 + 0.05 * r],
          "750": [0.2 + 0.08 * r, 0.3 + 0.08 * r],
          "2500": [0.5 + 0.07 * r, 0.6 + 0.07 * r],
        },
        medianKm: 2400 - 350 * r,
        meanLength: 20 + 10 * r,
      },
      geoqa: {
        n: 250,
        accuracy: 0.5 + 0.06 * r,
        byKind: {
          continent: { n: 50, accuracy: 0.7 + 0.05 * r },
          country: { n: 50, accuracy: 0.3 + 0.05 * r },
          climate: { n: 50, accuracy: 0.5 + 0.05 * r },
          urban: { n: 50, accuracy: 0.8 },
          drivingSide: { n: 50, accuracy: 0.6 + 0.04 * r },
        },
      },
      gallery,
    });
  }
  const evalFile: EvalFile = { experiment: name, runId, rows };

  await Deno.writeTextFile(join(dir, "spec.resolved.json"), JSON.stringify(spec, null, 2) + "\n");
  await Deno.writeTextFile(join(dir, "manifest.json"), JSON.stringify(manifest, null, 2) + "\n");
  await Deno.writeTextFile(join(dir, "metrics.jsonl"), lines(metrics));
  await Deno.writeTextFile(join(dir, "rollouts.jsonl"), lines(rollouts));
  await Deno.writeTextFile(join(dir, "eval.json"), JSON.stringify(evalFile, null, 2) + "\n");
  return runId;
}
