/**
 * geo-r1's public API: the pieces a script or notebook needs to load specs, manage runs and pick a backend.
 * Training, data and model code is imported from its own modules under lib/ (e.g. lib/data/mod.ts,
 * lib/train/grpo.ts); docs/ARCHITECTURE.md maps them.
 *
 * ```ts
 * import { loadSpec, RunDir } from "./mod.ts";
 * const { spec, hash } = await loadSpec("experiments/geo-r1.json", { preset: "tiny" });
 * console.log(RunDir.runId(spec.name, hash));
 * ```
 * @module
 */

/** Errors a user can cause; the CLI prints the message and exits with `exitCode`. */
export { UserError } from "./lib/errors.ts";
/** Seeded randomness: `Rng` and `deriveSeed(seed, name)`. */
export { deriveSeed, hashString32, Rng } from "./lib/rng.ts";
/** Experiment specs: load, validate, hash. */
export * from "./lib/spec/mod.ts";
/** Run directories, manifests, JSONL records, atomic writes, progress. */
export * from "./lib/run/mod.ts";
/** tfjs backend selection. */
export { type BackendInfo, BACKENDS, initBackend, probeWebGpu, tfjsVersion } from "./lib/backend.ts";
/** CLI contract and entry point. */
export type { Command } from "./lib/cli/command.ts";
export { main } from "./main.ts";
