/**
 * The CLI's commands. Adding one is one line here: `name: () => import("./name.ts"),` where lib/cli/name.ts
 * exports a `Command` (as `command`, as the default export, or under any name whose `.name` is `name`).
 * Modules load lazily, so `main.ts report` never loads tfjs.
 * @module
 */
import type { Command } from "./command.ts";

/** Command name -> module loader. */
export const COMMANDS: Record<string, () => Promise<Record<string, unknown>>> = {
  exp: () => import("./exp.ts"),
  sweep: () => import("./sweep.ts"),
  report: () => import("./report.ts"),
  data: () => import("./data.ts"),
  eval: () => import("./eval.ts"),
  bench: () => import("./bench.ts"),
  bundle: () => import("./bundle.ts"),
};

/** Load the command `name` from its module (null when no command of that name is registered). */
export async function loadCommand(name: string): Promise<Command | null> {
  const loader = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!loader) return null;
  const mod = await loader();
  const found = [mod.command, mod.default, ...Object.values(mod)].find((v): v is Command =>
    typeof v === "object" && v !== null && (v as Command).name === name &&
    typeof (v as Command).run === "function"
  );
  if (!found) {
    throw new Error(`lib/cli/registry.ts: the module of '${name}' exports no Command named '${name}'`);
  }
  return found;
}
