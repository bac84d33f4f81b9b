/**
 * Task sampling: pairing, geolocate, geo-qa and caption examples, deterministic in (seed, task, split, index).
 *
 * Splits are by region cell: `regionKeyFor(lat, lon, data.regionCellDeg)` is hashed with the WORLD seed (not
 * the data seed) into test / val / train with probabilities testFraction / valFraction / rest, so every
 * replicate of an experiment (same world, different data seeds) has the same held-out cells. Every location
 * of a split's example (anchor and all pairing candidates) lies in a cell of that split, so test locations
 * never appear in training.
 *
 * Seeds: train examples use `data.seed`; val and test examples use `evalSeed` (default: the world seed), so
 * the test set is one fixed set per world, shared by all replicate seeds. Example `index` of a (task, split)
 * is always the same example.
 *
 * Pairing negatives (documented tiers):
 * - far: a location of the same split more than 200 km away;
 * - climate: same climate zone as the match, more than 200 km away, same split;
 * - near: 5-50 km from the match at a random bearing, on land, same country (hence region style), same split.
 * Every negative must differ from the match in at least one comparable cue (lib/data/cues.ts), so the task is
 * solvable from what the views show and the chain of thought can always cite a difference. Train tiers are
 * drawn from `data.negatives`; val/test examples carry at least `ceil(testNearMin * (K-1))` near negatives
 * over every prefix of indices (checked in code), the rest drawn from the mix. When no near or climate
 * negative can be found for an anchor, the anchor is redrawn (so tiers are exact, never silently downgraded).
 * @module
 */
import { deriveSeed, hashString32, Rng } from "../rng.ts";
import type { Climate, LatLon, RGBImage, Scene, World } from "../world/types.ts";
import { regionKeyFor } from "../world/mod.ts";
import { renderAerial, renderGround } from "../render/mod.ts";
import type { DataSpec, WorldSpec } from "../spec/types.ts";
import {
  type Example,
  type NegativeTier,
  QA_KINDS,
  type QaKind,
  type Split,
  type TaskName,
} from "./types.ts";
import {
  caption,
  type CueKey,
  cueSignature,
  observation,
  observedPhrase,
  sceneCues,
  type ViewCues,
} from "./cues.ts";
import { formatLatLon, geolocateCot, letter, pairingCot, scaffoldCot } from "./cot.ts";
import { buildPlacePrior, formatPrior, type PlacePrior } from "./place_prior.ts";
import { EARTH_RADIUS_KM, haversineKm } from "../eval/geo.ts";
import {
  CAPTION_PROMPTS,
  CAPTION_THINK,
  captionAerialPrompt,
  captionAerialThink,
  controlPrompt,
  controlThink,
  findAerialPrompt,
  findAerialThink,
  GEOLOCATE_PROMPT,
  pairingPrompt,
  QA_PROMPTS,
  SCAFFOLD_PROMPT,
} from "./prompts.ts";

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

export interface TaskSampler {
  readonly data: DataSpec;
  readonly worldSpec: WorldSpec;
  /** Split of the region cell holding (lat, lon). */
  splitOf(lat: number, lon: number): Split;
  /** Split of a region key (as made by regionKeyFor with data.regionCellDeg). */
  splitOfKey(key: string): Split;
  /** Region key of (lat, lon) at data.regionCellDeg. */
  regionKey(lat: number, lon: number): string;
  /** A land location in `split` (rejection sampling over world.sampleLocation). */
  sampleLocation(split: Split, rng: Rng): LatLon;
  /** Example `index` of (task, split): deterministic. */
  example(task: TaskName, split: Split, index: number): Example;
  /** Examples start..start+n-1 of (task, split). */
  examples(task: TaskName, split: Split, start: number, n: number): Example[];
  /** n examples at random indices drawn from `rng` (training streams). */
  sample(task: TaskName, split: Split, n: number, rng: Rng): Example[];
}

/** Great-circle distance in km: the one implementation in lib/eval/geo.ts (re-exported for callers here). */
export { haversineKm };

