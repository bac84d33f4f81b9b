import { join } from "node:path";
import { assert, assertEquals, assertRejects } from "./assert.ts";
import { loadSpec } from "../lib/spec/load.ts";
import { displayPath, EXPERIMENTS_DIR } from "../lib/spec/mod.ts";
import {
  appendJsonl,
  filterJsonl,
  gitInfo,
  JsonlWriter,
  manifestMismatches,
  progress,
  readJsonl,
  repairJsonl,
  RunDir,
} from "../lib/run/mod.ts";
import type { Manifest } from "../lib/run/records.ts";
import { UserError } from "../lib/errors.ts";

const backend = { name: "wasm", adapter: null, isFallbackAdapter: null };

async function withTmp(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "geo-r1-run-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("RunDir.prepare: creates spec.resolved.json + manifest atomically, refuses reuse without --resume", async () => {
  await withTmp(async (runsDir) => {
    const { spec, hash } = await loadSpec(join(EXPERIMENTS_DIR, "geo-r1.json"), { preset: "tiny" });
    const { run, manifest, resumed } = await RunDir.prepare({
      runsDir,
      spec,
      hash,
      backend,
      tfjsVersion: "4.22.0",
      argv: ["exp", "geo-r1"],
    });
    assertEquals(resumed, false);
    assertEquals(run.runId, `geo-r1-${hash.slice(0, 8)}`);
    assertEquals([...Deno.readDirSync(runsDir)].map((e) => e.name), [run.runId]);
    assertEquals(JSON.parse(await Deno.readTextFile(run.specPath)), spec);
    const m = await run.readManifest();
    assertEquals(m, manifest);
    assertEquals(m.status, "running");
    assertEquals(m.specHash, hash);
    assertEquals(m.runId, run.runId);
    assertEquals(m.seed, 0);
    assertEquals(m.argv, ["exp", "geo-r1"]);
    assertEquals(m.versions.deno, Deno.version.deno);
    assertEquals(m.versions.tfjs, "4.22.0");
    assertEquals(m.backend, backend);
    assert(/^[0-9a-f]{64}$/.test(m.lockHash ?? ""), "deno.lock hash");
    assertEquals(m.permissions.read, "granted");
    assert(["granted", "prompt", "denied"].includes(m.permissions.net), m.permissions.net);
    assert(m.device.cpus > 0);

    await assertRejects(
      RunDir.prepare({ runsDir, spec, hash, backend, tfjsVersion: "4.22.0" }),
      (e: unknown) => {
        assert(e instanceof UserError);
        assertEquals(
          e.message,
          `run directory ${displayPath(run.path)} already exists (status: running); ` +
            `pass --resume to continue it, or remove the directory to start over`,
        );
        return true;
      },
    );

    const again = await RunDir.prepare({ runsDir, spec, hash, backend, tfjsVersion: "4.22.0", resume: true });
    assertEquals(again.resumed, true);
    assertEquals(again.manifest.startedAt, m.startedAt);

    // A different commit in the stored manifest: resume refuses, --force-resume records it.
    await run.updateManifest((x) => {
      x.git = { commit: "0123456789abcdef0123456789abcdef01234567", dirty: false };
      x.status = "failed";
      x.error = "boom";
    });
    await assertRejects(
      RunDir.prepare({ runsDir, spec, hash, backend, tfjsVersion: "4.22.0", resume: true }),
      (e: unknown) => {
        assert(e instanceof UserError);
        assert(
          e.message.startsWith(
            `refusing to resume ${
              displayPath(run.path)
            }: it was started with a different setup:\n  git commit: run has 0123456789ab, now `,
          ),
          e.message,
        );
        assert(e.message.endsWith("\npass --force-resume to continue anyway (recorded in the manifest)"));
        return true;
      },
    );
    const forced = await RunDir.prepare({
      runsDir,
      spec,
      hash,
      backend,
      tfjsVersion: "4.22.0",
      resume: true,
      forceResume: true,
    });
    const fm = await run.readManifest();
    assertEquals(fm.forceResume?.length, 1);
    assertEquals(fm.forceResume?.[0].mismatches, forced.mismatches);
    assertEquals(fm.status, "running");
    assertEquals(fm.error, undefined);
    const done = await run.finish("done");
    assertEquals(done.status, "done");
    assert(done.endedAt !== null);
  });
});

Deno.test("manifestMismatches lists spec, commit and lockfile differences", () => {
  const a = { specHash: "a".repeat(64), git: { commit: "c1", dirty: false }, lockHash: "l1" };
  assertEquals(manifestMismatches(a, a), []);
  assertEquals(
    manifestMismatches(a, { specHash: "b".repeat(64), git: { commit: null, dirty: null }, lockHash: "l2" }),
    [
      "spec hash: run has aaaaaaaaaaaa, now bbbbbbbbbbbb",
      "git commit: run has c1, now none",
      "deno.lock hash: run has l1, now l2",
    ],
  );
});

