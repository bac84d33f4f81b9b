/**
 * Checkpoints: a directory holding
 * - `model.safetensors`: every parameter (F32, little-endian), named as in `paramSpecs` (e.g.
 *   `dec.layers.0.attn.qkv.w`, weights stored [in, out]); `__metadata__` carries format/preset (strings).
 *   Loadable with `safetensors.torch.load_file`.
 * - `optim.safetensors` (optional): AdamW moments `adam_m.<name>` / `adam_v.<name>`, metadata `step`.
 * - `model.json`: format, config, step, sha256 + size of each tensor file, the tokenizer JSON, free meta.
 * Files are written atomically (lib/run/atomic.ts): tensor files first, model.json last, so a model.json
 * always describes complete tensor files. Loading verifies the hashes, then every tensor's dtype and shape
 * against the config, and that every weight is finite; any problem is a UserError naming the file (and the
 * tensor). Saving refuses NaN/Inf weights, so a diverged model never replaces a good checkpoint.
 * @module
 */
import { join } from "node:path";
import { atomicWrite, atomicWriteJson, removeStaleTemps } from "../run/atomic.ts";
import { UserError } from "../errors.ts";
import { validateConfig } from "./config.ts";
import { paramSpecs, TfVLM } from "./vlm.ts";
import type { ModelConfig, VLM } from "./types.ts";
import type { AdamW, AdamWState } from "../train/optim.ts";

export const CHECKPOINT_FORMAT = "geo-r1/checkpoint";
export const CHECKPOINT_VERSION = 1;

/** What model.json holds. */
export interface CheckpointMeta {
  format: string;
  version: number;
  config: ModelConfig;
  step: number | null;
  files: Record<string, { sha256: string; bytes: number }>;
  tokenizer: unknown;
  /** Free-form JSON from the caller (stage name, data position, ...). */
  meta: Record<string, unknown>;
  savedAt: string;
}

export interface SaveExtra {
  tokenizer: unknown;
  step?: number;
  /** Saved to optim.safetensors for exact resume. */
  optimizer?: AdamW | AdamWState;
  meta?: Record<string, unknown>;
}

/** One tensor of a safetensors file. */
export interface NamedTensor {
  name: string;
  shape: number[];
  data: Float32Array;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Encode tensors (F32) + string metadata as a safetensors file. */
export function encodeSafetensors(tensors: NamedTensor[], metadata: Record<string, string> = {}): Uint8Array {
  if (!LITTLE_ENDIAN) throw new Error("safetensors writer assumes a little-endian host");
  const header: Record<string, unknown> = { __metadata__: metadata };
  let off = 0;
  for (const t of tensors) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (n !== t.data.length) {
      throw new Error(`safetensors: ${t.name} has ${t.data.length} values for shape ${t.shape}`);
    }
    header[t.name] = { dtype: "F32", shape: t.shape, data_offsets: [off, off + n * 4] };
    off += n * 4;
  }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - (json.length % 8)) % 8);
  const hb = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + hb.length + off);
  const dv = new DataView(out.buffer);
  dv.setBigUint64(0, BigInt(hb.length), true);
  out.set(hb, 8);
  let p = 8 + hb.length;
  for (const t of tensors) {
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), p);
    p += t.data.byteLength;
  }
  return out;
}

