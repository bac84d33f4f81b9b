/**
 * One builder per task: each draws its locations through a `TaskWorld` (lib/data/task_world.ts) and writes
 * the example's views, prompt, answer and target. The draw order of every builder is part of the data: a
 * change to it changes every example after it.
 * @module
 */
import type { Rng } from "../rng.ts";
import { type Example, type NegativeTier, QA_KINDS, type QaKind, type Split } from "./types.ts";
import { caption, type CueKey, observation, observedPhrase, type ViewCues } from "./cues.ts";
import { formatLatLon, geolocateCot, letter, pairingCot, scaffoldCot } from "./cot.ts";
import {
  CAPTION_PROMPTS,
  CAPTION_THINK,
  captionAerialPrompt,
  captionAerialThink,
  CONTROL_CLIMATES,
  controlPrompt,
  controlThink,
  findAerialPrompt,
  findAerialThink,
  GEOLOCATE_PROMPT,
  pairingPrompt,
  QA_PROMPTS,
  SCAFFOLD_PROMPT,
} from "./prompts.ts";
import { findNegative, type NegativeMix, requiredNear, TIERS, tierWeights } from "./negatives.ts";
import type { Located, TaskWorld } from "./task_world.ts";

/** What a one-ground-view example says: the parts that differ between its tasks. */
interface GroundParts {
  prompt: string;
  answer: string;
  /** The target's think block. */
  think: string;
  /** The target's answer when it is not `answer` (geolocate writes the place prior). */
  written?: string;
  qaKind?: QaKind;
  targetCot?: string;
}

/**
 * An example of one ground view and no tiles (geolocate, geo-qa, ground caption, control) of the located
 * scene `m`; the target is `parts.think` then `parts.written` (default `parts.answer`).
 */
function groundExample(
  tw: TaskWorld,
  m: Located,
  head: Pick<Example, "id" | "task" | "split">,
  parts: GroundParts,
): Example {
  return {
    ...head,
    ground: tw.ground(m.scene),
    aerial: [],
    prompt: parts.prompt,
    answer: parts.answer,
    scene: m.scene.meta,
    ...(parts.qaKind === undefined ? {} : { qaKind: parts.qaKind }),
    target: `<think>${parts.think}</think><answer>${parts.written ?? parts.answer}</answer>`,
    ...(parts.targetCot === undefined ? {} : { targetCot: parts.targetCot }),
    cues: { ground: m.cues },
  };
}

/** Ground -> coordinates. Targets answer the place prior of the scene's country and climate. */
export function geolocateExample(tw: TaskWorld, id: string, split: Split, rng: Rng, cotRng: Rng): Example {
  const m = tw.locate(tw.sampleLocation(split, rng));
  const meta = m.scene.meta;
  // The coordinate the cues support, not the true spot: evaluation measures the distance to the true spot.
  const written = tw.priorAnswer(meta);
  return groundExample(tw, m, { id, task: "geolocate", split }, {
    prompt: GEOLOCATE_PROMPT,
    answer: formatLatLon(meta.lat, meta.lon),
    think: observation(m.cues, meta, ["buildings", "roadLine", "vegetation"]),
    written,
    targetCot: geolocateCot(meta, m.cues, tw.data.cot, cotRng, written),
  });
}

/** A positive pair: the ground view and its own tile in slot A, described, related and located. */
export function scaffoldExample(tw: TaskWorld, id: string, split: Split, rng: Rng, cotRng: Rng): Example {
  const m = tw.locate(tw.sampleLocation(split, rng));
  const meta = m.scene.meta;
  const written = tw.priorAnswer(meta);
  const target = scaffoldCot(meta, m.cues, written, tw.data.cot, cotRng);
  return {
    id,
    task: "scaffold",
    split,
    ground: tw.ground(m.scene),
    aerial: [tw.aerial(m.scene)],
    prompt: SCAFFOLD_PROMPT,
    answer: formatLatLon(meta.lat, meta.lon),
    scene: meta,
    target,
    cues: { ground: m.cues, candidates: [m.cues] },
  };
}

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

