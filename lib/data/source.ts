/**
 * The data source of a spec (`data.source`): the GeoWorld sampler, or a folder source's rows behind the same
 * TaskSampler (lib/data/folder_source.ts). `openDataSource` reads and checks everything before a caller
 * writes anything: the tasks each stage and the evaluation need, and the splits they draw from.
 * @module
 */
import { UserError } from "../errors.ts";
import type { ExperimentSpec } from "../spec/types.ts";
import type { World } from "../world/types.ts";
import { createWorld } from "../world/mod.ts";
import { createTaskSampler, type TaskSampler } from "./tasks.ts";
import { createFolderSampler, readFolderRows, type RowSet } from "./folder_source.ts";
import type { Split, TaskName } from "./types.ts";

/** The tasks a folder source serves; captions, scaffold exemplars and control tasks need scene cues. */
export const FOLDER_TASKS: readonly TaskName[] = ["pairing", "geolocate", "geoqa"];

/** An opened data source. */
export interface DataSource {
  world: World;
  sampler: TaskSampler;
  /** sha256 of a folder source's content (part of stage cache keys); null for GeoWorld. */
  contentHash: string | null;
}

/** What a caller draws from a source: (task, split) pairs that must have rows. */
export interface SourceNeeds {
  /** Stage names of the pipeline that train (their task mixes and, with evalEvery, the val split). */
  stages: string[];
  /** Tasks evaluated on the test split (or on `evalSplit`). */
  evalTasks: TaskName[];
  /** The split the evaluation draws from (default test; `eval --split val` draws from validation). */
  evalSplit?: "test" | "val";
}

/** The (task, split) pairs a pipeline and its evaluation draw from, with the spec field that asks. */
export function neededDraws(
  spec: ExperimentSpec,
  needs: SourceNeeds,
): { task: TaskName; split: Split; field: string }[] {
  const out: { task: TaskName; split: Split; field: string }[] = [];
  for (const name of needs.stages) {
    const st = spec.stages[name];
    if (st.kind === "baseline") continue; // baselines read train locations and the test split only
    for (const [task, w] of Object.entries(st.tasks) as [TaskName, number][]) {
      if (!(w > 0)) continue;
      out.push({ task, split: "train", field: `stages.${name}.tasks.${task}` });
      if (st.evalEvery > 0 && task !== "caption" && spec.eval.tasks.includes(task)) {
        out.push({ task, split: "val", field: `stages.${name}.evalEvery` });
      }
    }
  }
  for (const task of needs.evalTasks) {
    if (task !== "caption") out.push({ task, split: needs.evalSplit ?? "test", field: "eval.tasks" });
  }
  return out;
}

/**
 * Open `spec.data.source`. `rows` replaces reading the folder (a row set built in memory: tests, exports).
 * With a folder source, every (task, split) of `needs` is checked now: a caption task, a missing pairing
 * folder or an empty split stops here with one line naming the spec field or the file.
 */
export async function openDataSource(
  spec: ExperimentSpec,
  needs: SourceNeeds,
  rows?: RowSet,
): Promise<DataSource> {
  const world = await createWorld({ seed: spec.world.seed, tileHalfExtent: spec.world.tileHalfExtent });
  const geoworld = createTaskSampler(world, spec.data, spec.world, { evalSeed: spec.eval.seed });
  const src = spec.data.source;
  if (src === "geoworld" && !rows) return { world, sampler: geoworld, contentHash: null };
  const folder = src === "geoworld" ? { split: "region" as const } : src;
  const draws = neededDraws(spec, needs);
  const unserved = draws.filter((d) => !FOLDER_TASKS.includes(d.task));
  if (unserved.length) {
    const fields = [...new Set(unserved.map((d) => d.field))];
    const tasks = [...new Set(unserved.map((d) => d.task))];
    throw new UserError(
      `data.source is a folder, which has no ${
        tasks.join(" or ")
      } examples (they need scene cues; a folder ` +
        `serves ${FOLDER_TASKS.join(", ")}), but ${fields.join(", ")} ${
          fields.length > 1 ? "ask" : "asks"
        } ` +
        `for them: ` + fields.map((f) =>
          f === "eval.tasks" ? `--set eval.tasks=[...]` : `--set ${f}=0`
        ).join(" "),
    );
  }
  for (const d of draws) {
    if (d.task === "pairing" && folder.pairing === undefined && !rows) {
      throw new UserError(`${d.field} asks for pairing examples, but data.source names no pairing folder`);
    }
  }
  const set = rows ?? await readFolderRows(folder, spec.world);
  const sampler = createFolderSampler(set, {
    world,
    data: spec.data,
    worldSpec: spec.world,
    geoworld,
    evalSeed: spec.eval.seed,
    split: folder.split,
  });
  // Draw every test example the evaluation decodes and one example of every other needed (task, split): an
  // empty split or a test row without enough negatives stops here, before anything is written.
  const seen = new Set<string>();
  for (const d of draws) {
    const key = `${d.task}/${d.split}`;
    if (seen.has(key)) continue;
    seen.add(key);
    sampler.examples(d.task, d.split, 0, d.split === "test" ? spec.eval.n : 1);
  }
  return { world, sampler, contentHash: set.contentHash };
}
