/**
 * A fake per-run command for the sweep tests (not a test file itself): takes the arguments of `main.ts exp`,
 * resolves the spec with the real loadSpec (so the run id is the one `exp` would use), and behaves like a
 * small resumable run: run dir created atomically with manifest.json, one metrics.jsonl line per step
 * (lib/run/jsonl.ts appendJsonl), a checkpoint file every 2 steps, on `--resume` a torn last line repaired
 * and lines after the last checkpoint dropped (so no step is ever duplicated), then eval.json and the
 * manifest marked done. Controlled by env:
 *   FAKE_STEPS (default 6), FAKE_STEP_MS (default 80),
 *   FAKE_FAIL_IF  substring of the joined --set arguments that makes the run fail (exit 1) after step 2.
 * @module
 */
import { parseArgs } from "node:util";
import { join, resolve } from "node:path";
import { loadSpec, resolveExperimentPath } from "../lib/spec/load.ts";
import { RunDir } from "../lib/run/rundir.ts";
import { atomicWriteJson } from "../lib/run/atomic.ts";
import { appendJsonl, filterJsonl, repairJsonl } from "../lib/run/jsonl.ts";
import { hashString32 } from "../lib/rng.ts";

const { values, positionals } = parseArgs({
  args: Deno.args,
  options: {
    preset: { type: "string" },
    set: { type: "string", multiple: true },
    seed: { type: "string" },
    resume: { type: "boolean" },
    "runs-dir": { type: "string" },
  },
  allowPositionals: true,
});
const sets = [...(values.set ?? [])];
if (values.seed !== undefined) sets.push(`seed=${values.seed}`);
const { spec, hash } = await loadSpec(resolveExperimentPath(positionals[0]), { preset: values.preset, sets });
const runId = RunDir.runId(spec.name, hash);
const runsDir = resolve(values["runs-dir"] ?? "runs");
const dir = join(runsDir, runId);
const steps = Number(Deno.env.get("FAKE_STEPS") ?? 6);
const stepMs = Number(Deno.env.get("FAKE_STEP_MS") ?? 80);
const failIf = Deno.env.get("FAKE_FAIL_IF");
const metrics = join(dir, "metrics.jsonl");
const ckptPath = join(dir, "ckpt.json");

let manifest: Record<string, unknown>;
let start = 1;
let exists = false;
try {
  exists = (await Deno.stat(dir)).isDirectory;
} catch { /* fresh */ }
if (exists) {
  if (!values.resume) {
    console.error(`run directory ${dir} already exists; pass --resume`);
    Deno.exit(2);
  }
  manifest = JSON.parse(await Deno.readTextFile(join(dir, "manifest.json")));
  let ckpt = 0;
  try {
    ckpt = JSON.parse(await Deno.readTextFile(ckptPath)).step;
  } catch { /* no checkpoint yet */ }
  await repairJsonl(metrics).catch(() => 0);
  await filterJsonl<{ step: number }>(metrics, (r) => r.step <= ckpt).catch(() => 0);
  start = ckpt + 1;
  manifest.status = "running";
  manifest.endedAt = null;
  await atomicWriteJson(join(dir, "manifest.json"), manifest);
  console.log(`resuming ${runId} from step ${start}`);
} else {
  const tmp = join(runsDir, `.${runId}.${Deno.pid}.tmp`);
  await Deno.mkdir(tmp, { recursive: true });
  manifest = {
    name: spec.name,
    runId,
    specHash: hash,
    seed: spec.seed,
    startedAt: new Date().toISOString(),
    endedAt: null,
    status: "running",
    stages: [],
  };
  await atomicWriteJson(join(tmp, "spec.resolved.json"), spec);
  await atomicWriteJson(join(tmp, "manifest.json"), manifest);
  await Deno.rename(tmp, dir);
  console.log(`run ${runId}`);
}

for (let step = start; step <= steps; step++) {
  await new Promise((r) => setTimeout(r, stepMs));
  await appendJsonl(metrics, {
    stage: "grpo",
    kind: "grpo",
    step,
    time: Date.now(),
    loss: 1 / step,
    pad: "x".repeat(200),
  });
  if (step % 2 === 0) await atomicWriteJson(ckptPath, { step });
  console.log(`step ${step}/${steps}`);
  if (failIf && step === 2 && sets.join(" ").includes(failIf)) {
    manifest.status = "failed";
    manifest.error = "fake failure";
    manifest.endedAt = new Date().toISOString();
    await atomicWriteJson(join(dir, "manifest.json"), manifest);
    console.error("error: fake failure requested by FAKE_FAIL_IF");
    Deno.exit(1);
  }
}

const acc = 0.25 + (hashString32(hash) % 1000) / 2000;
const pipeline = spec.pipeline;
await atomicWriteJson(join(dir, "eval.json"), {
  experiment: spec.name,
  runId,
  rows: [{
    stage: pipeline[pipeline.length - 1],
    label: pipeline.includes("sft") ? "Geo-R1" : "Geo-R1-Zero",
    stageHash: hash.slice(0, 16),
    pairing: {
      n: 8,
      accuracy: acc,
      ci: [acc - 0.1, acc + 0.1],
      meanLength: 20 + spec.seed,
      lengthCi: [18, 24],
      formatRate: 1,
      byTier: {},
    },
    gallery: [],
  }],
});
await Deno.writeTextFile(join(dir, "report.html"), `<!DOCTYPE html><title>${runId}</title>`);
manifest.status = "done";
manifest.endedAt = new Date().toISOString();
await atomicWriteJson(join(dir, "manifest.json"), manifest);
console.log("done");
