/**
 * Examples of real data (folder sources, CSV loaders): views a user brings carry no scene cues, so targets
 * use the fixed short think blocks of real data (lib/data/prompts.ts REAL_*_THINK), and the examples carry
 * no `cues` or `targetCot`.
 * @module
 */
import type { RGBImage, SceneMeta } from "../world/types.ts";
import { formatLatLon, letter } from "./cot.ts";
import {
  GEOLOCATE_PROMPT,
  pairingPrompt,
  QA_PROMPTS,
  REAL_GEOLOCATE_THINK,
  REAL_PAIRING_THINK,
} from "./prompts.ts";
import { qaAnswer } from "./task_examples.ts";
import type { Example, NegativeTier, QaKind, Split } from "./types.ts";

/** One aerial candidate of a real pairing example: its tile and its place. */
export interface RealCandidate {
  aerial: RGBImage;
  meta: SceneMeta;
}

/**
 * A real pairing example: the anchor's ground view and the candidates in letter order, the match at
 * `correct`; `tiers` gives each candidate's negative tier ("match" for the anchor's own tile).
 */
export function realPairingExample(
  id: string,
  split: Split,
  ground: RGBImage,
  scene: SceneMeta,
  candidates: RealCandidate[],
  correct: number,
  tiers: (NegativeTier | "match")[],
): Example {
  const answer = letter(correct);
  return {
    id,
    task: "pairing",
    split,
    ground,
    aerial: candidates.map((c) => c.aerial),
    prompt: pairingPrompt(candidates.length),
    answer,
    scene,
    pairing: { candidates: candidates.map((c) => c.meta), correct, tiers },
    target: `<think>${REAL_PAIRING_THINK}</think><answer>${answer}</answer>`,
  };
}

/**
 * A real example of one ground view: geolocate (answer: the scene's coordinates) or, with `qaKind`, the
 * geo-qa question of that kind about the scene.
 */
export function realGroundExample(
  id: string,
  split: Split,
  ground: RGBImage,
  scene: SceneMeta,
  qaKind?: QaKind,
): Example {
  const answer = qaKind === undefined ? formatLatLon(scene.lat, scene.lon) : qaAnswer(qaKind, scene);
  return {
    id,
    task: qaKind === undefined ? "geolocate" : "geoqa",
    split,
    ground,
    aerial: [],
    prompt: qaKind === undefined ? GEOLOCATE_PROMPT : QA_PROMPTS[qaKind],
    answer,
    scene,
    ...(qaKind === undefined ? {} : { qaKind }),
    target: `<think>${REAL_GEOLOCATE_THINK}</think><answer>${answer}</answer>`,
  };
}
