/** `groupSize` below 2 is refused by the schema, through the CLI, with the reason and the field named. */
import { assert, assertEquals } from "./assert.ts";

const ROOT = new URL("..", import.meta.url).pathname;

Deno.test("exp refuses stages.grpo.grpo.groupSize=1 with exit 2, naming the field and why", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-read",
      "--allow-env",
      "main.ts",
      "exp",
      "geo-r1",
      "--preset",
      "tiny",
      "--dry-run",
      "--set",
      "stages.grpo.grpo.groupSize=1",
    ],
    cwd: ROOT,
  }).output();
  const err = new TextDecoder().decode(out.stderr);
  assertEquals(out.code, 2, err);
  assert(err.includes("/stages/grpo/grpo/groupSize: must be >= 2"), err);
  assert(err.includes("every advantage is 0"), err);
  assertEquals(new TextDecoder().decode(out.stdout), "", "no output but the error");
  const ok = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-read",
      "--allow-env",
      "main.ts",
      "exp",
      "geo-r1",
      "--preset",
      "tiny",
      "--dry-run",
      "--set",
      "stages.grpo.grpo.groupSize=2",
    ],
    cwd: ROOT,
  }).output();
  assertEquals(ok.code, 0, new TextDecoder().decode(ok.stderr));
});
