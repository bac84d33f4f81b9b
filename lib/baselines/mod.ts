/**
 * Geolocation baselines of the paper's Table 1, trained on the same world and scored by the same
 * geolocation evaluation as the VLM rows: `geoclip` (GeoCLIP-like retrieval), `cells` (ISN-like cell
 * classification) and `nearest-prior` (no image). A pipeline stage of kind `baseline` runs one
 * (lib/pipeline/baseline.ts).
 *
 * ```ts
 * const predictor = await trainMethod({ spec, name: "geoclip", images, locations, gallery });
 * const answers = predictor.predict(testImages); // one LatLon per test view
 * ```
 * @module
 */
export { BASELINE_LABELS, type MethodInput, type Predictor, trainMethod } from "./methods.ts";
export { Dense, type EncoderSpec, ImageBank, PatchEncoder } from "./layers.ts";
export { equalEarth, GpsEncoder, type GpsEncoderSpec } from "./gps.ts";
export { type CellPartition, hierarchicalArgmax, partitionCells } from "./cells.ts";
export { checkResolutions } from "./grid.ts";
export { commonCellMean, medoid, sphericalMean } from "./prior.ts";
export { type BaselineStepMetrics, trainLoop } from "./train.ts";
