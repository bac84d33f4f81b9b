/**
 * Generation: G samples per prompt (group-contiguous rows, B = P * G). The image+prompt prefix of each
 * prompt is encoded once and its KV cache shared by the G samples of its group; each step samples on the
 * device (temperature, top-p) and reads the finished flags back every `readbackEvery` tokens only.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { deriveSeed } from "../rng.ts";
import { DecodeAttention } from "./kernels.ts";
import { NEG, swapLast2 } from "./ops.ts";
import { forward, project } from "./decoder.ts";
import { deviceDecoder, type Prefix } from "./decode_step.ts";
import { hostDecoder } from "./host_decoder.ts";
import { repeatIndex, slotSegments, slotTable } from "./layout.ts";
import type { CueText } from "./vision.ts";
import type { Net } from "./params.ts";
import type { GenerateOptions, GenerateResult, ModelInput } from "./types.ts";

/** Sample completions of `prompt` (see VLM.generate); checks the options and the length budget first. */
export async function generate(net: Net, prompt: ModelInput, opts: GenerateOptions): Promise<GenerateResult> {
  const G = opts.groupSize;
  if (!Number.isInteger(G) || G < 1) {
    throw new Error(`generate: groupSize must be a positive integer (got ${G})`);
  }
  if (opts.maxNewTokens < 1) throw new Error(`generate: maxNewTokens must be >= 1`);
  const lensT = prompt.attn.sum(1);
  const realLens = Array.from(await lensT.data()).map(Math.round);
  lensT.dispose();
  const longest = Math.max(...realLens);
  if (longest + opts.maxNewTokens > net.config.maxText) {
    throw new Error(
      `generate: prompt (${longest} tokens) + maxNewTokens (${opts.maxNewTokens}) exceeds maxText ${net.config.maxText}`,
    );
  }
  return opts.useCache === false ? generateRecompute(net, prompt, opts) : generateCached(net, prompt, opts);
}

/** The encoded prefix of P prompts: first logits and positions per row, the shared cache, the cue rows. */
interface EncodedPrefix {
  logits: tf.Tensor2D;
  k: tf.Tensor4D[];
  v: tf.Tensor4D[];
  bias: tf.Tensor;
  pos0: tf.Tensor1D;
  cue: tf.Tensor2D[];
}

/**
 * Prefix: image tokens + prompt encoded once per prompt; the first logits, positions and cue rows are tiled
 * to the G samples of each group (`rep`), the cache is not. With `onHost` V stays [P, H, S0, dh] (the host
 * decoder's layout), else it is kept transposed.
 */
function encodePrefix(
  net: Net,
  prompt: ModelInput,
  rep: number[],
  G: number,
  onHost: boolean,
): EncodedPrefix {
  const cfg = net.config;
  const P = prompt.ids.shape[0], B = P * G;
  return tf.tidy(() => {
    const text: CueText = { table: null };
    const f = forward(net, prompt, { lastOnly: true, collectKV: true, text });
    const ix = tf.tensor1d(rep, "int32");
    const tile = (t: tf.Tensor) => (G === 1 ? t.clone() : tf.gather(t, ix));
    const rows = 1 + cfg.maxCandidates;
    const keys = f.Ni > 0 ? tf.concat([tf.ones([P, f.Ni]), prompt.attn], 1) : prompt.attn;
    return {
      logits: tile(project(net, f.h)) as tf.Tensor2D,
      // The prefix cache is NOT tiled: one copy per prompt, shared by its G samples.
      k: f.kv.k,
      // V kept transposed ([P, H, dh, S0]) so P @ V is in the NT form.
      v: (onHost ? f.kv.v : f.kv.v.map((t) => swapLast2(t))) as tf.Tensor4D[],
      bias: keys.sub(1).mul(-NEG).reshape([P, 1, 1, -1]),
      pos0: tile(prompt.attn.sum(1)).toInt() as tf.Tensor1D,
      // Cue-conditioned text: each sample's rows of the table ([B * rows, d]); empty without cueText.
      cue: text.table
        ? [tile(text.table.reshape([P, rows, cfg.dModel])).reshape([B * rows, cfg.dModel]) as tf.Tensor2D]
        : [],
    };
  });
}

/** Candidate-slot segment of each row's next input token, continuing from its prompt (ModelConfig.slots). */
function promptSegments(net: Net, prompt: ModelInput, rep: number[]): Int32Array | null {
  const slots = net.config.slots;
  if (!slots) return null;
  const ids = prompt.ids.dataSync() as Int32Array;
  const promptLast =
    slotSegments(slots, net.config.vocabSize, ids, prompt.ids.shape[0], prompt.ids.shape[1]).last;
  return Int32Array.from(rep, (p) => promptLast[p]);
}

