/**
 * Default locations of what `exp` writes, relative to the project root. The CLI options `--runs-dir` and
 * `--cache-dir` override them; the deno tasks grant write access to exactly these folders (deno.json).
 * @module
 */

/** Parent of run directories (`runs/<name>-<hash8>/`). */
export const DEFAULT_RUNS_DIR = "runs";

/** Root of the content-addressed stage cache (`cache/stages/<hash>/`), shared by every experiment. */
export const DEFAULT_STAGE_CACHE_DIR = "cache/stages";
