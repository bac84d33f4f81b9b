/**
 * `data export|sheet|stats`: look at and export the data an experiment trains and evaluates on.
 * @module
 */
import { UserError } from "../errors.ts";
import { atomicWrite } from "../run/atomic.ts";
import { loadSpec, resolveExperimentPath } from "../spec/load.ts";
import type { ExperimentSpec } from "../spec/types.ts";
import { createWorld } from "../world/mod.ts";
import { createTaskSampler, haversineKm, type TaskSampler } from "../data/tasks.ts";
import { exportExamples } from "../data/export.ts";
import { exportFolder, geoworldRows } from "../data/folder_export.ts";
import type { World } from "../world/types.ts";
import { contactSheet, encodePng } from "../data/images.ts";
import { createTokenizer, type GeoTokenizer } from "../data/tokenizer.ts";
import { type Example, type Split, type TaskName, TASKS } from "../data/types.ts";
import type { Command } from "./command.ts";
import { mean } from "../eval/stats.ts";

const SPLITS: readonly Split[] = ["train", "val", "test"];

/** The `data` command. */
export const dataCommand: Command = {
  name: "data",
  summary: "export, look at and summarise task data (PNG + JSONL export, contact sheet, stats)",
  help: `usage: deno task data <export|sheet|stats> [options]

subcommands:
  export   write N examples as PNGs + metadata.jsonl into --out DIR (atomically: a temp folder renamed
           into place; a failed export leaves nothing behind); with --format folder, write N GeoWorld rows
           per split as a folder source (pairs.csv, geolocate.csv, ground/, aerial/) that specs and eval
           read with data.source (README "Bring your own data")
  sheet    write a contact sheet PNG to --out FILE: each ground panorama above its aerial tile(s), upscaled;
           pairing candidates framed green (match), orange (near), blue (same climate), grey (far)
  stats    print a JSON summary: negative tiers and distances, answer balance, target lengths in tokens

options:
  --task NAME       pairing | geolocate | geoqa | caption (default pairing)
  --n N             number of examples (default: export 200, sheet 8, stats 200)
  --split NAME      train | val | test (default train; --format folder: every split)
  --format NAME     export: jsonl (examples + metadata.jsonl, the default) | folder (a folder source)
  --start I         first example index (default 0)
  --out PATH        output folder (export) or PNG file (sheet)
  --spec NAME       experiment whose world/data/eval settings are used (default geo-r1), or a spec path
  --preset NAME     preset of that spec (tiny | small | large)
  --set KEY=VALUE   spec override, repeatable (e.g. --set data.cot.verbosity=2)
  --scale K         sheet upscale factor (default 3)
  --force           export: replace an existing --out folder
  -h, --help        show this help

examples:
  deno task data export --task pairing --n 200 --out /tmp/pairs
  deno task data export --format folder --n 40 --out data/geoworld-rows
  deno task data sheet --task pairing --n 8 --out /tmp/pairs.png
  deno task data stats --task pairing --split test --set data.cot.verbosity=0`,
  options: {
    task: { type: "string" },
    n: { type: "string" },
    split: { type: "string" },
    start: { type: "string" },
    out: { type: "string" },
    spec: { type: "string" },
    preset: { type: "string" },
    set: { type: "string", multiple: true },
    scale: { type: "string" },
    force: { type: "boolean" },
    format: { type: "string" },
  },
  allowPositionals: true,
  run: runData,
};

/** Alias under the conventional name (the registry finds either). */
export const command: Command = dataCommand;

function intOpt(v: unknown, name: string, dflt: number, min: number, max: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new UserError(`--${name} must be an integer in [${min}, ${max}], got ${JSON.stringify(v)}`);
  }
  return n;
}

async function setup(
  values: Record<string, unknown>,
): Promise<{ spec: ExperimentSpec; hash: string; sampler: TaskSampler; world: World }> {
  const specName = (values.spec as string | undefined) ?? "geo-r1";
  const { spec, hash } = await loadSpec(resolveExperimentPath(specName), {
    preset: values.preset as string | undefined,
    sets: values.set as string[] | undefined,
  });
  const world = await createWorld({ seed: spec.world.seed, tileHalfExtent: spec.world.tileHalfExtent });
  const sampler = createTaskSampler(world, spec.data, spec.world, { evalSeed: spec.eval.seed });
  return { spec, hash, sampler, world };
}

