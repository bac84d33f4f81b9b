/**
 * Seeded randomness. Every random choice in geo-r1 comes from an `Rng` built from a seed named in the spec,
 * never from Math.random. `deriveSeed(seed, name)` gives independent child streams by name, so adding a new
 * consumer does not shift the numbers of existing ones.
 * @module
 */

/** 32-bit FNV-1a of a string, followed by a murmur3 finaliser for avalanche. */
export function hashString32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return fmix32(h >>> 0);
}

function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A child seed for the stream `name` under `seed` (deterministic, 32-bit unsigned). */
export function deriveSeed(seed: number, name: string): number {
  return hashString32(`${seed >>> 0}/${name}`);
}

/** A seeded generator (mulberry32): fast, 32-bit state, good enough for simulation and sampling. */
export class Rng {
  #s: number;
  constructor(seed: number) {
    this.#s = fmix32((seed >>> 0) ^ 0x9e3779b9) || 1;
  }
  /** Uniform in [0, 1). */
  next(): number {
    let t = (this.#s = (this.#s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  /** Uniform in [a, b). */
  range(a: number, b: number): number {
    return a + (b - a) * this.next();
  }
  /** Standard normal (Box-Muller). */
  normal(): number {
    const u = 1 - this.next();
    const v = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)];
  }
  /** Index drawn with probability proportional to weights. */
  weighted(weights: readonly number[]): number {
    const total = weights.reduce((a, b) => a + b, 0);
    let r = this.next() * total;
    for (let i = 0; i < weights.length; i++) {
      r -= weights[i];
      if (r < 0) return i;
    }
    return weights.length - 1;
  }
  /** In-place Fisher-Yates shuffle; returns the array. */
  shuffle<T>(xs: T[]): T[] {
    for (let i = xs.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [xs[i], xs[j]] = [xs[j], xs[i]];
    }
    return xs;
  }
  /** A function view, for APIs that take `() => number`. */
  fn(): () => number {
    return () => this.next();
  }
}
