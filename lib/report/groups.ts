/**
 * Which runs are replicates of one configuration. config: a resolved spec minus its seeds (the master seed
 * and the `data` / `model` / `stages.*` seeds it derives); runs with the same config differ only in seed,
 * so a mean and a CI over them are over seeds. A row of a comparison (one model, e.g. "Geo-R1") is keyed by
 * the part of the config that model depends on: world, data, model, eval, backend and the stages on its
 * chain. So two GRPO ablations share their Base and Geo-SFT rows (same models) but get two Geo-R1 rows,
 * each labelled by the spec fields that tell them apart.
 * @module
 */
import { canonicalJson } from "../spec/hash.ts";

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function clone<T>(v: T): T {
  return v === undefined ? v : JSON.parse(JSON.stringify(v));
}

/** The spec without its seeds (`seed`, `data.seed`, `model.seed`, `stages.*.seed`); `world.seed` and
 * `eval.seed` stay: they choose the world and the test set, which replicates share. */
export function configOf(spec: Obj | null): Obj {
  const c = clone(spec ?? {}) as Obj;
  delete c.seed;
  for (const part of ["data", "model"]) if (isObj(c[part])) delete (c[part] as Obj).seed;
  if (isObj(c.stages)) { for (const st of Object.values(c.stages)) if (isObj(st)) delete st.seed; }
  return c;
}

/** Key of a config (canonical JSON). */
export function configKey(spec: Obj | null): string {
  return canonicalJson(configOf(spec));
}

/** Leaves of an object as dotted path -> canonical JSON value (arrays are leaves). */
export function flatten(v: unknown, prefix = "", out: Map<string, string> = new Map()): Map<string, string> {
  if (isObj(v)) {
    for (const k of Object.keys(v).sort()) flatten(v[k], prefix ? `${prefix}.${k}` : k, out);
  } else out.set(prefix, canonicalJson(v ?? null));
  return out;
}

/** The dotted paths whose values differ among `objs` (a path absent in some counts as differing). */
export function differingPaths(objs: Obj[]): string[] {
  const flats = objs.map((o) => flatten(o));
  const paths = new Set(flats.flatMap((f) => [...f.keys()]));
  return [...paths].filter((p) => new Set(flats.map((f) => f.get(p) ?? "(absent)")).size > 1).sort();
}

/** A value as shown in labels and the diff table: JSON, strings unquoted, absent as "–". */
export function showValue(json: string | undefined): string {
  if (json === undefined) return "–";
  try {
    const v = JSON.parse(json);
    return typeof v === "string" ? v : json;
  } catch {
    return json;
  }
}

/** A path as shown: without the leading "stages." (stage names are specific enough). */
export function showPath(path: string): string {
  return path.startsWith("stages.") ? path.slice("stages.".length) : path;
}

/**
 * The part of a config one eval row depends on: everything but the experiment's name, description and
 * pipeline, and only the stages on the row's chain (`from` links from its stage back to the first).
 * `stage` is eval.json's row stage ("grpo", or "grpo (cached sibling)"). A cached sibling's last stage is
 * this run's stage of that name planned with the sibling's own `from` (lib/pipeline/plan.ts SIBLINGS): a
 * Geo-R1-Zero row starts from the chain's first stage, a Geo-R1 row from `sft`, recorded so here too, so
 * that a sibling row groups with the same model's own rows in other runs.
 */
export function rowConfig(config: Obj, stage: string, label: string): Obj {
  const out: Obj = {};
  for (const [k, v] of Object.entries(config)) {
    if (k === "name" || k === "description" || k === "pipeline" || k === "stages") continue;
    out[k] = v;
  }
  const stages = isObj(config.stages) ? config.stages as Record<string, Obj> : {};
  const chain: Obj = {};
  let name: string | null = stage.replace(/ \(cached sibling\)$/, "");
  const sibling = name !== stage;
  for (let guard = 0; name !== null && stages[name] && guard < 32; guard++) {
    const st: Obj = clone(stages[name]);
    if (sibling && guard === 0 && label.startsWith("Geo-R1-Zero")) {
      const first = Object.entries(stages).find(([, s]) => s.from === null)?.[0] ?? null;
      st.from = first;
    } else if (sibling && guard === 0 && (label === "Geo-R1" || label.startsWith("Geo-R1 ")) && stages.sft) {
      st.from = "sft";
    }
    chain[name] = st;
    name = typeof st.from === "string" ? st.from : null;
  }
  out.stages = chain;
  return out;
}

/** Short labels for variants of one thing: `k=v, k=v` over the paths that differ among them. */
export function variantLabels(objs: Obj[]): { paths: string[]; labels: string[] } {
  const paths = differingPaths(objs);
  const flats = objs.map((o) => flatten(o));
  return {
    paths,
    labels: flats.map((f) => paths.map((p) => `${showPath(p)}=${showValue(f.get(p))}`).join(", ")),
  };
}
