import { join } from "node:path";
import { assert, assertEquals } from "./assert.ts";
import { loadSpec } from "../lib/spec/load.ts";
import { EXPERIMENTS_DIR } from "../lib/spec/mod.ts";
import { COMMANDS, loadCommand } from "../lib/cli/registry.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;
// The permissions of `deno task exp` (deno.json): no --allow-run, no --allow-net.
const PERMS = ["--allow-read", "--allow-write", "--allow-env", "--allow-ffi", "--allow-sys"];

async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-prompt", ...PERMS, MAIN, ...args],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
    cwd: new URL("..", import.meta.url).pathname,
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("every registered command loads and documents every option in --help", async () => {
  for (const name of Object.keys(COMMANDS)) {
    const cmd = await loadCommand(name);
    assert(cmd, name);
    assertEquals(cmd.name, name);
    assert(cmd.summary.length > 0);
    for (const opt of Object.keys(cmd.options)) {
      assert(cmd.help.includes(`--${opt}`), `${name} --help lacks --${opt}`);
    }
  }
  assertEquals(await loadCommand("nope"), null);
});

Deno.test("cli: top-level and exp --help exit 0", async () => {
  const top = await cli("--help");
  assertEquals(top.code, 0);
  assert(top.stdout.includes("commands:") && top.stdout.includes("  exp "), top.stdout);
  const h = await cli("exp", "--help");
  assertEquals(h.code, 0);
  assert(h.stdout.startsWith("usage: deno task exp NAME [options]"), h.stdout);
  const none = await cli();
  assertEquals(none.code, 2);
});

Deno.test("cli: exp --dry-run prints the resolved spec, hash and run id", async () => {
  const r = await cli("exp", "geo-r1", "--dry-run", "--preset", "tiny", "--seed", "3", "--backend", "wasm");
  assertEquals(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  const { spec, hash } = await loadSpec(join(EXPERIMENTS_DIR, "geo-r1.json"), {
    preset: "tiny",
    sets: ["seed=3", "backend=wasm"],
  });
  assertEquals(out.spec, spec);
  assertEquals(out.hash, hash);
  assertEquals(out.runId, `geo-r1-${hash.slice(0, 8)}`);
  assertEquals(out.sources.length, 2);
});

Deno.test("cli: usage errors exit 2 with a hint and no stack", async () => {
  const cases: [string[], string][] = [
    [
      ["exp", "geo-r1", "--seeed", "3"],
      "exp: unknown option --seeed; did you mean --seed? (see: exp --help)",
    ],
    [
      ["exp", "geo-r1", "--dryrun"],
      "exp: unknown option --dryrun; did you mean --dry-run? (see: exp --help)",
    ],
    [
      ["epx", "geo-r1"],
      `unknown command 'epx'; did you mean 'exp'? (commands: ${
        Object.keys(COMMANDS).join(", ")
      }; see --help)`,
    ],
    [
      ["exp", "geo-r1", "--set", "stages.grpo.steps=abc"],
      '--set stages.grpo.steps=abc: /stages/grpo/steps: must be integer, got string "abc"',
    ],
    [
      ["exp", "geo-r1", "--backend", "gpu"],
      "exp: --backend must be one of auto, wasm, webgpu, cpu, tensorflow, got 'gpu'; did you mean 'cpu'?",
    ],
    [
      ["exp", "geo-r1", "--seed", "-1"],
      "exp: option --seed needs a value (for one starting with '-', write --seed=VALUE) (see: exp --help)",
    ],
    [["exp", "geo-r1", "--seed=-1"], "exp: --seed must be an integer in [0, 4294967295], got '-1'"],
    [["exp", "geo-r1", "--resume=yes"], "exp: option --resume takes no value (see: exp --help)"],
    [
      ["exp", "geo-r1", "--preset"],
      "exp: option --preset needs a value (for one starting with '-', write --preset=VALUE) (see: exp --help)",
    ],
    [
      ["exp", "geo-r2"],
      "unknown experiment 'geo-r2'; did you mean 'geo-r1'? (available in experiments: base, cells, control, geo-r1, geo-r1-anchored, geo-r1-geoloc, geo-r1-mixed, geo-r1-zero, geo-r1-zero-anchored, geo-sft, geoclip, nearest-prior, task-sft)",
    ],
    [
      ["exp"],
      "exp: missing experiment NAME (available: base, cells, control, geo-r1, geo-r1-anchored, geo-r1-geoloc, geo-r1-mixed, geo-r1-zero, geo-r1-zero-anchored, geo-sft, geoclip, nearest-prior, task-sft)",
    ],
  ];
  for (const [args, msg] of cases) {
    const r = await cli(...args);
    assertEquals([r.code, r.stderr.trim()], [2, msg], args.join(" "));
  }
});