async function runData(values: Record<string, unknown>, positionals: string[]): Promise<number> {
  const sub = positionals[0];
  if (!sub || !["export", "sheet", "stats"].includes(sub) || positionals.length > 1) {
    throw new UserError(
      `data: expected one subcommand: export, sheet or stats${
        sub ? ` (got ${positionals.join(" ")})` : ""
      }; see --help`,
    );
  }
  const task = ((values.task as string | undefined) ?? "pairing") as TaskName;
  if (!TASKS.includes(task)) throw new UserError(`--task must be one of ${TASKS.join(", ")}, got '${task}'`);
  // Train by default: looking at the data should not mean looking at the held-out test examples.
  const split = ((values.split as string | undefined) ?? "train") as Split;
  if (!SPLITS.includes(split)) {
    throw new UserError(`--split must be one of ${SPLITS.join(", ")}, got '${split}'`);
  }
  const n = intOpt(values.n, "n", sub === "sheet" ? 8 : 200, 1, 1_000_000);
  const start = intOpt(values.start, "start", 0, 0, 2 ** 31);
  const out = values.out as string | undefined;
  if ((sub === "export" || sub === "sheet") && !out) throw new UserError(`data ${sub}: --out is required`);
  const scale = intOpt(values.scale, "scale", 3, 1, 16);

  const format = (values.format as string | undefined) ?? "jsonl";
  if (format !== "jsonl" && format !== "folder") {
    throw new UserError(`--format must be jsonl or folder, got '${format}'`);
  }
  if (format === "folder" && sub !== "export") throw new UserError(`--format applies to data export only`);
  const { spec, hash, sampler, world } = await setup(values);
  if (format === "folder") {
    const t0 = performance.now();
    const splits = values.split === undefined ? SPLITS : [split];
    const rows = geoworldRows(world, sampler, spec.world, n, splits, spec.data.seed);
    const written = await exportFolder(rows, out!, {
      force: values.force === true,
      info: { format: "folder", splits, perSplit: n, spec: spec.name, specHash: hash, world: spec.world },
    });
    console.log(
      `wrote ${written} rows (${splits.join(", ")}) as a folder source to ${out} in ${
        ((performance.now() - t0) / 1000).toFixed(1)
      } s; use it with --set 'data.source={"pairing":"${out}"}'`,
    );
    return 0;
  }
  function* gen(): Generator<Example> {
    for (let i = 0; i < n; i++) yield sampler.example(task, split, start + i);
  }

  if (sub === "export") {
    const t0 = performance.now();
    const written = await exportExamples(gen(), out!, {
      force: values.force === true,
      info: { task, split, start, spec: spec.name, specHash: hash, worldSeed: spec.world.seed },
    });
    console.log(
      `wrote ${written} ${task} examples (${split}) to ${out} in ${
        ((performance.now() - t0) / 1000).toFixed(1)
      } s`,
    );
    return 0;
  }
  if (sub === "sheet") {
    const sheet = contactSheet([...gen()], scale);
    await atomicWrite(out!, await encodePng(sheet));
    console.log(
      `wrote a ${sheet.width}x${sheet.height} contact sheet of ${n} ${task} examples (${split}) to ${out}`,
    );
    return 0;
  }
  const tok = createTokenizer({ coords: spec.data.coordTokens });
  console.log(JSON.stringify(stats([...gen()], task, split, tok), null, 2));
  return 0;
}

/** Summary statistics of a batch of examples (the `stats` subcommand); target lengths in `tok`'s tokens. */
export function stats(
  examples: Example[],
  task: TaskName,
  split: Split,
  tok: GeoTokenizer = createTokenizer(),
): Record<string, unknown> {
  const lens = examples.map((e) => tok.count(e.target));
  const out: Record<string, unknown> = {
    task,
    split,
    n: examples.length,
    targetTokens: { mean: +mean(lens).toFixed(1), min: Math.min(...lens), max: Math.max(...lens) },
    answers: countBy(examples.map((e) => e.answer.length <= 20 ? e.answer : "(long)")),
    continents: countBy(examples.map((e) => e.scene.continent)),
    climates: countBy(examples.map((e) => e.scene.climate)),
  };
  if (task === "pairing") {
    const tiers: Record<string, number[]> = {};
    for (const e of examples) {
      const p = e.pairing!;
      p.tiers.forEach((t, i) => {
        if (t === "match") return;
        (tiers[t] ??= []).push(haversineKm(e.scene, p.candidates[i]));
      });
    }
    const negs = Object.values(tiers).reduce((s, d) => s + d.length, 0);
    out.negatives = Object.fromEntries(
      Object.entries(tiers).map(([t, d]) => [t, {
        count: d.length,
        fraction: +(d.length / negs).toFixed(3),
        km: { min: +Math.min(...d).toFixed(1), mean: +mean(d).toFixed(1), max: +Math.max(...d).toFixed(1) },
      }]),
    );
  }
  if (task === "geoqa") out.kinds = countBy(examples.map((e) => e.qaKind ?? ""));
  if (task === "geolocate") {
    const cl = examples.map((e) => tok.count(e.targetCot ?? ""));
    out.targetCotTokens = { mean: +mean(cl).toFixed(1), min: Math.min(...cl), max: Math.max(...cl) };
  }
  return out;
}

function countBy(xs: string[]): Record<string, number> {
  const m: Record<string, number> = {};
  for (const x of xs) m[x] = (m[x] ?? 0) + 1;
  return Object.fromEntries(Object.entries(m).sort((a, b) => b[1] - a[1]));
}
