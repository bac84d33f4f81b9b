/**
 * Generated shell stays inert: a sweep's `slurm` options that hold a newline (or any control character) are
 * refused by the sweep schema, naming the file and field, and `slurmScript` itself refuses to put such a
 * value (or a path with one) on an `#SBATCH` line, so no option can become a bare command line in job.sh.
 */
import { assert, assertThrows } from "../assert.ts";
import { loadSweep, slurmScript } from "../../lib/sweep/mod.ts";
import { UserError } from "../../lib/errors.ts";
import { writeSweep } from "../sweep_helpers.ts";

const EVIL = "\ntouch /tmp/geo-r1-pwned";

function sweepWith(slurm: Record<string, unknown>) {
  return {
    name: "inject",
    experiment: "geo-r1",
    preset: "tiny",
    grid: { "stages.grpo.grpo.groupSize": [2] },
    seeds: [0],
    executor: "slurm",
    slurm,
  };
}

Deno.test("reliability: a newline in slurm.partition, time, mem or extraArgs is refused by the sweep schema", async () => {
  const dir = await Deno.makeTempDir({ prefix: "geo-r1-rel-slurm-" });
  try {
    const cases: [string, Record<string, unknown>][] = [
      ["/slurm/partition", { partition: `debug${EVIL}` }],
      ["/slurm/partition", { partition: "debug; touch /tmp/x" }],
      ["/slurm/time", { time: `01:00:00${EVIL}` }],
      ["/slurm/mem", { mem: `8G${EVIL}` }],
      ["/slurm/extraArgs/0", { extraArgs: [`--gres=gpu:1${EVIL}`] }],
      ["/slurm/extraArgs/0", { extraArgs: ["--comment=a b"] }],
    ];
    for (const [field, slurm] of cases) {
      const path = await writeSweep(dir, sweepWith(slurm));
      const msg = await loadSweep(path).then(() => "accepted", (e) => {
        assert(e instanceof UserError, String(e));
        return e.message;
      });
      assert(msg.includes(path) && msg.includes(field), `${JSON.stringify(slurm)}: ${msg}`);
      assert(!msg.includes("\n"), `one line: ${JSON.stringify(msg)}`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

Deno.test("reliability: slurmScript never writes a control character into job.sh", () => {
  const base = {
    sweep: "inject",
    workers: 1,
    cwd: "/repo",
    outDir: "/repo/runs/sweeps/inject/slurm",
    runsJson: "/repo/runs/sweeps/inject/slurm/runs.json",
    tasks: [{ runId: "r-1", runDir: "/repo/runs/r-1", log: "/repo/l.log", argv: ["deno", "run", "x\ny"] }],
  };
  // The argv is single-quoted: a newline inside it stays inside one word.
  const ok = slurmScript({ ...base, slurm: { partition: "debug", extraArgs: ["--gres=gpu:1"] } });
  assert(ok.includes("#SBATCH --partition=debug\n"), ok);
  assert(ok.includes("'x\ny'"), ok);
  for (
    const bad of [
      { ...base, slurm: { partition: `debug${EVIL}` } },
      { ...base, slurm: { extraArgs: [`--gres=gpu:1${EVIL}`] } },
      { ...base, slurm: { time: `1${EVIL}` } },
      { ...base, slurm: { mem: `1G${EVIL}` } },
      { ...base, cwd: `/repo${EVIL}` },
      { ...base, outDir: `/out${EVIL}` },
    ]
  ) {
    assertThrows(() => slurmScript(bad as Parameters<typeof slurmScript>[0]), /#SBATCH/);
  }
  // A path with a space stays one word on its #SBATCH line.
  const spaced = slurmScript({ ...base, cwd: "/my repo" });
  assert(spaced.includes("#SBATCH --chdir='/my repo'\n"), spaced);
});