async function generateCached(net: Net, prompt: ModelInput, opts: GenerateOptions): Promise<GenerateResult> {
  const P = prompt.ids.shape[0], G = opts.groupSize, B = P * G;
  const every = Math.max(1, opts.readbackEvery ?? 8);
  const pad = opts.padId ?? 0;
  const rep = repeatIndex(P, G);
  const cfg = net.config;
  // wasm: the decoding step runs on the host around the dense matmuls (host_decoder.ts); else all on tfjs.
  const onHost = DecodeAttention.available(cfg.dModel / cfg.nHeads);
  const pre = encodePrefix(net, prompt, rep, G, onHost);
  const prefix: Prefix = { P, k: pre.k, v: pre.v, bias: pre.bias };
  const cueTable: tf.Tensor2D | null = pre.cue[0] ?? null;
  const table = cfg.slots ? slotTable(cfg.slots, cfg.vocabSize) : null;
  const segStart = promptSegments(net, prompt, rep);
  let decoder: ReturnType<typeof deviceDecoder> | null = null;
  let logits = pre.logits;
  let finished = tf.zeros([B], "bool") as tf.Tensor1D;
  const tokens: tf.Tensor1D[] = [];
  const stepLogits: Float32Array[] = [];
  const stopT = tf.tensor1d(opts.stopIds.length ? opts.stopIds : [-1], "int32");
  try {
    if (onHost) {
      decoder = hostDecoder(net, prefix, G, opts.maxNewTokens, pre.pos0, segStart, table, cueTable);
      // The host decoder keeps its own copy of the prefix cache.
      for (const t of [...pre.k, ...pre.v]) t.dispose();
    } else decoder = deviceDecoder(net, prefix, pre.pos0, segStart, table, cueTable);
    for (let s = 0; s < opts.maxNewTokens; s++) {
      if (opts.returnLogits) stepLogits.push((await logits.data()) as Float32Array);
      const fin0 = finished;
      const { tok, fin } = sampleStep(logits, fin0, s, opts, stopT, pad);
      fin0.dispose();
      finished = fin;
      tokens.push(tok);
      if (s === opts.maxNewTokens - 1) break;
      if ((s + 1) % every === 0 && (await allFinished(finished))) break;
      const next = decoder.step(tok, s);
      logits.dispose();
      logits = next;
    }
    return await collectCompletions(tokens, B, opts.stopIds, opts.returnLogits ? stepLogits : undefined);
  } finally {
    logits.dispose();
    finished.dispose();
    stopT.dispose();
    for (const t of tokens) t.dispose();
    decoder?.dispose();
    for (const t of [...pre.k, ...pre.v, pre.bias, pre.pos0]) t.dispose();
    cueTable?.dispose();
  }
}

/** Whether every row has finished (one readback). */
async function allFinished(finished: tf.Tensor1D): Promise<boolean> {
  const all = tf.tidy(() => finished.all());
  const done = (await all.data())[0];
  all.dispose();
  return !!done;
}

/** Generation without a KV cache: the full forward over prompt + generated tokens at every step. */
async function generateRecompute(
  net: Net,
  prompt: ModelInput,
  opts: GenerateOptions,
): Promise<GenerateResult> {
  const P = prompt.ids.shape[0], G = opts.groupSize, B = P * G;
  const every = Math.max(1, opts.readbackEvery ?? 8);
  const pad = opts.padId ?? 0;
  const rep = tf.tensor1d(repeatIndex(P, G), "int32");
  const tiled: ModelInput = {
    B,
    ground: prompt.ground ? tf.gather(prompt.ground, rep) as tf.Tensor4D : null,
    aerial: prompt.aerial ? tf.gather(prompt.aerial, rep) as tf.Tensor5D : null,
    ids: tf.gather(prompt.ids, rep) as tf.Tensor2D,
    attn: tf.gather(prompt.attn, rep) as tf.Tensor2D,
  };
  let finished = tf.zeros([B], "bool") as tf.Tensor1D;
  const tokens: tf.Tensor1D[] = [];
  const stepLogits: Float32Array[] = [];
  const stopT = tf.tensor1d(opts.stopIds.length ? opts.stopIds : [-1], "int32");
  try {
    for (let s = 0; s < opts.maxNewTokens; s++) {
      const logits = tf.tidy(() => {
        const ids = s === 0 ? tiled.ids : tf.concat([tiled.ids, tf.stack(tokens, 1)], 1) as tf.Tensor2D;
        const attn = s === 0 ? tiled.attn : tf.concat([tiled.attn, tf.ones([B, s])], 1) as tf.Tensor2D;
        return project(net, forward(net, { ...tiled, ids, attn }, { lastOnly: true }).h) as tf.Tensor2D;
      });
      if (opts.returnLogits) stepLogits.push((await logits.data()) as Float32Array);
      const fin0 = finished;
      const { tok, fin } = sampleStep(logits, fin0, s, opts, stopT, pad);
      logits.dispose();
      fin0.dispose();
      finished = fin;
      tokens.push(tok);
      if ((s + 1) % every === 0 && (await allFinished(finished))) break;
    }
    return await collectCompletions(tokens, B, opts.stopIds, opts.returnLogits ? stepLogits : undefined);
  } finally {
    finished.dispose();
    stopT.dispose();
    rep.dispose();
    for (const t of tokens) t.dispose();
    for (const t of [tiled.ground, tiled.aerial, tiled.ids, tiled.attn]) t?.dispose();
  }
}

