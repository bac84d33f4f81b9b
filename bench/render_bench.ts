/**
 * Render throughput: one pairing example's images = one 32x128 ground panorama + four 32x32 aerial tiles.
 * Target >= 2,000 pairs/s on one core. Scenes are built outside the timed loop (the data engine caches them
 * per example); `scene+render` also times scene generation.
 * The first world's build (geography rasters and climate, once per process; target ~2 s on an idle core) is
 * printed before the benches.
 * Run: deno bench --allow-read --allow-env bench/render_bench.ts
 */
import { createWorld } from "../lib/world/mod.ts";
import { renderAerial, renderGround } from "../lib/render/mod.ts";
import { Rng } from "../lib/rng.ts";

const t0 = performance.now();
const world = await createWorld({ seed: 1 });
console.log(
  `createWorld, first in this process (geography + climate): ${(performance.now() - t0).toFixed(0)} ms`,
);
const rng = new Rng(5);
const locs = Array.from({ length: 64 }, () => world.sampleLocation(rng.fn()));
const scenes = locs.map((p) => world.sceneAt(p.lat, p.lon));
let i = 0;

Deno.bench("render pair (ground 32x128 + 4 aerial 32x32)", { n: 4000, warmup: 200 }, () => {
  const s = scenes[i++ % scenes.length];
  renderGround(s, [32, 128]);
  for (let k = 0; k < 4; k++) renderAerial(scenes[(i + k * 7) % scenes.length], 32);
});

Deno.bench("ground 32x128", { n: 4000, warmup: 200 }, () => {
  renderGround(scenes[i++ % scenes.length], [32, 128]);
});

Deno.bench("aerial 32x32", { n: 4000, warmup: 200 }, () => {
  renderAerial(scenes[i++ % scenes.length], 32);
});

Deno.bench("scene + render pair", { n: 1000, warmup: 50 }, () => {
  const p = locs[i++ % locs.length];
  const s = world.sceneAt(p.lat + (i % 97) * 1e-3, p.lon);
  renderGround(s, [32, 128]);
  for (let k = 0; k < 4; k++) renderAerial(s, 32);
});
