/**
 * Deep merge with provenance: objects merge key by key, everything else (arrays included) replaces. Every
 * value set remembers where it came from (a file, a preset, a `--set`), so a validation error can name the
 * file that introduced the bad value.
 * @module
 */
import { UserError } from "../errors.ts";

/** A JSON object. */
export type JsonObject = Record<string, unknown>;

/** Whether `v` is a plain JSON object (not null, not an array). */
export function isPlainObject(v: unknown): v is JsonObject {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

/** Escape one JSON-pointer segment (RFC 6901). */
export function escapePointer(segment: string): string {
  return segment.replaceAll("~", "~0").replaceAll("/", "~1");
}

/** Keys that would reach Object.prototype if assigned; never valid in a spec. */
const FORBIDDEN_KEYS = new Set(["__proto__", "constructor", "prototype"]);

/** Throw when a key could pollute prototypes. */
export function checkKey(key: string, origin: string, pointer: string): void {
  if (FORBIDDEN_KEYS.has(key)) throw new UserError(`${origin}: ${pointer}: key '${key}' is not allowed`);
}

/** Where each value of a merged document came from: JSON pointer -> origin label. */
export class Provenance {
  #map = new Map<string, string>();

  /** Record that `pointer` and everything under it now comes from `origin`. */
  set(pointer: string, origin: string): void {
    this.deleteUnder(pointer);
    this.#map.set(pointer, origin);
  }

  /** Forget `pointer` and everything under it. */
  deleteUnder(pointer: string): void {
    for (const k of [...this.#map.keys()]) {
      if (k === pointer || k.startsWith(pointer + "/")) this.#map.delete(k);
    }
  }

  /** Origin of the value at `pointer`: the entry of the pointer or of its nearest ancestor, else null. */
  lookup(pointer: string): string | null {
    let p = pointer;
    for (;;) {
      const o = this.#map.get(p);
      if (o !== undefined) return o;
      if (p === "") return null;
      p = p.slice(0, p.lastIndexOf("/"));
    }
  }
}

/**
 * Merge `src` into `target` in place. `origin(ptr)` labels a value taken from `src` at pointer `ptr`
 * (relative to `src`); `base` is the pointer of `target` in the whole document.
 */
export function mergeInto(
  target: JsonObject,
  src: JsonObject,
  prov: Provenance,
  origin: (srcPointer: string) => string,
  base = "",
  srcBase = "",
): void {
  for (const key of Object.keys(src)) {
    const p = `${base}/${escapePointer(key)}`;
    const sp = `${srcBase}/${escapePointer(key)}`;
    checkKey(key, origin(sp), p);
    const sv = src[key];
    const tv = target[key];
    if (isPlainObject(sv) && isPlainObject(tv)) {
      mergeInto(tv, sv, prov, origin, p, sp);
    } else {
      target[key] = structuredClone(sv);
      prov.set(p, origin(sp));
      if (isPlainObject(sv)) recordLeaves(sv, prov, origin, p, sp);
    }
  }
}

function recordLeaves(
  obj: JsonObject,
  prov: Provenance,
  origin: (srcPointer: string) => string,
  base: string,
  srcBase: string,
): void {
  for (const key of Object.keys(obj)) {
    const p = `${base}/${escapePointer(key)}`;
    const sp = `${srcBase}/${escapePointer(key)}`;
    checkKey(key, origin(sp), p);
    prov.set(p, origin(sp));
    const v = obj[key];
    if (isPlainObject(v)) recordLeaves(v, prov, origin, p, sp);
  }
}
