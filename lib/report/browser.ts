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

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A headless Chromium child with a throwaway profile; its stderr is drained so it never blocks on the pipe. */
class Chromium {
  #child: Deno.ChildProcess;
  #profile: string;
  #stderrTail = "";
  #drain: Promise<void>;
  private constructor(child: Deno.ChildProcess, profile: string) {
    this.#child = child;
    this.#profile = profile;
    this.#drain = this.#readStderr();
  }
  /** Start `binary` on about:blank with a DevTools port chosen by Chromium and a `width` x 900 window. */
  static async launch(binary: string, width: number): Promise<Chromium> {
    const profile = await Deno.makeTempDir({ prefix: "geo-r1-chromium-" });
    const child = new Deno.Command(binary, {
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
    return new Chromium(child, profile);
  }
  async #readStderr(): Promise<void> {
    const reader = this.#child.stderr.pipeThrough(new TextDecoderStream()).getReader();
    while (true) {
      const { value, done } = await reader.read();
      if (done) break;
      this.#stderrTail = (this.#stderrTail + value).slice(-8000);
    }
  }
  /** The DevTools websocket URL, once Chromium prints it on stderr. */
  async devToolsUrl(timeoutMs: number): Promise<string> {
    const t0 = Date.now();
    while (true) {
      const m = /DevTools listening on (ws:\/\/\S+)/.exec(this.#stderrTail);
      if (m) return m[1];
      if (Date.now() - t0 > timeoutMs) {
        throw new Error(`chromium did not start: ${this.#stderrTail.slice(-1000)}`);
      }
      await sleep(50);
    }
  }
  /** Kill the process and remove its profile. */
  async close(): Promise<void> {
    try {
      this.#child.kill("SIGKILL");
    } catch {
      // already exited
    }
    await this.#child.status;
    await this.#drain.catch(() => {});
    await Deno.remove(this.#profile, { recursive: true }).catch(() => {});
  }
}

/** One page target attached in flat mode: commands and evaluations go to its session. */
class PageSession {
  readonly cdp: Cdp;
  readonly sessionId: string;
  private constructor(cdp: Cdp, sessionId: string) {
    this.cdp = cdp;
    this.sessionId = sessionId;
  }
  static async open(cdp: Cdp): Promise<PageSession> {
    const { targetId } = await cdp.send<{ targetId: string }>("Target.createTarget", { url: "about:blank" });
    const { sessionId } = await cdp.send<{ sessionId: string }>("Target.attachToTarget", {
      targetId,
      flatten: true,
    });
    return new PageSession(cdp, sessionId);
  }
  send<T = Record<string, unknown>>(method: string, params: Record<string, unknown> = {}): Promise<T> {
    return this.cdp.send<T>(method, params, this.sessionId);
  }
  /** The JSON value of `expression` evaluated in the page; throws on an exception. */
  async evaluate(expression: string): Promise<unknown> {
    const r = await this.send<{ result: { value?: unknown }; exceptionDetails?: unknown }>(
      "Runtime.evaluate",
      { expression, returnByValue: true },
    );
    if (r.exceptionDetails) {
      throw new Error(`evaluate failed: ${JSON.stringify(r.exceptionDetails).slice(0, 500)}`);
    }
    return r.result.value;
  }
}

/** What a page did while it was watched. */
interface PageEvents {
  consoleErrors: string[];
  /** URLs of the network requests it attempted (each was failed). */
  network: string[];
  loaded: boolean;
}

// deno-lint-ignore no-explicit-any
type EventParams = Record<string, any>;

/** The console error line of a DevTools event, or null when the event is no error. */
function consoleErrorOf(method: string | undefined, p: EventParams): string | null {
  switch (method) {
    case "Runtime.consoleAPICalled":
      if (p.type !== "error" && p.type !== "assert") return null;
      return `console.${p.type}: ${
        (p.args ?? []).map((a: { value?: unknown; description?: string }) => a.value ?? a.description ?? "")
          .join(" ")
      }`;
    case "Runtime.exceptionThrown":
      return `exception: ${p.exceptionDetails?.exception?.description ?? p.exceptionDetails?.text}`;
    case "Log.entryAdded":
      if (p.entry?.level !== "error") return null;
      return `log(${p.entry.source}): ${p.entry.text} ${p.entry.url ?? ""}`.trim();
    default:
      return null;
  }
}

/** Let a paused local request continue; fail any other and record its URL. */
function routePausedRequest(page: PageSession, p: EventParams, network: string[]): void {
  const u = String(p.request?.url);
  if (isLocal(u)) {
    page.send("Fetch.continueRequest", { requestId: p.requestId }).catch(() => {});
  } else {
    if (!network.includes(u)) network.push(u);
    page.send("Fetch.failRequest", { requestId: p.requestId, errorReason: "BlockedByClient" }).catch(
      () => {},
    );
  }
}

/** Record the page's console errors, exceptions and network attempts, and its load event, from now on. */
function watchPage(page: PageSession): PageEvents {
  const events: PageEvents = { consoleErrors: [], network: [], loaded: false };
  page.cdp.on((m) => {
    if (m.sessionId !== page.sessionId || !m.params) return;
    const p = m.params as EventParams;
    const error = consoleErrorOf(m.method, p);
    if (error !== null) events.consoleErrors.push(error);
    switch (m.method) {
      case "Network.requestWillBeSent":
        if (!isLocal(String(p.request?.url))) events.network.push(String(p.request.url));
        break;
      case "Network.webSocketCreated":
        events.network.push(String(p.url));
        break;
      case "Fetch.requestPaused":
        routePausedRequest(page, p, events.network);
        break;
      case "Page.loadEventFired":
        events.loaded = true;
        break;
    }
  });
  return events;
}

/** Enable the watched domains, intercept every request, fix the viewport and navigate to `url`. */
async function navigate(page: PageSession, url: string, width: number): Promise<void> {
  for (const d of ["Runtime.enable", "Log.enable", "Network.enable", "Page.enable"]) await page.send(d);
  await page.send("Fetch.enable", { patterns: [{ urlPattern: "*" }] });
  await page.send("Emulation.setDeviceMetricsOverride", {
    width,
    height: 900,
    deviceScaleFactor: 1,
    mobile: false,
  });
  await page.send("Page.navigate", { url });
}

/**
 * When the page has charts: wait (until `t0 + timeoutMs`) for the chart bootstrap's `window.__reportReady`,
 * then two animation frames so that any responsive re-layout has painted. Null when it has none.
 */
async function waitForCharts(
  page: PageSession,
  t0: number,
  timeoutMs: number,
): Promise<BrowserCheckResult["ready"]> {
  const hasCharts = Boolean(await page.evaluate(`document.querySelectorAll("figure.chart").length > 0`));
  if (!hasCharts) return null;
  let ready: BrowserCheckResult["ready"] = null;
  while (true) {
    ready = JSON.parse(String(await page.evaluate(`JSON.stringify(window.__reportReady ?? null)`)));
    if (ready) break;
    if (Date.now() - t0 > timeoutMs) break;
    await sleep(100);
  }
  await page.send("Runtime.evaluate", {
    expression: `new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(() => r(1))))`,
    awaitPromise: true,
  });
  return ready;
}

/** Save a PNG of the page's top `height` CSS pixels at `width` to `path`; returns its absolute path. */
async function saveScreenshot(
  page: PageSession,
  path: string,
  width: number,
  height: number,
): Promise<string> {
  const shot = await page.send<{ data: string }>("Page.captureScreenshot", {
    format: "png",
    captureBeyondViewport: true,
    clip: { x: 0, y: 0, width, height, scale: 1 },
  });
  const bin = atob(shot.data);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  await Deno.writeFile(path, bytes);
  return resolve(path);
}

/** Close the browser through DevTools, then the socket, each with a short timeout. */
async function closeDevTools(cdp: Cdp): Promise<void> {
  await withTimeout(cdp.send("Browser.close"), 5000, "Browser.close").catch(() => {});
  cdp.close();
  await withTimeout(cdp.closed, 2000, "websocket close").catch(() => {});
}

async function checkInProcess(htmlPath: string, opts: BrowserCheckOptions): Promise<BrowserCheckResult> {
  const binary = opts.chromium ?? findChromium();
  if (!binary) throw new Error("chromium not found (set CHROMIUM_PATH or run .ci/install-chromium.sh)");
  const timeout = opts.timeoutMs ?? 60_000;
  const width = opts.width ?? 1280;
  const url = pathToFileURL(resolve(htmlPath)).href;
  const chromium = await Chromium.launch(binary, width);
  let cdp: Cdp | null = null;
  try {
    cdp = await Cdp.connect(await chromium.devToolsUrl(timeout));
    const version = await cdp.send<{ product: string }>("Browser.getVersion");
    const page = await PageSession.open(cdp);
    const events = watchPage(page);
    await navigate(page, url, width);
    const t1 = Date.now();
    while (!events.loaded) {
      if (Date.now() - t1 > timeout) throw new Error(`page did not load: ${url}`);
      await sleep(50);
    }
    const ready = await waitForCharts(page, t1, timeout);
    const canvases = JSON.parse(String(await page.evaluate(CANVAS_PROBE))) as CanvasCheck[];
    const title = String(await page.evaluate("document.title"));
    const pageHeight = Number(await page.evaluate("document.documentElement.scrollHeight"));
    const screenshot = opts.screenshotPath
      ? await saveScreenshot(
        page,
        opts.screenshotPath,
        width,
        Math.min(pageHeight, opts.maxScreenshotHeight ?? 12000),
      )
      : null;
    const probe = opts.probe === undefined ? undefined : await page.evaluate(opts.probe);
    // let late events (e.g. a lazily started request) arrive before reporting
    await sleep(200);
    return {
      url,
      title,
      ready,
      canvases,
      consoleErrors: events.consoleErrors,
      networkRequests: events.network,
      screenshot,
      pageHeight,
      chromiumVersion: version.product,
      ...(opts.probe === undefined ? {} : { probe }),
    };
  } finally {
    if (cdp) await closeDevTools(cdp);
    await chromium.close();
  }
}

if (import.meta.main) {
  const arg = JSON.parse(Deno.args[0] ?? "{}");
  const r = await checkInProcess(arg.htmlPath, arg.opts ?? {});
  console.log(JSON.stringify(r));
}
