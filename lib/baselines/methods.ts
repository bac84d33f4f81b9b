/**
 * The three baselines as trainers returning a predictor: `geoclip` (image-GPS contrastive retrieval over a
 * gallery of train-split locations), `cells` (hierarchical cell classification) and `nearest-prior` (one
 * fixed answer). Vocabulary: a view is one ground panorama with its location; the gallery is the set of
 * train-split locations retrieval may answer; the queue is the FIFO of recent train locations GeoCLIP scores
 * as extra negatives.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { LatLon } from "../eval/geo.ts";
import type { BaselineMethod, BaselineStageSpec } from "../spec/types.ts";
import { deriveSeed, Rng } from "../rng.ts";
import { Dense, type ImageBank, PatchEncoder } from "./layers.ts";
import { GpsEncoder } from "./gps.ts";
import { hierarchicalArgmax, partitionCells } from "./cells.ts";
import { commonCellMean, medoid } from "./prior.ts";
import { type BaselineStepMetrics, trainLoop } from "./train.ts";

/** Row label of each baseline in tables. */
export const BASELINE_LABELS: Record<BaselineMethod, string> = {
  geoclip: "GeoCLIP-like",
  cells: "Cells (ISN-like)",
  "nearest-prior": "Nearest prior",
};

/** What a method trains on. */
export interface MethodInput {
  spec: BaselineStageSpec;
  name: string;
  /** The train views' images and locations (same order). */
  images: ImageBank | null;
  locations: LatLon[];
  /** Train-split locations retrieval may answer (geoclip). */
  gallery: LatLon[];
  onStep?(m: BaselineStepMetrics): void | Promise<void>;
}

/** A trained baseline: answers test views (images [N, H, W, 3] in a bank) with locations. */
export interface Predictor {
  predict(images: ImageBank): LatLon[];
  dispose(): void;
  /** Wall-clock seconds of training (0 for the prior). */
  trainSeconds: number;
}

const PREDICT_BATCH = 64;

function chunks(n: number, size: number): number[][] {
  const out: number[][] = [];
  for (let i = 0; i < n; i += size) out.push(Array.from({ length: Math.min(size, n - i) }, (_, k) => i + k));
  return out;
}

function l2normalize(x: tf.Tensor2D): tf.Tensor2D {
  return tf.div(x, tf.add(tf.norm(x, 2, 1, true), 1e-8)) as tf.Tensor2D;
}

/** Train the method of `input.spec`. */
export function trainMethod(input: MethodInput): Promise<Predictor> {
  switch (input.spec.method) {
    case "geoclip":
      return trainGeoclip(input);
    case "cells":
      return trainCells(input);
    case "nearest-prior":
      return Promise.resolve(fitPrior(input));
  }
}

function need<T>(v: T | undefined, field: string): T {
  if (v === undefined) throw new Error(`baseline spec lacks ${field} (the schema requires it)`);
  return v;
}

