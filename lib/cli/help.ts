/**
 * CLI helpers: strict argument parsing with "did you mean" hints, and help text layout.
 * @module
 */
import { parseArgs } from "node:util";
import { UserError } from "../errors.ts";
import { nearest } from "../spec/suggest.ts";
import type { Command } from "./command.ts";

/** Options every command accepts, added by the dispatcher when a command does not declare them. */
export const GLOBAL_OPTIONS: Command["options"] = {
  help: { type: "boolean", short: "h" },
  verbose: { type: "boolean" },
};

/** Parsed arguments of a command. */
export interface ParsedArgs {
  values: Record<string, unknown>;
  positionals: string[];
}

function flagList(options: Command["options"]): string[] {
  const out: string[] = [];
  for (const [name, o] of Object.entries(options)) {
    out.push(`--${name}`);
    if (o.short) out.push(`-${o.short}`);
  }
  return out;
}

/**
 * Parse `args` for `cmd` strictly (node:util parseArgs). Errors become UserError (exit 2) with a hint:
 * `exp: unknown option --seeed; did you mean --seed? (see --help)`.
 */
export function parseCommandArgs(cmd: Command, args: string[]): ParsedArgs {
  const options = { ...GLOBAL_OPTIONS, ...cmd.options };
  try {
    const { values, positionals } = parseArgs({
      args,
      options,
      allowPositionals: cmd.allowPositionals,
      strict: true,
    });
    return { values: values as Record<string, unknown>, positionals };
  } catch (e) {
    const err = e as Error & { code?: string };
    const help = `(see: ${cmd.name} --help)`;
    if (err.code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") {
      const m = /'(-[^'\s]*)'/.exec(err.message);
      const flag = m ? m[1] : "?";
      const bare = flag.replace(/=.*$/, "");
      const hint = nearest(bare, flagList(options));
      throw new UserError(
        `${cmd.name}: unknown option ${bare}${hint ? `; did you mean ${hint}?` : ""} ${help}`,
      );
    }
    if (err.code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE") {
      const m = /'(--?[^'\s<]+)/.exec(err.message);
      const opt = m ? m[1] : "option";
      const optName = opt.replace(/^-+/, "");
      const isBool = options[optName]?.type === "boolean";
      throw new UserError(
        isBool
          ? `${cmd.name}: option ${opt} takes no value ${help}`
          : `${cmd.name}: option ${opt} needs a value (for one starting with '-', write ${opt}=VALUE) ${help}`,
      );
    }
    if (err.code === "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL") {
      const m = /'([^']*)'/.exec(err.message);
      throw new UserError(`${cmd.name}: unexpected argument '${m ? m[1] : "?"}' ${help}`);
    }
    throw new UserError(`${cmd.name}: ${err.message} ${help}`);
  }
}

/** Whether `args` ask for help before any `--` terminator. */
export function wantsHelp(args: string[]): boolean {
  for (const a of args) {
    if (a === "--") return false;
    if (a === "--help" || a === "-h") return true;
  }
  return false;
}

/** Top-level help: usage and one line per command. */
export function topHelp(commands: Command[]): string {
  const width = Math.max(...commands.map((c) => c.name.length), 4);
  return [
    "geo-r1: the Geo-R1 recipe (SFT + GRPO for a small VLM, trained from scratch in tfjs) on a procedural world",
    "",
    "usage: deno task <command> [options]        (or: deno run <permissions> main.ts <command> [options])",
    "",
    "commands:",
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    "",
    "options for every command:",
    "  -h, --help   show the command's help",
    "  --verbose    print stack traces of internal errors",
    "",
    "exit codes: 0 ok, 1 run failed, 2 bad usage or spec",
  ].join("\n");
}
