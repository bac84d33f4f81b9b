/**
 * User prompts of every task (the text after the image tokens), and the short think lines of pretraining
 * targets. Every word here is in the tokenizer's lexicon (lib/data/lexicon.ts reads PROMPT_TEXTS).
 * @module
 */
import type { QaKind } from "./types.ts";

/** Letters listed for K candidates: "A, B, C or D". */
function letterList(k: number): string {
  const ls = Array.from({ length: k }, (_, i) => String.fromCharCode(65 + i));
  return ls.length > 1 ? ls.slice(0, -1).join(", ") + " or " + ls[ls.length - 1] : ls.join("");
}

/** Pairing prompt for K candidates: letters listed explicitly ("A, B, C or D"). */
export function pairingPrompt(k: number): string {
  return `Which aerial view ${letterList(k)} shows the place of the ground view? Answer with the letter.`;
}

/** Prompt of a scaffold exemplar: a ground view and its own aerial tile (no candidates, no letter). */
export const SCAFFOLD_PROMPT =
  "The aerial view shows the place of the ground view. Describe both and say where it is.";

export const GEOLOCATE_PROMPT = "Where was this ground view taken? Answer with latitude and longitude.";

export const QA_PROMPTS: Record<QaKind, string> = {
  continent: "On which continent was this ground view taken?",
  country: "In which country was this ground view taken?",
  climate: "What is the climate zone of this place?",
  settlement: "Is this place urban, suburban or rural?",
  driving: "On which side of the road do people drive here?",
};

export const CAPTION_PROMPTS = {
  ground: "Describe the ground view.",
  aerial: "Describe the aerial view.",
} as const;

/** Think lines of caption targets (one line, the view type). */
export const CAPTION_THINK = {
  ground: "a ground panorama.",
  aerial: "an aerial view from above.",
} as const;

/** Prompt of an aerial caption: K tiles in the candidate slots, describe the one named by `letter`. */
export function captionAerialPrompt(letter: string): string {
  return `Describe aerial view ${letter}.`;
}

/** Think line of an aerial caption. */
export function captionAerialThink(letter: string): string {
  return `aerial view ${letter} from above.`;
}

/**
 * Prompt of an aerial find (referring-expression) example: K tiles of independent places, "which one shows
 * <phrase>?", answered with a letter. Same answer form as the pairing prompt, but the question is about a
 * described cue, never about a ground view.
 */
export function findAerialPrompt(k: number, phrase: string): string {
  return `Which aerial view ${letterList(k)} shows ${phrase}? Answer with the letter.`;
}

/** Think line of an aerial find example. */
export function findAerialThink(letter: string, phrase: string): string {
  return `aerial view ${letter} shows ${phrase}.`;
}

/**
 * The climate zones a control question offers, in letter order. Polar (2% of scenes) is left out so that the
 * options fit the four letters the base writes for a multiple-choice prompt.
 */
export const CONTROL_CLIMATES = ["tropical", "arid", "temperate", "continental"] as const;

/**
 * Prompt of a control example (GRPO only): the climate zone of the ground view, as a letter of a fixed list.
 * Every word is one the base already reads (the geo-qa climate question, the multiple-choice prompts).
 */
export function controlPrompt(): string {
  const options = CONTROL_CLIMATES.map((c, i) => `${String.fromCharCode(65 + i)} ${c}`);
  return `Which climate zone is this place: ${options.slice(0, -1).join(", ")} or ${options.at(-1)}? ` +
    "Answer with the letter.";
}

/** Think line of a control example (for the data command's display; never trained on). */
export function controlThink(climate: string): string {
  return `a ${climate} climate.`;
}

/** Think lines of examples loaded from real data (no scene cues to describe). */
export const REAL_PAIRING_THINK = "compare the ground view with each aerial view.";
export const REAL_GEOLOCATE_THINK = "look for clues in the ground view.";

/** All fixed prompt/think strings, for the lexicon. */
export const PROMPT_TEXTS: string[] = [
  pairingPrompt(8),
  GEOLOCATE_PROMPT,
  SCAFFOLD_PROMPT,
  controlPrompt(),
  ...Object.values(QA_PROMPTS),
  ...Object.values(CAPTION_PROMPTS),
  ...Object.values(CAPTION_THINK),
  captionAerialPrompt("A"),
  captionAerialThink("A"),
  REAL_PAIRING_THINK,
  REAL_GEOLOCATE_THINK,
  "latitude longitude",
];