async function trainGeoclip(input: MethodInput): Promise<Predictor> {
  const { spec, name } = input;
  const g = need(spec.geoclip, "geoclip");
  const images = need(input.images ?? undefined, "train images");
  const rng = new Rng(deriveSeed(spec.seed, "init"));
  const D = spec.encoder.embed;
  const enc = new PatchEncoder(images.shape, spec.encoder, rng, `${name}/img`);
  const proj = new Dense(D, D, rng, `${name}/img_proj`);
  const gps = new GpsEncoder(g, D, rng, `${name}/gps`);
  const vars = [...enc.variables, ...proj.variables, ...gps.variables];
  const embedImages = (x: tf.Tensor4D) => l2normalize(proj.apply(enc.apply(x)));
  const queue: LatLon[] = [];
  const trainSeconds = await trainLoop({
    ...spec,
    seed: deriveSeed(spec.seed, "batches"),
    nTrain: images.n,
    vars,
    loss: (batch) => {
      const x = images.batch(batch);
      const coords = GpsEncoder.project([...batch.map((i) => input.locations[i]), ...queue]);
      const img = embedImages(x);
      const loc = l2normalize(gps.apply(coords));
      const logits = tf.div(tf.matMul(img, loc, false, true), g.temperature) as tf.Tensor2D;
      const target = tf.oneHot(tf.range(0, batch.length, 1, "int32"), logits.shape[1]);
      return tf.losses.softmaxCrossEntropy(target, logits) as tf.Scalar;
    },
    afterStep: (batch) => {
      for (const i of batch) queue.unshift(input.locations[i]);
      queue.length = Math.min(queue.length, g.queue);
    },
    onStep: input.onStep,
  });
  const galleryEmb = tf.tidy(() => {
    const parts = chunks(input.gallery.length, 4096).map((idx) =>
      l2normalize(gps.apply(GpsEncoder.project(idx.map((i) => input.gallery[i]))))
    );
    return tf.keep(tf.concat(parts, 0) as tf.Tensor2D);
  });
  return {
    trainSeconds,
    predict: (test) => {
      const out: LatLon[] = [];
      for (const idx of chunks(test.n, PREDICT_BATCH)) {
        const best = tf.tidy(() =>
          tf.matMul(embedImages(test.batch(idx)), galleryEmb, false, true).argMax(1)
        );
        for (const k of best.dataSync()) out.push(input.gallery[k]);
        best.dispose();
      }
      return out;
    },
    dispose: () => {
      galleryEmb.dispose();
      enc.dispose();
      proj.dispose();
      gps.dispose();
    },
  };
}

async function trainCells(input: MethodInput): Promise<Predictor> {
  const { spec, name } = input;
  const c = need(spec.cells, "cells");
  const images = need(input.images ?? undefined, "train images");
  const partition = partitionCells(input.locations, c.resolutionsDeg);
  const rng = new Rng(deriveSeed(spec.seed, "init"));
  const enc = new PatchEncoder(images.shape, spec.encoder, rng, `${name}/img`);
  const heads = partition.levels.map((lv) =>
    new Dense(spec.encoder.embed, lv.keys.length, rng, `${name}/cells${lv.deg}`)
  );
  const vars = [...enc.variables, ...heads.flatMap((h) => h.variables)];
  const logProbs = (x: tf.Tensor4D) => {
    const f = enc.apply(x);
    return heads.map((h) => tf.logSoftmax(h.apply(f)) as tf.Tensor2D);
  };
  const trainSeconds = await trainLoop({
    ...spec,
    seed: deriveSeed(spec.seed, "batches"),
    nTrain: images.n,
    vars,
    loss: (batch) => {
      const lps = logProbs(images.batch(batch));
      const nll = lps.map((lp, l) => {
        const labels = tf.tensor1d(batch.map((i) => partition.levels[l].labels[i]), "int32");
        const picked = tf.sum(tf.mul(lp, tf.oneHot(labels, lp.shape[1])), 1);
        return tf.neg(tf.mean(picked));
      });
      return (nll.length === 1 ? nll[0] : tf.addN(nll)) as tf.Scalar;
    },
    onStep: input.onStep,
  });
  return {
    trainSeconds,
    predict: (test) => {
      const out: LatLon[] = [];
      for (const idx of chunks(test.n, PREDICT_BATCH)) {
        const best = tf.tidy(() => hierarchicalArgmax(partition, logProbs(test.batch(idx))));
        for (const k of best.dataSync()) out.push(partition.centres[k]);
        best.dispose();
      }
      return out;
    },
    dispose: () => {
      enc.dispose();
      heads.forEach((h) => h.dispose());
    },
  };
}

function fitPrior(input: MethodInput): Predictor {
  const p = need(input.spec.prior, "prior");
  const t0 = performance.now();
  const answer = p.kind === "medoid" ? medoid(input.locations) : commonCellMean(input.locations, p.cellDeg);
  return {
    trainSeconds: (performance.now() - t0) / 1000,
    predict: (test) => Array.from({ length: test.n }, () => answer),
    dispose: () => {},
  };
}
