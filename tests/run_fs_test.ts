import { join } from "node:path";
import { assert, assertEquals, assertRejects } from "./assert.ts";
import { exists, lexists, readTextIf, writeDirAtomic } from "../lib/run/fs.ts";
import { UserError } from "../lib/errors.ts";

async function withDir(f: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "geo-r1-fs-" });
  try {
    await f(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("exists() follows a symlink, lexists() sees the link itself", async () => {
  await withDir(async (dir) => {
    const link = join(dir, "dangling");
    await Deno.symlink(join(dir, "nowhere"), link);
    assertEquals(await exists(link), false);
    assertEquals(await lexists(link), true);
    assertEquals(await lexists(join(dir, "absent")), false);
  });
});

Deno.test("readTextIf() gives the text, null for a missing file, and throws for a folder", async () => {
  await withDir(async (dir) => {
    await Deno.writeTextFile(join(dir, "a.json"), "{}\n");
    assertEquals(await readTextIf(join(dir, "a.json")), "{}\n");
    assertEquals(await readTextIf(join(dir, "absent.json")), null);
    // A folder where a file is expected is a problem to report, not "missing".
    await assertRejects(() => readTextIf(dir));
  });
});

Deno.test("writeDirAtomic() refuses an existing folder without force and replaces it with force", async () => {
  await withDir(async (dir) => {
    const out = join(dir, "out");
    const n = await writeDirAtomic(out, {}, async (tmp) => {
      await Deno.writeTextFile(join(tmp, "a.txt"), "one");
      return 1;
    });
    assertEquals(n, 1);
    assertEquals(await Deno.readTextFile(join(out, "a.txt")), "one");
    await assertRejects(
      () => writeDirAtomic(out, {}, () => Promise.resolve(0)),
      UserError,
      `${out} already exists (use --force to replace it)`,
    );
    await writeDirAtomic(out, { force: true }, (tmp) => Deno.writeTextFile(join(tmp, "b.txt"), "two"));
    assertEquals([...Deno.readDirSync(out)].map((e) => e.name), ["b.txt"]);
    assertEquals([...Deno.readDirSync(dir)].map((e) => e.name), ["out"], "no temp folder left");
  });
});

Deno.test("writeDirAtomic() leaves the old folder and no temp folder when filling fails", async () => {
  await withDir(async (dir) => {
    const out = join(dir, "out");
    await writeDirAtomic(out, {}, (tmp) => Deno.writeTextFile(join(tmp, "a.txt"), "old"));
    await assertRejects(
      () =>
        writeDirAtomic(out, { force: true }, async (tmp) => {
          await Deno.writeTextFile(join(tmp, "half.txt"), "x");
          throw new Error("disk full");
        }),
      Error,
      "disk full",
    );
    assertEquals(await Deno.readTextFile(join(out, "a.txt")), "old");
    assertEquals([...Deno.readDirSync(dir)].map((e) => e.name), ["out"]);
    assert(!(await exists(join(out, "half.txt"))));
  });
});
