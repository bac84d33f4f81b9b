/**
 * Retired spec values and keys: switches whose losing branch the code no longer has. A spec that still asks
 * for one is refused when it is resolved, with the field, the value and what the code does instead, rather
 * than being silently trained with the one remaining form (values: {@link retiredProblems}) or answered with
 * "unknown key" and a guess at a similar key (`cueTokens` is not `cueText`; keys: {@link retiredKey}). The
 * evidence for each choice is in docs/RESULTS.md.
 *
 * ```ts
 * retiredProblems({ data: { cot: { order: "ground-first" } } });
 * // [{ pointer: "/data/cot/order", message: "'ground-first' is no longer supported; ..." }]
 * ```
 * @module
 */
import type { JsonObject } from "./merge.ts";

/** A value the code no longer implements, and the one it keeps. */
interface Retired {
  /** JSON pointer of the field. */
  pointer: string;
  /** The values still accepted (absent: the field itself is retired). */
  keep?: readonly unknown[];
  /** What the code does instead, and where the evidence is. */
  why: string;
}

const RETIRED: readonly Retired[] = [
  {
    pointer: "/data/cot/order",
    keep: ["candidates-first"],
    why: "pairing exemplars always describe every candidate from its own tile before the ground " +
      "(docs/RESULTS.md, third and fifth builds)",
  },
  {
    pointer: "/data/cot/verdict",
    keep: ["first-fit"],
    why: "pairing exemplars always give verdicts in letter order up to the match, 'A no, B fits.' " +
      "(docs/RESULTS.md, fifth and eighth builds)",
  },
  {
    pointer: "/data/cot/marks",
    why: "candidate lines carry no agreement marks (docs/RESULTS.md, fifth build)",
  },
];

function at(spec: unknown, pointer: string): { found: boolean; value?: unknown } {
  let o = spec;
  for (const key of pointer.split("/").slice(1)) {
    if (o === null || typeof o !== "object" || !(key in (o as JsonObject))) return { found: false };
    o = (o as JsonObject)[key];
  }
  return { found: true, value: o };
}

/** One problem per retired value the spec asks for (empty when it asks for none). */
export function retiredProblems(spec: unknown): { pointer: string; message: string }[] {
  const out: { pointer: string; message: string }[] = [];
  for (const r of RETIRED) {
    const { found, value } = at(spec, r.pointer);
    if (!found || (r.keep && r.keep.includes(value))) continue;
    const shown = JSON.stringify(value);
    const keep = r.keep ? ` (use ${r.keep.map((v) => JSON.stringify(v)).join(" or ")}, or leave it out)` : "";
    const field = r.keep
      ? `${shown} is no longer supported${keep}`
      : `this field is no longer supported, got ${shown}; remove it`;
    out.push({ pointer: r.pointer, message: `${field}: ${r.why}` });
  }
  return out;
}

/** Keys (JSON pointers without array indices) that named model branches this version no longer has. */
const RETIRED_KEYS: Record<string, string> = {
  "/model/cueTokens": "cue tokens are retired: the model has no decoder token per view; remove the key",
  "/model/aerialLayout": 'the aerial layout is always "polar" (the grid layout is retired); remove the key',
};

/** Why the key at `pointer` is no longer accepted, or undefined for a key that never existed. */
export function retiredKey(pointer: string): string | undefined {
  return RETIRED_KEYS[pointer];
}
