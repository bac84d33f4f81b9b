/**
 * Renderers of the two views of a scene, pure TypeScript over RGB byte buffers (no canvas, no GPU):
 * `renderAerial` (north-up top-down tile) and `renderGround` (north-aligned 360-degree panorama). Both draw the
 * same `Layout`, so every object is where the other view says it is.
 * @module
 */
export { renderAerial } from "./aerial.ts";
export { renderGround, rowElevation } from "./ground.ts";
export { wallOf } from "./common.ts";
