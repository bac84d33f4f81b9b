/**
 * Bad input and hostile environments give one clear error (naming the file and field), a non-zero exit and
 * leave earlier results intact: a corrupt / truncated / mismatched checkpoint, a truncated or corrupt image
 * in a real-data folder, a CSV with bad coordinates, a full disk (fault hook, and a real tiny tmpfs where
 * this machine can mount one).
 */
import { join } from "node:path";
import { assert, assertEquals, assertRejects } from "../assert.ts";
import { exp, onlyRun, scratch, snapshotProject, treeProblems } from "./helpers.ts";
import { loadCrossView, loadGeolocateCsv } from "../../lib/data/loaders.ts";
import { encodePng } from "../../lib/data/images.ts";

async function snapshot(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (d: string) => {
    for await (const e of Deno.readDir(d)) {
      const p = join(d, e.name);
      if (e.isDirectory) await walk(p);
      else out.set(p, Array.from(await Deno.readFile(p)).join(","));
    }
  };
  await walk(dir);
  return out;
}

function errorLines(stderr: string): string[] {
  return stderr.split("\n").filter((l) => /error|refus|corrupt|truncat|No space|cannot/i.test(l));
}

Deno.test("reliability: corrupt checkpoint, full disk (CLI): one clear error, earlier results intact", async (t) => {
  const tmp = await Deno.makeTempDir({ prefix: "geo-r1-rel-bad-" });
  try {
    const s = scratch(join(tmp, "work"), await snapshotProject(tmp));
    const first = await exp(s, "base");
    assertEquals(first.code, 0, first.stderr);
    const run = await onlyRun(s.runs);
    const manifest = JSON.parse(await Deno.readTextFile(join(run, "manifest.json")));
    // Least privilege, as recorded: scoped read/write (granted for the run and cache dirs), no net.
    const perms = manifest.permissions as Record<string, string>;
    const global = [perms.read, perms.write, perms.net, perms.run, perms.ffi, perms.env, perms.sys];
    assertEquals(global, Array(7).fill("prompt"), "nothing is granted as a whole");
    const scoped = [
      `read:${s.root}`,
      `write:${s.runs}`,
      `write:${s.cache}`,
      "run:git",
      `ffi:${s.root}node_modules`,
    ];
    assertEquals(scoped.map((k) => perms[k]), Array(5).fill("granted"), JSON.stringify(perms));
    assertEquals(perms[`write:${s.root}`], "prompt", "the project itself is not writable");
    const stageDir = manifest.stages[0].dir as string;
    const weights = join(stageDir, "final", "model.safetensors");
    const good = await Deno.readFile(weights);
    const runBefore = await snapshot(run);

    // The cached base stage is loaded by any experiment that starts from it.
    const reuse = async (what: string, expect: RegExp) => {
      const r = await exp(s, "geo-sft");
      assertEquals(r.code, 1, `${what}: ${r.stderr}`);
      assert(expect.test(r.stderr), `${what}: ${r.stderr}`);
      assert(r.stderr.includes(weights), `${what}: the error names the file:\n${r.stderr}`);
      assert(!/\n\s+at /.test(r.stderr), `${what}: no stack trace:\n${r.stderr}`);
      const sft = (await Array.fromAsync(Deno.readDir(s.runs))).find((e) => e.name.startsWith("geo-sft-"))!;
      const m = JSON.parse(await Deno.readTextFile(join(s.runs, sft.name, "manifest.json")));
      assertEquals(m.status, "failed");
      assert(m.error.includes(weights));
      await Deno.remove(join(s.runs, sft.name), { recursive: true });
      assertEquals(await snapshot(run), runBefore, `${what}: the base run is untouched`);
    };
    await t.step("flipped byte in final/model.safetensors", async () => {
      const bad = good.slice();
      bad[bad.length - 5] ^= 0xff;
      await Deno.writeFile(weights, bad);
      await reuse("flipped byte", /sha256 .* does not match model\.json/);
    });
    await t.step("truncated final/model.safetensors", async () => {
      await Deno.writeFile(weights, good.subarray(0, good.length - 100));
      await reuse("truncated", /bytes, model\.json records \d+ \(truncated or replaced file\)/);
    });
    await t.step("mismatched checkpoint (model.json config from another model size)", async () => {
      await Deno.writeFile(weights, good);
      const mj = join(stageDir, "final", "model.json");
      const orig = await Deno.readTextFile(mj);
      const meta = JSON.parse(orig);
      meta.config.dModel *= 2;
      await Deno.writeTextFile(mj, JSON.stringify(meta));
      const r = await exp(s, "geo-sft");
      assertEquals(r.code, 1, r.stderr);
      assert(/model\.(json|safetensors).*(shape|config)/.test(r.stderr), r.stderr);
      await Deno.writeTextFile(mj, orig);
      for await (const e of Deno.readDir(s.runs)) {
        if (e.name.startsWith("geo-sft-")) await Deno.remove(join(s.runs, e.name), { recursive: true });
      }
    });
    await t.step("disk full (fault hook) while writing eval.json / report: old files intact", async () => {
      for (const target of ["eval.json", "report.html"]) {
        // A finished run is left alone by exp: mark it interrupted so --resume writes its records again.
        const mPath = join(run, "manifest.json");
        await Deno.writeTextFile(
          mPath,
          JSON.stringify({ ...JSON.parse(await Deno.readTextFile(mPath)), status: "running" }),
        );
        const r = await exp(s, "base", ["--resume"], { GEO_R1_FAULT: `enospc:${run}/${target}` });
        assertEquals(r.code, 1, r.stderr);
        const lines = errorLines(r.stderr);
        assertEquals(lines.length, 1, r.stderr);
        assert(lines[0].includes(`writing ${join(run, target)}: No space left on device`), lines[0]);
        const m = JSON.parse(await Deno.readTextFile(join(run, "manifest.json")));
        assertEquals(m.status, "failed");
        assert(m.error.includes("No space left"), m.error);
        // Earlier results: byte-identical, no temp file.
        const now = await snapshot(run);
        for (const f of ["eval.json", "report.html", "metrics.jsonl"]) {
          assertEquals(now.get(join(run, f)), runBefore.get(join(run, f)), f);
        }
        assertEquals(await treeProblems(s.base), []);
      }
    });
  } finally {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
});

Deno.test({
  name: "reliability: a real full disk (2 MiB tmpfs): clear error naming the file, exit 1",
  ignore: !(await canMountTmpfs()),
  async fn() {
    const mnt = await Deno.makeTempDir({ prefix: "geo-r1-rel-tmpfs-" });
    await sh("mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", mnt);
    try {
      const s = scratch(mnt);
      const r = await exp(s, "base");
      assertEquals(r.code, 1, r.stderr);
      const lines = errorLines(r.stderr);
      assertEquals(lines.length, 1, r.stderr);
      assert(/writing .*: No space left on device/.test(lines[0]), lines[0]);
      const m = JSON.parse(await Deno.readTextFile(join(await onlyRun(s.runs), "manifest.json")));
      assertEquals(m.status, "failed");
      assertEquals(await treeProblems(mnt, { allowTorn: true }), []);
    } finally {
      await sh("umount", mnt);
      await Deno.remove(mnt, { recursive: true }).catch(() => {});
    }
  },
});

async function sh(...cmd: string[]): Promise<boolean> {
  try {
    const o = await new Deno.Command(cmd[0], { args: cmd.slice(1), stdout: "null", stderr: "null" }).output();
    return o.success;
  } catch {
    return false;
  }
}

async function canMountTmpfs(): Promise<boolean> {
  if (Deno.build.os !== "linux" || Deno.uid?.() !== 0) return false;
  const d = await Deno.makeTempDir();
  try {
    const ok = await sh("mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", d);
    if (ok) await sh("umount", d);
    return ok;
  } finally {
    await Deno.remove(d).catch(() => {});
  }
}

Deno.test("reliability: real-data folder: truncated / corrupt image, bad coordinates -> one clear error", async () => {
  const dir = await Deno.makeTempDir({ prefix: "geo-r1-rel-data-" });
  try {
    const img = (seed: number) => ({
      width: 8,
      height: 8,
      data: Uint8Array.from({ length: 8 * 8 * 3 }, (_, i) => (i * seed * 37) & 255),
    });
    for (let i = 0; i < 4; i++) {
      await Deno.writeFile(join(dir, `g${i}.png`), await encodePng(img(i + 1)));
      await Deno.writeFile(join(dir, `a${i}.png`), await encodePng(img(i + 5)));
    }
    const png = await Deno.readFile(join(dir, "g0.png"));
    await Deno.writeFile(join(dir, "trunc.png"), png.subarray(0, Math.floor(png.length / 2)));
    await Deno.writeFile(join(dir, "junk.png"), new TextEncoder().encode("not an image at all"));
    const ws = { groundShape: [8, 16] as [number, number], aerialSize: 8 };
    const csv = async (name: string, rows: string[]) => {
      const p = join(dir, name);
      await Deno.writeTextFile(p, ["ground_path,aerial_path,lat,lon", ...rows].join("\n") + "\n");
      return p;
    };
    const ok = ["g0.png,a0.png,10,20", "g1.png,a1.png,-10,20", "g2.png,a2.png,45,-120", "g3.png,a3.png,0,0"];
    assertEquals((await loadCrossView(await csv("ok.csv", ok), { worldSpec: ws, seed: 1 })).length, 4);

    const cases: [string, string[], RegExp][] = [
      [
        "lat.csv",
        [...ok.slice(0, 2), "g2.png,a2.png,91.5,20", ok[3]],
        /lat\.csv:4: column lat \(3\): "91\.5" is not a latitude in \[-90, 90\] \(image .*g2\.png\)/,
      ],
      [
        "nan.csv",
        [...ok.slice(0, 3), "g3.png,a3.png,NaN,0"],
        /nan\.csv:5: column lat \(3\): "NaN" is not a latitude/,
      ],
      [
        "lon.csv",
        ["g0.png,a0.png,10,", ...ok.slice(1)],
        /lon\.csv:2: column lon \(4\): "" is not a longitude in \[-180, 180\]/,
      ],
      [
        "trunc.csv",
        [...ok.slice(0, 3), "trunc.png,a3.png,0,0"],
        /trunc\.csv:5: column ground_path: cannot decode image .*trunc\.png \(truncated or corrupt\?\)/,
      ],
      [
        "junk.csv",
        ["g0.png,junk.png,0,0", ...ok.slice(1)],
        /junk\.csv:2: column aerial_path: cannot decode image .*junk\.png/,
      ],
      [
        "missing.csv",
        ["g9.png,a0.png,0,0", ...ok.slice(1)],
        /missing\.csv:2: column ground_path: image not found: .*g9\.png/,
      ],
    ];
    for (const [name, rows, re] of cases) {
      const p = await csv(name, rows);
      await assertRejects(() => loadCrossView(p, { worldSpec: ws, seed: 1 }), (e: Error) => {
        assertEquals(e.name, "UserError", `${name}: ${e.message}`);
        assert(re.test(e.message), `${name}: ${e.message}`);
        assertEquals(e.message.split("\n").length, 1, `${name}: one line`);
        return true;
      });
    }
    // IM2GPS-style CSV: same checks.
    const g = join(dir, "geo.csv");
    await Deno.writeTextFile(g, "image,lat,lon\ng0.png,12,13\ntrunc.png,1,2\n");
    await assertRejects(
      () => loadGeolocateCsv(g, { worldSpec: ws }),
      /geo\.csv:3: column image: cannot decode image/,
    );
    await Deno.writeTextFile(g, "image,latitude,longitude\ng0.png,-90.01,13\n");
    await assertRejects(
      () => loadGeolocateCsv(g, { worldSpec: ws }),
      /geo\.csv:2: column lat \(2\): "-90\.01"/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
