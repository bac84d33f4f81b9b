/**
 * The allowed tree: what this process may read and write is what Deno granted it (`deno task exp` grants
 * read of the project and write of runs, cache and reports). Deno checks a grant against a path as written,
 * not where a symlink in it leads, so every path the harness reads or writes (spec files and `extends`,
 * run, cache and reports directories, report inputs, images, dataset folders) goes through
 * {@link checkPath} first: the path is resolved to its real path (links followed; for a path not created
 * yet, its deepest existing ancestor's) and refused, naming it, unless the grant covers the real path.
 * Under `--allow-read` / `--allow-write` without a list everything is covered and nothing is refused.
 * @module
 */
import { basename, dirname, join, resolve } from "node:path";
import { UserError } from "../errors.ts";

/** Symlink hops followed before a path counts as a loop. */
const MAX_LINKS = 40;

/**
 * The real path of `path`: every symlink resolved, a dangling one to its target, missing components kept
 * as written. Throws Deno.errors.NotCapable where this process may not read the path itself.
 */
export function realPath(path: string, hops = 0): string {
  const abs = resolve(path);
  const tail: string[] = [];
  let head = abs;
  for (;;) {
    try {
      const real = Deno.realPathSync(head);
      return tail.length ? join(real, ...tail.reverse()) : real;
    } catch (e) {
      // An ancestor of a path to be created that this process may not read (e.g. /tmp above a granted
      // /tmp/x/runs): nothing below it exists yet, so no link lies on the way; the path stays as written.
      if (e instanceof Deno.errors.NotCapable && head !== abs) return abs;
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    // A dangling link: what it points to is where a write would land.
    let link: string | null = null;
    try {
      if (Deno.lstatSync(head).isSymlink) link = Deno.readLinkSync(head);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    if (link !== null) {
      if (hops >= MAX_LINKS) throw new UserError(`${abs}: too many levels of symbolic links`, 2);
      return realPath(join(resolve(dirname(head), link), ...tail.reverse()), hops + 1);
    }
    const parent = dirname(head);
    if (parent === head) return abs;
    tail.push(basename(head));
    head = parent;
  }
}

/**
 * Refuse `path` unless this process may `access` its real path; `what` names it in the message (a file
 * role or a CLI option). Returns the real path. Exit code 2, like every refused input.
 */
export function checkPath(path: string, access: "read" | "write", what: string): string {
  const refuse = (real: string | null) => {
    const where = real && real !== resolve(path) ? `${path} (resolves to ${real})` : path;
    return new UserError(
      `${what}: ${where} is outside the tree this command may ${access}; the deno tasks grant the ` +
        `narrowest permissions (deno.json "tasks"; a symlink does not widen them); to use a directory ` +
        `outside the project, run main.ts with deno run and add it, e.g. ` +
        `--allow-read=.,DIR --allow-write=runs,cache,reports,DIR`,
      2,
    );
  };
  let real: string;
  try {
    real = realPath(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotCapable) throw refuse(null);
    throw e;
  }
  if (Deno.permissions.querySync({ name: access, path: real }).state !== "granted") throw refuse(real);
  return real;
}

/** Read a text file after {@link checkPath} (`what` names it in a refusal). */
export function readTextChecked(path: string, what: string): Promise<string> {
  checkPath(path, "read", what);
  return Deno.readTextFile(path);
}

/** Read a file's bytes after {@link checkPath} (`what` names it in a refusal). */
export function readFileChecked(path: string, what: string): Promise<Uint8Array> {
  checkPath(path, "read", what);
  return Deno.readFile(path);
}
