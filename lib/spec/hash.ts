/**
 * Canonical JSON and content hashes: the run id of an experiment is the hash of its resolved spec, so two
 * specs that differ only in key order hash the same.
 * @module
 */
import { createHash } from "node:crypto";

/** JSON with object keys sorted recursively and no whitespace. Arrays keep their order. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(value).sort()) {
      const v = (value as Record<string, unknown>)[k];
      if (v !== undefined) out[k] = sortKeys(v);
    }
    return out;
  }
  return value;
}

/** Hex sha256 of a string or bytes. */
export function sha256Hex(data: string | Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

/** Content hash of a (resolved) spec: sha256 of its canonical JSON, 64 hex characters. */
export function specHash(spec: unknown): string {
  return sha256Hex(canonicalJson(spec));
}
