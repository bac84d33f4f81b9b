/**
 * Run records: run directories, manifests, JSONL logs, atomic writes, progress.
 * @module
 */
export type * from "./records.ts";
export { atomicWrite, atomicWriteJson } from "./atomic.ts";
export { appendJsonl, filterJsonl, JsonlWriter, readJsonl, repairJsonl } from "./jsonl.ts";
export {
  type BackendRecord,
  buildManifest,
  deviceInfo,
  GEO_R1_VERSION,
  gitInfo,
  lockHash,
  type ManifestInputs,
  manifestMismatches,
  permissionStates,
  PROJECT_ROOT,
} from "./manifest.ts";
export { type PreparedRun, type PrepareRunOptions, RunDir } from "./rundir.ts";
export { type Progress, progress, type ProgressOptions } from "./progress.ts";
