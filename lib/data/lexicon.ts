/**
 * The closed lexicon of the data engine: every word that prompts, captions, geo-qa answers, chain-of-thought
 * templates and names can produce. The tokenizer makes each of them (with and without a leading space) one
 * token. Built deterministically from code and from the pinned world data (country names of world-atlas
 * countries-50m, the world's roof / road-line / vegetation names), so the vocabulary changes only when the
 * code or a pinned package changes; `tokenizerFromJSON` then refuses old checkpoints.
 * @module
 */
import atlas from "world-atlas/countries-50m.json" with { type: "json" };
import { CLIMATES, CONTINENTS, SETTLEMENTS } from "../world/types.ts";
import { ROAD_LINES, ROOF_PALETTES, VEGETATION_COLOURS } from "../world/mod.ts";
import { COMPASS, DENSITIES, LEVELS3, PHRASE_WORDS, ROAD_AXES } from "./cues.ts";
import { COT_EXTRA_WORDS, COT_TEMPLATES } from "./cot.ts";
import { PROMPT_TEXTS } from "./prompts.ts";

/** Candidate letters (up to 8 candidates) and other single capitals that appear in text. */
const LETTERS = "A B C D E F G H";

function words(s: string): string[] {
  return s.match(/[A-Za-z]+/g) ?? [];
}

/** Hyphenated compounds kept as single tokens. */
const COMPOUNDS: readonly string[] = ROAD_AXES;

/** All lexicon words (unsorted, may repeat; the tokenizer sorts and dedups). */
export function lexiconWords(): string[] {
  const out: string[] = [];
  const add = (s: string) => out.push(...words(s));
  add(LETTERS);
  add(PHRASE_WORDS);
  add(COT_EXTRA_WORDS);
  for (const x of [...COMPASS, ...ROAD_AXES, ...DENSITIES, ...LEVELS3]) add(x);
  for (const x of [...CONTINENTS, ...CLIMATES, ...SETTLEMENTS]) add(x);
  for (const x of Object.keys(ROOF_PALETTES)) add(x);
  for (const x of Object.keys(ROAD_LINES)) add(x);
  for (const x of Object.keys(VEGETATION_COLOURS)) add(x);
  for (const list of Object.values(COT_TEMPLATES)) for (const t of list) add(t);
  for (const t of PROMPT_TEXTS) add(t);
  // deno-lint-ignore no-explicit-any
  const geoms = (atlas as any).objects.countries.geometries as { properties?: { name?: string } }[];
  for (const g of geoms) add(g.properties?.name ?? "");
  add("Unknown");
  out.push(...COMPOUNDS);
  return out;
}
