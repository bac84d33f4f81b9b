/**
 * `bundle`: build the offline bundle (lib/bundle) for machines without network.
 * @module
 */
import { UserError } from "../errors.ts";
import { createBundle } from "../bundle/mod.ts";
import type { Command } from "./command.ts";

/** The `bundle` command. */
export const command: Command = {
  name: "bundle",
  summary: "pack an offline bundle (Deno binary, node_modules, project) for air-gapped machines",
  help: `usage: deno task bundle [options]

Pack everything needed to run geo-r1 on a machine with no network into one tar file: the running Deno
binary (xz), node_modules without source maps (tar.xz), the project files (git's tracked and untracked,
not ignored, files; runs/ cache/ reports/ .bundle/ are left out) with deno.json and deno.lock, and run.sh.
On the target machine:

  tar -xf geo-r1-bundle.tar && cd geo-r1-bundle
  ./run.sh exp geo-r1 --backend webgpu     # any main.ts command; runs land in geo-r1-bundle/app/runs
  ./run.sh bench --backend webgpu --preset large --json bench.json
  ./run.sh deno test --allow-all tests/    # the bundled Deno itself

run.sh unpacks on first use, sets DENO_DIR inside the bundle and runs with --cached-only. The target needs
tar, xz and (for --backend webgpu) a Vulkan loader and driver, e.g.
VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json (set automatically when present).

options:
  --out PATH          output; ending in .tar: one tar file, else a directory
                      (default: .bundle/geo-r1-bundle.tar)
  --xz-level N        xz preset 0..9 (default 6; 0-1 pack fast, larger)
  --deno PATH         Deno binary to ship (default: the running one)
  --include-lib FILE  copy FILE into the bundle's lib/ (on LD_LIBRARY_PATH after the host's), e.g. a
                      libvulkan.so.1 for hosts without a Vulkan loader (repeatable)
  -h, --help          show this help

examples:
  deno task bundle
  deno task bundle --out /scratch/geo-r1-bundle.tar
  deno task bundle --out .bundle/dir --xz-level 1`,
  options: {
    out: { type: "string" },
    "xz-level": { type: "string" },
    deno: { type: "string" },
    "include-lib": { type: "string", multiple: true },
  },
  allowPositionals: false,
  async run(values: Record<string, unknown>): Promise<number> {
    const level = values["xz-level"] === undefined ? 6 : Number(values["xz-level"]);
    if (!Number.isInteger(level) || level < 0 || level > 9) {
      throw new UserError(`--xz-level: expected an integer 0..9, got '${values["xz-level"]}'`);
    }
    try {
      const r = await createBundle({
        out: values.out as string | undefined,
        xzLevel: level,
        denoBinary: values.deno as string | undefined,
        includeLibs: values["include-lib"] as string[] | undefined,
      });
      console.log(r.path);
      return 0;
    } catch (e) {
      if (e instanceof UserError) throw e;
      throw new UserError(`bundle: ${(e as Error).message}`, 1);
    }
  },
};
