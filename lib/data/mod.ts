/**
 * lib/data: tasks (pairing, geolocate, geo-qa, caption) with region-held-out splits, the chain-of-thought
 * engine, the tokenizer, image helpers, dataset export, loaders for real data and folder sources (`data.source`).
 *
 * ```ts
 * const world = await createWorld({ seed: spec.world.seed, tileHalfExtent: spec.world.tileHalfExtent });
 * const sampler = createTaskSampler(world, spec.data, spec.world, { evalSeed: spec.eval.seed });
 * const ex = sampler.example("pairing", "test", 0); // ex.ground, ex.aerial[0..K-1], ex.prompt, ex.target
 * const tok = createTokenizer();
 * ```
 * @module
 */
export * from "./types.ts";
export {
  createTaskSampler,
  destination,
  FAR_MIN_KM,
  haversineKm,
  NEAR_MAX_KM,
  NEAR_MIN_KM,
  qaAnswer,
  type Renderer,
  requiredNear,
  type TaskSampler,
  type TaskSamplerOptions,
} from "./tasks.ts";
export {
  COT_TEMPLATES,
  type CotOptions,
  cotRng,
  extractAnswer,
  formatLatLon,
  geolocateCot,
  letter,
  pairingCot,
  pairingCotDetailed,
  type PairingCotInput,
  type PairingCotResult,
  statedMatch,
} from "./cot.ts";
export {
  caption,
  COMPARABLE_KEYS,
  type CueKey,
  cuesFromWorld,
  cueSignature,
  differingCues,
  sceneCues,
  type ViewCues,
} from "./cues.ts";
export {
  COORD_TOKENIZER_TYPE,
  coordTokens,
  createTokenizer,
  type GeoTokenizer,
  SPECIAL_TOKENS,
  TOKENIZER_TYPE,
  tokenizerFromJSON,
  type TokenizerJSON,
  type TokenizerOptions,
} from "./tokenizer.ts";
export { contactSheet, decodeImageFile, encodePng, imageToFloat, upscale } from "./images.ts";
export { exportExamples, type ExportOptions, metadataLine } from "./export.ts";
export {
  type CrossViewOptions,
  type GeolocateCsvOptions,
  loadCrossView,
  loadGeolocateCsv,
  parseCsv,
} from "./loaders.ts";
export {
  createFolderSampler,
  type FolderSamplerOptions,
  readFolderRows,
  type Row,
  type RowSet,
  rowSetInMemory,
} from "./folder_source.ts";
export { exportFolder, geoworldRows } from "./folder_export.ts";
export { type DataSource, openDataSource, type SourceNeeds } from "./source.ts";
export { CAPTION_PROMPTS, GEOLOCATE_PROMPT, pairingPrompt, QA_PROMPTS } from "./prompts.ts";
