/**
 * Every command the README documents as `deno task NAME` answers `--help` through `deno task` itself (the
 * permissions of deno.json included) with its own usage text and exit 0, and the bench task really runs the
 * bench suites. `deno task test` and `deno task check` are Deno's own test/fmt/lint tools, not CLI commands.
 */
import { assert, assertEquals } from "./assert.ts";

const root = new URL("..", import.meta.url).pathname;
const NOT_CLI = new Set(["test", "check"]);

async function task(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), { args: ["task", ...args], cwd: root }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** The `deno task NAME` commands the README mentions, in order of first mention. */
function documentedTasks(readme: string): string[] {
  return [...new Set([...readme.matchAll(/deno task ([a-z][a-z-]*)/g)].map((m) => m[1]))];
}

Deno.test("every deno task the README documents answers --help with its usage and exit 0", async () => {
  const readme = await Deno.readTextFile(`${root}/README.md`);
  const tasks = JSON.parse(await Deno.readTextFile(`${root}/deno.json`)).tasks as Record<string, string>;
  const names = documentedTasks(readme).filter((n) => !NOT_CLI.has(n));
  for (const n of ["exp", "sweep", "report", "data", "bench", "bundle"]) {
    assert(names.includes(n), `README documents deno task ${n}`);
  }
  for (const name of names) {
    assert(name in tasks, `README documents 'deno task ${name}' but deno.json has no such task`);
    const r = await task([name, "--help"]);
    assertEquals(r.code, 0, `deno task ${name} --help: exit ${r.code}\n${r.stderr}`);
    assert(
      r.stdout.startsWith(`usage: deno task ${name}`),
      `deno task ${name} --help prints its own usage, got:\n${r.stdout.slice(0, 300)}`,
    );
  }
});

Deno.test("deno task bench runs the deno bench suites (a filter that matches nothing runs none)", async () => {
  const r = await task(["bench", "--filter", "no-such-benchmark-name", "bench/render_bench.ts"]);
  assertEquals(r.code, 0, r.stderr);
  assert(/render_bench\.ts/.test(r.stdout + r.stderr), `deno bench ran the file:\n${r.stdout}\n${r.stderr}`);
});

Deno.test("deno task bundle is a registered command: bad options are its own usage errors", async () => {
  const r = await task(["bundle", "--xz-level", "12"]);
  assertEquals(r.code, 2, r.stderr);
  assert(r.stderr.includes("--xz-level: expected an integer 0..9"), r.stderr);
});
