/**
 * `reports/index.html`: a list of every report in a reports directory (title, kind, date, experiment, key
 * metrics), rebuilt from the `report-meta` JSON each report carries.
 * @module
 */
import { join } from "node:path";
import { atomicWrite, removeTempsOf, withDirLock } from "../run/atomic.ts";
import { escapeHtml } from "./escape.ts";
import { raw, renderTable } from "./components.ts";
import { extractReportMeta, renderPage, type ReportMeta } from "./page.ts";

/** Default reports directory (relative to the working directory). */
export const DEFAULT_REPORTS_DIR = "reports";

async function readHead(path: string, max = 1 << 18): Promise<string> {
  const f = await Deno.open(path, { read: true });
  try {
    const buf = new Uint8Array(max);
    let n = 0;
    while (n < max) {
      const r = await f.read(buf.subarray(n));
      if (r === null) break;
      n += r;
    }
    return new TextDecoder().decode(buf.subarray(0, n));
  } finally {
    f.close();
  }
}

/**
 * Rebuild `<reportsDir>/index.html`; returns its path. Writers of one reports directory take turns
 * (a lock on the directory), and each first removes index temps a crashed writer left behind.
 */
export async function writeReportsIndex(reportsDir: string = DEFAULT_REPORTS_DIR): Promise<string> {
  await Deno.mkdir(reportsDir, { recursive: true });
  return await withDirLock(reportsDir, async () => {
    await removeTempsOf(reportsDir, "index.html");
    return await writeIndex(reportsDir);
  });
}

async function writeIndex(reportsDir: string): Promise<string> {
  const entries: { file: string; meta: ReportMeta | null; mtime: Date | null }[] = [];
  for await (const e of Deno.readDir(reportsDir)) {
    if (!e.isFile || !e.name.endsWith(".html") || e.name === "index.html") continue;
    const path = join(reportsDir, e.name);
    let meta: ReportMeta | null = null;
    let mtime: Date | null = null;
    try {
      meta = extractReportMeta(await readHead(path));
      mtime = (await Deno.stat(path)).mtime;
    } catch {
      // vanished or unreadable: list it without metadata
    }
    entries.push({ file: e.name, meta, mtime });
  }
  const date = (x: (typeof entries)[number]) => x.meta?.date ?? x.mtime?.toISOString() ?? "";
  entries.sort((a, b) => date(b).localeCompare(date(a)) || a.file.localeCompare(b.file));
  const table = renderTable(
    ["Report", "Kind", "Experiment", "Preset", "Seed", "Overrides", "Date", "Key metrics"],
    entries.map((x) => [
      raw(`<a href="${escapeHtml(encodeURIComponent(x.file))}">${escapeHtml(x.meta?.title ?? x.file)}</a>`),
      x.meta?.kind ?? "?",
      x.meta?.experiment ?? null,
      x.meta?.preset ?? null,
      x.meta?.seed ?? null,
      x.meta ? (x.meta.overrides?.length ? x.meta.overrides.join(", ") : "none") : null,
      date(x) ? date(x).replace("T", " ").replace(/\.\d+Z$/, "Z") : null,
      raw(
        Object.entries(x.meta?.keyMetrics ?? {}).map(([k, v]) => `${escapeHtml(k)}: <b>${escapeHtml(v)}</b>`)
          .join(
            " · ",
          ),
      ),
    ]),
  );
  const html = await renderPage({
    title: "geo-r1 reports",
    meta: { kind: "index", title: "geo-r1 reports", date: null, experiment: null, keyMetrics: {} },
    body: `<h1>geo-r1 reports</h1><p class="sub">${entries.length} reports in this directory. Each is one
self-contained file that opens offline.</p>${
      entries.length
        ? table
        : `<p class="note">No reports yet: run <code>deno task report RUN_DIR</code>.</p>`
    }`,
    charts: false,
  });
  const out = join(reportsDir, "index.html");
  await atomicWrite(out, html);
  return out;
}
