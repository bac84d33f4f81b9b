/**
 * The Slurm executor against a real single-node Slurm (Debian `slurm-wlm` + munge): the cluster that
 * answers `sinfo` (CI starts one with .ci/install-slurm.sh), else one started by this test on localhost as
 * root (a private slurm.conf in a temp dir: own ports, spool and state dirs). The sweep is submitted as a
 * job array with the fake per-run command, waited for, and checked. Skipped where neither is possible
 * (`sh .ci/install-slurm.sh` to enable), unless GEO_R1_REQUIRE_SLURM=1 (set by .ci/run when it started a
 * cluster), which turns a missing cluster into a failure.
 */
import { join } from "node:path";
import { assertEquals, assertOk } from "./assert.ts";
import { runSweep, type SweepState } from "../lib/sweep/mod.ts";
import { fakeCommand, metricSteps, readJson, ROOT, sleep, writeSweep } from "./sweep_helpers.ts";

function which(p: string): boolean {
  try {
    return Deno.statSync(p).isFile;
  } catch {
    return false;
  }
}

/** A running cluster that `sinfo` reaches with the default configuration. */
function clusterUp(): boolean {
  if (!which("/usr/bin/sinfo")) return false;
  try {
    const o = new Deno.Command("sinfo", { args: ["-h", "-o", "%T"], stdout: "piped", stderr: "null" })
      .outputSync();
    return o.success && /idle|mix|alloc/.test(new TextDecoder().decode(o.stdout));
  } catch {
    return false;
  }
}

const existing = Deno.build.os === "linux" && clusterUp();
const available = existing || Deno.env.get("GEO_R1_REQUIRE_SLURM") === "1" ||
  (Deno.build.os === "linux" && which("/usr/sbin/slurmctld") && which("/usr/sbin/slurmd") &&
    which("/usr/bin/sbatch") && which("/usr/sbin/munged") && Deno.uid() === 0);

async function sh(cmd: string, env: Record<string, string> = {}): Promise<{ code: number; out: string }> {
  const o = await new Deno.Command("sh", { args: ["-c", cmd], env, stdout: "piped", stderr: "piped" })
    .output();
  const d = new TextDecoder();
  return { code: o.code, out: d.decode(o.stdout) + d.decode(o.stderr) };
}

interface Cluster {
  conf: string;
  stop(): Promise<void>;
}

/** Start munged (when not running), slurmctld and slurmd on private ports; null with a reason when it fails. */
async function startCluster(dir: string): Promise<Cluster | string> {
  const host = (await sh("hostname -s")).out.trim();
  const mungeUp = (await sh("munge -n | unmunge >/dev/null 2>&1")).code === 0;
  let mungePid: number | null = null;
  if (!mungeUp) {
    await sh(
      "mkdir -p /run/munge /var/lib/munge /var/log/munge && chown -R munge:munge /run/munge /var/lib/munge /var/log/munge 2>/dev/null",
    );
    if (!which("/etc/munge/munge.key")) await sh("(mungekey --create || create-munge-key) >/dev/null 2>&1");
    const r = await sh("runuser -u munge -- /usr/sbin/munged 2>&1 || /usr/sbin/munged --force 2>&1");
    if ((await sh("munge -n | unmunge >/dev/null 2>&1")).code !== 0) return `munged does not start: ${r.out}`;
    try {
      mungePid = Number((await Deno.readTextFile("/run/munge/munged.pid")).trim()) || null;
    } catch { /* unknown pid: leave it running */ }
  }
  const conf = join(dir, "slurm.conf");
  for (const d of ["state", "spool", "log"]) await Deno.mkdir(join(dir, d), { recursive: true });
  const port = 17000 + (Deno.pid % 1000) * 2;
  await Deno.writeTextFile(
    conf,
    `ClusterName=geor1test
SlurmctldHost=${host}
SlurmctldPort=${port}
SlurmdPort=${port + 1}
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
ReturnToService=2
SlurmctldPidFile=${dir}/slurmctld.pid
SlurmdPidFile=${dir}/slurmd.pid
SlurmdSpoolDir=${dir}/spool
StateSaveLocation=${dir}/state
SlurmUser=root
SwitchType=switch/none
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MailProg=/bin/true
SlurmctldLogFile=${dir}/log/slurmctld.log
SlurmdLogFile=${dir}/log/slurmd.log
NodeName=${host} CPUs=2 State=UNKNOWN
PartitionName=sweeptest Nodes=${host} Default=YES MaxTime=INFINITE State=UP
`,
  );
  const env = { SLURM_CONF: conf };
  const pidOf = async (f: string) => {
    try {
      return Number((await Deno.readTextFile(join(dir, f))).trim()) || null;
    } catch {
      return null;
    }
  };
  const stop = async () => {
    for (const f of ["slurmd.pid", "slurmctld.pid"]) {
      const pid = await pidOf(f);
      if (pid) {
        try {
          Deno.kill(pid, "SIGTERM");
        } catch { /* gone */ }
      }
    }
    await sleep(500);
    if (mungePid) {
      try {
        Deno.kill(mungePid, "SIGTERM");
      } catch { /* gone */ }
    }
  };
  const c1 = await sh(`/usr/sbin/slurmctld -c -f ${conf}`, env);
  const c2 = await sh(`/usr/sbin/slurmd -c -f ${conf}`, env);
  for (let i = 0; i < 60; i++) {
    const s = await sh("sinfo -h -o %T", env);
    if (s.code === 0 && /idle|mix/.test(s.out)) return { conf, stop };
    await sleep(500);
  }
  const logs = (await sh(`tail -n 5 ${dir}/log/*.log`)).out;
  await stop();
  return `slurm did not come up: ${c1.out} ${c2.out} ${logs}`;
}

