/**
 * The CLI command contract. Each command lives in `lib/cli/<name>.ts`, exports a `Command`, and is listed in
 * `lib/cli/registry.ts`; `main.ts` dispatches `deno task <name> ...` / `main.ts <name> ...` to it.
 * @module
 */
import type { ParseArgsConfig } from "node:util";

export interface Command {
  name: string;
  /** One line for the top-level help. */
  summary: string;
  /** Full `--help` text: usage line, every option, examples. */
  help: string;
  /** `node:util` parseArgs options (strict: unknown flags are rejected by main.ts with a hint). */
  options: NonNullable<ParseArgsConfig["options"]>;
  /** Whether positional arguments are accepted. */
  allowPositionals: boolean;
  /** Run with parsed values; return the exit code (0 ok, 1 run failed, 2 bad usage/spec). */
  run(values: Record<string, unknown>, positionals: string[]): Promise<number>;
}