/** Decode a safetensors file (F32 only). `file` names it in error messages. */
export function decodeSafetensors(
  bytes: Uint8Array,
  file: string,
): { tensors: Map<string, NamedTensor>; metadata: Record<string, string> } {
  const fail = (why: string): never => {
    throw new UserError(`${file}: ${why}`, 1);
  };
  if (bytes.length < 8) fail(`truncated (${bytes.length} bytes, no header)`);
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  if (n > bytes.length - 8) {
    fail(`truncated or corrupt: header length ${n} exceeds file size ${bytes.length}`);
  }
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, 8 + n)));
  } catch (e) {
    return fail(`corrupt header (${(e as Error).message})`);
  }
  if (typeof header !== "object" || header === null || Array.isArray(header)) {
    fail("corrupt header (not an object)");
  }
  const dataStart = 8 + n;
  const dataLen = bytes.length - dataStart;
  const tensors = new Map<string, NamedTensor>();
  let metadata: Record<string, string> = {};
  for (const [name, raw] of Object.entries(header)) {
    if (name === "__metadata__") {
      metadata = (raw ?? {}) as Record<string, string>;
      continue;
    }
    const e = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (e?.dtype !== "F32") fail(`tensor ${name}: dtype ${JSON.stringify(e?.dtype)}, expected "F32"`);
    const shape = e.shape as number[];
    const offs = e.data_offsets as number[];
    if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) {
      fail(`tensor ${name}: bad shape ${JSON.stringify(e.shape)}`);
    }
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((d) => Number.isInteger(d) && d >= 0)) {
      fail(`tensor ${name}: bad data_offsets ${JSON.stringify(e.data_offsets)}`);
    }
    const size = shape.reduce((a, b) => a * b, 1);
    if (offs[1] - offs[0] !== size * 4) {
      fail(
        `tensor ${name}: data_offsets [${offs}] hold ${offs[1] - offs[0]} bytes, shape [${shape}] needs ${
          size * 4
        }`,
      );
    }
    if (offs[1] > dataLen) {
      fail(`truncated: tensor ${name} ends at byte ${offs[1]} of a ${dataLen}-byte data section`);
    }
    // Copy into an aligned buffer (the data section need not be 4-byte aligned in the file buffer).
    const data = new Float32Array(size);
    new Uint8Array(data.buffer).set(bytes.subarray(dataStart + offs[0], dataStart + offs[1]));
    tensors.set(name, { name, shape, data });
  }
  return { tensors, metadata };
}

/** Hex SHA-256 of bytes. */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const h = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
  return Array.from(h, (b) => b.toString(16).padStart(2, "0")).join("");
}

function asTfVLM(model: VLM): TfVLM {
  if (!(model instanceof TfVLM)) throw new Error("checkpoint: the model is not a TfVLM");
  return model;
}

function optimTensors(state: AdamWState): NamedTensor[] {
  const out: NamedTensor[] = [];
  for (const [name, s] of state.slots) {
    out.push({ name: `adam_m.${name}`, shape: [s.m.length], data: s.m });
    out.push({ name: `adam_v.${name}`, shape: [s.v.length], data: s.v });
  }
  return out;
}

/** Write model.safetensors (+ optim.safetensors) and then model.json into `dir`, each atomically. */
export async function saveCheckpoint(dir: string, model: VLM, extra: SaveExtra): Promise<CheckpointMeta> {
  const m = asTfVLM(model);
  const cfg = m.config;
  const tensors: NamedTensor[] = m.namedParams().map(([name, v]) => ({
    name,
    shape: v.shape.slice(),
    data: v.dataSync() as Float32Array,
  }));
  // Never let a diverged model overwrite a good checkpoint.
  for (const t of tensors) {
    const bad = firstNonFinite(t.data);
    if (bad >= 0) {
      throw new Error(
        `${join(dir, "model.safetensors")}: refusing to save: tensor ${t.name}[${bad}] is ${t.data[bad]} ` +
          `(NaN/Inf weights); the previous checkpoint is kept`,
      );
    }
  }
  await removeStaleTemps(dir);
  const files: CheckpointMeta["files"] = {};
  const modelBytes = encodeSafetensors(tensors, {
    format: "pt",
    producer: CHECKPOINT_FORMAT,
    preset: cfg.preset,
    config: JSON.stringify(cfg),
  });
  await atomicWrite(join(dir, "model.safetensors"), modelBytes);
  files["model.safetensors"] = { sha256: await sha256Hex(modelBytes), bytes: modelBytes.length };
  if (extra.optimizer) {
    const st = "getState" in extra.optimizer ? extra.optimizer.getState() : extra.optimizer;
    const ob = encodeSafetensors(optimTensors(st), {
      format: "pt",
      producer: CHECKPOINT_FORMAT,
      step: String(st.step),
    });
    await atomicWrite(join(dir, "optim.safetensors"), ob);
    files["optim.safetensors"] = { sha256: await sha256Hex(ob), bytes: ob.length };
  } else {
    await Deno.remove(join(dir, "optim.safetensors")).catch(() => {});
  }
  const meta: CheckpointMeta = {
    format: CHECKPOINT_FORMAT,
    version: CHECKPOINT_VERSION,
    config: cfg,
    step: extra.step ?? null,
    files,
    tokenizer: extra.tokenizer,
    meta: extra.meta ?? {},
    savedAt: new Date().toISOString(),
  };
  await atomicWriteJson(join(dir, "model.json"), meta);
  return meta;
}