/**
 * One sampling step shared by the cached and recompute generators: sample from `logits` (seeded by the step),
 * emit `pad` on rows already finished, and mark rows that emitted a stop id as finished.
 */
function sampleStep(
  logits: tf.Tensor2D,
  finished: tf.Tensor1D,
  step: number,
  opts: GenerateOptions,
  stopT: tf.Tensor1D,
  pad: number,
): { tok: tf.Tensor1D; fin: tf.Tensor1D } {
  return tf.tidy(() => {
    const B = logits.shape[0];
    const t = sampleTokens(logits, opts.temperature, opts.topP, deriveSeed(opts.seed, `sample/${step}`));
    const out = tf.where(finished, tf.fill([B], pad, "int32"), t) as tf.Tensor1D;
    const hit = tf.equal(out.reshape([B, 1]), stopT.reshape([1, -1])).any(1);
    return { tok: out, fin: tf.logicalOr(finished, hit) as tf.Tensor1D };
  });
}

/**
 * Next tokens [B] (int32) from logits [B, V], on the device: greedy when temperature <= 0; otherwise
 * softmax(logits / temperature) restricted to the top-p nucleus (sorted with tf.topk; the most likely token
 * is always kept), sampled with tf.multinomial under `seed`.
 */
export function sampleTokens(
  logits: tf.Tensor2D,
  temperature: number,
  topP: number,
  seed: number,
): tf.Tensor1D {
  return tf.tidy(() => {
    const [B, V] = logits.shape;
    if (temperature <= 0) return tf.argMax(logits, 1).toInt() as tf.Tensor1D;
    const l = logits.div(temperature) as tf.Tensor2D;
    if (topP >= 1) return tf.multinomial(l, 1, seed).reshape([B]).toInt() as tf.Tensor1D;
    const { values, indices } = tf.topk(l, V, true);
    const probs = tf.softmax(values);
    const before = tf.cumsum(probs, 1).sub(probs);
    const kept = tf.where(before.less(topP), values, tf.fill([B, V], NEG)) as tf.Tensor2D;
    const choice = tf.multinomial(kept, 1, seed).reshape([B]).toInt();
    const flat = choice.add(tf.range(0, B * V, V, "int32")).toInt();
    return tf.gather(indices.reshape([B * V]), flat).toInt() as tf.Tensor1D;
  });
}

/** The sampled tokens of each row up to and including its first stop id; a row without one is truncated. */
async function collectCompletions(
  tokens: tf.Tensor1D[],
  B: number,
  stopIds: number[],
  stepLogits?: Float32Array[],
): Promise<GenerateResult> {
  const n = tokens.length;
  const stacked = tf.stack(tokens, 1);
  const data = await stacked.data();
  stacked.dispose();
  const stops = new Set(stopIds);
  const completions: number[][] = [];
  const truncated: boolean[] = [];
  for (let b = 0; b < B; b++) {
    const row: number[] = [];
    let stopped = false;
    for (let s = 0; s < n; s++) {
      const t = data[b * n + s];
      row.push(t);
      if (stops.has(t)) {
        stopped = true;
        break;
      }
    }
    completions.push(row);
    truncated.push(!stopped);
  }
  const res: GenerateResult = { completions, truncated };
  if (stepLogits) res.stepLogits = stepLogits;
  return res;
}
