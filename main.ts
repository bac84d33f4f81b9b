/**
 * The geo-r1 CLI: `deno task <command> ...` or `deno run <permissions> main.ts <command> ...`.
 * Commands are listed in lib/cli/registry.ts. Exit codes: 0 ok, 1 run failed, 2 bad usage or spec.
 * @module
 */
import { UserError } from "./lib/errors.ts";
import type { Command } from "./lib/cli/command.ts";
import { COMMANDS, loadCommand } from "./lib/cli/registry.ts";
import { parseCommandArgs, topHelp, wantsHelp } from "./lib/cli/help.ts";
import { nearest } from "./lib/spec/suggest.ts";

/** Run the CLI on `args`; returns the exit code (never exits the process itself). */
export async function main(args: string[]): Promise<number> {
  const verbose = args.includes("--verbose");
  try {
    const [name, ...rest] = args;
    if (name === undefined || name === "--help" || name === "-h" || name === "help") {
      const cmds: Command[] = [];
      for (const n of Object.keys(COMMANDS)) {
        try {
          cmds.push((await loadCommand(n))!);
        } catch (e) {
          // One broken command must not hide the others' help.
          const why = ((e as Error).message ?? String(e)).split("\n")[0];
          cmds.push({ name: n, summary: `(unavailable: ${why})` } as Command);
        }
      }
      const text = topHelp(cmds);
      if (name === undefined) {
        console.error(text);
        return 2;
      }
      console.log(text);
      return 0;
    }
    const cmd = await loadCommand(name);
    if (!cmd) {
      const hint = nearest(name, Object.keys(COMMANDS));
      throw new UserError(
        `unknown command '${name}'${hint ? `; did you mean '${hint}'?` : ""} ` +
          `(commands: ${Object.keys(COMMANDS).join(", ")}; see --help)`,
      );
    }
    if (wantsHelp(rest)) {
      console.log(cmd.help);
      return 0;
    }
    const { values, positionals } = parseCommandArgs(cmd, rest);
    delete values.help;
    return await cmd.run(values, positionals);
  } catch (e) {
    if (e instanceof UserError) {
      console.error(e.message);
      return e.exitCode;
    }
    const err = e as Error;
    if (e instanceof Deno.errors.NotCapable) {
      // A path outside what the task grants (e.g. --runs-dir elsewhere): say which flag is missing.
      console.error(
        `error: ${err.message}\n` +
          `the deno tasks grant the narrowest permissions (see deno.json "tasks" and docs/RELIABILITY.md); ` +
          `to use a directory outside the project, run main.ts with deno run and add it, e.g. ` +
          `--allow-read=.,DIR --allow-write=runs,cache,reports,DIR`,
      );
      return 2;
    }
    if (verbose) console.error(err?.stack ?? String(e));
    else console.error(`error: ${err?.message ?? String(e)}\n(run with --verbose for the stack trace)`);
    return 1;
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
