/**
 * Spec keys that named model branches this version no longer has. A spec that still sets one is rejected
 * with the reason, instead of "unknown key" and a guess at a similar key (`cueTokens` is not `cueText`).
 * Keys are JSON pointers without array indices.
 * @module
 */

const RETIRED: Record<string, string> = {
  "/model/cueTokens": "cue tokens are retired: the model has no decoder token per view; remove the key",
  "/model/aerialLayout": 'the aerial layout is always "polar" (the grid layout is retired); remove the key',
};

/** Why the key at `pointer` is no longer accepted, or undefined for a key that never existed. */
export function retiredKey(pointer: string): string | undefined {
  return RETIRED[pointer];
}