/** Read and check model.json of a checkpoint directory. */
export async function readCheckpointMeta(dir: string): Promise<CheckpointMeta> {
  const file = join(dir, "model.json");
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (e) {
    throw new UserError(`${file}: cannot read checkpoint (${(e as Error).message})`, 1);
  }
  let meta: CheckpointMeta;
  try {
    meta = JSON.parse(text);
  } catch (e) {
    throw new UserError(`${file}: corrupt JSON (${(e as Error).message})`, 1);
  }
  if (meta?.format !== CHECKPOINT_FORMAT) {
    throw new UserError(
      `${file}: format is ${JSON.stringify(meta?.format)}, expected "${CHECKPOINT_FORMAT}"`,
      1,
    );
  }
  if (meta.version !== CHECKPOINT_VERSION) {
    throw new UserError(
      `${file}: version ${meta.version} is not supported (expected ${CHECKPOINT_VERSION})`,
      1,
    );
  }
  if (!meta.files?.["model.safetensors"]) {
    throw new UserError(`${file}: files["model.safetensors"] is missing`, 1);
  }
  validateConfig(meta.config, `${file}: config`);
  return meta;
}

async function readVerified(dir: string, name: string, meta: CheckpointMeta): Promise<Uint8Array> {
  const file = join(dir, name);
  const want = meta.files[name];
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(file);
  } catch (e) {
    throw new UserError(`${file}: cannot read (${(e as Error).message})`, 1);
  }
  if (bytes.length !== want.bytes) {
    throw new UserError(
      `${file}: ${bytes.length} bytes, model.json records ${want.bytes} (truncated or replaced file)`,
      1,
    );
  }
  const got = await sha256Hex(bytes);
  if (got !== want.sha256) {
    throw new UserError(
      `${file}: sha256 ${got.slice(0, 16)}... does not match model.json (${want.sha256.slice(0, 16)}...): ` +
        `the file is corrupt or was modified`,
      1,
    );
  }
  return bytes;
}

/** Read the model tensors of a checkpoint, verified against the hash and the config's parameter list. */
async function readWeights(dir: string, meta: CheckpointMeta): Promise<Map<string, Float32Array>> {
  const file = join(dir, "model.safetensors");
  const bytes = await readVerified(dir, "model.safetensors", meta);
  const { tensors } = decodeSafetensors(bytes, file);
  const out = new Map<string, Float32Array>();
  for (const p of paramSpecs(meta.config)) {
    const t = tensors.get(p.name);
    if (!t) {
      throw new UserError(`${file}: tensor ${p.name} is missing (config expects shape [${p.shape}])`, 1);
    }
    if (t.shape.length !== p.shape.length || t.shape.some((d, i) => d !== p.shape[i])) {
      throw new UserError(
        `${file}: tensor ${p.name} has shape [${t.shape}], the config expects [${p.shape}]`,
        1,
      );
    }
    const bad = firstNonFinite(t.data);
    if (bad >= 0) {
      throw new UserError(`${file}: tensor ${p.name}[${bad}] is ${t.data[bad]} (NaN/Inf weights)`, 1);
    }
    out.set(p.name, t.data);
    tensors.delete(p.name);
  }
  if (tensors.size > 0) {
    throw new UserError(
      `${file}: unexpected tensor(s) not in the config: ${[...tensors.keys()].slice(0, 5).join(", ")}`,
      1,
    );
  }
  return out;
}

