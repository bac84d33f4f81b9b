/**
 * Test helpers for the model and trainer tests: a tiny character tokenizer and a synthetic Example factory
 * (lib/data is not needed). Images are seeded noise with a per-example colour, so a model can learn them.
 */
import "@tensorflow/tfjs-backend-wasm";
import type { Example, SpecialIds, Tokenizer } from "../lib/data/types.ts";
import type { SceneMeta } from "../lib/world/types.ts";
import { Rng } from "../lib/rng.ts";
import { initBackend } from "../lib/backend.ts";
import { makeModelConfig } from "../lib/model/config.ts";
import type { ModelConfig, Preset } from "../lib/model/types.ts";

let ready: Promise<void> | null = null;

/** Select the wasm backend once per test process. */
export function useWasm(): Promise<void> {
  // initBackend, as the CLI does: the wasm backend with native BLAS matmuls where a BLAS loads.
  ready ??= initBackend("wasm").then(() => {});
  return ready;
}

const SPECIALS = ["<pad>", "<bos>", "<eos>", "<unk>", "<think>", "</think>", "<answer>", "</answer>"];
const CHARS = " abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,:;-?'()";

/** Characters + the eight specials (matched greedily in text). */
export class CharTokenizer implements Tokenizer {
  readonly vocabSize = SPECIALS.length + CHARS.length;
  readonly special: SpecialIds = {
    pad: 0,
    bos: 1,
    eos: 2,
    unk: 3,
    thinkOpen: 4,
    thinkClose: 5,
    answerOpen: 6,
    answerClose: 7,
  };
  encode(text: string): number[] {
    const out: number[] = [];
    let i = 0;
    outer: while (i < text.length) {
      for (let s = 4; s < SPECIALS.length; s++) {
        if (text.startsWith(SPECIALS[s], i)) {
          out.push(s);
          i += SPECIALS[s].length;
          continue outer;
        }
      }
      const c = CHARS.indexOf(text[i]);
      out.push(c < 0 ? 3 : SPECIALS.length + c);
      i++;
    }
    return out;
  }
  decode(ids: ArrayLike<number>): string {
    let s = "";
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      s += id < SPECIALS.length ? (id === 0 ? "" : SPECIALS[id]) : CHARS[id - SPECIALS.length];
    }
    return s;
  }
  toJSON(): unknown {
    return { kind: "test-char", chars: CHARS, specials: SPECIALS };
  }
}

/** Geometry used by the tests (the world spec defaults). */
export const GEOM = { groundShape: [32, 128] as [number, number], aerialSize: 32, maxCandidates: 4 };

export function testConfig(preset: Preset = "tiny", seed = 1, over: Partial<ModelConfig> = {}): ModelConfig {
  const cfg = makeModelConfig({ preset, seed }, { vocabSize: new CharTokenizer().vocabSize, ...GEOM });
  return { ...cfg, ...over };
}

function noiseImage(
  rng: Rng,
  w: number,
  h: number,
  tint: number[],
): { width: number; height: number; data: Uint8Array } {
  const data = new Uint8Array(w * h * 3);
  for (let i = 0; i < w * h; i++) {
    for (let c = 0; c < 3; c++) {
      data[i * 3 + c] = Math.max(0, Math.min(255, tint[c] + Math.floor(rng.range(-40, 40))));
    }
  }
  return { width: w, height: h, data };
}

const META = {} as SceneMeta;

/** A pairing example (ground + K aerial) whose answer letter is drawn from the seed. */
export function pairingExample(seed: number, K = 4, promptWords = 3): Example {
  const rng = new Rng(seed);
  const correct = rng.int(K);
  const letter = "ABCD"[correct];
  const tint = [rng.int(256), rng.int(256), rng.int(256)];
  const aerial = [];
  for (let k = 0; k < K; k++) {
    aerial.push(noiseImage(rng, 32, 32, k === correct ? tint : [rng.int(256), rng.int(256), rng.int(256)]));
  }
  const words = ["match", "the", "ground", "view", "to", "an", "aerial", "tile"];
  const prompt = Array.from({ length: promptWords }, () => rng.pick(words)).join(" ");
  return {
    id: `pairing/test/${seed}`,
    task: "pairing",
    split: "train",
    ground: noiseImage(rng, 128, 32, tint),
    aerial,
    prompt,
    answer: letter,
    scene: META,
    target: `<think>colour ${tint[0] > 127 ? "bright" : "dark"}</think><answer>${letter}</answer>`,
  };
}

/** A ground-only example (geo-qa like). */
export function groundExample(seed: number): Example {
  const rng = new Rng(seed);
  const tint = [rng.int(256), rng.int(256), rng.int(256)];
  const ans = tint[1] > 127 ? "green" : "grey";
  return {
    id: `geoqa/test/${seed}`,
    task: "geoqa",
    split: "train",
    ground: noiseImage(rng, 128, 32, tint),
    aerial: [],
    prompt: "what colour",
    answer: ans,
    scene: META,
    target: `<think>look</think><answer>${ans}</answer>`,
  };
}