Deno.test({
  name: "slurm executor: job array on a live single-node Slurm runs every run; resubmission is a no-op",
  ignore: !available,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "sweep_slurm_" });
    const cluster: Cluster | string = existing
      ? { conf: Deno.env.get("SLURM_CONF") ?? "/etc/slurm/slurm.conf", stop: async () => {} }
      : await startCluster(join(dir, "slurm"));
    if (typeof cluster === "string") throw new Error(cluster);
    const oldConf = Deno.env.get("SLURM_CONF");
    Deno.env.set("SLURM_CONF", cluster.conf);
    try {
      const runsDir = join(dir, "runs");
      const path = await writeSweep(dir, {
        name: "slurm",
        experiment: "geo-r1",
        preset: "tiny",
        grid: { "stages.grpo.grpo.groupSize": [2, 4] },
        seeds: [0, 1],
        workers: 2,
        executor: "slurm",
        slurm: { time: "00:10:00", cpusPerTask: 1 },
      });
      Deno.env.set("FAKE_STEP_MS", "20");
      const lines: string[] = [];
      const res = await runSweep({
        sweep: path,
        runsDir,
        reportsDir: null,
        command: fakeCommand(),
        cwd: ROOT,
        wait: true,
        pollMs: 500,
        log: (l) => lines.push(l),
        out: () => {},
      });
      assertEquals(res.exitCode, 0, lines.join("\n"));
      assertOk(res.jobId && /^\d+$/.test(res.jobId));
      const st = await readJson<SweepState>(join(runsDir, "sweeps", "slurm", "state.json"));
      assertEquals(st.runs.map((r) => r.status), ["done", "done", "done", "done"]);
      assertEquals(st.slurm?.jobId, res.jobId);
      const script = await Deno.readTextFile(st.slurm!.script);
      assertOk(script.includes("#SBATCH --array=0-3%2"));
      assertOk(script.includes("#SBATCH --time=00:10:00"));
      for (const r of st.runs) {
        assertEquals((await metricSteps(r.runDir)).steps, [1, 2, 3, 4, 5, 6]);
        assertOk((await Deno.readTextFile(join(r.runDir, "log.txt"))).includes(`of job ${res.jobId} on`));
      }
      const outs = [...Deno.readDirSync(join(runsDir, "sweeps", "slurm", "slurm"))].filter((e) =>
        e.name.startsWith("slurm-")
      );
      assertEquals(outs.length, 4);
      assertOk(res.reportPath && (await Deno.readTextFile(res.reportPath)).includes("Sweep slurm"));

      // Resubmitting a complete sweep submits nothing.
      const again = await runSweep({
        sweep: path,
        runsDir,
        reportsDir: null,
        command: fakeCommand(),
        cwd: ROOT,
        wait: true,
        log: () => {},
        out: () => {},
      });
      assertEquals(again.exitCode, 0);
      assertEquals(again.jobId, null);
    } finally {
      Deno.env.delete("FAKE_STEP_MS");
      if (oldConf === undefined) Deno.env.delete("SLURM_CONF");
      else Deno.env.set("SLURM_CONF", oldConf);
      await cluster.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
