/**
 * GeoCLIP's location encoder: GPS -> Equal Earth projection -> random Fourier features at several scales ->
 * one MLP per scale -> the sum of the scales' outputs (Vivanco et al. 2023, "GeoCLIP", section 3.2).
 *
 * Random Fourier features at scale sigma: with B ~ N(0, sigma^2) of shape [2, F/2] (drawn once, fixed),
 * rff(v) = [cos(2 pi v B), sin(2 pi v B)]. Small sigma gives smooth functions of the location (continents);
 * large sigma resolves nearby places. The projection is Equal Earth (Savric et al. 2018), scaled so that x
 * and y lie in [-1, 1]: equal areas get equal weight, unlike raw latitude/longitude.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { LatLon } from "../eval/geo.ts";
import { Rng } from "../rng.ts";
import { Dense } from "./layers.ts";

const A1 = 1.340264;
const A2 = -0.081106;
const A3 = 0.000893;
const A4 = 0.003796;
const M = Math.sqrt(3) / 2;

function equalEarthRaw(lat: number, lon: number): [number, number] {
  const phi = (lat * Math.PI) / 180;
  const lam = (lon * Math.PI) / 180;
  const t = Math.asin(M * Math.sin(phi));
  const t2 = t * t;
  const t6 = t2 * t2 * t2;
  const x = (lam * Math.cos(t)) / (M * (A1 + 3 * A2 * t2 + t6 * (7 * A3 + 9 * A4 * t2)));
  const y = t * (A1 + A2 * t2 + t6 * (A3 + A4 * t2));
  return [x, y];
}

const X_MAX = equalEarthRaw(0, 180)[0];
const Y_MAX = equalEarthRaw(90, 0)[1];

/** Equal Earth coordinates of a point, scaled to [-1, 1] in x (lon +-180 at the equator) and y (the poles). */
export function equalEarth(p: LatLon): [number, number] {
  const [x, y] = equalEarthRaw(p.lat, p.lon);
  return [x / X_MAX, y / Y_MAX];
}

/** Shape of the GPS encoder (part of `stages.<name>.geoclip`). */
export interface GpsEncoderSpec {
  /** Scales sigma of the random Fourier features, one branch each (GeoCLIP: 2^0, 2^4, 2^8). */
  sigmas: number[];
  /** Features per scale (half cosines, half sines); even. */
  features: number;
  /** Width of each branch's hidden layer. */
  hidden: number;
}

/** The GPS encoder: locations -> embeddings [N, out] (see the module doc). */
export class GpsEncoder {
  readonly #freqs: tf.Tensor2D[];
  readonly #branches: { l1: Dense; l2: Dense }[];

  constructor(readonly spec: GpsEncoderSpec, out: number, rng: Rng, name: string) {
    if (!(spec.features >= 2 && spec.features % 2 === 0)) {
      throw new RangeError(`geoclip.features must be even and >= 2, got ${spec.features}`);
    }
    const half = spec.features / 2;
    this.#freqs = spec.sigmas.map((s) => {
      const b = new Float32Array(2 * half);
      for (let i = 0; i < b.length; i++) b[i] = rng.normal() * s;
      return tf.keep(tf.tensor2d(b, [2, half]));
    });
    this.#branches = spec.sigmas.map((_, i) => ({
      l1: new Dense(spec.features, spec.hidden, rng, `${name}/rff${i}/l1`),
      l2: new Dense(spec.hidden, out, rng, `${name}/rff${i}/l2`),
    }));
  }

  /** Projected coordinates [N, 2] of locations (host side; no gradient flows into them). */
  static project(points: readonly LatLon[]): tf.Tensor2D {
    const v = new Float32Array(points.length * 2);
    points.forEach((p, i) => v.set(equalEarth(p), 2 * i));
    return tf.tensor2d(v, [points.length, 2]);
  }

  /** Embeddings [N, out] of projected coordinates [N, 2]. */
  apply(coords: tf.Tensor2D): tf.Tensor2D {
    const outs = this.#branches.map((br, i) => {
      const z = tf.mul(tf.matMul(coords, this.#freqs[i]), 2 * Math.PI) as tf.Tensor2D;
      const rff = tf.concat([tf.cos(z), tf.sin(z)], 1) as tf.Tensor2D;
      return br.l2.apply(tf.relu(br.l1.apply(rff)) as tf.Tensor2D);
    });
    return (outs.length === 1 ? outs[0] : tf.addN(outs)) as tf.Tensor2D;
  }

  get variables(): tf.Variable[] {
    return this.#branches.flatMap((b) => [...b.l1.variables, ...b.l2.variables]);
  }

  dispose(): void {
    this.#freqs.forEach((f) => f.dispose());
    this.#branches.forEach((b) => {
      b.l1.dispose();
      b.l2.dispose();
    });
  }
}