/** A geo-qa question of a random kind about one ground view; the think block states the cues it rests on. */
export function geoqaExample(tw: TaskWorld, id: string, split: Split, rng: Rng): Example {
  const kind: QaKind = QA_KINDS[rng.int(QA_KINDS.length)];
  const m = tw.locate(tw.sampleLocation(split, rng));
  const meta = m.scene.meta;
  const keys = QA_THINK_KEYS[kind].filter((k) => k !== "roadLine" || m.cues.roadLine);
  return groundExample(tw, m, { id, task: "geoqa", split }, {
    prompt: QA_PROMPTS[kind],
    answer: qaAnswer(kind, meta),
    think: observation(m.cues, meta, keys),
    qaKind: kind,
  });
}

/**
 * A caption, three variants a third each. Ground: describe the panorama. Aerial describe: K tiles of K
 * independent places in the candidate slots, and the prompt names one letter to describe. Aerial find: the
 * same K tiles, the prompt describes one cue that only one tile shows, and the answer is its letter.
 * Describe grounds the candidate slots (A..) — reading out one image of several; find teaches the
 * multiple-choice answer form ("Answer with the letter." -> <answer>B</answer>) that an off-the-shelf VLM
 * brings to the pairing prompt. Neither ever matches a ground view to a tile (no pairing data). Without find,
 * a base answers a pairing prompt with no <answer> block, and GRPO from it (Geo-R1-Zero) gets no reward on
 * any rollout (RESULTS.md, first and ninth builds).
 */
export function captionExample(tw: TaskWorld, id: string, split: Split, rng: Rng, cotRng: Rng): Example {
  const u = rng.next();
  if (u >= 2 / 3) return findExample(tw, id, split, rng);
  const view = u < 1 / 3 ? "ground" : "aerial";
  if (view === "ground") {
    const m = tw.locate(tw.sampleLocation(split, rng));
    return groundExample(tw, m, { id, task: "caption", split }, {
      prompt: CAPTION_PROMPTS.ground,
      answer: caption(m.cues, view, cotRng),
      think: CAPTION_THINK.ground,
    });
  }
  const tiles = drawTiles(tw, split, rng);
  const pick = rng.int(tw.K);
  const text = caption(tiles[pick].cues, view, cotRng);
  const l = letter(pick);
  return tilesExample(tw, id, split, tiles, pick, captionAerialPrompt(l), captionAerialThink(l), text);
}

/** K tiles of K independent places of `split`. */
function drawTiles(tw: TaskWorld, split: Split, rng: Rng): Located[] {
  return Array.from({ length: tw.K }, () => tw.locate(tw.sampleLocation(split, rng)));
}

/** A caption example over K tiles in the candidate slots, about tile `pick` (aerial describe and find). */
function tilesExample(
  tw: TaskWorld,
  id: string,
  split: Split,
  tiles: Located[],
  pick: number,
  prompt: string,
  think: string,
  answer: string,
): Example {
  return {
    id,
    task: "caption",
    split,
    ground: null,
    aerial: tiles.map((t) => tw.aerial(t.scene)),
    prompt,
    answer,
    scene: tiles[pick].scene.meta,
    target: `<think>${think}</think><answer>${answer}</answer>`,
    cues: { ground: tiles[pick].cues, candidates: tiles.map((t) => t.cues) },
  };
}

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

/** An aerial find example (caption variant): K independent tiles, one cue phrase only one of them shows. */
function findExample(tw: TaskWorld, id: string, split: Split, rng: Rng): Example {
  for (let attempt = 0; attempt < 50; attempt++) {
    const tiles = drawTiles(tw, split, rng);
    const pick = rng.int(tw.K);
    const phrases = tiles.map((t) => FIND_KEYS.map((k) => findPhrase(t.cues, k)));
    const unique = FIND_KEYS.map((_, j) => j).filter((j) =>
      phrases.every((p, i) => i === pick || p[j] !== phrases[pick][j])
    );
    if (unique.length === 0) continue;
    const phrase = phrases[pick][unique[rng.int(unique.length)]];
    const l = letter(pick);
    return tilesExample(
      tw,
      id,
      split,
      tiles,
      pick,
      findAerialPrompt(tw.K, phrase),
      findAerialThink(l, phrase),
      l,
    );
  }
  throw new Error(`${id}: no tile set with a cue unique to one tile in 50 draws`);
}