/** Point at `km` along initial `bearing` (degrees) from `p` on the sphere. */
export function destination(p: LatLon, bearing: number, km: number): LatLon {
  const R = EARTH_RADIUS_KM;
  const toR = Math.PI / 180;
  const d = km / R;
  const th = bearing * toR;
  const la1 = p.lat * toR;
  const lo1 = p.lon * toR;
  const la2 = Math.asin(Math.sin(la1) * Math.cos(d) + Math.cos(la1) * Math.sin(d) * Math.cos(th));
  const lo2 = lo1 +
    Math.atan2(Math.sin(th) * Math.sin(d) * Math.cos(la1), Math.cos(d) - Math.sin(la1) * Math.sin(la2));
  return { lat: la2 / toR, lon: ((((lo2 / toR) + 540) % 360) + 360) % 360 - 180 };
}

/** Distance limits of the tiers (km). */
export const NEAR_MIN_KM = 5;
export const NEAR_MAX_KM = 50;
export const FAR_MIN_KM = 200;

const TIERS: NegativeTier[] = ["far", "climate", "near"];

/** Cues an aerial find example may ask about (all visible from above; buildings include the roof colour). */
const FIND_KEYS: readonly Exclude<CueKey, "roof">[] = [
  "roadAxes",
  "waterSide",
  "buildings",
  "trees",
  "roadLine",
  "vegetation",
];

/**
 * The phrase a find prompt uses for one cue of a tile ("water to the west", "sparse buildings with red
 * roofs"); road axes in the short form ("roads north-south"), which reads as a noun phrase.
 */
function findPhrase(c: ViewCues, key: Exclude<CueKey, "roof">): string {
  return observedPhrase(c, key, key === "roadAxes" ? 0 : 1);
}

/** Near negatives required in val/test example `index` so that every prefix 0..index meets the minimum. */
export function requiredNear(index: number, negatives: number, minFraction: number): number {
  const cum = (n: number) => Math.ceil(n * minFraction * negatives - 1e-9);
  return Math.min(negatives, cum(index + 1) - cum(index));
}

interface Located {
  scene: Scene;
  cues: ViewCues;
}

/** Optional fast lookups a GeoWorld offers (lib/world/mod.ts); sceneAt is the fallback. */
interface FastWorld extends World {
  climateAt?(lat: number, lon: number): Climate;
  countryAt?(lat: number, lon: number): { iso3: string } | null;
}

