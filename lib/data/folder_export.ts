/**
 * GeoWorld rows and their export as a folder source (`deno task data export --format folder`): the layout a
 * user's CVUSA/VIGOR-style data has, so the folder path of every stage and of `eval` can be checked against
 * the same rows held in memory.
 *
 * Layout of DIR:
 * - `pairs.csv`: `ground_path,aerial_path,lat,lon` (coordinates written in full precision: they read back
 *   to the same numbers, so rows split exactly as in GeoWorld);
 * - `geolocate.csv`: `path,lat,lon` over the same ground panoramas;
 * - `ground/NNNNNN.png`, `aerial/NNNNNN.png`;
 * - `export.json`: what was exported.
 * Written into a temporary sibling folder and renamed into place: a failed export leaves nothing behind.
 * @module
 */
import { join } from "node:path";
import { deriveSeed, Rng } from "../rng.ts";
import type { WorldSpec } from "../spec/types.ts";
import type { World } from "../world/types.ts";
import { renderAerial, renderGround } from "../render/mod.ts";
import { atomicWrite } from "../run/atomic.ts";
import { writeDirAtomic } from "../run/fs.ts";
import { encodePng } from "./images.ts";
import { destination, NEAR_MAX_KM, NEAR_MIN_KM, type TaskSampler } from "./tasks.ts";
import type { Row } from "./folder_source.ts";
import type { Split } from "./types.ts";

/**
 * `perSplit` rows of each split in `splits`, rendered from GeoWorld: locations drawn as the GeoWorld sampler
 * draws them (seeded by `seed`), each followed by a neighbour 5-50 km away in the same country and split
 * when one is found, so exported folders have near negatives as dense real datasets do.
 */
export function geoworldRows(
  world: World,
  sampler: TaskSampler,
  worldSpec: WorldSpec,
  perSplit: number,
  splits: readonly Split[],
  seed: number,
): Row[] {
  const rows: Row[] = [];
  const row = (lat: number, lon: number, split: Split, i: number): Row => {
    const scene = world.sceneAt(lat, lon);
    return {
      where: `geoworld ${split} row ${i}`,
      lat,
      lon,
      ground: renderGround(scene, [worldSpec.groundShape[0], worldSpec.groundShape[1]]),
      aerial: renderAerial(scene, worldSpec.aerialSize),
    };
  };
  for (const split of splits) {
    const rng = new Rng(deriveSeed(seed, `folder-export/${split}`));
    let n = 0;
    while (n < perSplit) {
      const a = sampler.sampleLocation(split, rng);
      rows.push(row(a.lat, a.lon, split, n++));
      if (n >= perSplit) break;
      const country = world.sceneAt(a.lat, a.lon).meta.country;
      for (let t = 0; t < 30; t++) {
        const p = destination(a, rng.range(0, 360), rng.range(NEAR_MIN_KM + 1, NEAR_MAX_KM - 1));
        if (!world.isLand(p.lat, p.lon) || sampler.splitOf(p.lat, p.lon) !== split) continue;
        if (world.sceneAt(p.lat, p.lon).meta.country !== country) continue;
        rows.push(row(p.lat, p.lon, split, n++));
        break;
      }
    }
  }
  return rows;
}

/** Write `rows` as a folder source into `outDir` (layout in the module doc). Returns the number of rows. */
export async function exportFolder(
  rows: Row[],
  outDir: string,
  opts: { force?: boolean; info?: Record<string, unknown> } = {},
): Promise<number> {
  return await writeDirAtomic(outDir, opts, async (tmp) => {
    await Deno.mkdir(join(tmp, "ground"));
    await Deno.mkdir(join(tmp, "aerial"));
    const pairs = ["ground_path,aerial_path,lat,lon"];
    const geo = ["path,lat,lon"];
    for (let i = 0; i < rows.length; i++) {
      const r = rows[i];
      const stem = String(i).padStart(6, "0");
      const g = `ground/${stem}.png`;
      const a = `aerial/${stem}.png`;
      await Deno.writeFile(join(tmp, g), await encodePng(r.ground));
      if (!r.aerial) throw new Error(`${r.where}: a pairing row needs an aerial view`);
      await Deno.writeFile(join(tmp, a), await encodePng(r.aerial));
      pairs.push(`${g},${a},${r.lat},${r.lon}`);
      geo.push(`${g},${r.lat},${r.lon}`);
    }
    await atomicWrite(join(tmp, "pairs.csv"), pairs.join("\n") + "\n");
    await atomicWrite(join(tmp, "geolocate.csv"), geo.join("\n") + "\n");
    await atomicWrite(
      join(tmp, "export.json"),
      JSON.stringify({ rows: rows.length, created: new Date().toISOString(), ...opts.info }, null, 2) + "\n",
    );
    return rows.length;
  });
}
