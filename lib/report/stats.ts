/**
 * Statistics used by reports: the same seeded percentile bootstrap as evaluation (lib/eval/stats.ts), so a
 * CI in a report and a CI in eval.json are computed one way. Reports still read only run records (files).
 * @module
 */
export { bootstrapCi, type BootstrapOptions, mean } from "../eval/stats.ts";
