/**
 * Open an HTML report in headless Chromium through the DevTools protocol (Deno's built-in WebSocket; no npm
 * driver, nothing downloaded) and check it: every chart canvas drew (non-blank pixels), no console errors or
 * uncaught exceptions (CSP violations included), and no network request was attempted (every request other
 * than file:, data:, about:, blob: or devtools: is recorded and failed; the host resolver maps every name to
 * NOTFOUND as a second guard). Optionally saves a full-page PNG screenshot.
 *
 * The DevTools socket needs `--allow-net=127.0.0.1`; when the calling process lacks it (e.g. `deno task test`
 * grants run but not net), the check re-runs this module as a subprocess with exactly the permissions it
 * needs and reads its JSON result.
 * @module
 */
import { resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

/** Chromium flags verified to work headless in containers. */
export const CHROMIUM_FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--no-default-browser-check",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-dev-shm-usage",
  "--disable-extensions",
  "--disable-domain-reliability",
  "--metrics-recording-only",
  "--mute-audio",
  "--hide-scrollbars",
  "--host-resolver-rules=MAP * ~NOTFOUND",
];

/** The Chromium binary: $CHROMIUM_PATH, else the first of the usual Debian/Ubuntu paths that exists. */
export function findChromium(): string | null {
  const env = (() => {
    try {
      return Deno.env.get("CHROMIUM_PATH") ?? null;
    } catch {
      return null;
    }
  })();
  for (const p of [env, "/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"]) {
    if (!p) continue;
    try {
      if (Deno.statSync(p).isFile) return p;
    } catch {
      // not there
    }
  }
  return null;
}

export interface CanvasCheck {
  index: number;
  width: number;
  height: number;
  /** Pixels with non-zero alpha. */
  painted: number;
  /** Distinct colours among a sample of painted pixels (a chart has axes, text and data colours). */
  colors: number;
  title: string;
}

export interface BrowserCheckResult {
  url: string;
  title: string;
  /** `window.__reportReady` as set by the page's chart bootstrap (null when the page has no charts). */
  ready: { charts: number; expected: number; errors: string[] } | null;
  canvases: CanvasCheck[];
  consoleErrors: string[];
  /** URLs of network requests the page attempted (all were blocked). */
  networkRequests: string[];
  screenshot: string | null;
  /** Full page height in CSS pixels. */
  pageHeight: number;
  /** The value of `opts.probe` (undefined without one). */
  probe?: unknown;
  chromiumVersion: string;
}

export interface BrowserCheckOptions {
  chromium?: string;
  /** Save a full-page PNG here. */
  screenshotPath?: string;
  /** Viewport width in CSS pixels (default 1280). */
  width?: number;
  /**
   * A JavaScript expression evaluated in the page after the screenshot (it may click, type and measure);
   * its value, JSON-serialisable, is returned as `probe`.
   */
  probe?: string;
  /** Cap of the screenshot height in CSS pixels (default 12000). */
  maxScreenshotHeight?: number;
  timeoutMs?: number;
}

const LOCAL_SCHEMES = ["file:", "data:", "about:", "blob:", "devtools:", "chrome-extension:"];

function isLocal(url: string): boolean {
  return LOCAL_SCHEMES.some((s) => url.startsWith(s));
}

function hasNet(): boolean {
  try {
    return Deno.permissions.querySync({ name: "net", host: "127.0.0.1" }).state === "granted";
  } catch {
    return false;
  }
}

/** Open `htmlPath` in headless Chromium and check it; see the module doc. */
export async function checkHtmlInBrowser(
  htmlPath: string,
  opts: BrowserCheckOptions = {},
): Promise<BrowserCheckResult> {
  if (!hasNet()) return await checkInSubprocess(htmlPath, opts);
  return await checkInProcess(htmlPath, opts);
}

async function checkInSubprocess(htmlPath: string, opts: BrowserCheckOptions): Promise<BrowserCheckResult> {
  const self = fileURLToPath(import.meta.url);
  const cmd = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--no-config",
      "--no-lock",
      "--allow-read",
      "--allow-write",
      "--allow-env",
      "--allow-run",
      "--allow-net=127.0.0.1",
      self,
      JSON.stringify({ htmlPath: resolve(htmlPath), opts }),
    ],
    stdout: "piped",
    stderr: "piped",
  });
  const out = await cmd.output();
  const stdout = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    throw new Error(
      `browser check failed (exit ${out.code}): ${new TextDecoder().decode(out.stderr).slice(-2000)}`,
    );
  }
  return JSON.parse(stdout.trim().split("\n").at(-1)!);
}

type Msg = {
  id?: number;
  method?: string;
  params?: Record<string, unknown>;
  result?: unknown;
  error?: unknown;
  sessionId?: string;
};