Deno.test("gitInfo reads HEAD from .git without a subprocess", async () => {
  const info = await gitInfo();
  const out = await new Deno.Command("git", { args: ["rev-parse", "HEAD"], stdout: "piped", stderr: "null" })
    .output();
  if (out.success) assertEquals(info.commit, new TextDecoder().decode(out.stdout).trim());
  // Tests run with --allow-run, so the dirty flag is known.
  assertEquals(typeof info.dirty, out.success ? "boolean" : "object");
});

Deno.test("appendJsonl repairs a torn last line; readJsonl skips one", async () => {
  await withTmp(async (dir) => {
    const p = join(dir, "sub", "metrics.jsonl");
    await appendJsonl(p, { step: 0, loss: 1.5 });
    await appendJsonl(p, { step: 1, loss: 1.25 });
    // Simulate a crash mid-append.
    const f = await Deno.open(p, { append: true });
    await f.write(new TextEncoder().encode('{"step": 2, "lo'));
    f.close();
    assertEquals(await readJsonl(p), [{ step: 0, loss: 1.5 }, { step: 1, loss: 1.25 }]);
    await appendJsonl(p, { step: 2, loss: 1 });
    assertEquals(
      await Deno.readTextFile(p),
      '{"step":0,"loss":1.5}\n{"step":1,"loss":1.25}\n{"step":2,"loss":1}\n',
    );
    // A file that is all torn line, and repairJsonl's count.
    const q = join(dir, "torn.jsonl");
    await Deno.writeTextFile(q, '{"a":');
    assertEquals(await repairJsonl(q), 5);
    assertEquals(await Deno.readTextFile(q), "");
    assertEquals(await repairJsonl(join(dir, "missing.jsonl")), 0);
    assertEquals(await readJsonl(join(dir, "missing.jsonl")), []);
    // JsonlWriter repairs on open too.
    await Deno.writeTextFile(q, '{"a":1}\n{"a":');
    const w = await JsonlWriter.open(q);
    await w.append({ a: 2 });
    await w.close();
    assertEquals(await readJsonl(q), [{ a: 1 }, { a: 2 }]);
  });
});

Deno.test("readJsonl: a corrupt complete line is an error naming file and line; filterJsonl rewrites", async () => {
  await withTmp(async (dir) => {
    const p = join(dir, "m.jsonl");
    await Deno.writeTextFile(p, '{"step":0}\nnot json\n{"step":2}\n');
    await assertRejects(readJsonl(p), (e: unknown) => {
      assert(e instanceof UserError);
      assert(e.message.startsWith(`${p}:2: corrupt JSONL record: `), e.message);
      return true;
    });
    await Deno.writeTextFile(p, '{"step":0}\n{"step":1}\n{"step":2}\n{"step":3');
    assertEquals(await filterJsonl<{ step: number }>(p, (r) => r.step < 2), 1);
    assertEquals(await Deno.readTextFile(p), '{"step":0}\n{"step":1}\n');
  });
});

Deno.test("progress: off a terminal, one compact line per 10% and a final line", () => {
  const lines: string[] = [];
  const bar = progress(200, "train", { tty: false, write: (l) => lines.push(l) });
  for (let i = 0; i < 200; i++) bar.tick(1, { loss: 1 / (i + 1) });
  bar.stop();
  bar.stop();
  assertEquals(lines.length, 10);
  assert(lines[0].startsWith("train: 10% (20/200) "), lines[0]);
  assert(lines[9].startsWith("train: 100% (200/200) "), lines[9]);
  assert(lines[9].includes("loss=0.005000"), lines[9]);
  const l2: string[] = [];
  const b2 = progress(1500, "resume", { tty: false, write: (l) => l2.push(l) });
  b2.update(600);
  b2.update(601);
  b2.update(1500);
  b2.stop();
  assertEquals(l2.map((l) => l.split(" ").slice(0, 3).join(" ")), [
    "resume: 40% (600/1500)",
    "resume: 100% (1500/1500)",
  ]);
});

Deno.test("manifest on disk matches the Manifest type's keys", async () => {
  await withTmp(async (runsDir) => {
    const { spec, hash } = await loadSpec(join(EXPERIMENTS_DIR, "base.json"));
    const { run } = await RunDir.prepare({ runsDir, spec, hash, backend, tfjsVersion: "x" });
    const m = await run.readManifest();
    const keys: Record<keyof Manifest, boolean> = {
      name: true,
      runId: true,
      specHash: true,
      seed: true,
      git: true,
      lockHash: true,
      versions: true,
      backend: true,
      device: true,
      permissions: true,
      argv: true,
      startedAt: true,
      endedAt: true,
      status: true,
      error: false,
      forceResume: false,
      attemptStartedAt: false,
      history: false,
      stages: true,
    };
    assertEquals(Object.keys(m).sort(), Object.entries(keys).filter(([, v]) => v).map(([k]) => k).sort());
  });
});
