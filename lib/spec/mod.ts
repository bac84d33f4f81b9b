/**
 * Experiment specs: load (`extends`, presets, `--set`), validate against experiments/schema.json, hash.
 * @module
 */
export type * from "./types.ts";
export {
  displayPath,
  EXPERIMENTS_DIR,
  fillSeeds,
  listExperiments,
  type LoadedSpec,
  loadSpec,
  type LoadSpecOptions,
  parseSet,
  resolveExperimentPath,
} from "./load.ts";
export { canonicalJson, sha256Hex, specHash } from "./hash.ts";
export {
  describeValue,
  formatProblems,
  SPEC_SCHEMA,
  type SpecProblem,
  specProblems,
  validateSpec,
} from "./validate.ts";
export { editDistance, nearest } from "./suggest.ts";
export { type JsonObject, Provenance } from "./merge.ts";