/**
 * A control example: one ground view, "Which climate zone is this place: A tropical, B arid, C temperate or
 * D continental?", answered with the letter. The base answers the climate question in words (geo-qa) and
 * writes letters for multiple-choice prompts, but was never asked for a climate as a letter: what GRPO
 * learns here it learns from reward alone. The vegetation a ground view shows gives its climate zone for 94%
 * of scenes (grassland is temperate or continental), so the task is solvable.
 */
export function controlExample(tw: TaskWorld, id: string, split: Split, rng: Rng): Example {
  for (let attempt = 0; attempt < 200; attempt++) {
    const m = tw.locate(tw.sampleLocation(split, rng));
    const meta = m.scene.meta;
    const i = (CONTROL_CLIMATES as readonly string[]).indexOf(meta.climate);
    if (i < 0) continue;
    return groundExample(tw, m, { id, task: "control", split }, {
      prompt: controlPrompt(),
      answer: letter(i),
      think: controlThink(meta.climate),
    });
  }
  throw new Error(`${id}: no scene with a climate of the control's options in 200 draws`);
}

/** K - 1 negatives of the tiers `tiers` for `anchor`, or null when one of them is not found. */
function drawNegatives(
  tw: TaskWorld,
  tiers: NegativeTier[],
  anchor: Located,
  split: Split,
  rng: Rng,
): Located[] | null {
  const negs: Located[] = [];
  for (const t of tiers) {
    const n = findNegative(tw, t, anchor, split, rng, negs);
    if (!n) return null;
    negs.push(n);
  }
  return negs;
}

/**
 * A pairing example: an anchor's ground view and K aerial candidates, its own tile at a uniform position
 * among K - 1 negatives of drawn tiers (val/test: at least the near quota of `requiredNear`). An anchor
 * without the negatives it needs is redrawn, so tiers are exact. Tiers are drawn by `data.negatives`, or on
 * the train split by `mix` when given (a GRPO stage's tier schedule); val/test never take `mix`.
 */
export function pairingExample(
  tw: TaskWorld,
  id: string,
  split: Split,
  index: number,
  rng: Rng,
  cotRng: Rng,
  mix?: NegativeMix,
): Example {
  const { K, data } = tw;
  const nNeg = K - 1;
  const minNear = split === "train" ? 0 : requiredNear(index, nNeg, data.testNearMin);
  const m = tierWeights(split, mix, data.negatives);
  const w = [m.far, m.climate, m.near];
  for (let attempt = 0; attempt < 200; attempt++) {
    const anchor = tw.locate(tw.sampleLocation(split, rng));
    const tiers: NegativeTier[] = [];
    for (let i = 0; i < nNeg; i++) tiers.push(i < minNear ? "near" : TIERS[rng.weighted(w)]);
    const negs = drawNegatives(tw, tiers, anchor, split, rng);
    if (!negs) continue;
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
    const target = pairingCot(
      { ground: anchor.cues, groundMeta: anchor.scene.meta, candidates: cand.map((c) => c.cues), correct },
      data.cot,
      cotRng,
    );
    return {
      id,
      task: "pairing",
      split,
      ground: tw.ground(anchor.scene),
      aerial: cand.map((c) => tw.aerial(c.scene)),
      prompt: pairingPrompt(K),
      answer: letter(correct),
      scene: anchor.scene.meta,
      pairing: { candidates: cand.map((c) => c.scene.meta), correct, tiers: candTiers },
      target,
      cues: { ground: anchor.cues, candidates: cand.map((c) => c.cues) },
    };
  }
  throw new Error(`${id}: no anchor with the required negatives after 200 attempts`);
}
