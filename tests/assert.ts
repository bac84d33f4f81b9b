/**
 * The one place tests import assertions from. JSR (@std/assert) is unreachable on our machines, so this
 * re-exports node:assert/strict; switching back is this one line.
 */
export { default as assert } from "node:assert/strict";
export {
  deepEqual as assertEquals,
  equal as assertStrictEquals,
  notEqual as assertNotEquals,
  ok as assertOk,
  rejects as assertRejects,
  throws as assertThrows,
} from "node:assert/strict";
