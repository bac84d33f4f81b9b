/**
 * Peer benchmark: this project's small VLM against the same architecture in PyTorch (bench/peer/
 * grpo_peer.py), on the same machine in one run, in alternating rounds (ours, then PyTorch), medians over
 * rounds. Measures rollouts of 8 rows (1 prompt x G 8) and 64 rows (8 x 8) x 128 new tokens, and one GRPO
 * training step of 32 rows (4 prompts x G 8, 24 prompt + 136 completion tokens: forward with the vision
 * encoder, DAPO loss, backward, clipping, AdamW), each at 1 thread and at one thread per core (ours: the
 * native BLAS's threads; tfjs-wasm itself runs on one thread).
 *
 *   deno run -A bench/peer/peer.ts [--rounds 3] [--python python3] [--preset small]
 *
 * Without python3 or PyTorch the PyTorch side is skipped with a message and only ours is printed.
 * @module
 */
import { parseArgs } from "node:util";
import * as tf from "@tensorflow/tfjs";
import { measureRollout, setupBench } from "../harness.ts";
import { median } from "../roofline.ts";
import { collateCompletions } from "../../lib/model/collate.ts";
import { chunkLoss } from "../../lib/train/grpo_chunk.ts";
import { setBlasThreads } from "../../lib/model/blas.ts";
import { Rng } from "../../lib/rng.ts";
import type { Preset } from "../../lib/model/types.ts";

const { values: v } = parseArgs({
  args: Deno.args,
  options: {
    rounds: { type: "string", default: "3" },
    python: { type: "string", default: "python3" },
    preset: { type: "string", default: "small" },
  },
});
const rounds = Number(v.rounds);
const cores = Math.max(1, navigator.hardwareConcurrency || 1);
const threadCounts = cores > 1 ? [1, cores] : [1];

const ctx = await setupBench({ backend: "wasm", preset: v.preset as Preset });
const optim = {
  lr: 1e-5,
  weightDecay: 0.01,
  beta1: 0.9,
  beta2: 0.99,
  warmupSteps: 0,
  minLrRatio: 1,
  gradClip: 1,
};

/** One 32-row GRPO training step as trainGrpo runs a micro-batch (shared prefix), with AdamW. */
function trainStepMs(): number {
  const P = 4, G = 8, Tc = 136;
  const rng = new Rng(5);
  const comps = Array.from(
    { length: P * G },
    () => Array.from({ length: Tc }, () => 8 + Math.floor(rng.next() * (ctx.cfg.vocabSize - 8))),
  );
  const t0 = performance.now();
  const batch = collateCompletions(ctx.examples(P), comps, ctx.tokenizer, ctx.cfg, G);
  const adv = tf.tensor1d(Array.from({ length: P * G }, (_, i) => ((i * 7) % 5) - 2));
  try {
    const { value, grads } = tf.variableGrads(() =>
      chunkLoss(ctx.model, {
        input: batch.input,
        lossMask: batch.lossMask,
        fullMask: batch.lossMask,
        advantages: adv,
        refLogp: null,
        oldLogp: null,
      }, {
        temperature: 0.7,
        beta: 0,
        epsilonLow: 0.2,
        epsilonHigh: 0.28,
        lossType: "dapo",
        maxCompletionLength: Tc,
        weight: 1,
        entropyWeight: 1,
        groups: { size: G, promptLen: batch.promptLen },
      }).loss
    );
    ctx.optimizer(optim).applyGradients(grads, optim.lr, optim.gradClip);
    value.dataSync();
    tf.dispose([value, ...Object.values(grads)]);
  } finally {
    batch.dispose();
    adv.dispose();
  }
  return performance.now() - t0;
}

type Run = Record<string, number>;
const ours = new Map<number, Run[]>(), peer = new Map<number, Run[]>();
let peerInfo: Record<string, unknown> | null = null;
// The PyTorch model is the small preset's; other presets time ours only (smoke runs).
let skipped: string | null = ctx.preset === "small"
  ? null
  : `the PyTorch model is the small preset, not ${ctx.preset}`;

