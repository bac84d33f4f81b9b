/**
 * The task sampler's view of the world: region-cell splits, location sampling, scene cues, rendering, the
 * per-split seeds and the place priors. Every example builder (lib/data/task_examples.ts) draws through one
 * `TaskWorld`, so splits and seeds follow the rules of lib/data/tasks.ts's module doc in one place.
 * @module
 */
import { deriveSeed, hashString32, Rng } from "../rng.ts";
import type { Climate, LatLon, RGBImage, Scene, World } from "../world/types.ts";
import { regionKeyFor } from "../world/mod.ts";
import { renderAerial, renderGround } from "../render/mod.ts";
import type { DataSpec, WorldSpec } from "../spec/types.ts";
import { sceneCues, type ViewCues } from "./cues.ts";
import { buildPlacePrior, formatPrior, type PlacePrior } from "./place_prior.ts";
import type { Example, Split } from "./types.ts";

/** Renders the two views of a scene (lib/render's functions). */
export interface Renderer {
  renderAerial(scene: Scene, size: number): RGBImage;
  renderGround(scene: Scene, shape: [number, number]): RGBImage;
}

export interface TaskSamplerOptions {
  /** Seed of val/test examples (default: the world seed); pass `eval.seed`. */
  evalSeed?: number;
  /** The renderer (default: lib/render). */
  renderer?: Renderer;
  /** Skip rendering (images are 0x0 placeholders): for metadata-only work (tests of tiers, stats). */
  noImages?: boolean;
}

/** A scene at a location with the cues its views show. */
export interface Located {
  scene: Scene;
  cues: ViewCues;
}

export interface TaskWorld {
  readonly world: World;
  readonly data: DataSpec;
  readonly worldSpec: WorldSpec;
  /** Pairing candidates K (`data.candidates`). */
  readonly K: number;
  /** Split of a region key (as made by regionKeyFor with data.regionCellDeg). */
  splitOfKey(key: string): Split;
  /** Region key of (lat, lon) at data.regionCellDeg. */
  regionKey(lat: number, lon: number): string;
  /** Split of the region cell holding (lat, lon). */
  splitOf(lat: number, lon: number): Split;
  /** A land location in `split` (rejection sampling over world.sampleLocation). */
  sampleLocation(split: Split, rng: Rng): LatLon;
  locate(p: LatLon): Located;
  climateOf(p: LatLon): Climate;
  /** ISO alpha-3 of the country at `p` ("" at sea). */
  countryOf(p: LatLon): string;
  /** The ground panorama of a scene (0x0 with `noImages`). */
  ground(s: Scene): RGBImage;
  /** The aerial tile of a scene (0x0 with `noImages`). */
  aerial(s: Scene): RGBImage;
  /** Seed of a split's examples: `data.seed` for train, the eval seed for val and test. */
  seedOf(split: Split): number;
  /** The place prior's coordinate for a scene (`lat, lon` in whole degrees). */
  priorAnswer(meta: Example["scene"]): string;
}

/** Optional fast lookups a GeoWorld offers (lib/world/mod.ts); sceneAt is the fallback. */
interface FastWorld extends World {
  climateAt?(lat: number, lon: number): Climate;
  countryAt?(lat: number, lon: number): { iso3: string } | null;
}

/** Train-split draws behind the place priors (about 1,300 (country, climate) cells get a prior of their own). */
const PLACE_PRIOR_SAMPLES = 20000;

export function createTaskWorld(
  world: World,
  data: DataSpec,
  worldSpec: WorldSpec,
  opts: TaskSamplerOptions = {},
): TaskWorld {
  const fw = world as FastWorld;
  const evalSeed = (opts.evalSeed ?? world.seed) >>> 0;
  const splitCache = new Map<string, Split>();
  const renderer: Renderer = opts.renderer ?? { renderAerial, renderGround };
  const empty: RGBImage = { width: 0, height: 0, data: new Uint8Array(0) };

  const splitOfKey = (key: string): Split => {
    let s = splitCache.get(key);
    if (!s) {
      const u = hashString32(`${world.seed >>> 0}/split/${key}`) / 4294967296;
      s = u < data.testFraction ? "test" : u < data.testFraction + data.valFraction ? "val" : "train";
      splitCache.set(key, s);
    }
    return s;
  };
  const regionKey = (lat: number, lon: number) => regionKeyFor(lat, lon, data.regionCellDeg);
  const splitOf = (lat: number, lon: number) => splitOfKey(regionKey(lat, lon));
  const sampleLocation = (split: Split, rng: Rng): LatLon => {
    const f = rng.fn();
    for (let t = 0; t < 100000; t++) {
      const p = world.sampleLocation(f);
      if (splitOf(p.lat, p.lon) === split) return p;
    }
    throw new Error(`no land location found in split ${split} (fractions too small?)`);
  };
  const climateOf = (p: LatLon): Climate =>
    fw.climateAt ? fw.climateAt(p.lat, p.lon) : world.sceneAt(p.lat, p.lon).meta.climate;
  const countryOf = (p: LatLon): string =>
    fw.countryAt ? (fw.countryAt(p.lat, p.lon)?.iso3 ?? "") : world.sceneAt(p.lat, p.lon).meta.country;

  return {
    world,
    data,
    worldSpec,
    K: data.candidates,
    splitOfKey,
    regionKey,
    splitOf,
    sampleLocation,
    locate: (p) => {
      const scene = world.sceneAt(p.lat, p.lon);
      return { scene, cues: sceneCues(scene) };
    },
    climateOf,
    countryOf,
    ground: (s) =>
      opts.noImages ? empty : renderer.renderGround(s, [worldSpec.groundShape[0], worldSpec.groundShape[1]]),
    aerial: (s) => opts.noImages ? empty : renderer.renderAerial(s, worldSpec.aerialSize),
    seedOf: (split) => (split === "train" ? data.seed >>> 0 : evalSeed),
    priorAnswer: lazyPriorAnswer(world, sampleLocation, countryOf, climateOf),
  };
}

/**
 * Place priors (lib/data/place_prior.ts) from train-split locations of a generator seeded by the world, so
 * every replicate writes the same coordinate for a region; built on first use.
 */
function lazyPriorAnswer(
  world: World,
  sampleLocation: (split: Split, rng: Rng) => LatLon,
  countryOf: (p: LatLon) => string,
  climateOf: (p: LatLon) => Climate,
): (meta: Example["scene"]) => string {
  let prior: PlacePrior | null = null;
  return (meta) => {
    if (!prior) {
      const rng = new Rng(deriveSeed(world.seed >>> 0, "place-prior"));
      const continentOf = new Map<string, string>();
      prior = buildPlacePrior(Array.from({ length: PLACE_PRIOR_SAMPLES }, () => {
        const p = sampleLocation("train", rng);
        const country = countryOf(p);
        let continent = continentOf.get(country);
        if (continent === undefined) {
          continent = world.sceneAt(p.lat, p.lon).meta.continent;
          continentOf.set(country, continent);
        }
        return { lat: p.lat, lon: p.lon, country, climate: climateOf(p), continent };
      }));
    }
    return formatPrior(prior.at(meta));
  };
}