/** Read optim.safetensors (null when the checkpoint has none). */
export async function readOptimizerState(dir: string, meta: CheckpointMeta): Promise<AdamWState | null> {
  if (!meta.files["optim.safetensors"]) return null;
  const file = join(dir, "optim.safetensors");
  const bytes = await readVerified(dir, "optim.safetensors", meta);
  const { tensors, metadata } = decodeSafetensors(bytes, file);
  const step = Number(metadata.step);
  if (!Number.isInteger(step) || step < 0) {
    throw new UserError(`${file}: __metadata__.step is missing or invalid`, 1);
  }
  const slots = new Map<string, { m: Float32Array; v: Float32Array }>();
  for (const p of paramSpecs(meta.config)) {
    const m = tensors.get(`adam_m.${p.name}`), v = tensors.get(`adam_v.${p.name}`);
    const size = p.shape.reduce((a, b) => a * b, 1);
    for (const [k, t] of [["adam_m", m], ["adam_v", v]] as const) {
      if (!t) throw new UserError(`${file}: tensor ${k}.${p.name} is missing`, 1);
      if (t.data.length !== size) {
        throw new UserError(
          `${file}: tensor ${k}.${p.name} has ${t.data.length} values, expected ${size}`,
          1,
        );
      }
    }
    slots.set(p.name, { m: m!.data, v: v!.data });
  }
  return { step, slots };
}

/** Load a checkpoint: a new model with its weights, the config, the tokenizer JSON and model.json. */
export async function loadCheckpoint(dir: string, opts: { trainable?: boolean } = {}): Promise<{
  model: TfVLM;
  config: ModelConfig;
  tokenizer: unknown;
  meta: CheckpointMeta;
  optimizerState: AdamWState | null;
}> {
  const meta = await readCheckpointMeta(dir);
  const weights = await readWeights(dir, meta);
  const optimizerState = await readOptimizerState(dir, meta);
  const model = new TfVLM(meta.config, { trainable: opts.trainable ?? true });
  model.setWeights(weights);
  return { model, config: meta.config, tokenizer: meta.tokenizer, meta, optimizerState };
}

/**
 * Restore weights (and optimiser state, when given and saved) into existing objects, for resume. The
 * checkpoint's config must equal the model's. Returns model.json.
 */
export async function restoreCheckpoint(dir: string, model: VLM, optimizer?: AdamW): Promise<CheckpointMeta> {
  const m = asTfVLM(model);
  const meta = await readCheckpointMeta(dir);
  if (canonicalJson(meta.config) !== canonicalJson(m.config)) {
    throw new UserError(`${join(dir, "model.json")}: config differs from the model being resumed`, 1);
  }
  m.setWeights(await readWeights(dir, meta));
  if (optimizer) {
    const st = await readOptimizerState(dir, meta);
    if (!st) throw new UserError(`${join(dir, "model.json")}: no optimizer state to resume from`, 1);
    optimizer.setState(st);
  }
  return meta;
}

/** Index of the first NaN/Inf value, or -1. */
function firstNonFinite(a: Float32Array): number {
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    if (x - x !== 0) return i; // NaN - NaN and Inf - Inf are NaN
  }
  return -1;
}

/** JSON with object keys sorted (order-independent comparison). */
function canonicalJson(v: unknown): string {
  return JSON.stringify(
    v,
    (_k, x) =>
      x && typeof x === "object" && !Array.isArray(x)
        ? Object.fromEntries(Object.keys(x).sort().map((k) => [k, (x as Record<string, unknown>)[k]]))
        : x,
  );
}