async function runPeer(): Promise<void> {
  const script = new URL("grpo_peer.py", import.meta.url).pathname;
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command(v.python!, {
      args: [script, "--threads", threadCounts.join(","), "--reps", "1"],
      stdout: "piped",
      stderr: "piped",
    }).output();
  } catch (e) {
    skipped = `${v.python} not runnable (${(e as Error).message.split("\n")[0]})`;
    return;
  }
  if (out.code !== 0) {
    skipped = `${v.python} ${script} failed: ${
      new TextDecoder().decode(out.stderr).trim().split("\n").pop()
    }`;
    return;
  }
  const res = JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").pop()!);
  if (res.skipped) {
    skipped = res.skipped;
    return;
  }
  peerInfo = { torch: res.torch, blas: res.blas, params: res.params };
  for (const r of res.runs as Run[]) peer.set(r.threads, [...(peer.get(r.threads) ?? []), r]);
}

for (let round = 0; round < rounds; round++) {
  for (const th of threadCounts) {
    setBlasThreads(th);
    const run: Run = { threads: th };
    for (const rows of [8, 64]) {
      const r = await measureRollout(ctx, { rows, groupSize: 8, newTokens: 128, reps: 1 });
      run[`rollout${rows}Ms`] = r.seconds * 1000;
      run[`rollout${rows}TokPerSec`] = r.tokensPerSec;
    }
    trainStepMs();
    run.trainStepMs = trainStepMs();
    ours.set(th, [...(ours.get(th) ?? []), run]);
  }
  if (!skipped) await runPeer();
  console.error(`round ${round + 1}/${rounds} done`);
}
setBlasThreads(cores);

const med = (runs: Run[] | undefined, k: string) => (runs?.length ? median(runs.map((r) => r[k])) : NaN);
const params = ctx.model.trainable().reduce((a, t) => a + t.size, 0);
const lines = [
  `peer benchmark, small preset (${params} parameters), ${rounds} alternating rounds, medians; ` +
  `ours: ${ctx.backend.name}${ctx.backend.blas ? ` + ${ctx.backend.blas}` : " (tfjs-wasm matmuls)"}; ` +
  (skipped ? `PyTorch: skipped (${skipped})` : `PyTorch ${peerInfo!.torch} (BLAS ${peerInfo!.blas}, ` +
    `${peerInfo!.params} parameters)`),
  `${"threads".padEnd(8)}${"measure".padEnd(24)}${"ours".padStart(10)}${"PyTorch".padStart(10)}${
    "ours/PyTorch".padStart(14)
  }`,
];
for (const th of threadCounts) {
  for (
    const [label, key, higherIsBetter] of [
      ["rollout 8 rows, tok/s", "rollout8TokPerSec", true],
      ["rollout 64 rows, tok/s", "rollout64TokPerSec", true],
      ["train step 32 rows, ms", "trainStepMs", false],
    ] as const
  ) {
    const a = med(ours.get(th), key), b = med(peer.get(th), key);
    const ratio = higherIsBetter ? a / b : b / a;
    lines.push(
      `${String(th).padEnd(8)}${label.padEnd(24)}${a.toFixed(0).padStart(10)}${
        (Number.isFinite(b) ? b.toFixed(0) : "-").padStart(10)
      }${(Number.isFinite(ratio) ? `${ratio.toFixed(2)}x` : "-").padStart(14)}`,
    );
  }
}
lines.push("ours/PyTorch: > 1 means ours is faster (tokens/s ratio; inverse ratio of step times).");
console.log(lines.join("\n"));
console.log(
  JSON.stringify({ ours: Object.fromEntries(ours), peer: Object.fromEntries(peer), peerInfo, skipped }),
);
ctx.dispose();
