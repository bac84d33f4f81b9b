/**
 * Sweeps: schema errors, grid/list expansion and stable run ids (equal to `exp --dry-run`'s), the local
 * executor with a fake per-run command (skip, resume, failed-run isolation, logs, state, report), the Slurm
 * job script, and the shipped sweep files.
 */
import { join } from "node:path";
import { assert, assertEquals, assertOk, assertRejects } from "./assert.ts";
import { UserError } from "../lib/errors.ts";
import {
  expandCells,
  listSweeps,
  loadSweep,
  planRuns,
  runSweep,
  slurmScript,
  sweepProblems,
  type SweepState,
} from "../lib/sweep/mod.ts";
import { fakeCommand, metricSteps, readJson, ROOT, smallSweep, writeSweep } from "./sweep_helpers.ts";

const quiet = { log: () => {}, out: () => {} };

Deno.test("sweep schema: errors name the file and the JSON pointer", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sweep_schema_" });
  try {
    const cases: [Record<string, unknown>, RegExp[]][] = [
      [{ ...smallSweep("a"), seed: [0] }, [
        /sweep\.json: \/seed: unknown key 'seed'; did you mean 'seeds'\?/,
      ]],
      [{ ...smallSweep("a"), list: [{ label: "x", set: {} }] }, [
        /\/: needs exactly one of 'grid' or 'list'/,
      ]],
      [{ ...smallSweep("a"), preset: "huge" }, [
        /\/preset: must be one of "tiny", "small", "large", got string "huge"/,
      ]],
      [{ ...smallSweep("a"), grid: { seed: [1, 2] } }, [/\/grid\/seed: the master seed is swept by 'seeds'/]],
      [{ ...smallSweep("a"), grid: { "stages..x": [1] } }, [/\/grid: invalid key 'stages\.\.x'/]],
      [{ ...smallSweep("a"), grid: { "stages.grpo.grpo.beta": [] } }, [
        /\/grid\/stages\.grpo\.grpo\.beta: must NOT have fewer than 1 items/,
      ]],
      [{ ...smallSweep("a"), workers: 0, seeds: [] }, [
        /\/workers: must be >= 1/,
        /\/seeds: must NOT have fewer than 1 items/,
      ]],
      [
        {
          name: "a",
          experiment: "geo-r1",
          seeds: [0],
          list: [{ label: "x", set: {} }, { label: "x", set: {} }],
        },
        [/\/list\/1\/label: duplicate label 'x'/],
      ],
      [{ ...smallSweep("a"), executor: "k8s", slurm: { partitions: "x" } }, [
        /\/executor: must be one of/,
        /\/slurm\/partitions: unknown key 'partitions'; did you mean 'partition'\?/,
      ]],
      [{ ...smallSweep("a"), experiment: "geo-r2" }, [
        /\/experiment: unknown experiment 'geo-r2'; did you mean 'geo-r1'\?/,
      ]],
    ];
    for (const [value, patterns] of cases) {
      const path = await writeSweep(dir, value);
      const err = await loadSweep(path).then(() => null, (e) => e);
      assertOk(err instanceof UserError, `expected a UserError for ${JSON.stringify(value)}`);
      assertEquals(err.exitCode, 2);
      assertOk(err.message.includes("sweep.json"), err.message);
      for (const p of patterns) assert.match(err.message, p);
    }
    assert.match(
      (await loadSweep(join(dir, "missing.json")).catch((e) => e)).message,
      /sweep file not found: .*missing\.json/,
    );
    assert.match(
      (await loadSweep("grup-size").catch((e) => e)).message,
      /unknown sweep 'grup-size'; did you mean 'group-size'\?/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("shipped sweeps validate and expand; the ablations have 3 seeds", async () => {
  const names = listSweeps();
  for (const n of ["coord-tokens", "group-size", "kl-beta", "loss-type", "sft-before-rl", "tiny-smoke"]) {
    assertOk(names.includes(n), n);
  }
  for (const n of names) {
    const loaded = await loadSweep(n);
    assertEquals(sweepProblems(loaded.sweep), []);
    const runs = await planRuns(loaded, { runsDir: "runs" });
    assertEquals(new Set(runs.map((r) => r.runId)).size, runs.length, `${n}: run ids must be distinct`);
    if (n !== "tiny-smoke") assertEquals(loaded.sweep.seeds, [0, 1, 2]);
  }
  const gs = await loadSweep("group-size");
  assertEquals(expandCells(gs.sweep).map((c) => c.label), ["groupSize=4", "groupSize=8", "groupSize=16"]);
  const sft = await loadSweep("sft-before-rl");
  assertEquals(expandCells(sft.sweep).map((c) => c.params.pipeline), [["base", "grpo"], [
    "base",
    "sft",
    "grpo",
  ]]);
  const smoke = await loadSweep("tiny-smoke");
  assertOk((await planRuns(smoke, { runsDir: "runs" })).length >= 6);
  assertEquals(smoke.sweep.preset, "tiny");
});

Deno.test("grid expansion: cartesian product in key order, stable run ids equal to exp --dry-run", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sweep_grid_" });
  try {
    const path = await writeSweep(dir, {
      name: "g",
      experiment: "geo-r1",
      preset: "tiny",
      sets: { "stages.grpo.steps": 3 },
      grid: {
        "stages.grpo.grpo.groupSize": [2, 4],
        "stages.grpo.grpo.lossType": ["grpo", "dapo", "dr_grpo"],
      },
      seeds: [0, 7],
    });
    const loaded = await loadSweep(path);
    const cells = expandCells(loaded.sweep);
    assertEquals(cells.map((c) => c.label), [
      "groupSize=2, lossType=grpo",
      "groupSize=2, lossType=dapo",
      "groupSize=2, lossType=dr_grpo",
      "groupSize=4, lossType=grpo",
      "groupSize=4, lossType=dapo",
      "groupSize=4, lossType=dr_grpo",
    ]);
    const a = await planRuns(loaded, { runsDir: join(dir, "runs") });
    const b = await planRuns(await loadSweep(path), { runsDir: join(dir, "runs") });
    assertEquals(a.length, 12);
    assertEquals(a.map((r) => r.runId), b.map((r) => r.runId));
    assertEquals(new Set(a.map((r) => r.hash)).size, 12);
    assertEquals(a[3].sets, [
      "stages.grpo.steps=3",
      "stages.grpo.grpo.groupSize=2",
      'stages.grpo.grpo.lossType="dapo"',
    ]);
    assertEquals(a[3].seed, 7);
    // Same id as the real CLI computes.
    const r = a[3];
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-read",
        "--allow-write",
        "--allow-env",
        "--allow-ffi",
        "--allow-sys",
        join(ROOT, "main.ts"),
        "exp",
        "geo-r1",
        "--preset",
        "tiny",
        ...r.sets.flatMap((s) => ["--set", s]),
        "--seed",
        String(r.seed),
        "--dry-run",
      ],
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assertOk(out.success, new TextDecoder().decode(out.stderr));
    const dry = JSON.parse(new TextDecoder().decode(out.stdout));
    assertEquals(dry.runId, r.runId);
    assertEquals(dry.hash, r.hash);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("local executor (fake command): runs all, skips done, isolates a failure, resumes it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sweep_local_" });
  const runsDir = join(dir, "runs");
  const reportsDir = join(dir, "reports");
  try {
    const path = await writeSweep(dir, smallSweep("local"));
    const common = { sweep: path, runsDir, reportsDir, command: fakeCommand(), cwd: ROOT, ...quiet };
    // 1) groupSize=2 runs fail after step 2; the groupSize=4 runs still finish.
    const r1 = await runSweep({ ...common, env: { FAKE_FAIL_IF: "groupSize=2", FAKE_STEP_MS: "20" } });
    assertEquals(r1.exitCode, 1);
    const st1 = await readJson<SweepState>(join(runsDir, "sweeps", "local", "state.json"));
    assertEquals(st1.runs.map((r) => r.status), ["failed", "failed", "failed", "done", "done", "done"]);
    for (const r of st1.runs.slice(0, 3)) {
      assertEquals(r.exitCode, 1);
      assert.match(r.error!, /exit code 1/);
      assert.match(r.error!, /fake failure requested/);
    }
    for (const r of st1.runs) {
      assertOk((await Deno.readTextFile(r.log)).includes("step 2/6"));
      assertOk(
        (await Deno.readTextFile(join(r.runDir, "log.txt"))).includes("=== geo-r1 sweep 'local' attempt 1"),
      );
    }
    // Runs of one seed (sharing cached base/SFT stages) never overlap.
    for (const a of st1.runs) {
      for (const b of st1.runs) {
        if (a === b || a.seed !== b.seed) continue;
        assertOk(
          a.endedAt! <= b.startedAt! || b.endedAt! <= a.startedAt!,
          `${a.runId} and ${b.runId} overlap`,
        );
      }
    }
    const startedAt = new Map<string, string>();
    for (const r of st1.runs) {
      startedAt.set(r.runId, (await readJson(join(r.runDir, "manifest.json"))).startedAt as string);
    }
    // The report exists already, with the failures listed.
    const html1 = await Deno.readTextFile(join(runsDir, "sweeps", "local", "report.html"));
    assert.match(html1, /fake failure requested/);

    // 2) Re-run: done runs skipped (not restarted), failed ones resumed to completion.
    const r2 = await runSweep({ ...common, env: { FAKE_STEP_MS: "20" } });
    assertEquals(r2.exitCode, 0);
    const st2 = await readJson<SweepState>(join(runsDir, "sweeps", "local", "state.json"));
    assertEquals(st2.runs.map((r) => r.status), Array(6).fill("done"));
    assertEquals(st2.runs.map((r) => r.attempts), [2, 2, 2, 1, 1, 1]);
    assertEquals(st2.invocations.length, 2);
    for (const r of st2.runs) {
      const m = await readJson(join(r.runDir, "manifest.json"));
      assertEquals(m.startedAt, startedAt.get(r.runId), `${r.runId} must not be restarted from scratch`);
      const { steps, torn } = await metricSteps(r.runDir);
      assertEquals(torn, 0);
      assertEquals(steps, [1, 2, 3, 4, 5, 6]);
    }
    assert.match(await Deno.readTextFile(join(st2.runs[0].runDir, "log.txt")), /resuming/);

    // 3) Third run: nothing to do.
    const r3 = await runSweep({ ...common });
    assertEquals(r3.exitCode, 0);
    assertEquals(r3.local?.completed, 0);
    const st3 = await readJson<SweepState>(join(runsDir, "sweeps", "local", "state.json"));
    assertEquals(st3.runs.map((r) => r.attempts), [2, 2, 2, 1, 1, 1]);

    // Report: every cell, CI over seeds, one chart per swept parameter, relative links to run reports.
    const html = await Deno.readTextFile(join(runsDir, "sweeps", "local", "report.html"));
    assert.match(html, /groupSize=2/);
    assert.match(html, /groupSize=4/);
    assert.match(html, /Pairing accuracy vs groupSize/);
    assert.match(html, /Completion length \(tokens\) vs groupSize/);
    assertOk(
      html.includes(`href="../../${st3.runs[0].runId}/report.html"`),
      "relative link to the run report",
    );
    assert.match(html, /Content-Security-Policy/);
    assert.match(html, /\d+\.\d% \[\d+\.\d, \d+\.\d\]/);
    const copy = await Deno.readTextFile(join(reportsDir, "sweep-local.html"));
    assertOk(copy.includes(`href="../runs/${st3.runs[0].runId}/report.html"`));
    assert.match(await Deno.readTextFile(join(reportsDir, "index.html")), /Sweep local/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("local executor: a run that exits 0 without eval.json is failed; a missing command fails cleanly", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sweep_bad_" });
  try {
    const path = await writeSweep(dir, { ...smallSweep("bad"), seeds: [0] });
    const res = await runSweep({
      sweep: path,
      runsDir: join(dir, "runs"),
      reportsDir: null,
      command: ["true"],
      cwd: ROOT,
      ...quiet,
    });
    assertEquals(res.exitCode, 1);
    for (const r of res.state.runs) {
      assertEquals(r.status, "failed");
      assertEquals(r.exitCode, 0);
      assert.match(r.error!, /exited 0 but the run directory has no done manifest/);
    }
    const res2 = await runSweep({
      sweep: path,
      runsDir: join(dir, "runs"),
      reportsDir: null,
      command: ["/nonexistent/geo-r1-cmd"],
      cwd: ROOT,
      ...quiet,
    });
    assertEquals(res2.exitCode, 1);
    for (const r of res2.state.runs) assertEquals(r.exitCode, 127);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("dry run prints the plan and writes nothing", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sweep_dry_" });
  try {
    const path = await writeSweep(dir, smallSweep("dry"));
    let text = "";
    const res = await runSweep({
      sweep: path,
      runsDir: join(dir, "runs"),
      dryRun: true,
      log: () => {},
      out: (t) => text += t,
    });
    assertEquals(res.exitCode, 0);
    assert.match(text, /6 runs, 6 to run, 2 workers/);
    assert.match(
      text,
      /main\.ts exp geo-r1 --preset tiny --set stages\.grpo\.grpo\.groupSize=2 --seed 0 --runs-dir .* --resume/,
    );
    let script = "";
    await runSweep({
      sweep: path,
      runsDir: join(dir, "runs"),
      dryRun: true,
      executor: "slurm",
      log: () => {},
      out: (t) => script += t,
    });
    assert.match(script, /#SBATCH --array=0-5%2/);
    await assertRejects(() => Deno.stat(join(dir, "runs")));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("slurm job script: array, options, quoting; a task runs its own command", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sweep_slurm_script_" });
  try {
    const tasks = [0, 1, 2].map((i) => ({
      runId: `r${i}`,
      runDir: join(dir, `r${i}`),
      log: join(dir, "logs", `r${i}.log`),
      argv: [
        "sh",
        "-c",
        `mkdir -p '${join(dir, `r${i}`)}'; echo "task ${i} it's \\$0=$0"; exit ${i}`,
        "x",
        `--set`,
        `a="b c"`,
      ],
    }));
    const script = slurmScript({
      sweep: "s",
      tasks,
      workers: 2,
      cwd: dir,
      outDir: join(dir, "slurm"),
      runsJson: join(dir, "slurm", "runs.json"),
      slurm: { partition: "debug", time: "00:10:00", cpusPerTask: 2, mem: "4G", extraArgs: ["--gres=gpu:1"] },
    });
    for (
      const l of [
        "#SBATCH --array=0-2%2",
        "#SBATCH --partition=debug",
        "#SBATCH --time=00:10:00",
        "#SBATCH --cpus-per-task=2",
        "#SBATCH --mem=4G",
        "#SBATCH --gres=gpu:1",
        "#SBATCH --job-name=geo-r1-sweep-s",
      ]
    ) assertOk(script.includes(l), l);
    const file = join(dir, "job.sh");
    await Deno.writeTextFile(file, script);
    const syntax = await new Deno.Command("bash", { args: ["-n", file] }).output();
    assertOk(syntax.success, new TextDecoder().decode(syntax.stderr));
    for (const i of [0, 1, 2]) {
      const out = await new Deno.Command("bash", { args: [file], env: { SLURM_ARRAY_TASK_ID: String(i) } })
        .output();
      assertEquals(out.code, i);
      const log = await Deno.readTextFile(tasks[i].log);
      assertOk(log.includes(`task ${i} it's $0=x`), log);
      assertOk(log.includes(`=== exit ${i}`));
      assertEquals(
        await Deno.readTextFile(join(tasks[i].runDir, "log.txt")),
        log.replace(`=== exit ${i}\n`, ""),
      );
    }
    const none = await new Deno.Command("bash", {
      args: [file],
      env: { SLURM_ARRAY_TASK_ID: "3" },
      stderr: "piped",
    }).output();
    assertEquals(none.code, 2);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("sweep report escapes labels and error tails (same rules as the run report)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sweep_xss_" });
  try {
    const path = await writeSweep(dir, {
      name: "xss",
      experiment: "geo-r1",
      preset: "tiny",
      list: [{ label: `<img src=x onerror="alert(1)">`, set: { "stages.grpo.grpo.beta": 0.01 } }],
      seeds: [0],
    });
    const res = await runSweep({
      sweep: path,
      runsDir: join(dir, "runs"),
      reportsDir: null,
      command: ["sh", "-c", `echo '</pre><script>alert(2)</script>'; exit 3`],
      cwd: ROOT,
      ...quiet,
    });
    assertEquals(res.exitCode, 1);
    const html = await Deno.readTextFile(res.reportPath!);
    assertOk(!html.includes("<img src=x"), "label must be escaped");
    assertOk(!html.includes("<script>alert(2)"), "log tail must be escaped");
    assertOk(html.includes("&lt;script&gt;alert(2)&lt;/script&gt;"));
    assertOk(html.includes("&lt;img src=x onerror=&quot;alert(1)&quot;&gt;"));
    assert.match(html, /exit code 3/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a run locked by another live sweep is reported busy; a stale lock is taken over", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sweep_lock_" });
  const holder = new Deno.Command("sleep", { args: ["60"] }).spawn();
  try {
    const runsDir = join(dir, "runs");
    const path = await writeSweep(dir, { ...smallSweep("lock"), seeds: [0] });
    const runs = await planRuns(await loadSweep(path), { runsDir });
    const locks = join(runsDir, "sweeps", ".locks");
    await Deno.mkdir(locks, { recursive: true });
    await Deno.writeTextFile(
      join(locks, `${runs[1].runId}.json`),
      JSON.stringify({ pid: holder.pid, sweep: "other", wrapperPid: null, at: "" }),
    );
    const common = { sweep: path, runsDir, reportsDir: null, command: fakeCommand(), cwd: ROOT, ...quiet };
    const r1 = await runSweep({ ...common, env: { FAKE_STEP_MS: "10" } });
    assertEquals(r1.exitCode, 1);
    assertEquals(r1.state.runs.map((r) => r.status), ["done", "busy"]);
    assert.match(r1.state.runs[1].error!, /being run by another sweep \(other, pid \d+\)/);
    holder.kill("SIGKILL");
    await holder.status;
    const r2 = await runSweep({ ...common, env: { FAKE_STEP_MS: "10" } });
    assertEquals(r2.exitCode, 0);
    assertEquals(r2.state.runs.map((r) => r.status), ["done", "done"]);
    assertEquals(r2.state.runs.map((r) => r.attempts), [1, 1]);
  } finally {
    try {
      holder.kill("SIGKILL");
      await holder.status;
    } catch { /* already gone */ }
    await Deno.remove(dir, { recursive: true });
  }
});
