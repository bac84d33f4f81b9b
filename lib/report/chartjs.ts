/**
 * Locate and load the chart.js UMD build from the pinned npm package (deno.json `imports["chart.js"]`), for
 * inlining into reports. Resolution: `import.meta.resolve("chart.js")` gives the package's ESM entry under
 * `node_modules/` (deno.json has `nodeModulesDir: "auto"`); the UMD build is its sibling `chart.umd.min.js`
 * (or `chart.umd.js`). The version in the package's package.json is checked against the pinned one.
 * @module
 */
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { UserError } from "../errors.ts";

/** The chart.js version deno.json pins; the inlined file must be this version. */
export const CHART_JS_VERSION = "4.6.1";

export interface ChartJsSource {
  /** Absolute path of the UMD file that was read. */
  path: string;
  version: string;
  /** The UMD source, with its sourceMappingURL comment removed (a report must not point at other files). */
  code: string;
}

let cached: ChartJsSource | null = null;

function candidates(): string[] {
  const out: string[] = [];
  try {
    const url = import.meta.resolve("chart.js");
    if (url.startsWith("file:")) {
      const dist = dirname(fileURLToPath(url));
      out.push(join(dist, "chart.umd.min.js"), join(dist, "chart.umd.js"));
    }
  } catch {
    // not resolvable from here (e.g. no import map): fall back to node_modules lookups below
  }
  const roots = [Deno.cwd(), fileURLToPath(new URL("../../", import.meta.url))];
  for (const root of roots) {
    for (
      const pkg of [
        join(root, "node_modules", "chart.js"),
        join(root, "node_modules", ".deno", `chart.js@${CHART_JS_VERSION}`, "node_modules", "chart.js"),
      ]
    ) {
      out.push(join(pkg, "dist", "chart.umd.min.js"), join(pkg, "dist", "chart.umd.js"));
    }
  }
  return out;
}

/** Read the pinned chart.js UMD build (cached per process). Throws UserError naming the paths tried. */
export async function loadChartJs(): Promise<ChartJsSource> {
  if (cached) return cached;
  const tried = candidates();
  for (const path of tried) {
    let code: string;
    try {
      code = await Deno.readTextFile(path);
    } catch {
      continue;
    }
    let version = "unknown";
    try {
      const pkg = JSON.parse(await Deno.readTextFile(join(dirname(dirname(path)), "package.json")));
      version = String(pkg.version);
    } catch {
      const m = /Chart\.js v(\d+\.\d+\.\d+)/.exec(code.slice(0, 300));
      if (m) version = m[1];
    }
    if (version !== CHART_JS_VERSION) {
      throw new UserError(
        `chart.js at ${path} is version ${version}, but deno.json pins ${CHART_JS_VERSION}; run \`deno install\``,
        1,
      );
    }
    code = code.replace(/\n?\/\/# sourceMappingURL=\S*\s*$/, "\n");
    if (/<\/script/i.test(code)) code = code.replace(/<\/script/gi, "<\\/script");
    cached = { path, version, code };
    return cached;
  }
  throw new UserError(
    `chart.js ${CHART_JS_VERSION} UMD build not found (tried ${tried.join(", ")}); run \`deno install\``,
    1,
  );
}