class Cdp {
  #ws: WebSocket;
  #id = 0;
  #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  #listeners: ((m: Msg) => void)[] = [];
  closed: Promise<void>;
  private constructor(ws: WebSocket) {
    this.#ws = ws;
    this.closed = new Promise((res) => ws.addEventListener("close", () => res()));
    ws.addEventListener("message", (ev) => {
      const m = JSON.parse(String(ev.data)) as Msg;
      if (m.id !== undefined && this.#pending.has(m.id)) {
        const p = this.#pending.get(m.id)!;
        this.#pending.delete(m.id);
        if (m.error) p.reject(new Error(`CDP error: ${JSON.stringify(m.error)}`));
        else p.resolve(m.result);
      } else if (m.method) {
        for (const l of this.#listeners) l(m);
      }
    });
  }
  static connect(url: string): Promise<Cdp> {
    return new Promise((res, rej) => {
      const ws = new WebSocket(url);
      ws.addEventListener("open", () => res(new Cdp(ws)), { once: true });
      ws.addEventListener(
        "error",
        (e) => rej(new Error(`DevTools websocket: ${(e as ErrorEvent).message ?? e}`)),
        {
          once: true,
        },
      );
    });
  }
  on(l: (m: Msg) => void) {
    this.#listeners.push(l);
  }
  send<T = Record<string, unknown>>(
    method: string,
    params: Record<string, unknown> = {},
    sessionId?: string,
  ): Promise<T> {
    const id = ++this.#id;
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.#ws.send(JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) }));
    });
  }
  close() {
    try {
      this.#ws.close();
    } catch {
      // already closed
    }
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    p,
    new Promise<T>((_, rej) => {
      t = setTimeout(() => rej(new Error(`timed out after ${ms} ms: ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(t));
}

const CANVAS_PROBE = `(() => {
  const out = [];
  document.querySelectorAll("canvas").forEach((c, index) => {
    const ctx = c.getContext("2d");
    const d = ctx.getImageData(0, 0, c.width, c.height).data;
    let painted = 0;
    const colors = new Set();
    for (let i = 0; i < d.length; i += 4) {
      if (d[i + 3] !== 0) {
        painted++;
        if (painted % 7 === 0 && colors.size < 64) colors.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
      }
    }
    const fig = c.closest("figure");
    const cap = fig && fig.querySelector("figcaption");
    out.push({ index, width: c.width, height: c.height, painted, colors: colors.size, title: cap ? cap.textContent : "" });
  });
  return JSON.stringify(out);
})()`;

async function checkInProcess(htmlPath: string, opts: BrowserCheckOptions): Promise<BrowserCheckResult> {
  const chromium = opts.chromium ?? findChromium();
  if (!chromium) throw new Error("chromium not found (set CHROMIUM_PATH or run .ci/install-chromium.sh)");
  const timeout = opts.timeoutMs ?? 60_000;
  const width = opts.width ?? 1280;
  const profile = await Deno.makeTempDir({ prefix: "geo-r1-chromium-" });
  const url = pathToFileURL(resolve(htmlPath)).href;
  const child = new Deno.Command(chromium, {
    args: [
      ...CHROMIUM_FLAGS,
      `--user-data-dir=${profile}`,
      "--remote-debugging-port=0",
      `--window-size=${width},900`,
      "about:blank",
    ],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  // Read stderr until the DevTools URL appears, then keep draining it so Chromium never blocks on the pipe.
  const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let stderrTail = "";
  let wsUrl: string | null = null;
  const drain = (async () => {
    while (true) {
      const { value, done } = await reader.read();
      if (done) break;
      stderrTail = (stderrTail + value).slice(-8000);
    }
  })();
  let cdp: Cdp | null = null;
  try {
    const t0 = Date.now();
    while (!wsUrl) {
      const m = /DevTools listening on (ws:\/\/\S+)/.exec(stderrTail);
      if (m) wsUrl = m[1];
      else if (Date.now() - t0 > timeout) {
        throw new Error(`chromium did not start: ${stderrTail.slice(-1000)}`);
      } else await new Promise((r) => setTimeout(r, 50));
    }
    cdp = await Cdp.connect(wsUrl);
    const version = await cdp.send<{ product: string }>("Browser.getVersion");
    const { targetId } = await cdp.send<{ targetId: string }>("Target.createTarget", { url: "about:blank" });
    const { sessionId } = await cdp.send<{ sessionId: string }>("Target.attachToTarget", {
      targetId,
      flatten: true,
    });
    const consoleErrors: string[] = [];
    const network: string[] = [];
    let loaded = false;
    cdp.on((m) => {
      if (m.sessionId !== sessionId || !m.params) return;
      // deno-lint-ignore no-explicit-any
      const p = m.params as Record<string, any>;
      switch (m.method) {
        case "Runtime.consoleAPICalled":
          if (p.type === "error" || p.type === "assert") {
            consoleErrors.push(
              `console.${p.type}: ${
                (p.args ?? []).map((a: { value?: unknown; description?: string }) =>
                  a.value ?? a.description ?? ""
                ).join(" ")
              }`,
            );
          }
          break;
        case "Runtime.exceptionThrown":
          consoleErrors.push(
            `exception: ${p.exceptionDetails?.exception?.description ?? p.exceptionDetails?.text}`,
          );
          break;
        case "Log.entryAdded":
          if (p.entry?.level === "error") {
            consoleErrors.push(`log(${p.entry.source}): ${p.entry.text} ${p.entry.url ?? ""}`.trim());
          }
          break;
        case "Network.requestWillBeSent":
          if (!isLocal(String(p.request?.url))) network.push(String(p.request.url));
          break;
        case "Network.webSocketCreated":
          network.push(String(p.url));
          break;
        case "Fetch.requestPaused": {
          const u = String(p.request?.url);
          if (isLocal(u)) {
            cdp!.send("Fetch.continueRequest", { requestId: p.requestId }, sessionId).catch(() => {});
          } else {
            if (!network.includes(u)) network.push(u);
            cdp!.send(
              "Fetch.failRequest",
              { requestId: p.requestId, errorReason: "BlockedByClient" },
              sessionId,
            )
              .catch(() => {});
          }
          break;
        }
        case "Page.loadEventFired":
          loaded = true;
          break;
      }
    });
    for (const d of ["Runtime.enable", "Log.enable", "Network.enable", "Page.enable"]) {
      await cdp.send(d, {}, sessionId);
    }
    await cdp.send("Fetch.enable", { patterns: [{ urlPattern: "*" }] }, sessionId);
    await cdp.send("Emulation.setDeviceMetricsOverride", {
      width,
      height: 900,
      deviceScaleFactor: 1,
      mobile: false,
    }, sessionId);
    await cdp.send("Page.navigate", { url }, sessionId);
    const evaluate = async (expression: string) => {
      const r = await cdp!.send<{ result: { value?: unknown }; exceptionDetails?: unknown }>(
        "Runtime.evaluate",
        { expression, returnByValue: true },
        sessionId,
      );
      if (r.exceptionDetails) {
        throw new Error(`evaluate failed: ${JSON.stringify(r.exceptionDetails).slice(0, 500)}`);
      }
      return r.result.value;
    };
    const t1 = Date.now();
    while (!loaded) {
      if (Date.now() - t1 > timeout) throw new Error(`page did not load: ${url}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const hasCharts = Boolean(await evaluate(`document.querySelectorAll("figure.chart").length > 0`));
    let ready: BrowserCheckResult["ready"] = null;
    if (hasCharts) {
      while (true) {
        const v = await evaluate(`JSON.stringify(window.__reportReady ?? null)`);
        ready = JSON.parse(String(v));
        if (ready) break;
        if (Date.now() - t1 > timeout) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      // two animation frames so that any responsive re-layout has painted
      await cdp.send("Runtime.evaluate", {
        expression: `new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(() => r(1))))`,
        awaitPromise: true,
      }, sessionId);
    }
    const canvases = JSON.parse(String(await evaluate(CANVAS_PROBE))) as CanvasCheck[];
    const title = String(await evaluate("document.title"));
    const pageHeight = Number(await evaluate("document.documentElement.scrollHeight"));
    let screenshot: string | null = null;
    if (opts.screenshotPath) {
      const h = Math.min(pageHeight, opts.maxScreenshotHeight ?? 12000);
      const shot = await cdp.send<{ data: string }>("Page.captureScreenshot", {
        format: "png",
        captureBeyondViewport: true,
        clip: { x: 0, y: 0, width, height: h, scale: 1 },
      }, sessionId);
      const bin = atob(shot.data);
      const bytes = new Uint8Array(bin.length);
      for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
      await Deno.writeFile(opts.screenshotPath, bytes);
      screenshot = resolve(opts.screenshotPath);
    }
    const probe = opts.probe === undefined ? undefined : await evaluate(opts.probe);
    // let late events (e.g. a lazily started request) arrive before reporting
    await new Promise((r) => setTimeout(r, 200));
    return {
      url,
      title,
      ready,
      canvases,
      consoleErrors,
      networkRequests: network,
      screenshot,
      pageHeight,
      chromiumVersion: version.product,
      ...(opts.probe === undefined ? {} : { probe }),
    };
  } finally {
    if (cdp) {
      await withTimeout(cdp.send("Browser.close"), 5000, "Browser.close").catch(() => {});
      cdp.close();
      await withTimeout(cdp.closed, 2000, "websocket close").catch(() => {});
    }
    try {
      child.kill("SIGKILL");
    } catch {
      // already exited
    }
    await child.status;
    await drain.catch(() => {});
    await Deno.remove(profile, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) {
  const arg = JSON.parse(Deno.args[0] ?? "{}");
  const r = await checkInProcess(arg.htmlPath, arg.opts ?? {});
  console.log(JSON.stringify(r));
}