/** Build a task sampler (images rendered with lib/render unless `opts.renderer` / `opts.noImages`). */
export function createTaskSampler(
  world: World,
  data: DataSpec,
  worldSpec: WorldSpec,
  opts: TaskSamplerOptions = {},
): TaskSampler {
  validateData(data);
  const fw = world as FastWorld;
  const K = data.candidates;
  const evalSeed = (opts.evalSeed ?? world.seed) >>> 0;
  const splitCache = new Map<string, Split>();
  const renderer: Renderer = opts.renderer ?? { renderAerial, renderGround };

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

  const locate = (p: LatLon): Located => {
    const scene = world.sceneAt(p.lat, p.lon);
    return { scene, cues: sceneCues(scene) };
  };

  const climateOf = (p: LatLon): Climate =>
    fw.climateAt ? fw.climateAt(p.lat, p.lon) : world.sceneAt(p.lat, p.lon).meta.climate;
  const countryOf = (p: LatLon): string =>
    fw.countryAt ? (fw.countryAt(p.lat, p.lon)?.iso3 ?? "") : world.sceneAt(p.lat, p.lon).meta.country;

  /** One negative of `tier` for `anchor`, or null when none was found within the try budget. */
  const findNegative = (
    tier: NegativeTier,
    anchor: Located,
    split: Split,
    rng: Rng,
    taken: Located[],
  ): Located | null => {
    const a = anchor.scene.meta;
    const sig = cueSignature(anchor.cues);
    const ok = (c: Located) =>
      cueSignature(c.cues) !== sig && taken.every((t) => t.scene.meta.id !== c.scene.meta.id);
    if (tier === "near") {
      for (let t = 0; t < 60; t++) {
        const p = destination(a, rng.range(0, 360), rng.range(NEAR_MIN_KM, NEAR_MAX_KM));
        if (!world.isLand(p.lat, p.lon) || splitOf(p.lat, p.lon) !== split) continue;
        if (countryOf(p) !== a.country) continue;
        const c = locate(p);
        const d = haversineKm(a, c.scene.meta);
        if (c.scene.meta.country !== a.country || d < NEAR_MIN_KM || d > NEAR_MAX_KM) continue;
        if (ok(c)) return c;
      }
      return null;
    }
    const tries = tier === "climate" ? 400 : 60;
    for (let t = 0; t < tries; t++) {
      const p = sampleLocation(split, rng);
      if (haversineKm(a, p) <= FAR_MIN_KM) continue;
      if (tier === "climate" && climateOf(p) !== a.climate) continue;
      const c = locate(p);
      if (tier === "climate" && c.scene.meta.climate !== a.climate) continue;
      if (ok(c)) return c;
    }
    return null;
  };

  const ensureRenderer = (): Renderer => renderer;
  const empty: RGBImage = { width: 0, height: 0, data: new Uint8Array(0) };
  const ground = (s: Scene): RGBImage =>
    opts.noImages
      ? empty
      : ensureRenderer().renderGround(s, [worldSpec.groundShape[0], worldSpec.groundShape[1]]);
  const aerial = (s: Scene): RGBImage =>
    opts.noImages ? empty : ensureRenderer().renderAerial(s, worldSpec.aerialSize);

  const seedOf = (split: Split) => (split === "train" ? data.seed >>> 0 : evalSeed);

  // Place priors (lib/data/place_prior.ts) from train-split locations of a generator seeded by the world, so
  // every replicate writes the same coordinate for a region; built on first use.
  let prior: PlacePrior | null = null;
  const priorAnswer = (meta: Example["scene"]): string => {
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

  const example = (task: TaskName, split: Split, index: number): Example => {
    if (!Number.isInteger(index) || index < 0) {
      throw new Error(`example index must be a non-negative integer: ${index}`);
    }
    const seed = seedOf(split);
    const id = `${task}/${split}/${seed}/${index}`;
    const rng = new Rng(deriveSeed(seed, id));
    const cotRng = new Rng(deriveSeed(seed, `${id}/text`));
    switch (task) {
      case "pairing":
        return pairingExample(id, split, index, rng, cotRng);
      case "geolocate": {
        const m = locate(sampleLocation(split, rng));
        const meta = m.scene.meta;
        const think = observation(m.cues, meta, ["buildings", "roadLine", "vegetation"]);
        // Targets answer the place prior of the scene's country and climate: the coordinate the cues support.
        const written = priorAnswer(meta);
        return {
          id,
          task,
          split,
          ground: ground(m.scene),
          aerial: [],
          prompt: GEOLOCATE_PROMPT,
          answer: formatLatLon(meta.lat, meta.lon),
          scene: meta,
          target: `<think>${think}</think><answer>${written}</answer>`,
          targetCot: geolocateCot(meta, m.cues, data.cot, cotRng, written),
          cues: { ground: m.cues },
        };
      }
      case "control":
        return controlExample(id, split, rng);
      case "scaffold": {
        // A positive pair: the ground view and its own tile in slot A, described, related and located.
        const m = locate(sampleLocation(split, rng));
        const meta = m.scene.meta;
        const written = priorAnswer(meta);
        const target = scaffoldCot(meta, m.cues, written, data.cot, cotRng);
        return {
          id,
          task,
          split,
          ground: ground(m.scene),
          aerial: [aerial(m.scene)],
          prompt: SCAFFOLD_PROMPT,
          answer: formatLatLon(meta.lat, meta.lon),
          scene: meta,
          target,
          cues: { ground: m.cues, candidates: [m.cues] },
        };
      }
      case "geoqa": {
        const kind: QaKind = QA_KINDS[rng.int(QA_KINDS.length)];
        const m = locate(sampleLocation(split, rng));
        const meta = m.scene.meta;
        const answer = qaAnswer(kind, meta);
        const keys = QA_THINK_KEYS[kind].filter((k) => k !== "roadLine" || m.cues.roadLine);
        const think = observation(m.cues, meta, keys);
        return {
          id,
          task,
          split,
          ground: ground(m.scene),
          aerial: [],
          prompt: QA_PROMPTS[kind],
          answer,
          scene: meta,
          qaKind: kind,
          target: `<think>${think}</think><answer>${answer}</answer>`,
          cues: { ground: m.cues },
        };
      }
      case "caption": {
        // Three variants, a third each. Ground: describe the panorama. Aerial describe: K tiles of K
        // independent places in the candidate slots, and the prompt names one letter to describe. Aerial find:
        // the same K tiles, the prompt describes one cue that only one tile shows, and the answer is its
        // letter. Describe grounds the candidate slots (A..) — reading out one image of several; find teaches
        // the multiple-choice answer form ("Answer with the letter." -> <answer>B</answer>) that an
        // off-the-shelf VLM brings to the pairing prompt. Neither ever matches a ground view to a tile (no
        // pairing data). Without find, a base answers a pairing prompt with no <answer> block, and GRPO from
        // it (Geo-R1-Zero) gets no reward on any rollout (RESULTS.md, first and ninth builds).
        const u = rng.next();
        if (u >= 2 / 3) return findExample(id, split, rng);
        const view = u < 1 / 3 ? "ground" : "aerial";
        if (view === "ground") {
          const m = locate(sampleLocation(split, rng));
          const text = caption(m.cues, view, cotRng);
          return {
            id,
            task,
            split,
            ground: ground(m.scene),
            aerial: [],
            prompt: CAPTION_PROMPTS.ground,
            answer: text,
            scene: m.scene.meta,
            target: `<think>${CAPTION_THINK.ground}</think><answer>${text}</answer>`,
            cues: { ground: m.cues },
          };
        }
        const tiles = drawTiles(split, rng);
        const pick = rng.int(K);
        const text = caption(tiles[pick].cues, view, cotRng);
        const l = letter(pick);
        return tilesExample(id, split, tiles, pick, captionAerialPrompt(l), captionAerialThink(l), text);
      }
      default:
        throw new Error(`unknown task ${task}`);
    }
  };

  /** K tiles of K independent places of `split`. */
  const drawTiles = (split: Split, rng: Rng): Located[] =>
    Array.from({ length: K }, () => locate(sampleLocation(split, rng)));

  /** A caption example over K tiles in the candidate slots, about tile `pick` (aerial describe and find). */
  const tilesExample = (
    id: string,
    split: Split,
    tiles: Located[],
    pick: number,
    prompt: string,
    think: string,
    answer: string,
  ): Example => ({
    id,
    task: "caption",
    split,
    ground: null,
    aerial: tiles.map((t) => aerial(t.scene)),
    prompt,
    answer,
    scene: tiles[pick].scene.meta,
    target: `<think>${think}</think><answer>${answer}</answer>`,
    cues: { ground: tiles[pick].cues, candidates: tiles.map((t) => t.cues) },
  });

  /** An aerial find example (caption variant): K independent tiles, one cue phrase only one of them shows. */
  const findExample = (id: string, split: Split, rng: Rng): Example => {
    for (let attempt = 0; attempt < 50; attempt++) {
      const tiles = drawTiles(split, rng);
      const pick = rng.int(K);
      const phrases = tiles.map((t) => FIND_KEYS.map((k) => findPhrase(t.cues, k)));
      const unique = FIND_KEYS.map((_, j) => j).filter((j) =>
        phrases.every((p, i) => i === pick || p[j] !== phrases[pick][j])
      );
      if (unique.length === 0) continue;
      const phrase = phrases[pick][unique[rng.int(unique.length)]];
      const l = letter(pick);
      return tilesExample(id, split, tiles, pick, findAerialPrompt(K, phrase), findAerialThink(l, phrase), l);
    }
    throw new Error(`${id}: no tile set with a cue unique to one tile in 50 draws`);
  };

  /**
   * A control example: K tiles of K places in K different climate zones, "which one has a <climate>
   * climate?", answered with a letter. The base's find variant asks about cues a tile shows, never about its
   * climate, so the base writes the answer form but has no trained answer: what GRPO learns here it learns
   * from reward alone. The vegetation a tile shows determines its climate zone, so the task is solvable.
   */
  const controlExample = (id: string, split: Split, rng: Rng): Example => {
    for (let attempt = 0; attempt < 200; attempt++) {
      const tiles = drawTiles(split, rng);
      const conts = tiles.map((t) => t.scene.meta.climate);
      if (new Set(conts).size !== K) continue;
      const pick = rng.int(K);
      const l = letter(pick);
      const cont = conts[pick];
      const ex = tilesExample(id, split, tiles, pick, controlPrompt(K, cont), controlThink(l, cont), l);
      return { ...ex, task: "control" };
    }
    throw new Error(`${id}: no ${K} tiles in ${K} different climate zones in 200 draws`);
  };

  const pairingExample = (id: string, split: Split, index: number, rng: Rng, cotRng: Rng): Example => {
    const nNeg = K - 1;
    const minNear = split === "train" ? 0 : requiredNear(index, nNeg, data.testNearMin);
    const w = [data.negatives.far, data.negatives.climate, data.negatives.near];
    for (let attempt = 0; attempt < 200; attempt++) {
      const anchor = locate(sampleLocation(split, rng));
      const tiers: NegativeTier[] = [];
      for (let i = 0; i < nNeg; i++) tiers.push(i < minNear ? "near" : TIERS[rng.weighted(w)]);
      const negs: Located[] = [];
      let failed = false;
      for (const t of tiers) {
        const n = findNegative(t, anchor, split, rng, negs);
        if (!n) {
          failed = true;
          break;
        }
        negs.push(n);
      }
      if (failed) continue;
      // Shuffle negatives with their tiers, then put the match at a uniform position.
      const order = rng.shuffle(negs.map((_, i) => i));
      const correct = rng.int(K);
      const cand: Located[] = [];
      const candTiers: (NegativeTier | "match")[] = [];
      for (const i of order) {
        cand.push(negs[i]);
        candTiers.push(tiers[i]);
      }
      cand.splice(correct, 0, anchor);
      candTiers.splice(correct, 0, "match");
      if (split !== "train") {
        const near = candTiers.filter((t) => t === "near").length;
        if (near < minNear) throw new Error(`internal: ${id} has ${near} near negatives, needs ${minNear}`);
      }
      const answer = letter(correct);
      const target = pairingCot(
        {
          ground: anchor.cues,
          groundMeta: anchor.scene.meta,
          candidates: cand.map((c) => c.cues),
          correct,
        },
        data.cot,
        cotRng,
      );
      return {
        id,
        task: "pairing",
        split,
        ground: ground(anchor.scene),
        aerial: cand.map((c) => aerial(c.scene)),
        prompt: pairingPrompt(K),
        answer,
        scene: anchor.scene.meta,
        pairing: { candidates: cand.map((c) => c.scene.meta), correct, tiers: candTiers },
        target,
        cues: { ground: anchor.cues, candidates: cand.map((c) => c.cues) },
      };
    }
    throw new Error(`${id}: no anchor with the required negatives after 200 attempts`);
  };

  return {
    data,
    worldSpec,
    splitOf,
    splitOfKey,
    regionKey,
    sampleLocation,
    example,
    examples: (task, split, start, n) => Array.from({ length: n }, (_, i) => example(task, split, start + i)),
    sample: (task, split, n, rng) => Array.from({ length: n }, () => example(task, split, rng.int(2 ** 31))),
  };
}

/** Train-split draws behind the place priors (about 1,300 (country, climate) cells get a prior of their own). */
const PLACE_PRIOR_SAMPLES = 20000;

const QA_THINK_KEYS: Record<QaKind, ("buildings" | "roadLine" | "vegetation" | "sunSide" | "roadAxes")[]> = {
  continent: ["buildings", "roadLine"],
  country: ["buildings", "roadLine", "vegetation"],
  climate: ["vegetation", "sunSide"],
  settlement: ["buildings", "roadAxes"],
  driving: ["roadAxes", "roadLine"],
};

/** Canonical geo-qa answer of a scene. */
export function qaAnswer(kind: QaKind, meta: Example["scene"]): string {
  switch (kind) {
    case "continent":
      return meta.continent;
    case "country":
      return meta.countryName;
    case "climate":
      return meta.climate;
    case "settlement":
      return meta.settlement;
    case "driving":
      return meta.drivingSide;
  }
}

function validateData(d: DataSpec): void {
  const bad = (m: string) => {
    throw new Error(`data spec: ${m}`);
  };
  if (!Number.isInteger(d.candidates) || d.candidates < 2 || d.candidates > 8) bad(`candidates must be 2..8`);
  const s = d.negatives.far + d.negatives.climate + d.negatives.near;
  if (Math.abs(s - 1) > 1e-6) bad(`negatives must sum to 1, got ${s}`);
  if (!(d.testFraction > 0 && d.valFraction >= 0 && d.testFraction + d.valFraction < 1)) {
    bad(`testFraction/valFraction must be > 0 and sum to < 1`);
  }
  if (!(d.testNearMin >= 0 && d.testNearMin <= 1)) bad(`testNearMin must be in [0, 1]`);
  if (!(d.regionCellDeg > 0 && d.regionCellDeg <= 90)) bad(`regionCellDeg must be in (0, 90]`);
}
